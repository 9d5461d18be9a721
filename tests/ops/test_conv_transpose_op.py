"""torch.ops.torchflip.conv_transpose (and _conv_transpose): the adjoint of
true convolution, against the references in tests.reference and against the
adjoint identity <conv(x, w), y> == <x, conv_transpose(y, w)>."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)
from tests.reference import numpy_conv_transpose, to_numpy, torch_conv_transpose
from tests.strategies import conv_cases

OPS = [torch.ops.torchflip.conv_transpose, torch.ops.torchflip._conv_transpose]
OP_IDS = ["conv_transpose", "_conv_transpose"]

# (input spatial size, kernel, stride, padding, output_padding, dilation, groups)
CASES = {
    1: [((5,), (3,), (1,), (0,), (0,), (1,), 1), ((6,), (4,), (3,), (2,), (2,), (1,), 2)],
    2: [((4, 5), (3, 2), (1, 1), (0, 0), (0, 0), (1, 1), 1),
        ((4, 5), (3, 4), (2, 1), (1, 2), (1, 1), (1, 2), 2)],
    3: [((3, 4, 2), (2, 3, 1), (1, 1, 1), (0, 0, 0), (0, 0, 0), (1, 1, 1), 1),
        ((3, 4, 3), (3, 2, 3), (2, 1, 3), (1, 0, 2), (1, 0, 2), (2, 1, 1), 3)],
}
GRID = [(dims, *case) for dims, cases in CASES.items() for case in cases]


def _tensors(size, kernel, groups, dtype=torch.float64, bias=True):
    x = torch.randn(2, 3 * groups, *size, dtype=dtype)
    w = torch.randn(3 * groups, 2, *kernel, dtype=dtype)  # (C_in, C_out / groups, *K)
    b = torch.randn(2 * groups, dtype=dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dims,size,kernel,stride,padding,output_padding,dilation,groups", GRID)
def test_matches_numpy_definition(op, bias, dims, size, kernel, stride, padding,
                                  output_padding, dilation, groups):
    x, w, b = _tensors(size, kernel, groups, bias=bias)
    out = op(x, w, b, stride, padding, output_padding, groups, dilation)
    expected = numpy_conv_transpose(to_numpy(x), to_numpy(w), to_numpy(b), stride, padding,
                                    output_padding, groups, dilation)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dims,size,kernel,stride,padding,output_padding,dilation,groups", GRID)
def test_is_torch_transposed_convolution_with_flipped_kernel(dims, size, kernel, stride, padding,
                                                             output_padding, dilation, groups):
    x, w, b = _tensors(size, kernel, groups)
    out = torch.ops.torchflip.conv_transpose(x, w, b, stride, padding, output_padding, groups,
                                             dilation)
    torch.testing.assert_close(
        out, torch_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation))


@pytest.mark.parametrize("dims,size,kernel,stride,padding,output_padding,dilation,groups", GRID)
def test_output_shape_formula(dims, size, kernel, stride, padding, output_padding, dilation,
                              groups):
    x, w, _ = _tensors(size, kernel, groups)
    out = torch.ops.torchflip.conv_transpose(x, w, None, stride, padding, output_padding,
                                             groups, dilation)
    expected = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, op, d in
                zip(size, kernel, stride, padding, output_padding, dilation)]
    assert list(out.shape) == [2, 2 * groups, *expected]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_match_torch(dtype):
    x, w, b = _tensors((4, 5), (3, 2), 2, dtype=dtype)
    out = torch.ops.torchflip.conv_transpose(x, w, b, [2, 1], [1, 0], [1, 0], 2, [1, 2])
    assert out.dtype == dtype
    torch.testing.assert_close(out, torch_conv_transpose(x, w, b, (2, 1), (1, 0), (1, 0), 2,
                                                         (1, 2)))


@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_property_adjoint_of_conv(case, seed):
    """<conv(x, w), y> == <x, conv_transpose(y, w)> for every conv case, with
    output_padding making up the input positions that the stride skips."""
    torch.manual_seed(seed)
    x, w, _ = case.tensors()
    y = torch.ops.torchflip.conv(x, w, None, case.stride, case.padding, case.dilation,
                                 case.groups)
    # The strided convolution leaves the last (n + 2p - d(K-1) - 1) mod s input
    # positions unread; output_padding restores them, so the transposed output
    # has exactly x's shape.
    full = [(m - 1) * s - 2 * p + d * (k - 1) + 1 for m, s, p, d, k in
            zip(y.shape[2:], case.stride, case.padding, case.dilation, case.kernel_size)]
    output_padding = [n - f for n, f in zip(case.input_size, full)]
    probe = torch.randn_like(y)
    xt = torch.ops.torchflip.conv_transpose(probe, w, None, case.stride, case.padding,
                                            output_padding, case.groups, case.dilation)
    assert xt.shape == x.shape
    x, probe, y, xt = (t.double() for t in (x, probe, y, xt))
    lhs = (y * probe).sum()
    rhs = (x * xt).sum()
    # Relative to the scale of the sums' terms, 1e-10 in float64.
    scale = (x.abs() * xt.abs()).sum().clamp_min(1e-300)
    assert abs(lhs - rhs) <= 1e-10 * scale, (lhs, rhs, scale)


@given(case=conv_cases(transposed=True), seed=st.integers(0, 2**16))
def test_property_matches_references(case, seed):
    torch.manual_seed(seed)
    x, w, b = case.tensors()
    kw = case.kwargs()
    for op in OPS:
        out = op(x, w, b, case.stride, case.padding, case.output_padding, case.groups,
                 case.dilation)
        torch.testing.assert_close(out, torch_conv_transpose(x, w, b, **kw))
    expected = numpy_conv_transpose(to_numpy(x), to_numpy(w), to_numpy(b), **kw)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)
