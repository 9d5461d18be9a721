"""Autograd of the public operators (C++ autograd kernels): first and second
derivatives by finite differences (gradcheck, gradgradcheck), and real
backward passes in float32 for every combination of inputs that require
grad, against autograd through torch.nn.functional with the flipped kernel."""

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)
from tests.reference import torch_conv, torch_conv_transpose
from tests.strategies import conv_cases

REQUIRES_GRAD = [c for c in itertools.product([True, False], repeat=3) if any(c)]
REQUIRES_GRAD_IDS = ["x%d-w%d-b%d" % c for c in REQUIRES_GRAD]


def _conv(dims):
    size, kernel = [(9,), (6, 7), (5, 6, 5)][dims - 1], [(3,), (3, 2), (2, 3, 2)][dims - 1]
    stride, padding, dilation = [2, 1, 2][:dims], [1, 0, 1][:dims], [1, 2, 1][:dims]
    shapes = ((2, 4, *size), (6, 2, *kernel), (6,))

    def op(x, w, b):
        return torch.ops.torchflip.conv(x, w, b, stride, padding, dilation, 2)

    def reference(x, w, b):
        return torch_conv(x, w, b, stride, padding, dilation, 2)

    return shapes, op, reference


def _conv_transpose(dims):
    size, kernel = [(5,), (3, 4), (3, 2, 3)][dims - 1], [(3,), (3, 2), (2, 3, 2)][dims - 1]
    stride, padding, output_padding = [2, 1, 2][:dims], [1, 0, 1][:dims], [1, 0, 1][:dims]
    dilation = [1, 2, 1][:dims]
    shapes = ((2, 4, *size), (4, 3, *kernel), (6,))

    def op(x, w, b):
        return torch.ops.torchflip.conv_transpose(x, w, b, stride, padding, output_padding, 2,
                                                  dilation)

    def reference(x, w, b):
        return torch_conv_transpose(x, w, b, stride, padding, output_padding, 2, dilation)

    return shapes, op, reference


PROBLEMS = {"conv": _conv, "conv_transpose": _conv_transpose}


def _inputs(shapes, requires_grad, dtype):
    return tuple(torch.randn(*s, dtype=dtype, requires_grad=r)
                 for s, r in zip(shapes, requires_grad))


@pytest.mark.parametrize("requires_grad", REQUIRES_GRAD, ids=REQUIRES_GRAD_IDS)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("family", PROBLEMS)
def test_backward_matches_reference_float32(family, dims, requires_grad):
    """float32 is the dtype models train in, and the one whose CPU kernels
    treat output masks differently from float64's."""
    shapes, op, reference = PROBLEMS[family](dims)
    inputs = _inputs(shapes, requires_grad, torch.float32)
    out = op(*inputs)
    g = torch.randn_like(out)
    wanted = [t for t in inputs if t.requires_grad]
    grads = torch.autograd.grad(out, wanted, g)
    ref_inputs = [t.detach().requires_grad_(t.requires_grad) for t in inputs]
    ref_out = reference(*ref_inputs)
    torch.testing.assert_close(out, ref_out)
    expected = torch.autograd.grad(ref_out, [t for t in ref_inputs if t.requires_grad], g)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("family", PROBLEMS)
def test_module_style_backward_with_frozen_weight(family, dims):
    """Training only the bias (frozen weights, e.g. bias-only fine-tuning)."""
    shapes, op, reference = PROBLEMS[family](dims)
    x, w, b = _inputs(shapes, (False, False, True), torch.float32)
    op(x, w, b).square().sum().backward()
    b_ref = b.detach().requires_grad_()
    reference(x, w, b_ref).square().sum().backward()
    torch.testing.assert_close(b.grad, b_ref.grad)


@pytest.mark.parametrize("requires_grad", REQUIRES_GRAD, ids=REQUIRES_GRAD_IDS)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("family", PROBLEMS)
def test_gradcheck_and_gradgradcheck(family, dims, requires_grad):
    shapes, op, _ = PROBLEMS[family](dims)
    inputs = _inputs(shapes, requires_grad, torch.float64)
    assert gradcheck(op, inputs, fast_mode=True)
    assert gradgradcheck(op, inputs, fast_mode=True)


@pytest.mark.parametrize("family", PROBLEMS)
def test_gradcheck_3d(family):
    shapes, op, _ = PROBLEMS[family](3)
    inputs = _inputs(shapes, (True, True, True), torch.float64)
    assert gradcheck(op, inputs, fast_mode=True)
    assert gradgradcheck(op, inputs, fast_mode=True)


@pytest.mark.parametrize("family", PROBLEMS)
def test_third_derivative(family):
    """The backward of the backward is again made of the operators, so the
    derivative of a gradient's gradient exists and is correct."""
    shapes, op, _ = PROBLEMS[family](1)
    x, w, _ = _inputs(shapes, (True, True, False), torch.float64)

    def grad_of_cube(x, w):
        (gx,) = torch.autograd.grad(op(x, w, None).pow(3).sum(), x, create_graph=True)
        return gx

    assert gradgradcheck(grad_of_cube, (x, w), fast_mode=True)


@pytest.mark.parametrize("mask", [m for m in itertools.product([True, False], repeat=3)
                                  if any(m)], ids=str)
@pytest.mark.parametrize("family", ["conv_backward", "conv_transpose_backward"])
def test_backward_ops_are_twice_differentiable(family, mask):
    forward = "conv" if family == "conv_backward" else "conv_transpose"
    shapes, op, _ = PROBLEMS[forward](1)
    x, w, _ = _inputs(shapes, (True, True, False), torch.float64)
    g = torch.randn_like(op(x, w, None)).requires_grad_()
    if forward == "conv":
        hyper = ([2], [1], [1], 2)
    else:
        hyper = ([2], [1], [1], 2, [1])
    backward = getattr(torch.ops.torchflip, family)

    def requested(g, x, w):
        return tuple(t for t in backward(g, x, w, *hyper, list(mask)) if t is not None)

    assert gradcheck(requested, (g, x, w), fast_mode=True)
    assert gradgradcheck(requested, (g, x, w), fast_mode=True)


def test_no_graph_without_requires_grad():
    shapes, op, _ = PROBLEMS["conv"](2)
    x, w, b = _inputs(shapes, (False, False, False), torch.float32)
    assert not op(x, w, b).requires_grad
    x.requires_grad_()
    with torch.no_grad():
        assert not op(x, w, b).requires_grad
    with torch.inference_mode():
        torch.testing.assert_close(op(x, w, b), _conv(2)[2](x, w, b))


@pytest.mark.parametrize("family", ["conv", "conv_transpose"])
def test_untracked_calls_match_the_reference_for_every_op(family):
    # With nothing to record, the autograd kernels call the operators below
    # autograd; forward and backward ops must still compute the same values.
    shapes, op, reference = PROBLEMS[family](2)
    x, w, b = _inputs(shapes, (True, True, True), torch.float32)
    with torch.no_grad():
        out = op(x, w, b)
        torch.testing.assert_close(out, reference(x, w, b))
        assert out.grad_fn is None and not out.requires_grad
    g = torch.randn_like(out)
    expected = torch.autograd.grad(reference(x, w, b), (x, w), g)
    # The hyper-parameters of _conv(2) and _conv_transpose(2).
    hyper = ([2, 1], [1, 0], [1, 2], 2) if family == "conv" else ([2, 1], [1, 0], [1, 0], 2,
                                                                   [1, 2])
    with torch.no_grad():
        grads = getattr(torch.ops.torchflip, f"{family}_backward")(g, x, w, *hyper,
                                                                   [True, True, False])
    torch.testing.assert_close(grads[0], expected[0])
    torch.testing.assert_close(grads[1], expected[1])
    assert grads[2] is None


@pytest.mark.parametrize("grad_mode", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("op_name", ["conv", "conv_backward"])
def test_forward_mode_tangents_are_rejected_not_dropped(op_name, grad_mode):
    # The C++ autograd kernels have no forward-mode rule; a tangent must raise
    # (the Python layer routes forward AD elsewhere), never vanish silently,
    # also where no operand requires grad.
    import torch.autograd.forward_ad as fwAD

    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    g = torch.randn(1, 3, 3, 3)
    with fwAD.dual_level(), torch.set_grad_enabled(grad_mode):
        dual = fwAD.make_dual(x, torch.randn_like(x))
        with pytest.raises(RuntimeError, match="jvp is not implemented"):
            if op_name == "conv":
                torch.ops.torchflip.conv(dual, w, None, [1, 1], [0, 0], [1, 1], 1)
            else:
                torch.ops.torchflip.conv_backward(g, dual, w, [1, 1], [0, 0], [1, 1], 1,
                                                  [True, True, False])


@pytest.mark.parametrize("kernel", [(1, 1), (1, 3), (3, 1), (2, 1)], ids=str)
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
def test_kernels_with_size_one_dimensions(transposed, kernel):
    """A size-1 kernel dimension is its own reversal; the others must still
    be flipped, forward and backward."""
    x = torch.randn(2, 4, 5, 6, requires_grad=True)
    w = torch.randn(4 if transposed else 6, 3 if transposed else 2, *kernel, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    if transposed:
        out = torch.ops.torchflip.conv_transpose(x, w, b, [2, 1], [0], [1, 0], 2, [1])
        ref_fn = lambda x, w, b: torch_conv_transpose(x, w, b, (2, 1), 0, (1, 0), 2)  # noqa: E731
    else:
        out = torch.ops.torchflip.conv(x, w, b, [1], [0], [1], 2)
        ref_fn = lambda x, w, b: torch_conv(x, w, b, groups=2)  # noqa: E731
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, w, b), g)
    ref_inputs = [t.detach().requires_grad_() for t in (x, w, b)]
    ref_out = ref_fn(*ref_inputs)
    torch.testing.assert_close(out, ref_out)
    for got, want in zip(grads, torch.autograd.grad(ref_out, ref_inputs, g)):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex128], ids=str)
@given(case=st.one_of(conv_cases(), conv_cases(transposed=True)),
       requires_grad=st.tuples(st.booleans(), st.booleans(), st.booleans()).filter(any),
       seed=st.integers(0, 2**16))
def test_property_gradients_match_reference(dtype, case, requires_grad, seed):
    """Random valid configurations: float32, the training dtype, and
    complex128, whose gradients follow torch.nn's complex convolution."""
    torch.manual_seed(seed)
    x, w, b = case.tensors(dtype=dtype)
    if b is None:
        b = torch.randn(case.out_channels, dtype=dtype)
    inputs = [t.requires_grad_(r) for t, r in zip((x, w, b), requires_grad)]
    if case.transposed:
        out = torch.ops.torchflip.conv_transpose(*inputs, case.stride, case.padding,
                                                 case.output_padding, case.groups, case.dilation)
        reference = torch_conv_transpose
    else:
        out = torch.ops.torchflip.conv(*inputs, case.stride, case.padding, case.dilation,
                                       case.groups)
        reference = torch_conv
    g = torch.randn_like(out)
    wanted = [t for t in inputs if t.requires_grad]
    grads = torch.autograd.grad(out, wanted, g)
    ref_inputs = [t.detach().requires_grad_(t.requires_grad) for t in inputs]
    ref_out = reference(*ref_inputs, **case.kwargs())
    ref_grads = torch.autograd.grad(ref_out, [t for t in ref_inputs if t.requires_grad], g)
    torch.testing.assert_close(out, ref_out, atol=1e-4, rtol=1e-4)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
