"""Where torch.nn accepts an unusual dtype or an empty shape, torchflip computes
the same function; where torch.nn rejects it, torchflip rejects it too.

Every public entry point (compiled operator, functional API, layer with and
without gradients) is compared with torch.nn.functional on the flipped kernel,
called with the same arguments: either both raise, or both return equal
results (and, for empty shapes, equal gradients).
"""

from __future__ import annotations

import pytest
import torch

from tests.reliability.entry_points import (
    FFT_KINDS,
    Problem,
    applies,
    base_problem,
    entry_point,
    outcome,
    torch_reference,
)

KINDS = ("op", "functional", "layer", "layer_no_grad") + FFT_KINDS
FAMILIES = ("conv", "transposed")
ENTRIES = [(family, kind) for family in FAMILIES for kind in KINDS
           if applies(kind, family == "transposed")]

# Every dtype that is neither a standard float nor a quantized type.
ODD_DTYPES = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool,
              torch.complex32, torch.complex64, torch.complex128, torch.float8_e4m3fn,
              torch.float8_e5m2]


def _with_dtype(p: Problem, dtype: torch.dtype) -> Problem:
    def cast(t):
        if dtype.is_complex:
            # A non-zero imaginary part, so complex arithmetic is exercised.
            return torch.complex(t, t.flip(0)).to(dtype)
        if dtype == torch.bool:
            return t > 0
        if not dtype.is_floating_point:
            return (t * 3).round().to(dtype)
        return t.to(dtype)
    # torch.complex32 has no complex() constructor; build it from complex64.
    if dtype == torch.complex32:
        cast64 = _with_dtype(p, torch.complex64)
        return cast64.replace(input=cast64.input.to(dtype), weight=cast64.weight.to(dtype),
                              bias=cast64.bias.to(dtype))
    return p.replace(input=cast(p.input), weight=cast(p.weight), bias=cast(p.bias))


def _describe(kind: str, result: str, value) -> str:
    if result == "raised":
        return f"{kind} raised {type(value).__name__}: {str(value).splitlines()[0]}"
    return f"{kind} returned a {value.dtype} tensor of shape {tuple(value.shape)}"


def assert_same_behaviour(p: Problem, kind: str) -> None:
    """The entry point and the reference both raise, or both return equal values."""
    name, call = entry_point(kind, p.transposed)
    theirs, reference = outcome(lambda: torch_reference(p))
    ours, value = outcome(lambda: call(p))
    if ours != theirs:
        pytest.fail(f"{_describe(name, ours, value)}, but "
                    f"{_describe('torch.nn.functional', theirs, reference)}")
    if ours == "raised":
        return
    assert value.shape == reference.shape and value.dtype == reference.dtype
    torch.testing.assert_close(value, reference)


@pytest.mark.parametrize("dtype", ODD_DTYPES, ids=str)
@pytest.mark.parametrize("family,kind", ENTRIES)
@pytest.mark.parametrize("dims", [1, 2])
def test_dtypes_behave_as_torch(dims, family, kind, dtype):
    p = _with_dtype(base_problem(family == "transposed", dims), dtype)
    assert_same_behaviour(p, kind)


def _empty(p: Problem, case: str) -> Problem:
    x, w = p.input, p.weight
    k = w.shape[2:]
    if case == "zero batch":
        return p.replace(input=x[:0])
    if case == "zero input channels":
        # groups=1 and no input channels: torch.nn gives an all-bias output.
        weight = w.new_zeros(w.shape[0], 0, *k) if not p.transposed else w[:0]
        return p.replace(input=x[:, :0], weight=weight, groups=1)
    if case == "zero output channels":
        weight = w[:0] if not p.transposed else w[:, :0]
        return p.replace(weight=weight, bias=p.bias[:0], groups=1 if not p.transposed else 2)
    if case == "zero spatial size, padded enough":
        return p.replace(input=x[..., :0], padding=2)
    if case == "zero spatial size":
        return p.replace(input=x[..., :0], padding=0)
    if case == "zero kernel size":
        return p.replace(weight=w[..., :0])
    if case == "transposed output of size zero":
        return p.replace(padding=4)
    raise ValueError(case)


EMPTY_CASES = ["zero batch", "zero input channels", "zero output channels",
               "zero spatial size, padded enough", "zero spatial size", "zero kernel size",
               "transposed output of size zero"]
EMPTY_PARAMS = [(family, case) for family in FAMILIES for case in EMPTY_CASES
                if family == "transposed" or not case.startswith("transposed")]


@pytest.mark.parametrize("case", EMPTY_CASES)
@pytest.mark.parametrize("family,kind", ENTRIES)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_empty_shapes_behave_as_torch(dims, family, kind, case):
    if case.startswith("transposed") and family == "conv":
        return  # a transposed-convolution case
    assert_same_behaviour(_empty(base_problem(family == "transposed", dims), case), kind)


@pytest.mark.parametrize("family,case", EMPTY_PARAMS)
def test_empty_shapes_give_torch_gradients(family, case):
    """Where torch.nn computes an empty-shaped convolution, the gradients of
    input, weight and bias match torch.nn's too."""
    p = _empty(base_problem(family == "transposed", 2), case)
    leaves = [t.detach().clone().requires_grad_() for t in (p.input, p.weight, p.bias)]
    ref_leaves = [t.detach().clone().requires_grad_() for t in (p.input, p.weight, p.bias)]
    theirs, reference = outcome(lambda: torch_reference(
        p.replace(input=ref_leaves[0], weight=ref_leaves[1], bias=ref_leaves[2])))
    if theirs == "raised":
        return  # torchflip must raise too: test_empty_shapes_behave_as_torch
    _, call = entry_point("functional", p.transposed)
    out = call(p.replace(input=leaves[0], weight=leaves[1], bias=leaves[2]))
    projection = torch.randn(out.shape)
    ours = torch.autograd.grad((out * projection).sum(), leaves)
    expected = torch.autograd.grad((reference * projection).sum(), ref_leaves)
    for name, g, e in zip(("input", "weight", "bias"), ours, expected):
        torch.testing.assert_close(g, e, msg=lambda m, name=name: f"grad of {name}: {m}")
