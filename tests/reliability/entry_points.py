"""Every public way into torchflip's convolutions, called uniformly.

A :class:`Problem` holds the arguments of one convolution (or transposed
convolution) in torch.nn.functional's form; the adapters here pass it to each
public entry point: the compiled operators (``torch.ops.torchflip.*``, with
their underscored twins), their backward operators, the functional API and the
layers (constructor, then forward, with and without gradients). Arguments are
passed through unchanged where the entry point accepts their type, so a bad
argument reaches the entry point's own validation.

:func:`torch_reference` calls torch.nn.functional with the kernel flipped, the
project's definition of true convolution, on the same arguments.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import torchflip.nn as tnn
import torchflip.nn.functional as TF

# The base problem: 4 input channels, 6 output channels, 2 groups, kernel 3.
IN_CHANNELS, OUT_CHANNELS, GROUPS, KERNEL, SIZE, BATCH = 4, 6, 2, 3, 6, 2


@dataclass(frozen=True)
class Problem:
    """Arguments of one call. ``dims`` is the dimensionality of the entry point
    (conv{dims}d), kept even when a bad tensor has another rank."""

    transposed: bool
    dims: int
    input: Any
    weight: Any
    bias: Any
    grad_output: Any
    stride: Any = 1
    padding: Any = 1
    dilation: Any = 1
    groups: Any = GROUPS
    output_padding: Any = 0

    def replace(self, **changes) -> Problem:
        return dataclasses.replace(self, **changes)


@functools.cache
def base_problem(transposed: bool, dims: int) -> Problem:
    """A valid problem; its grad_output has the shape of the reference output.
    Cached: callers derive new problems from it and never modify its tensors."""
    generator = torch.Generator().manual_seed(dims + 10 * transposed)

    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    x = randn(BATCH, IN_CHANNELS, *[SIZE] * dims)
    if transposed:
        w = randn(IN_CHANNELS, OUT_CHANNELS // GROUPS, *[KERNEL] * dims)
    else:
        w = randn(OUT_CHANNELS, IN_CHANNELS // GROUPS, *[KERNEL] * dims)
    problem = Problem(transposed, dims, x, w, randn(OUT_CHANNELS), None)
    out = torch_reference(problem)
    return problem.replace(grad_output=randn(*out.shape))


def _as_list(value):
    """Operator form of a hyper-parameter: ints and sequences become lists;
    anything else is passed on for the operator's schema to reject."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (tuple, list)):
        return list(value)
    return value


def call_op(name: str) -> Callable[[Problem], Any]:
    """torch.ops.torchflip.<name>, forward or backward, for the problem's family."""
    op = getattr(torch.ops.torchflip, name)
    backward = name.endswith("_backward")

    def call(p: Problem):
        hyper = [_as_list(p.stride), _as_list(p.padding)]
        if p.transposed:
            hyper += [_as_list(p.output_padding), p.groups, _as_list(p.dilation)]
        else:
            hyper += [_as_list(p.dilation), p.groups]
        if backward:
            return op(p.grad_output, p.input, p.weight, *hyper, [True, True, True])
        return op(p.input, p.weight, p.bias, *hyper)

    return call


def call_functional(p: Problem, **extra):
    if p.transposed:
        fn = getattr(TF, f"conv_transpose{p.dims}d")
        return fn(p.input, p.weight, p.bias, stride=p.stride, padding=p.padding,
                  output_padding=p.output_padding, groups=p.groups, dilation=p.dilation,
                  **extra)
    fn = getattr(TF, f"conv{p.dims}d")
    return fn(p.input, p.weight, p.bias, stride=p.stride, padding=p.padding,
              dilation=p.dilation, groups=p.groups, **extra)


def build_layer(p: Problem, **extra) -> nn.Module:
    """The torchflip layer for the problem's hyper-parameters, holding the
    problem's weight and bias (assigned as parameters, as a user who edits a
    layer would)."""
    kwargs = dict(stride=p.stride, padding=p.padding, dilation=p.dilation, groups=p.groups,
                  bias=p.bias is not None)
    if p.transposed:
        cls = getattr(tnn, f"ConvTranspose{p.dims}d")
        kwargs["output_padding"] = p.output_padding
    else:
        cls = getattr(tnn, f"Conv{p.dims}d")
    layer = cls(IN_CHANNELS, OUT_CHANNELS, KERNEL, **kwargs, **extra)
    layer.weight = _parameter(p.weight)
    if p.bias is not None:
        layer.bias = _parameter(p.bias)
    return layer


def _parameter(value):
    if isinstance(value, Tensor):
        differentiable = value.is_floating_point() or value.is_complex()
        return nn.Parameter(value, requires_grad=differentiable)
    return value  # the module's own check rejects it


def call_layer(p: Problem):
    return build_layer(p)(p.input)


def call_layer_no_grad(p: Problem):
    layer = build_layer(p)
    with torch.no_grad():
        return layer(p.input)


def entry_point(kind: str, transposed: bool) -> tuple[str, Callable[[Problem], Any]]:
    """(description, callable) of one kind of entry point for one family.

    Kinds: ``op`` and ``_op`` (the public operator and its twin), ``backward``
    and ``_backward``, ``functional``, ``layer`` (forward with gradients) and
    ``layer_no_grad``; for forward convolutions also ``functional_fft`` and
    ``layer_fft``, the FFT engine (``method='fft'``)."""
    base = "conv_transpose" if transposed else "conv"
    if kind in ("op", "_op", "backward", "_backward"):
        name = ("_" if kind.startswith("_") else "") + base
        name += "_backward" if kind.endswith("backward") else ""
        return f"torch.ops.torchflip.{name}", call_op(name)
    if kind == "functional":
        return f"torchflip.nn.functional.{base}Nd", call_functional
    if kind == "functional_fft" and not transposed:
        return (f"torchflip.nn.functional.{base}Nd(method='fft')",
                functools.partial(call_functional, method="fft"))
    layer = "ConvTransposeNd" if transposed else "ConvNd"
    if kind == "layer":
        return f"torchflip.nn.{layer}", call_layer
    if kind == "layer_no_grad":
        return f"torchflip.nn.{layer} under no_grad", call_layer_no_grad
    if kind == "layer_fft" and not transposed:
        return f"torchflip.nn.{layer}(method='fft')", lambda p: build_layer(p, method="fft")(
            p.input)
    raise ValueError(f"no entry point of kind {kind!r} for {base}")


KINDS = ("op", "_op", "backward", "_backward", "functional", "layer", "layer_no_grad",
         "functional_fft", "layer_fft")
FFT_KINDS = ("functional_fft", "layer_fft")


def applies(kind: str, transposed: bool) -> bool:
    """Whether the entry point kind exists for the family (the FFT engine
    serves forward convolutions only)."""
    return not (transposed and kind in FFT_KINDS)


def flip(weight: Tensor) -> Tensor:
    dims = list(range(2, weight.dim()))
    if weight.dtype == torch.complex32:
        # ATen has no flip kernel for complex32, while torch.nn's convolution
        # accepts it; reversing the bit-identical float32 view is exact.
        return weight.view(torch.float32).flip(dims).view(torch.complex32)
    return weight.flip(dims)


def torch_reference(p: Problem) -> Tensor:
    """torch.nn.functional on the flipped kernel with the same arguments."""
    weight = flip(p.weight) if isinstance(p.weight, Tensor) else p.weight
    if p.transposed:
        fn = getattr(F, f"conv_transpose{p.dims}d")
        return fn(p.input, weight, p.bias, p.stride, p.padding, p.output_padding, p.groups,
                  p.dilation)
    fn = getattr(F, f"conv{p.dims}d")
    return fn(p.input, weight, p.bias, p.stride, p.padding, p.dilation, p.groups)


def outcome(call: Callable[[], Any]) -> tuple[str, Any | None]:
    """("returned", value) or ("raised", exception)."""
    try:
        return "returned", call()
    except Exception as error:  # noqa: BLE001  (any Python exception is an outcome)
        return "raised", error
