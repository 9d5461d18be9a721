"""torch.library.opcheck on every torchflip operator: schema (no hidden
mutation or aliasing), autograd registration, FakeTensor/meta shape
propagation and AOT dispatch with dynamic shapes.

The underscored twins deliberately have no autograd kernel (torchflip's
Python autograd.Functions drive them), so they are checked with inputs that
do not require grad."""

import itertools

import pytest
import torch

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)

MASKS = [m for m in itertools.product([True, False], repeat=3) if any(m)]
MASK_IDS = ["".join("1" if v else "0" for v in m) for m in MASKS]


def _conv_args(dims, requires_grad, bias=True):
    size, kernel = [(9,), (6, 7), (4, 5, 4)][dims - 1], [(3,), (3, 2), (2, 3, 2)][dims - 1]
    x = torch.randn(2, 4, *size, requires_grad=requires_grad)
    w = torch.randn(6, 2, *kernel, requires_grad=requires_grad)
    b = torch.randn(6, requires_grad=requires_grad) if bias else None
    return x, w, b, [2, 1, 2][:dims], [1, 0, 1][:dims], [1, 2, 1][:dims], 2


def _conv_transpose_args(dims, requires_grad, bias=True):
    size, kernel = [(5,), (3, 4), (3, 2, 3)][dims - 1], [(3,), (3, 2), (2, 3, 2)][dims - 1]
    x = torch.randn(2, 4, *size, requires_grad=requires_grad)
    w = torch.randn(4, 3, *kernel, requires_grad=requires_grad)
    b = torch.randn(6, requires_grad=requires_grad) if bias else None
    return x, w, b, [2, 1, 2][:dims], [1, 0, 1][:dims], [1, 0, 1][:dims], 2, [1, 2, 1][:dims]


def _check(op, args):
    # opcheck raises with the name of the failing check.
    torch.library.opcheck(op, args)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv(dims, bias):
    _check(torch.ops.torchflip.conv.default, _conv_args(dims, True, bias))
    _check(torch.ops.torchflip._conv.default, _conv_args(dims, False, bias))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv_transpose(dims, bias):
    _check(torch.ops.torchflip.conv_transpose.default, _conv_transpose_args(dims, True, bias))
    _check(torch.ops.torchflip._conv_transpose.default,
           _conv_transpose_args(dims, False, bias))


@pytest.mark.parametrize("mask", MASKS, ids=MASK_IDS)
@pytest.mark.parametrize("dims", [1, 2])
def test_conv_backward(dims, mask):
    for op, requires_grad in [(torch.ops.torchflip.conv_backward.default, True),
                              (torch.ops.torchflip._conv_backward.default, False)]:
        x, w, _, stride, padding, dilation, groups = _conv_args(dims, requires_grad)
        out = torch.ops.torchflip._conv(x.detach(), w.detach(), None, stride, padding,
                                        dilation, groups)
        g = torch.randn_like(out).requires_grad_(requires_grad)
        _check(op, (g, x, w, stride, padding, dilation, groups, list(mask)))


@pytest.mark.parametrize("mask", MASKS, ids=MASK_IDS)
@pytest.mark.parametrize("dims", [1, 2])
def test_conv_transpose_backward(dims, mask):
    for op, requires_grad in [(torch.ops.torchflip.conv_transpose_backward.default, True),
                              (torch.ops.torchflip._conv_transpose_backward.default, False)]:
        x, w, _, stride, padding, output_padding, groups, dilation = \
            _conv_transpose_args(dims, requires_grad)
        out = torch.ops.torchflip._conv_transpose(x.detach(), w.detach(), None, stride,
                                                  padding, output_padding, groups, dilation)
        g = torch.randn_like(out).requires_grad_(requires_grad)
        _check(op, (g, x, w, stride, padding, output_padding, groups, dilation, list(mask)))


def test_meta_tensors_give_output_shapes():
    x, w, b, *hyper = _conv_args(2, False)
    meta = [t.to("meta") for t in (x, w, b)]
    out = torch.ops.torchflip.conv(*meta, *hyper)
    assert out.device.type == "meta"
    assert out.shape == torch.ops.torchflip.conv(x, w, b, *hyper).shape
