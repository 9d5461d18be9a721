"""torchflip.nn.functional: torch.nn.functional's signatures (ints or tuples,
'same' and 'valid', unbatched inputs, keyword names and defaults), computing
torch.nn.functional with the kernel flipped."""

import inspect

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import torchflip.nn.functional as TF
from tests.reference import flip_spatial, torch_conv, torch_conv_transpose
from tests.strategies import conv_cases

CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
CONV_T = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}
TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
DIMS = [1, 2, 3]


@pytest.mark.parametrize("name", ["conv1d", "conv2d", "conv3d", "conv_transpose1d",
                                  "conv_transpose2d", "conv_transpose3d"])
def test_signature_is_torch_signature(name):
    """torch's parameters, in torch's order with torch's defaults; the forward
    functions add one keyword-only ``method`` (the engine) after them."""
    ours = dict(inspect.signature(getattr(TF, name)).parameters)
    if not name.startswith("conv_transpose"):
        method = ours.pop("method")
        assert method.kind is inspect.Parameter.KEYWORD_ONLY and method.default == "direct"
    # torch's builtins expose their signature in the first docstring line.
    first_line = getattr(F, name).__doc__.strip().splitlines()[0]
    assert first_line.startswith(f"{name}(")
    theirs = first_line[len(name) + 1:first_line.index(")")].replace(" ", "").split(",")
    assert list(ours) == [a.split("=")[0] for a in theirs]
    defaults = [f"{p.name}={p.default}" if p.default is not inspect.Parameter.empty else p.name
                for p in ours.values()]
    assert defaults == theirs


@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_property_conv_matches_flipped_torch(case, seed):
    torch.manual_seed(seed)
    x, w, b = case.tensors()
    out = CONV[case.dims](x, w, b, **case.kwargs())
    torch.testing.assert_close(out, TORCH_CONV[case.dims](x, flip_spatial(w), b, **case.kwargs()))


@given(case=conv_cases(transposed=True), seed=st.integers(0, 2**16))
def test_property_conv_transpose_matches_flipped_torch(case, seed):
    torch.manual_seed(seed)
    x, w, b = case.tensors()
    out = CONV_T[case.dims](x, w, b, **case.kwargs())
    torch.testing.assert_close(out,
                               TORCH_CONV_T[case.dims](x, flip_spatial(w), b, **case.kwargs()))


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_same_padding_matches_torch_for_every_kernel_parity(dims, kernel, dilation):
    """'same' is torch.nn's: total padding d*(K-1), the extra zero (odd total)
    at the end."""
    x = torch.randn(2, 2, *[9] * dims, dtype=torch.float64)
    w = torch.randn(3, 2, *[kernel] * dims, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    out = CONV[dims](x, w, b, padding="same", dilation=dilation)
    assert out.shape[2:] == x.shape[2:]
    torch.testing.assert_close(out, torch_conv(x, w, b, padding="same", dilation=dilation))


def test_same_padding_with_different_kernel_parities_per_dimension():
    x = torch.randn(1, 2, 7, 8, 6, dtype=torch.float64)
    w = torch.randn(4, 1, 2, 3, 4, dtype=torch.float64)
    out = TF.conv3d(x, w, padding="same", dilation=(1, 2, 3), groups=2)
    torch.testing.assert_close(out, torch_conv(x, w, None, padding="same", dilation=(1, 2, 3),
                                               groups=2))


def test_even_kernel_same_puts_extra_zero_at_the_end():
    """For K = 2, y[i] = x_p[i] w[1] + x_p[i + 1] w[0], and 'same' pads no zero
    before and one after: x_p = [1, 2, 3, 4, 0]."""
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    torch.testing.assert_close(TF.conv1d(x, torch.tensor([[[0.0, 1.0]]]), padding="same"), x)
    torch.testing.assert_close(TF.conv1d(x, torch.tensor([[[1.0, 0.0]]]), padding="same"),
                               torch.tensor([[[2.0, 3.0, 4.0, 0.0]]]))


@pytest.mark.parametrize("dims", DIMS)
def test_valid_padding_is_zero_padding(dims):
    x = torch.randn(1, 2, *[6] * dims)
    w = torch.randn(3, 2, *[3] * dims)
    torch.testing.assert_close(CONV[dims](x, w, padding="valid"), CONV[dims](x, w, padding=0))


@pytest.mark.parametrize("dims", DIMS)
def test_unbatched_input(dims):
    x = torch.randn(4, *[6] * dims, dtype=torch.float64)
    w = torch.randn(6, 2, *[3] * dims, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    out = CONV[dims](x, w, b, padding="same", groups=2)
    assert out.shape == (6, *[6] * dims)
    torch.testing.assert_close(out, torch_conv(x[None], w, b, padding="same", groups=2)[0])
    wt = torch.randn(4, 3, *[3] * dims, dtype=torch.float64)
    out = CONV_T[dims](x, wt, None, stride=2, groups=2)
    torch.testing.assert_close(out, torch_conv_transpose(x[None], wt, None, stride=2,
                                                         groups=2)[0])


@pytest.mark.parametrize("stride,padding,dilation", [
    (2, 1, 2), ((2, 1), (1, 0), (1, 2)), ([2, 1], [1, 0], [1, 2]), ((2,), (1,), (2,)),
    (torch.Size([2, 1]), torch.Size([1, 0]), torch.Size([1, 2])),
])
def test_int_tuple_list_and_size_arguments(stride, padding, dilation):
    x, w = torch.randn(1, 2, 9, 8), torch.randn(3, 2, 3, 2)
    out = TF.conv2d(x, w, None, stride, padding, dilation)
    torch.testing.assert_close(out, F.conv2d(x, flip_spatial(w), None, stride, padding, dilation))


def test_keyword_arguments():
    x, w, b = torch.randn(1, 4, 9, 8), torch.randn(6, 2, 3, 2), torch.randn(6)
    out = TF.conv2d(input=x, weight=w, bias=b, stride=2, padding=1, dilation=2, groups=2)
    torch.testing.assert_close(out, F.conv2d(x, flip_spatial(w), b, 2, 1, 2, 2))
    wt = torch.randn(4, 3, 3, 2)
    out = TF.conv_transpose2d(input=x, weight=wt, bias=b, stride=2, padding=1, output_padding=1,
                              groups=2, dilation=1)
    torch.testing.assert_close(out, F.conv_transpose2d(x, flip_spatial(wt), b, 2, 1, 1, 2, 1))


@pytest.mark.parametrize("dims", DIMS)
def test_flip_relation_for_gradients(dims):
    """grad_input uses the flipped weight; grad_weight is the flipped
    cross-correlation weight gradient."""
    x = torch.randn(2, 2, *[5] * dims, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, *[3] * dims, dtype=torch.float64, requires_grad=True)
    out = CONV[dims](x, w, padding="same")
    g = torch.randn_like(out)
    gx, gw = torch.autograd.grad(out, (x, w), g)
    v = flip_spatial(w.detach()).requires_grad_()
    rx, rv = torch.autograd.grad(TORCH_CONV[dims](x, v, padding="same"), (x, v), g)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, flip_spatial(rv))


def test_gradcheck_with_same_padding_even_kernel():
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 2, 4, dtype=torch.float64, requires_grad=True)
    f = lambda x, w: TF.conv2d(x, w, padding="same", dilation=(1, 2))  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, w), fast_mode=True)
    assert torch.autograd.gradgradcheck(f, (x, w), fast_mode=True)


ERRORS = [
    ("bool stride", lambda x, w: TF.conv2d(x, w, stride=True), TypeError, "'stride'"),
    ("float stride", lambda x, w: TF.conv2d(x, w, stride=1.0), TypeError, "'stride'"),
    ("stride length", lambda x, w: TF.conv2d(x, w, stride=(1, 1, 1)), ValueError, "'stride'"),
    ("dilation length", lambda x, w: TF.conv2d(x, w, dilation=(1, 1, 1)), ValueError,
     "'dilation'"),
    ("padding length", lambda x, w: TF.conv2d(x, w, padding=(1, 1, 1)), ValueError, "'padding'"),
    ("unknown padding string", lambda x, w: TF.conv2d(x, w, padding="full"), ValueError,
     "padding"),
    ("same with stride", lambda x, w: TF.conv2d(x, w, padding="same", stride=2), ValueError,
     "'same'"),
    ("input rank", lambda x, w: TF.conv2d(x[0, 0], w), ValueError, "'input'"),
    ("weight rank", lambda x, w: TF.conv2d(x, w[0]), ValueError, "'weight'"),
    ("input not a tensor", lambda x, w: TF.conv2d(x.tolist(), w), TypeError, "'input'"),
    ("weight not a tensor", lambda x, w: TF.conv2d(x, w.tolist()), TypeError, "'weight'"),
    ("transposed padding string",
     lambda x, w: TF.conv_transpose2d(x, w.transpose(0, 1), padding="same"), ValueError,
     "'padding'"),
    ("transposed output_padding length",
     lambda x, w: TF.conv_transpose2d(x, w.transpose(0, 1), stride=2, output_padding=(1, 1, 1)),
     ValueError, "'output_padding'"),
]


@pytest.mark.parametrize("call,error,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_rejects_with_named_argument(call, error, message):
    x, w = torch.randn(1, 2, 6, 6), torch.randn(3, 2, 3, 3)
    with pytest.raises(error, match=message):
        call(x, w)


def test_error_messages_name_the_function():
    x, w = torch.randn(1, 2, 6, 6), torch.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match=r"^torchflip\.nn\.functional\.conv2d: "):
        TF.conv2d(x, w, padding="full")
