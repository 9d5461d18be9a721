"""The operators reverse whichever operand is cheaper: the weight, or (for a
weight-heavy layer whose last window ends at the end of the padded input)
the input and output gradient, using R(corr(R(x), w)) = corr(x, R(w)). Both
strategies must give the true convolution, its gradients and its second
derivatives, on either side of every condition that selects them.

The reference is torch.nn.functional with the flipped weight."""

import itertools

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)
from tests.reference import torch_conv

# (size, kernel, stride, padding, dilation): windows that reach the end of
# the padded input (stride 1; stride 2 with an even span) and windows that
# leave 1 or 2 inputs unused (stride 2 or 3), with even and odd kernels,
# padding and dilation.
WINDOWS = [
    (5, 3, 1, 1, 1), (6, 2, 1, 0, 1), (7, 3, 2, 1, 1), (8, 3, 2, 1, 1),
    (7, 2, 2, 0, 2), (9, 3, 3, 2, 2), (8, 3, 3, 1, 1), (5, 1, 2, 0, 1), (4, 4, 1, 2, 1),
]


def _case(dims, window, channels, groups, dtype):
    size, kernel, stride, padding, dilation = window
    # Weight-heavy layers (channels) take the activation path where the window
    # allows it; light ones (few channels) always reverse the weight.
    x = torch.randn(2, channels, *[size] * dims, dtype=dtype)
    w = torch.randn(channels, channels // groups, *[kernel] * dims, dtype=dtype)
    b = torch.randn(channels, dtype=dtype)
    hyper = ([stride] * dims, [padding] * dims, [dilation] * dims, groups)
    return x, w, b, hyper


@pytest.mark.parametrize("channels,groups", [(2, 1), (24, 1), (24, 4)], ids=str)
@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_values_and_gradients(dims, window, channels, groups):
    x, w, b, (stride, padding, dilation, g) = _case(dims, window, channels, groups,
                                                    torch.float64)
    inputs = [t.requires_grad_() for t in (x, w, b)]
    out = torch.ops.torchflip.conv(*inputs, stride, padding, dilation, g)
    ref_inputs = [t.detach().requires_grad_() for t in inputs]
    ref = torch_conv(*ref_inputs, stride, padding, dilation, g)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    for mask in itertools.product([True, False], repeat=3):
        if not any(mask):
            continue
        wanted = [t for t, m in zip(inputs, mask) if m]
        expected = [t for t, m in zip(ref_inputs, mask) if m]
        for got, want in zip(torch.autograd.grad(out, wanted, grad, retain_graph=True),
                             torch.autograd.grad(ref, expected, grad, retain_graph=True)):
            torch.testing.assert_close(got, want)


def _assert_matches_torch(x, w, b, hyper, **tolerance):
    """Output and the gradients of every input that requires grad, against
    torch.nn.functional with the flipped weight; returns both outputs."""
    inputs = [t for t in (x, w, b) if t is not None and t.requires_grad]
    out = torch.ops.torchflip.conv(x, w, b, *hyper)
    ref_x, ref_w, ref_b = (None if t is None else t.detach().requires_grad_(t.requires_grad)
                           for t in (x, w, b))
    ref = torch_conv(ref_x, ref_w, ref_b, *hyper)
    torch.testing.assert_close(out, ref, **tolerance)
    grad = torch.randn_like(out)
    expected = [t for t in (ref_x, ref_w, ref_b) if t is not None and t.requires_grad]
    for got, want in zip(torch.autograd.grad(out, inputs, grad),
                         torch.autograd.grad(ref, expected, grad)):
        torch.testing.assert_close(got, want, **tolerance)
    return out, ref


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_very_weight_heavy_layers(window):
    """Tiny activations against a large weight: the weight gradient is also
    taken from the reversed activations (no reversal of the weight at all)."""
    x, w, b, hyper = _case(1, window, 128, 1, torch.float64)
    x, w, b = x[:1].requires_grad_(), w.requires_grad_(), b.requires_grad_()
    size, kernel, stride, padding, dilation = window
    if kernel > 1 and (size + 2 * padding - dilation * (kernel - 1) - 1) % stride == 0:
        # The weight is never reversed, forward or backward.
        out = torch.ops.torchflip.conv(x, w, b, *hyper)
        shapes = _flipped_shapes(lambda: torch.autograd.grad(
            torch.ops.torchflip.conv(x, w, b, *hyper), (x, w, b), torch.ones_like(out)))
        assert tuple(w.shape) not in shapes and tuple(x.shape) in shapes
    _assert_matches_torch(x, w, b, hyper)


@pytest.mark.parametrize("dims,channels,window", [
    (2, 12, WINDOWS[0]), (2, 12, WINDOWS[3]), (2, 12, WINDOWS[5]),
    # Activations under 1/16 of the weight: no operand but them is reversed.
    (1, 64, WINDOWS[0]), (1, 64, WINDOWS[3]),
], ids=str)
def test_second_derivatives(dims, channels, window):
    x, w, b, hyper = _case(dims, window, channels, 1, torch.float64)
    # gradgradcheck's finite differences stay cheap with few output elements.
    x, w, b = x[:1].requires_grad_(), w.requires_grad_(), b.requires_grad_()

    def op(x, w, b):
        return torch.ops.torchflip.conv(x, w, b, *hyper)

    assert gradcheck(op, (x, w, b), fast_mode=True)
    assert gradgradcheck(op, (x, w, b), fast_mode=True)


def test_channels_last_and_float32():
    x, w, b, hyper = _case(2, WINDOWS[2], 32, 1, torch.float32)
    x = x.to(memory_format=torch.channels_last).requires_grad_()
    w = w.to(memory_format=torch.channels_last).requires_grad_()
    # Summation order differs between the strategies: float32 rounding.
    out, ref = _assert_matches_torch(x, w, b, hyper, rtol=1e-4, atol=1e-4)
    assert out.stride() == ref.stride()


@pytest.mark.parametrize("kernel", [(3, 3), (3, 1), (1, 2), (2, 3)], ids=str)
def test_dimensions_that_end_differently(kernel):
    """One spatial dimension leaves an input unused, the other does not;
    kernels of size 1 are not reversed at all."""
    x = torch.randn(2, 24, 8, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(24, 24, *kernel, dtype=torch.float64, requires_grad=True)
    _assert_matches_torch(x, w, None, ([2, 2], [1, 1], [1, 1], 1))


def _flipped_shapes(call):
    """Shapes of the tensors that aten::flip reversed during call()."""
    with torch.profiler.profile(record_shapes=True) as prof:
        call()
    return [tuple(e.input_shapes[0]) for e in prof.events() if e.name == "aten::flip"]


@pytest.mark.parametrize("channels,window,reversed_operand", [
    (2, WINDOWS[0], "weight"),     # light layer: the weight is cheaper
    (32, WINDOWS[0], "input"),     # weight-heavy, stride 1
    (32, WINDOWS[2], "input"),     # weight-heavy, stride 2, window reaches the end
    (32, WINDOWS[3], "weight"),    # weight-heavy, stride 2, last input unused
    (32, WINDOWS[5], "weight"),    # weight-heavy, stride 3, last two inputs unused
])
def test_the_cheaper_operand_is_reversed(channels, window, reversed_operand):
    """Guards the tests above: both strategies are really exercised."""
    x, w, b, hyper = _case(2, window, channels, 1, torch.float32)
    shapes = _flipped_shapes(lambda: torch.ops.torchflip.conv(x, w, b, *hyper))
    operand = x if reversed_operand == "input" else w
    assert tuple(operand.shape) in shapes
