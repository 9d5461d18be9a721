"""The implementations of one layer that are timed against each other.

For a :class:`~benchmarks.cases.LayerCase` every candidate computes the same
true convolution of the same input with the same parameters:

* ``torch.nn`` (the reference): ``torchflip_layer.to_torch()``, torch's layer
  holding the flipped weight; the limit torchflip can approach.
* ``torchflip``: ``torchflip.nn.ConvNd``.
* ``naive flip``: ``F.convNd(x, w.flip(spatial dims), b, ...)`` on every call,
  the flip (a copy of the weight, and its backward) included in the timing.
* ``torch.nn (again)``: a deep copy of the reference, only with
  ``control=True``: identical work, so its ratio to the reference measures
  how far two equal candidates stray apart in this run.
* ``torchflip[auto|direct|fft]``: the layer built with ``method=...``, only on
  large-kernel suites and only when torchflip's layers take that argument.
* ``fft-conv-pytorch``: its ``fft_conv`` on the flipped weight (it computes
  cross-correlation), only on large-kernel suites and when it is installed.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import torchflip
from benchmarks.cases import LayerCase
from benchmarks.results import (
    CONTROL,
    FFT_CONV_PYTORCH,
    METHODS,
    NAIVE,
    REFERENCE,
    TORCHFLIP,
    method_name,
)

_TRUE_CLASSES = {1: torchflip.nn.Conv1d, 2: torchflip.nn.Conv2d, 3: torchflip.nn.Conv3d}
_FUNCTIONAL = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def supports_method(dims: int) -> bool:
    """Whether torchflip.nn.ConvNd takes ``method='auto'|'direct'|'fft'``."""
    return "method" in inspect.signature(_TRUE_CLASSES[dims]).parameters


def fft_conv_pytorch() -> Callable | None:
    """fft_conv_pytorch.fft_conv, or None when the package is not installed."""
    try:
        from fft_conv_pytorch import fft_conv
    except ImportError:
        return None
    # Its list-of-slices indexing warns on every call in recent torch.
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence",
                            module="fft_conv_pytorch")
    return fft_conv


@dataclass
class Layer:
    """A candidate: a function of the input, the parameters it differentiates,
    and the module whose train/eval mode the benchmark sets (None for the
    functional candidates)."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    parameters: list[torch.Tensor]
    module: torch.nn.Module | None = None


def build_layers(case: LayerCase, device: str, large_kernel: bool,
                 control: bool = False) -> dict[str, Layer]:
    """Every candidate for ``case``, the reference first, all holding the same
    true-convolution parameters (drawn with torch.nn's default initialisation);
    with ``control``, the reference's copy too."""
    dims = case.dims
    args = case.arguments()
    true_layer = _TRUE_CLASSES[dims](**args, device=device)
    spatial = list(range(2, 2 + dims))
    weight, bias = true_layer.weight, true_layer.bias
    own = [p for p in (weight, bias) if p is not None]
    functional = _FUNCTIONAL[dims]

    def naive(x: torch.Tensor) -> torch.Tensor:
        return functional(x, weight.flip(spatial), bias, args["stride"], args["padding"],
                          args["dilation"], args["groups"])

    reference = true_layer.to_torch()
    layers = {REFERENCE: Layer(reference, list(reference.parameters()), reference)}
    if large_kernel and supports_method(dims):
        for method in METHODS:
            variant = _TRUE_CLASSES[dims](**args, method=method, device=device)
            variant.load_state_dict(true_layer.state_dict())
            layers[method_name(method)] = Layer(variant, list(variant.parameters()), variant)
    else:
        layers[TORCHFLIP] = Layer(true_layer, own, true_layer)
    layers[NAIVE] = Layer(naive, own)
    if control:
        twin = copy.deepcopy(reference)
        layers[CONTROL] = Layer(twin, list(twin.parameters()), twin)
    fft_conv = fft_conv_pytorch()
    if large_kernel and fft_conv is not None and case.unit_stride:
        def fft_conv_flipped(x: torch.Tensor) -> torch.Tensor:
            return fft_conv(x, weight.flip(spatial), bias, padding=args["padding"],
                            stride=args["stride"], dilation=args["dilation"],
                            groups=args["groups"])

        layers[FFT_CONV_PYTORCH] = Layer(fft_conv_flipped, own)
    return layers


def make_step(layer: Layer, mode: str, x: torch.Tensor,
              grad_output: torch.Tensor) -> Callable[[], object]:
    """The timed call for ``mode``:

    * ``fwd``: training mode, autograd recording (parameters and input require
      grad), forward only;
    * ``fwdbwd``: training mode, forward then the gradients of input, weight
      and bias for a fixed output gradient (torch.autograd.grad, so nothing
      accumulates in .grad);
    * ``eval``: module.eval() under torch.no_grad(), forward only.
    """
    if layer.module is not None:
        layer.module.train(mode != "eval")
    forward = layer.forward
    if mode == "fwd":
        return lambda: forward(x)
    if mode == "fwdbwd":
        inputs = [x, *layer.parameters]
        return lambda: torch.autograd.grad(forward(x), inputs, grad_output)
    if mode == "eval":
        def inference() -> torch.Tensor:
            with torch.no_grad():
                return forward(x)

        return inference
    raise ValueError(f"unknown mode {mode!r}")
