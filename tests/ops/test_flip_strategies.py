"""Each phase of the operators reverses whichever operand is smaller: the
forward the input or the weight, grad_input the output gradient or the
weight (where the last window ends at the end of the padded input, using
R(corr(R(x), w)) = corr(x, R(w)), unless the weight is at most an eighth
larger than g and the cheaper in time; elsewhere the weight, half of its
input channels at a time when g is the smaller), grad_weight the weight's
gradient in place or, for tiny activations, the activations (with grad_input,
in one ATen call, when both are asked for). Every choice must give
the true convolution, its gradients and its second derivatives, on either
side of every condition that selects it, and results of reversed operands
are reversed back in place.

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


def _events(call, name):
    """Shapes of the first inputs of the profiler events called ``name``
    during call()."""
    with torch.profiler.profile(record_shapes=True) as prof:
        call()
    return [tuple(e.input_shapes[0]) for e in prof.events() if e.name == name]


def _flipped_shapes(call):
    """Shapes of the operands that the operators reversed into new tensors
    during call() (csrc/reverse.cpp records each under this name)."""
    return _events(call, "torchflip::reverse")


def _expected_choices(x, w, g, stride, padding, dilation):
    """Which operand each phase should reverse, from the operands' sizes and
    whether every reversed dimension's last window ends at the end of the
    padded input."""
    reversed_dims = [i for i, k in enumerate(w.shape[2:]) if k > 1]
    aligned = all((x.shape[2 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1)
                  % stride[i] == 0 for i in reversed_dims)
    # The forward reverses the input, and its result back, only where the two
    # reversals are smaller than the weight; grad_input the smaller operand,
    # unless the weight is at most an eighth larger and its one reversal
    # moves fewer elements than g's and grad_input's.
    forward = "input" if aligned and x.numel() + g.numel() < w.numel() else "weight"
    barely_larger = 8 * (w.numel() - g.numel()) <= g.numel()
    cheaper = w.numel() <= g.numel() + x.numel()
    if g.numel() >= w.numel():
        grad_input = "weight"
    elif not aligned:
        # whole where the weight is at least twice the input
        grad_input = "halves" if w.shape[1] > 1 and 2 * x.numel() > w.numel() else "weight"
    else:
        grad_input = "weight" if barely_larger and cheaper else "grad"
    tiny = 16 * (x.numel() + g.numel()) <= w.numel()
    grad_weight = "activations" if aligned and tiny else "weight"
    return forward, grad_input, grad_weight


# (dims, batch, in, out, groups, size, kernel, stride, padding, dilation).
PHASE_CASES = {
    # windows reach the end of the padded input
    "weight-heavy": (1, 1, 32, 24, 1, 9, 3, 1, 1, 1),
    "tiny-activations": (1, 1, 64, 48, 1, 5, 3, 1, 1, 1),
    "input-as-large-as-weight": (1, 2, 4, 6, 1, 9, 3, 1, 1, 1),  # |x| == |w|
    "input-larger-grad-smaller": (1, 2, 16, 14, 1, 31, 3, 2, 1, 1),
    "2d-stride-2": (2, 1, 24, 20, 1, 7, 3, 2, 1, 1),
    "3d": (3, 1, 12, 10, 1, 5, 3, 1, 1, 1),
    # |g| < |w| <= 9/8 |g| and |w| < |g| + |x|: the weight's reversal is
    # cheaper in time and holds little more (|g| = 340, |w| = 360, |x| = 102)
    "weight-barely-larger": (1, 1, 6, 20, 1, 17, 3, 1, 1, 1),
    # |w| = 9/8 |g| exactly but |w| > |g| + |x|: g (|g| = 384, |w| = 432, |x| = 32)
    "weight-barely-larger-but-dearer": (1, 1, 2, 24, 1, 16, 9, 1, 4, 1),
    # the last inputs are unused: p >= r, p < r, dilation, groups, odd halves
    "unused-p>=r": (1, 4, 24, 20, 1, 8, 3, 2, 1, 1),
    "unused-p<r": (1, 4, 24, 20, 1, 9, 2, 2, 0, 1),
    "unused-dilated": (1, 4, 24, 20, 1, 11, 3, 3, 2, 2),
    "unused-weight-twice-input": (1, 2, 24, 20, 1, 8, 3, 2, 1, 1),  # whole R(w)
    "unused-groups": (1, 2, 24, 20, 4, 8, 3, 2, 1, 1),
    "unused-odd-halves": (1, 2, 20, 16, 4, 9, 2, 2, 0, 1),
    "unused-2d": (2, 2, 24, 20, 1, 8, 3, 2, 1, 1),
    "unused-3d": (3, 1, 12, 10, 1, 6, 3, 2, 1, 1),
    "unused-light-weight": (1, 2, 2, 3, 1, 8, 3, 2, 1, 1),  # |g| >= |w|
    "unused-depthwise": (1, 1, 8, 8, 8, 4, 3, 2, 1, 1),  # one channel per group
}


def _phase_case(name, dtype=torch.float64):
    dims, batch, cin, cout, groups, size, kernel, stride, padding, dilation = PHASE_CASES[name]
    x = torch.randn(batch, cin, *[size] * dims, dtype=dtype)
    w = torch.randn(cout, cin // groups, *[kernel] * dims, dtype=dtype)
    hyper = ([stride] * dims, [padding] * dims, [dilation] * dims, groups)
    g = torch.randn_like(torch_conv(x, w, None, *hyper))
    return x, w, g, hyper


def test_phase_cases_cover_every_choice():
    """Guards the case list: each choice of each phase, on either side."""
    seen = {_expected_choices(*_phase_case(name)[:3], *_phase_case(name)[3][:3])
            for name in PHASE_CASES}
    assert {c[0] for c in seen} == {"input", "weight"}
    assert {c[1] for c in seen} == {"grad", "halves", "weight"}
    assert {c[2] for c in seen} == {"activations", "weight"}
    # grad_input reverses the weight although g is smaller (aligned windows)
    x, w, g, hyper = _phase_case("weight-barely-larger")
    assert g.numel() < w.numel() and _expected_choices(x, w, g, *hyper[:3])[1] == "weight"
    # grad_input reverses the whole weight where it is at least twice the input
    x, w, g, hyper = _phase_case("unused-weight-twice-input")
    assert 2 * x.numel() <= w.numel() and _expected_choices(x, w, g, *hyper[:3])[1] == "weight"


@pytest.mark.parametrize("name", PHASE_CASES)
def test_each_phase_reverses_the_smaller_operand(name):
    x, w, g, hyper = _phase_case(name)
    forward, grad_input, grad_weight = _expected_choices(x, w, g, *hyper[:3])
    # The two halves of the weight's input channels (none with one channel).
    halves = [(w.shape[0], -(-w.shape[1] // 2), *w.shape[2:]),
              (w.shape[0], w.shape[1] // 2, *w.shape[2:])] if w.shape[1] > 1 else []
    shapes = [tuple(t.shape) for t in (x, w, g)] + halves[:1]
    assert len(set(shapes)) == len(shapes), "the case must tell the operands apart by shape"

    flipped = _flipped_shapes(lambda: torch.ops.torchflip.conv(x, w, None, *hyper))
    assert (tuple(x.shape) in flipped) == (forward == "input")
    assert (tuple(w.shape) in flipped) == (forward == "weight")

    def backward(mask):
        return torch.ops.torchflip.conv_backward(g, x, w, *hyper, mask)

    flipped = _flipped_shapes(lambda: backward([True, False, False]))
    assert (tuple(g.shape) in flipped) == (grad_input == "grad")
    assert (tuple(w.shape) in flipped) == (grad_input == "weight")
    assert all((h in flipped) == (grad_input == "halves") for h in halves)

    flipped = _flipped_shapes(lambda: backward([False, True, False]))
    assert (tuple(x.shape) in flipped) == (grad_weight == "activations")
    assert (tuple(g.shape) in flipped) == (grad_weight == "activations")

    # Values of every phase, alone and together.
    torch.testing.assert_close(torch.ops.torchflip.conv(x, w, None, *hyper),
                               torch_conv(x, w, None, *hyper))
    ref_x, ref_w = x.clone().requires_grad_(), w.clone().requires_grad_()
    want = torch.autograd.grad(torch_conv(ref_x, ref_w, None, *hyper), (ref_x, ref_w), g)
    for mask in ([True, False, False], [False, True, False], [True, True, True]):
        got = backward(mask)
        for i in (0, 1):
            if mask[i]:
                torch.testing.assert_close(got[i], want[i])
        if mask[2]:
            torch.testing.assert_close(got[2], g.sum([0, *range(2, g.dim())]))


def _takes_one_call(x, w, g, stride, padding, dilation):
    """Whether a backward asked for both gradients takes them from one
    convolution_backward call: where grad_input reverses g and grad_weight
    the activations, the two calls would hold R(x) and R(g) anyway."""
    choices = _expected_choices(x, w, g, stride, padding, dilation)
    return choices[1:] == ("grad", "activations")


def test_phase_cases_cover_one_call_and_two():
    seen = {_takes_one_call(*_phase_case(name)[:3], *_phase_case(name)[3][:3])
            for name in PHASE_CASES}
    assert seen == {True, False}


@pytest.mark.parametrize("name", PHASE_CASES)
def test_both_gradients_come_from_one_call_where_it_holds_nothing_more(name):
    x, w, g, hyper = _phase_case(name)
    one_call = _takes_one_call(x, w, g, *hyper[:3])

    def backward():
        return torch.ops.torchflip.conv_backward(g, x, w, *hyper, [True, True, True])

    # grad_input in halves runs transposed convolutions (aten::convolution).
    calls = (len(_events(backward, "aten::convolution_backward")),
             len(_events(backward, "aten::convolution")))
    assert calls == (1, 0) if one_call else calls in ((2, 0), (1, 2))
    if one_call:
        flipped = _flipped_shapes(backward)
        assert tuple(w.shape) not in flipped
        assert tuple(x.shape) in flipped and tuple(g.shape) in flipped
    # The values of this call, mask [True, True, True], are checked against
    # torch.nn by test_each_phase_reverses_the_smaller_operand.


@pytest.mark.parametrize("name", ["unused-groups", "unused-2d", "unused-3d"])
def test_second_derivatives_of_halves(name):
    x, w, _, hyper = _phase_case(name)
    x, w = x[:1].requires_grad_(), w.requires_grad_()

    def op(x, w):
        return torch.ops.torchflip.conv(x, w, None, *hyper)

    assert gradcheck(op, (x, w), fast_mode=True)
    assert gradgradcheck(op, (x, w), fast_mode=True)


def test_halves_keep_channels_last():
    x, w, g, hyper = _phase_case("unused-2d", torch.float32)
    x = x.to(memory_format=torch.channels_last)
    w = w.to(memory_format=torch.channels_last)
    assert _expected_choices(x, w, g, *hyper[:3])[1] == "halves"
    _assert_matches_torch(x.requires_grad_(), w.requires_grad_(), None, hyper,
                          rtol=1e-4, atol=1e-4)
    got = torch.ops.torchflip.conv_backward(g, x, w, *hyper, [True, False, False])[0]
    assert got.is_contiguous(memory_format=torch.channels_last)


# (dims, batch, in, out, groups, size, kernel, stride, padding): results of
# reversed operands, reversed back in place.
IN_PLACE_CASES = {
    # y and grad_input: 2 entries in dim 0, so blocks of channels within
    # each; grad_weight: 3x3, swapped in place (channels_last: 80 output
    # channels, blocks of them).
    "activations": (2, 2, 80, 80, 1, 12, 3, 1, 1),  # |x| + |y| < |w|
    # grad_input of one batch entry: blocks of channels; grad_weight of 8
    # channels with one input channel each: blocks of output channels.
    "long-depthwise-kernel": (1, 1, 8, 8, 8, 2100, 2048, 1, 0),
}


@pytest.mark.parametrize("name,layout", [("activations", "contiguous"),
                                         ("activations", "channels_last"),
                                         ("long-depthwise-kernel", "contiguous")])
def test_results_are_reversed_in_place(name, layout):
    """A contiguous CPU result (a weight gradient, an activation) is reversed
    by swapping elements in place (no aten::flip, no temporary); others
    (other layouts, other devices) by aten::flip, a block of at most an
    eighth at a time."""
    dims, batch, cin, cout, groups, size, kernel, stride, padding = IN_PLACE_CASES[name]
    x = torch.randn(batch, cin, *[size] * dims, dtype=torch.float64)
    w = torch.randn(cout, cin // groups, *[kernel] * dims, dtype=torch.float64)
    if layout == "channels_last":
        x, w = x.to(memory_format=torch.channels_last), w.to(memory_format=torch.channels_last)
    hyper = ([stride] * dims, [padding] * dims, [1] * dims, groups)
    y = torch_conv(x, w, None, *hyper)
    g = torch.randn_like(y)
    choices = _expected_choices(x, w, g, *hyper[:3])
    ref_x, ref_w = x.clone().requires_grad_(), w.clone().requires_grad_()
    want = torch.autograd.grad(torch_conv(ref_x, ref_w, None, *hyper), (ref_x, ref_w), g)
    phases = [
        (lambda: torch.ops.torchflip.conv(x, w, None, *hyper), y, x, choices[0] == "input"),
        (lambda: torch.ops.torchflip.conv_backward(g, x, w, *hyper, [True, False, False])[0],
         want[0], g, choices[1] == "grad"),
        (lambda: torch.ops.torchflip.conv_backward(g, x, w, *hyper, [False, True, False])[1],
         want[1], None, choices[2] == "weight"),
    ]
    reversed_in_place = 0
    for call, expected, operand, reverses_result in phases:
        in_place = _events(call, "torchflip::reverse_in_place")
        flipped = _events(call, "aten::flip")
        result = call()
        torch.testing.assert_close(result, expected)
        if not reverses_result:
            assert not in_place
            continue
        reversed_in_place += 1
        assert in_place == [tuple(expected.shape)]
        blocks = [s for s in flipped if operand is None or s != tuple(operand.shape)]
        if result.is_contiguous():
            # Rows of contiguous elements: swapped in place.
            assert not blocks
        else:
            # By blocks of at most an eighth of the result, all of it.
            assert expected.numel() >= 2 ** 14
            assert blocks and all(torch.Size(s).numel() * 8 <= expected.numel()
                                  for s in blocks)
            assert sum(torch.Size(s).numel() for s in blocks) == expected.numel()
    assert reversed_in_place == (3 if name == "activations" else 2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                   torch.int8, torch.int32, torch.int64])
def test_fast_reversal_moves_elements_of_every_size(dtype):
    """The CPU reversal copies elements as words of their size (1 to 8
    bytes), in place and into new tensors, also from a weight whose outer
    dimensions are not contiguous (one half of its input channels, as
    grad_input takes it in halves): every value lands where flip puts it."""
    x = torch.randn(2, 6, 11, dtype=torch.float64)
    w = torch.randn(4, 6, 3, dtype=torch.float64)
    x, w = (x * 8).to(dtype), (w * 8).to(dtype)
    hyper = ([2], [0], [1], 1)  # one unused input: the halves path
    exact = dtype in (torch.int8, torch.int32, torch.int64)
    if exact:
        # Integer convolutions have no backward in ATen.
        y = torch.ops.torchflip.conv(x, w, None, *hyper)
        torch.testing.assert_close(y, torch_conv(x, w, None, *hyper))
        return
    g = torch.randn(2, 4, 5, dtype=torch.float64).to(dtype)
    ref_x, ref_w = x.clone().requires_grad_(), w.clone().requires_grad_()
    want = torch.autograd.grad(torch_conv(ref_x, ref_w, None, *hyper), (ref_x, ref_w), g)
    got = torch.ops.torchflip.conv_backward(g, x, w, *hyper, [True, True, False])
    tolerance = {"rtol": 1e-2, "atol": 1e-1} if dtype in (torch.float16, torch.bfloat16) else {}
    torch.testing.assert_close(got[0], want[0], **tolerance)
    torch.testing.assert_close(got[1], want[1], **tolerance)
