"""Complex tensors through every path, as torch.nn accepts them.

torch.nn splits a complex convolution into real ones; torchflip does too, and
its gradients follow PyTorch's convention for complex autograd (the conjugate
Wirtinger derivative). References: torch.nn.functional with the flipped kernel
(values and autograd through torch's own complex convolution), finite
differences (gradcheck and gradgradcheck on complex inputs check both
Wirtinger derivatives), and a loop of ordinary backward passes for vmap."""

import itertools

import pytest
import torch
import torch.nn as nn
from torch.autograd import gradcheck, gradgradcheck

import torchflip
import torchflip.nn as tnn
import torchflip.nn.functional as TF
from tests.reference import torch_conv, torch_conv_transpose

COMPLEX = [torch.complex64, torch.complex128]


def _problem(transposed, dims, dtype, requires_grad=(False, False, False)):
    """(op, reference, (x, w, b)) for a grouped, strided, dilated, padded case."""
    size, kernel = [(7,), (6, 5), (4, 5, 4)][dims - 1], [(3,), (3, 2), (2, 3, 2)][dims - 1]
    stride, padding, dilation = [2, 1, 2][:dims], [1, 0, 1][:dims], [1, 2, 1][:dims]
    w_shape = (4, 3, *kernel) if transposed else (6, 2, *kernel)
    shapes = ((2, 4, *size), w_shape, (6,))
    tensors = tuple(torch.randn(*s, dtype=dtype).requires_grad_(r)
                    for s, r in zip(shapes, requires_grad))
    if transposed:
        output_padding = [1, 0, 1][:dims]

        def op(x, w, b):
            return torch.ops.torchflip.conv_transpose(x, w, b, stride, padding, output_padding,
                                                      2, dilation)

        def reference(x, w, b):
            return torch_conv_transpose(x, w, b, stride, padding, output_padding, 2, dilation)
    else:
        def op(x, w, b):
            return torch.ops.torchflip.conv(x, w, b, stride, padding, dilation, 2)

        def reference(x, w, b):
            return torch_conv(x, w, b, stride, padding, dilation, 2)
    return op, reference, tensors


@pytest.mark.parametrize("dtype", COMPLEX, ids=str)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
def test_values_and_gradients_match_torch(transposed, dims, dtype):
    op, reference, tensors = _problem(transposed, dims, dtype, (True, True, True))
    out = op(*tensors)
    assert out.dtype == dtype
    ref_tensors = [t.detach().requires_grad_() for t in tensors]
    ref_out = reference(*ref_tensors)
    torch.testing.assert_close(out, ref_out)
    g = torch.randn_like(out)
    for got, want in zip(torch.autograd.grad(out, tensors, g),
                         torch.autograd.grad(ref_out, ref_tensors, g)):
        torch.testing.assert_close(got, want)


def test_conjugate_views_are_resolved():
    """x.conj() is a lazy view whose real and imaginary parts cannot be
    viewed directly; its values must be used, not the unconjugated ones."""
    op, reference, (x, w, b) = _problem(False, 2, torch.complex64)
    torch.testing.assert_close(op(x.conj(), w.conj(), b.conj()),
                               reference(x.conj().resolve_conj(), w.conj().resolve_conj(),
                                         b.conj().resolve_conj()))


def test_real_and_complex_operands_are_not_mixed():
    op, _, (x, w, b) = _problem(False, 1, torch.complex64)
    with pytest.raises(TypeError, match="weight"):
        op(x, w.real, b)
    with pytest.raises(TypeError, match="bias"):
        op(x, w, b.real)


@pytest.mark.parametrize("requires_grad", [(True, True, True), (True, False, False),
                                           (False, True, False), (False, False, True)],
                         ids=str)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
def test_gradcheck_and_gradgradcheck(transposed, dims, requires_grad):
    op, _, tensors = _problem(transposed, dims, torch.complex128, requires_grad)
    assert gradcheck(op, tensors, fast_mode=True)
    assert gradgradcheck(op, tensors, fast_mode=True)


@pytest.mark.parametrize("mask", [m for m in itertools.product([True, False], repeat=3)
                                  if any(m)], ids=str)
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
def test_backward_ops_are_twice_differentiable(transposed, mask):
    op, _, (x, w, _) = _problem(transposed, 1, torch.complex128, (True, True, False))
    g = torch.randn_like(op(x, w, None)).requires_grad_()
    if transposed:
        backward, hyper = torch.ops.torchflip.conv_transpose_backward, ([2], [1], [1], 2, [1])
    else:
        backward, hyper = torch.ops.torchflip.conv_backward, ([2], [1], [1], 2)

    def requested(g, x, w):
        return tuple(t for t in backward(g, x, w, *hyper, list(mask)) if t is not None)

    assert gradcheck(requested, (g, x, w), fast_mode=True)
    assert gradgradcheck(requested, (g, x, w), fast_mode=True)


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
def test_opcheck(transposed):
    op, _, tensors = _problem(transposed, 2, torch.complex64, (True, True, True))
    out = op(*tensors)
    name = "conv_transpose" if transposed else "conv"
    hyper = (([2, 1], [1, 0], [1, 0], 2, [1, 2]) if transposed else ([2, 1], [1, 0], [1, 2], 2))
    public = getattr(torch.ops.torchflip, name).default
    twin = getattr(torch.ops.torchflip, "_" + name).default
    torch.library.opcheck(public, (*tensors, *hyper))
    torch.library.opcheck(twin, (*(t.detach() for t in tensors), *hyper))
    g = torch.randn_like(out)
    backward = getattr(torch.ops.torchflip, name + "_backward").default
    x, w, _ = tensors
    torch.library.opcheck(backward, (g.requires_grad_(), x, w, *hyper, [True, True, True]))


@pytest.mark.parametrize("dtype", COMPLEX, ids=str)
@pytest.mark.parametrize("layer", ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
                                   "ConvTranspose2d", "ConvTranspose3d"])
def test_layers_match_converted_torch_layers(layer, dtype):
    """A complex torch.nn layer and its converted twin compute the same
    function, in training and in eval mode (the flip-cache path)."""
    dims = int(layer[-2])
    torch_layer = getattr(nn, layer)(4, 6, 3, stride=2, padding=1, groups=2, dtype=dtype)
    ours = torchflip.convert(torch_layer)
    assert isinstance(ours, getattr(tnn, layer))
    x = torch.randn(2, 4, *[6] * dims, dtype=dtype, requires_grad=True)
    x_ref = x.detach().requires_grad_()
    out, ref = ours(x), torch_layer(x_ref)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    out.backward(g)
    ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(ours.weight.grad,
                               torch_layer.weight.grad.flip(list(range(2, 2 + dims))))
    ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), torch_layer(x))
        torch.testing.assert_close(ours(x), torch_layer(x))  # served from the cache


def test_same_padding_and_fft_method_fall_back_exactly():
    """'same' padding goes through the operator; method='fft' is real-only
    and must run the direct path for complex layers, not fail or be wrong."""
    x = torch.randn(1, 2, 300, dtype=torch.complex64)
    w = torch.randn(3, 2, 128, dtype=torch.complex64)
    torch.testing.assert_close(TF.conv1d(x, w, padding="same"),
                               torch_conv(x, w, padding="same"), rtol=1e-4, atol=1e-4)
    for method in ("auto", "fft"):
        layer = tnn.Conv1d(2, 3, 128, padding="same", dtype=torch.complex64, method=method)
        expected = torch_conv(x, layer.weight.detach(), layer.bias.detach(), padding="same")
        torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(TF.conv1d(x, w, padding="same", method=method),
                                   torch_conv(x, w, padding="same"), rtol=1e-4, atol=1e-4)


def test_vmap_per_sample_gradients_match_a_loop():
    """The DP-SGD pattern on a complex layer: vmap(grad) of a real loss equals
    a loop of ordinary backward passes."""
    x = torch.randn(5, 2, 9, dtype=torch.complex128)
    w = torch.randn(3, 2, 3, dtype=torch.complex128)

    def loss(w, sample):
        out = TF.conv1d(sample.unsqueeze(0), w, padding=1)
        return (out.abs() ** 2).sum()

    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(w, x)
    for i in range(x.shape[0]):
        w_i = w.clone().requires_grad_()
        loss(w_i, x[i]).backward()
        torch.testing.assert_close(per_sample[i], w_i.grad)


def test_jvp_matches_finite_differences():
    x = torch.randn(2, 2, 9, dtype=torch.complex128)
    w = torch.randn(3, 2, 3, dtype=torch.complex128)
    dx, dw = torch.randn_like(x), torch.randn_like(w)

    def f(x, w):
        return TF.conv1d(x, w, stride=2)

    _, tangent = torch.func.jvp(f, (x, w), (dx, dw))
    eps = 1e-6
    finite = (f(x + eps * dx, w + eps * dw) - f(x - eps * dx, w - eps * dw)) / (2 * eps)
    torch.testing.assert_close(tangent, finite, rtol=1e-6, atol=1e-6)


def test_compile_fullgraph():
    layer = tnn.Conv2d(2, 4, 3, padding=1, dtype=torch.complex64)
    x = torch.randn(2, 2, 8, 8, dtype=torch.complex64)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), layer(x))
