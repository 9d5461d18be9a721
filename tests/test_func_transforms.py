"""torch.func transforms and forward-mode AD (torchflip/_autograd.py): the
compiled kernels run through Python autograd.Functions with vmap and jvp
rules. Every transform is compared with the same transform applied to
torch.nn.functional with the flipped kernel."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, jvp, vjp, vmap

import torchflip
import torchflip.nn.functional as TF
from tests.reference import flip_spatial, torch_conv, torch_conv_transpose

DT = torch.float64
CONV_KW = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
CONV_T_KW = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2))


def conv(x, w, b):
    return TF.conv2d(x, w, b, **CONV_KW)


def conv_ref(x, w, b):
    return torch_conv(x, w, b, **CONV_KW)


def conv_t(x, w, b):
    return TF.conv_transpose2d(x, w, b, **CONV_T_KW)


def conv_t_ref(x, w, b):
    return torch_conv_transpose(x, w, b, **CONV_T_KW)


def conv_args(batch=()):
    return (torch.randn(*batch, 2, 4, 6, 7, dtype=DT), torch.randn(*batch, 6, 2, 3, 2, dtype=DT),
            torch.randn(*batch, 6, dtype=DT))


def conv_t_args(batch=()):
    return (torch.randn(*batch, 2, 4, 4, 5, dtype=DT), torch.randn(*batch, 4, 3, 3, 2, dtype=DT),
            torch.randn(*batch, 6, dtype=DT))


FAMILIES = {"conv": (conv, conv_ref, conv_args), "conv_transpose": (conv_t, conv_t_ref, conv_t_args)}
# Which of (input, weight, bias) carry the vmapped dimension; the batched
# weight and bias exercise the grouped-convolution batching rule.
IN_DIMS = [(0, None, None), (None, 0, None), (None, None, 0), (0, 0, None), (0, 0, 0),
           (None, 0, 0)]


def _select(batched, in_dims):
    return tuple(t if d is not None else t[0] for t, d in zip(batched, in_dims))


@pytest.mark.parametrize("in_dims", IN_DIMS, ids=str)
@pytest.mark.parametrize("family", FAMILIES)
def test_vmap(family, in_dims):
    f, ref, make = FAMILIES[family]
    args = _select(make(batch=(3,)), in_dims)
    torch.testing.assert_close(vmap(f, in_dims=in_dims)(*args), vmap(ref, in_dims=in_dims)(*args))


def test_vmap_over_a_non_leading_dimension():
    x, w, b = conv_args(batch=(3,))
    x, w = x.movedim(0, 2), w.movedim(0, 1)
    in_dims = (2, 1, 0)
    torch.testing.assert_close(vmap(conv, in_dims=in_dims)(x, w, b),
                               vmap(conv_ref, in_dims=in_dims)(x, w, b))


def test_nested_vmap():
    x, w, _ = conv_args(batch=(2, 3))

    def f(x, w):
        return TF.conv2d(x, w, groups=2)

    def ref(x, w):
        return F.conv2d(x, flip_spatial(w), groups=2)

    torch.testing.assert_close(vmap(vmap(f))(x, w), vmap(vmap(ref))(x, w))
    torch.testing.assert_close(vmap(vmap(f, in_dims=(0, None)), in_dims=(None, 0))(x[0], w[:, 0]),
                               vmap(vmap(ref, in_dims=(0, None)), in_dims=(None, 0))(x[0], w[:, 0]))


def test_vmap_of_unbatched_inputs():
    # Each vmapped sample is an unbatched (C, H, W) input.
    x, w, b = torch.randn(5, 4, 6, 6, dtype=DT), torch.randn(6, 4, 3, 3, dtype=DT), None
    out = vmap(lambda xi: TF.conv2d(xi, w, b, padding="same"))(x)
    torch.testing.assert_close(out, F.conv2d(x, flip_spatial(w), padding="same"))


@pytest.mark.parametrize("argnums", [0, 1, 2, (0, 1, 2)], ids=str)
@pytest.mark.parametrize("family", FAMILIES)
def test_grad(family, argnums):
    f, ref, make = FAMILIES[family]
    args = make()
    got = grad(lambda *a: f(*a).pow(2).sum(), argnums=argnums)(*args)
    want = grad(lambda *a: ref(*a).pow(2).sum(), argnums=argnums)(*args)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("family", FAMILIES)
def test_vjp_with_each_input(family):
    f, ref, make = FAMILIES[family]
    args = make()
    out, pullback = vjp(f, *args)
    out_ref, pullback_ref = vjp(ref, *args)
    cotangent = torch.randn_like(out)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(pullback(cotangent), pullback_ref(cotangent))


@pytest.mark.parametrize("jac", [jacrev, jacfwd], ids=["jacrev", "jacfwd"])
@pytest.mark.parametrize("family", FAMILIES)
def test_jacobians(family, jac):
    f, ref, make = FAMILIES[family]
    x, w, b = make()
    # A small input keeps the Jacobian small.
    x = x[:1, :, :4, :4] if family == "conv" else x[:1, :, :2, :3]
    torch.testing.assert_close(jac(f, argnums=(0, 1, 2))(x, w, b),
                               jac(ref, argnums=(0, 1, 2))(x, w, b))


@pytest.mark.parametrize("family", FAMILIES)
def test_jvp(family):
    f, ref, make = FAMILIES[family]
    primals = make()
    tangents = tuple(torch.randn_like(t) for t in primals)
    out, tangent_out = jvp(f, primals, tangents)
    out_ref, tangent_ref = jvp(ref, primals, tangents)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(tangent_out, tangent_ref)


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_mode_dual_tensors(family):
    f, ref, make = FAMILIES[family]
    primals = make()
    tangents = tuple(torch.randn_like(t) for t in primals)
    with fwAD.dual_level():
        out = f(*(fwAD.make_dual(p, t) for p, t in zip(primals, tangents)))
        got = fwAD.unpack_dual(out).tangent
    with fwAD.dual_level():
        out = ref(*(fwAD.make_dual(p, t) for p, t in zip(primals, tangents)))
        want = fwAD.unpack_dual(out).tangent
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("family", FAMILIES)
def test_hessian(family):
    f, ref, make = FAMILIES[family]
    x, w, b = make()
    x, w = x[:1, :, :3, :3], w

    def cube(f):
        return lambda x, w: f(x, w, None).pow(3).sum()

    torch.testing.assert_close(hessian(cube(f), argnums=(0, 1))(x, w),
                               hessian(cube(ref), argnums=(0, 1))(x, w))


@pytest.mark.parametrize("family", FAMILIES)
def test_jvp_of_grad_and_vmap_of_grad(family):
    """Second-order transforms exercise the jvp and vmap rules of the backward
    Function, not only of the forward one."""
    f, ref, make = FAMILIES[family]
    args = make()
    loss = lambda f: lambda x, w, b: f(x, w, b).pow(2).sum()  # noqa: E731
    tangents = tuple(torch.randn_like(t) for t in args)
    _, got = jvp(grad(loss(f), argnums=(0, 1, 2)), args, tangents)
    _, want = jvp(grad(loss(ref), argnums=(0, 1, 2)), args, tangents)
    torch.testing.assert_close(got, want)
    batched = make(batch=(3,))
    got = vmap(grad(loss(f), argnums=(0, 1, 2)))(*batched)
    want = vmap(grad(loss(ref), argnums=(0, 1, 2)))(*batched)
    torch.testing.assert_close(got, want)


def test_per_sample_gradients_of_a_module():
    model = torchflip.nn.Conv2d(2, 3, 3, padding=1).double()
    params = {name: p.detach() for name, p in model.named_parameters()}
    xs = torch.randn(4, 2, 6, 6, dtype=DT)

    def loss(params, x):
        return functional_call(model, params, (x.unsqueeze(0),)).pow(2).sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0))(params, xs)
    for i in range(len(xs)):
        model.zero_grad()
        model(xs[i:i + 1]).pow(2).sum().backward()
        torch.testing.assert_close(per_sample["weight"][i], model.weight.grad)
        torch.testing.assert_close(per_sample["bias"][i], model.bias.grad)


def test_batched_grad_outputs_and_vectorized_jacobian():
    """autograd's own batched paths (is_grads_batched, vectorize=True) run the
    C++ backward under vmap."""
    x = torch.randn(1, 2, 5, 5, dtype=DT, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=DT, requires_grad=True)
    out, out_ref = TF.conv2d(x, w), F.conv2d(x, flip_spatial(w))
    v = torch.randn(4, *out.shape, dtype=DT)
    got = torch.autograd.grad(out, (x, w), v, is_grads_batched=True)
    want = torch.autograd.grad(out_ref, (x, w), v, is_grads_batched=True)
    torch.testing.assert_close(got, want)
    jac = torch.autograd.functional.jacobian(lambda x: TF.conv2d(x, w.detach()), x.detach(),
                                             vectorize=True)
    jac_ref = torch.autograd.functional.jacobian(
        lambda x: F.conv2d(x, flip_spatial(w.detach())), x.detach(), vectorize=True)
    torch.testing.assert_close(jac, jac_ref)


def test_gradcheck_through_the_python_autograd_functions():
    """Inside a forward-AD level the Python Functions are used, and their
    backward (and its backward) must agree with finite differences too."""
    for f, make in [(conv, conv_args), (conv_t, conv_t_args)]:
        args = tuple(t.requires_grad_() for t in make())
        with fwAD.dual_level():
            assert torch.autograd.gradcheck(f, args, fast_mode=True)
            assert torch.autograd.gradgradcheck(f, args, fast_mode=True)


@pytest.mark.parametrize("argnums", [0, 2, (0, 2)], ids=str)
@pytest.mark.parametrize("family", FAMILIES)
def test_grad_with_a_constant_weight_float32(family, argnums):
    """float32 CPU kernels treat gradient masks differently from float64's;
    a weight that is not differentiated must not disturb the others."""
    f, ref, make = FAMILIES[family]
    args = tuple(t.float() for t in make())
    got = grad(lambda *a: f(*a).pow(2).sum(), argnums=argnums)(*args)
    want = grad(lambda *a: ref(*a).pow(2).sum(), argnums=argnums)(*args)
    torch.testing.assert_close(got, want)
