"""torch.ops.torchflip.conv (and its autograd-free twin _conv): the forward
values of true convolution against the references in tests.reference."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)
from tests.reference import numpy_conv, to_numpy, torch_conv
from tests.strategies import conv_cases

OPS = [torch.ops.torchflip.conv, torch.ops.torchflip._conv]
OP_IDS = ["conv", "_conv"]

# (input spatial size, kernel, stride, padding, dilation, groups) per dimensionality,
# chosen so that every hyper-parameter differs between spatial dimensions.
CASES = {
    1: [((9,), (3,), (1,), (0,), (1,), 1), ((11,), (4,), (2,), (1,), (2,), 2)],
    2: [((7, 8), (3, 2), (1, 1), (0, 0), (1, 1), 1),
        ((9, 8), (3, 4), (2, 1), (1, 2), (1, 2), 2)],
    3: [((5, 6, 7), (2, 3, 1), (1, 1, 1), (0, 0, 0), (1, 1, 1), 1),
        ((6, 7, 8), (3, 2, 3), (2, 1, 3), (1, 0, 2), (2, 1, 1), 3)],
}
GRID = [(dims, *case) for dims, cases in CASES.items() for case in cases]


def _tensors(size, kernel, groups, dtype=torch.float64, bias=True):
    x = torch.randn(2, 3 * groups, *size, dtype=dtype)
    w = torch.randn(2 * groups, 3, *kernel, dtype=dtype)
    b = torch.randn(2 * groups, dtype=dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dims,size,kernel,stride,padding,dilation,groups", GRID)
def test_matches_numpy_definition(op, bias, dims, size, kernel, stride, padding, dilation,
                                  groups):
    x, w, b = _tensors(size, kernel, groups, bias=bias)
    out = op(x, w, b, stride, padding, dilation, groups)
    expected = numpy_conv(to_numpy(x), to_numpy(w), to_numpy(b), stride, padding, dilation,
                          groups)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dims,size,kernel,stride,padding,dilation,groups", GRID)
def test_is_cross_correlation_with_flipped_kernel(dims, size, kernel, stride, padding,
                                                  dilation, groups):
    x, w, b = _tensors(size, kernel, groups)
    out = torch.ops.torchflip.conv(x, w, b, stride, padding, dilation, groups)
    torch.testing.assert_close(out, torch_conv(x, w, b, stride, padding, dilation, groups))


def test_differs_from_cross_correlation():
    # An asymmetric kernel: guards against a reference that flips twice.
    x = torch.tensor([[[1.0, 2.0, 4.0, 8.0]]])
    w = torch.tensor([[[1.0, 0.0, 0.0]]])
    out = torch.ops.torchflip.conv(x, w, None, [1], [0], [1], 1)
    # y[i] = sum_k x[i + k] w[K - 1 - k] = x[i + 2].
    torch.testing.assert_close(out, x[..., 2:])
    assert not torch.allclose(out, torch.nn.functional.conv1d(x, w))


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_match_torch(op, dtype):
    x, w, b = _tensors((6, 7), (3, 2), 2, dtype=dtype)
    out = op(x, w, b, [1, 2], [1, 0], [2, 1], 2)
    assert out.dtype == dtype
    torch.testing.assert_close(out, torch_conv(x, w, b, (1, 2), (1, 0), (2, 1), 2))


def test_single_value_hyper_parameters_apply_to_every_dimension():
    x, w, b = _tensors((7, 8, 6), (3, 2, 2), 1)
    out = torch.ops.torchflip.conv(x, w, b, [2], [1], [2], 1)
    torch.testing.assert_close(out, torch_conv(x, w, b, 2, 1, 2, 1))


def test_non_contiguous_and_expanded_arguments():
    x = torch.randn(2, 8, 9, 11, dtype=torch.float64)[:, ::2, 1:, ::2]
    w = torch.randn(3, 3, 6, 4, dtype=torch.float64).permute(2, 3, 0, 1)
    b = torch.randn(1, dtype=torch.float64).expand(6)
    assert not x.is_contiguous() and not w.is_contiguous()
    out = torch.ops.torchflip.conv(x, w, b, [1], [1], [1], 1)
    torch.testing.assert_close(out, torch_conv(x.contiguous(), w.contiguous(), b.contiguous(),
                                               1, 1, 1, 1))


@pytest.mark.parametrize("weight_channels_last", [True, False])
def test_channels_last_input_gives_torch_memory_format(weight_channels_last):
    x = torch.randn(2, 4, 8, 8).to(memory_format=torch.channels_last)
    w = torch.randn(6, 4, 3, 3)
    if weight_channels_last:
        w = w.to(memory_format=torch.channels_last)
    out = torch.ops.torchflip.conv(x, w, None, [1], [1], [1], 1)
    expected = torch_conv(x, w, None, 1, 1, 1, 1)
    torch.testing.assert_close(out, expected)
    assert out.is_contiguous(memory_format=torch.channels_last) == \
        expected.is_contiguous(memory_format=torch.channels_last)


def test_empty_batch():
    x, w, b = _tensors((5, 5), (3, 3), 1)
    out = torch.ops.torchflip.conv(x[:0], w, b, [1], [0], [1], 1)
    assert out.shape == (0, 2, 3, 3)


def test_output_does_not_alias_or_modify_arguments():
    x, w, b = _tensors((5, 6), (3, 3), 1)
    copies = [t.clone() for t in (x, w, b)]
    out = torch.ops.torchflip.conv(x, w, b, [1], [0], [1], 1)
    for t, c in zip((x, w, b), copies):
        assert torch.equal(t, c)
        assert out.untyped_storage().data_ptr() != t.untyped_storage().data_ptr()


@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_property_matches_references(case, seed):
    torch.manual_seed(seed)
    x, w, b = case.tensors()
    for op in OPS:
        out = op(x, w, b, case.stride, case.padding, case.dilation, case.groups)
        torch.testing.assert_close(out, torch_conv(x, w, b, **case.kwargs()))
    expected = numpy_conv(to_numpy(x), to_numpy(w), to_numpy(b), **case.kwargs())
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)
