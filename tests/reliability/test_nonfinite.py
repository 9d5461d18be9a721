"""NaN and infinity propagate exactly as in torch.nn: the same output and
gradient positions are NaN, +inf and -inf as torch.nn.functional on the flipped
kernel gives, for inputs, weights, biases and upstream gradients holding
non-finite values (including inf times the zeros of padding)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import torchflip.nn as tnn
import torchflip.nn.functional as TF
from tests.reference import torch_conv, torch_conv_transpose
from tests.strategies import conv_cases

NON_FINITE = (float("nan"), float("inf"), -float("inf"))


def sprinkle(t: torch.Tensor, generator: torch.Generator, fraction: float = 0.15) -> torch.Tensor:
    """A copy of ``t`` with about ``fraction`` of its elements replaced by NaN,
    +inf or -inf (at least one element when ``t`` is not empty)."""
    t = t.detach().clone()
    if t.numel() == 0:
        return t
    flat = t.view(-1)
    count = max(1, int(fraction * flat.numel()))
    positions = torch.randperm(flat.numel(), generator=generator)[:count]
    kinds = torch.randint(0, 3, (count,), generator=generator)
    for position, kind in zip(positions.tolist(), kinds.tolist()):
        flat[position] = NON_FINITE[kind]
    return t


def assert_same_non_finite(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    for name, test in (("NaN", torch.isnan), ("+inf", torch.isposinf), ("-inf", torch.isneginf)):
        mismatch = (test(ours) != test(theirs)).nonzero().tolist()
        assert not mismatch, f"{what}: {name} positions differ at {mismatch[:5]}"
    torch.testing.assert_close(ours, theirs, equal_nan=True, msg=lambda m: f"{what}: {m}")


def _functional(case):
    dims = case.dims
    if case.transposed:
        return getattr(TF, f"conv_transpose{dims}d"), torch_conv_transpose
    return getattr(TF, f"conv{dims}d"), torch_conv


def _check(case, dtype, seed, poison):
    """Forward and backward of the functional API vs the reference, with the
    tensors named in ``poison`` holding non-finite values."""
    generator = torch.Generator().manual_seed(seed)
    x, w, b = case.tensors(dtype)
    if "input" in poison:
        x = sprinkle(x, generator)
    if "weight" in poison:
        w = sprinkle(w, generator)
    if "bias" in poison and b is not None:
        b = sprinkle(b, generator)
    ours_fn, ref_fn = _functional(case)
    leaves = [t.clone().requires_grad_() if t is not None else None for t in (x, w, b)]
    ref_leaves = [t.clone().requires_grad_() if t is not None else None for t in (x, w, b)]
    out = ours_fn(*leaves, **case.kwargs())
    ref = ref_fn(*ref_leaves, **case.kwargs())
    assert_same_non_finite(out, ref, "output")

    upstream = torch.randn(out.shape, dtype=dtype, generator=generator)
    if "grad_output" in poison:
        upstream = sprinkle(upstream, generator)
    wanted = [t for t in leaves if t is not None]
    ref_wanted = [t for t in ref_leaves if t is not None]
    grads = torch.autograd.grad(out, wanted, upstream)
    ref_grads = torch.autograd.grad(ref, ref_wanted, upstream)
    for name, g, r in zip(("input", "weight", "bias"), grads, ref_grads):
        assert_same_non_finite(g, r, f"gradient of {name}")


POISONS = [("input",), ("weight",), ("bias",), ("grad_output",),
           ("input", "weight", "bias", "grad_output")]


@given(case=st.one_of(conv_cases(), conv_cases(transposed=True)),
       dtype=st.sampled_from([torch.float32, torch.float64]),
       poison=st.sampled_from(POISONS), seed=st.integers(0, 2**31 - 1))
def test_property_non_finite_values_propagate_as_in_torch(case, dtype, poison, seed):
    _check(case, dtype, seed, poison)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_single_non_finite_weight_with_zero_padding(transposed, value):
    """inf * 0 = NaN where the kernel overlaps the zero padding: the NaN
    positions must still be torch.nn's (the flip moves the non-finite tap)."""
    x = torch.randn(1, 2, 7, 7)
    w = torch.randn(2, 2, 3, 3) if transposed else torch.randn(3, 2, 3, 3)
    w[0, 1, 0, 2] = value
    if transposed:
        out = TF.conv_transpose2d(x, w, padding=1)
        ref = torch_conv_transpose(x, w, padding=1)
    else:
        out = TF.conv2d(x, w, padding=1)
        ref = torch_conv(x, w, padding=1)
    assert_same_non_finite(out, ref, "output")
    assert out.isnan().any() or out.isinf().any()


@pytest.mark.parametrize("layer_cls", [tnn.Conv2d, tnn.ConvTranspose2d])
@pytest.mark.parametrize("grad_enabled", [True, False])
def test_layers_propagate_non_finite_values_as_torch_layers(layer_cls, grad_enabled):
    """Both layer paths (the operator when gradients flow, the cached flipped
    weight under no_grad) against the torch.nn layer it converts to."""
    generator = torch.Generator().manual_seed(3)
    layer = layer_cls(4, 6, 3, padding=1, groups=2)
    with torch.no_grad():
        layer.weight.copy_(sprinkle(layer.weight, generator, 0.05))
        layer.bias.copy_(sprinkle(layer.bias, generator, 0.2))
    reference = layer.to_torch()
    x = sprinkle(torch.randn(2, 4, 6, 6), generator, 0.05)
    with torch.set_grad_enabled(grad_enabled):
        assert_same_non_finite(layer(x), reference(x), "output")


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_fft_engine_propagates_non_finite_values_as_torch(value):
    """method='fft' must keep a non-finite input sample inside the outputs
    whose window covers it, as torch.nn does, rather than spread it through
    the whole transform."""
    x = torch.randn(1, 2, 64)
    x[0, 1, 10] = value
    w = torch.randn(3, 2, 5)
    assert_same_non_finite(TF.conv1d(x, w, method="fft"), torch_conv(x, w), "output")


@pytest.mark.parametrize("grad_enabled", [True, False])
def test_default_layer_with_a_long_kernel_propagates_non_finite_values_as_torch(grad_enabled):
    """A layer with the default method='auto' and a long kernel (where the FFT
    engine is typically chosen) against the torch.nn layer it converts to."""
    layer = tnn.Conv1d(1, 1, 255)
    x = torch.randn(1, 1, 4096)
    x[0, 0, 1000] = float("nan")
    x[0, 0, 3000] = float("inf")
    with torch.set_grad_enabled(grad_enabled):
        assert_same_non_finite(layer(x), layer.to_torch()(x), "output")


@pytest.mark.parametrize("grad_enabled", [True, False])
def test_fft_engine_sees_infinities_of_both_signs_in_different_operands(grad_enabled):
    """+inf in the input and -inf in the weight: the engine's finiteness check
    adds sums whose infinities may make a NaN, and still routes the call to
    the direct engine."""
    x = torch.randn(1, 2, 64)
    x[0, 0, 20] = float("inf")
    w = torch.randn(3, 2, 5)
    w[1, 1, 2] = float("-inf")
    x.requires_grad_(grad_enabled)
    assert_same_non_finite(TF.conv1d(x, w, method="fft"), torch_conv(x, w), "output")


@pytest.mark.parametrize("poison", ["input", "weight", "grad_output"])
@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_fft_engine_gradients_propagate_non_finite_values_as_torch(poison, value):
    """The FFT engine's backward pass (method='fft', and 'auto' through the
    layer's split engines) keeps a non-finite operand or upstream gradient
    inside the gradients that torch's own place it in."""
    x, w, b = torch.randn(1, 2, 64), torch.randn(3, 2, 5), torch.randn(3)
    upstream = torch.randn(1, 3, 60)
    {"input": x, "weight": w, "grad_output": upstream}[poison].view(-1)[7] = value
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    ref_leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    ours = torch.autograd.grad(TF.conv1d(*leaves, method="fft"), leaves, upstream)
    theirs = torch.autograd.grad(torch_conv(*ref_leaves), ref_leaves, upstream)
    for name, g, r in zip(("input", "weight", "bias"), ours, theirs):
        assert_same_non_finite(g, r, f"gradient of {name}")
