"""Under torch.autocast the operators follow torch.nn's convolution policy,
so a converted model computes in the same dtype as the original: floating
inputs are cast to the autocast dtype (except float64, which autocast leaves
alone), and arguments of mixed dtypes are accepted as torch accepts them."""

import pytest
import torch
import torch.nn.functional as F

import torchflip
import torchflip.nn.functional as TF
from tests.reference import flip_spatial

CPU_DTYPES = [torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", CPU_DTYPES)
def test_conv_output_dtype_and_value_follow_torch(dtype):
    x, w, b = torch.randn(2, 3, 8, 8), torch.randn(4, 3, 3, 3), torch.randn(4)
    with torch.autocast("cpu", dtype=dtype):
        out = TF.conv2d(x, w, b, padding=1)
        expected = F.conv2d(x, flip_spatial(w), b, padding=1)
    assert out.dtype == expected.dtype == dtype
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("dtype", CPU_DTYPES)
def test_conv_transpose_output_dtype_and_value_follow_torch(dtype):
    x, w, b = torch.randn(2, 3, 5, 5), torch.randn(3, 4, 3, 3), torch.randn(4)
    with torch.autocast("cpu", dtype=dtype):
        out = TF.conv_transpose2d(x, w, b, stride=2)
        expected = F.conv_transpose2d(x, flip_spatial(w), b, stride=2)
    assert out.dtype == expected.dtype == dtype
    torch.testing.assert_close(out, expected)


def test_mixed_dtype_arguments_are_accepted_under_autocast():
    # A bfloat16 activation from an earlier autocast layer meets float32 parameters.
    x, w = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16), torch.randn(4, 3, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = TF.conv2d(x, w)
        expected = F.conv2d(x, flip_spatial(w))
    assert out.dtype == expected.dtype
    torch.testing.assert_close(out, expected)


def test_float64_is_left_alone():
    x, w = torch.randn(1, 2, 6, dtype=torch.float64), torch.randn(3, 2, 3, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = TF.conv1d(x, w)
        expected = F.conv1d(x, flip_spatial(w))
    assert out.dtype == expected.dtype
    torch.testing.assert_close(out, expected)


def test_converted_model_matches_original_under_autocast():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                                torch.nn.ConvTranspose2d(4, 2, 3, stride=2))
    converted = torchflip.convert(model)
    x = torch.randn(2, 3, 9, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, expected = converted(x), model(x)
    assert out.dtype == expected.dtype
    torch.testing.assert_close(out, expected)


def test_gradients_flow_to_float32_parameters():
    conv = torchflip.nn.Conv2d(3, 4, 3)
    x = torch.randn(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = conv(x).float().square().mean()
    loss.backward()
    assert conv.weight.grad.dtype == torch.float32
    reference = conv.to_torch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference(x).float().square().mean().backward()
    # The torch layer's weight is the flipped one, so its gradient is flipped too.
    torch.testing.assert_close(conv.weight.grad, flip_spatial(reference.weight.grad))


@pytest.mark.parametrize("key", ["AutocastCPU", "AutocastCUDA", "AutocastXPU"])
@pytest.mark.parametrize("op", ["torchflip::conv", "torchflip::conv_transpose"])
def test_autocast_kernels_are_registered_for_every_device(op, key):
    """Without a kernel at an autocast key, the op would fall through and run
    in float32 while torch.nn's convolution runs in half precision. (The CUDA
    behaviour itself is checked below where a GPU exists.)"""
    assert torch._C._dispatch_has_kernel_for_dispatch_key(op, key)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
def test_cuda_float16_autocast_follows_torch(transposed):
    x = torch.randn(2, 3, 8, 8, device="cuda")
    w = torch.randn(3 if transposed else 4, 4 if transposed else 3, 3, 3, device="cuda")
    b = torch.randn(4, device="cuda")
    ours, theirs = ((TF.conv_transpose2d, F.conv_transpose2d) if transposed
                    else (TF.conv2d, F.conv2d))
    with torch.autocast("cuda", dtype=torch.float16):
        out = ours(x, w, b, padding=1)
        expected = theirs(x, flip_spatial(w), b, padding=1)
    assert out.dtype == expected.dtype == torch.float16
    torch.testing.assert_close(out, expected)
