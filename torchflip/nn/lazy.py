"""Lazy true-convolution layers: ``in_channels`` is inferred from the first
input, as with torch.nn.LazyConv*d; after that first call the module becomes
the corresponding torchflip layer (``cls_to_become``)."""

from __future__ import annotations

from torch.nn.modules.conv import _LazyConvXdMixin
from torch.nn.parameter import UninitializedParameter

from torchflip.nn.conv import Conv1d, Conv2d, Conv3d
from torchflip.nn.conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

__all__ = ["LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
           "LazyConvTranspose2d", "LazyConvTranspose3d"]


class _LazyTrueConv(_LazyConvXdMixin):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None, *, method: str = "auto") -> None:
        # bias=False here: the real parameters are created on the first call.
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False,
                         padding_mode, device=device, dtype=dtype, method=method)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def _get_num_spatial_dims(self) -> int:
        return self._dims


class _LazyTrueConvTranspose(_LazyConvXdMixin):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__(0, 0, kernel_size, stride, padding, output_padding, groups, False,
                         dilation, padding_mode, device=device, dtype=dtype)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def _get_num_spatial_dims(self) -> int:
        return self._dims


class LazyConv1d(_LazyTrueConv, Conv1d):
    """:class:`torchflip.nn.Conv1d` with ``in_channels`` inferred from the first input."""

    cls_to_become = Conv1d


class LazyConv2d(_LazyTrueConv, Conv2d):
    """:class:`torchflip.nn.Conv2d` with ``in_channels`` inferred from the first input.

    >>> import torch, torchflip
    >>> conv = torchflip.nn.LazyConv2d(8, 3)
    >>> conv(torch.randn(1, 5, 10, 10)).shape, type(conv).__name__, conv.in_channels
    (torch.Size([1, 8, 8, 8]), 'Conv2d', 5)
    """

    cls_to_become = Conv2d


class LazyConv3d(_LazyTrueConv, Conv3d):
    """:class:`torchflip.nn.Conv3d` with ``in_channels`` inferred from the first input."""

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyTrueConvTranspose, ConvTranspose1d):
    """:class:`torchflip.nn.ConvTranspose1d` with ``in_channels`` inferred from the first input."""

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyTrueConvTranspose, ConvTranspose2d):
    """:class:`torchflip.nn.ConvTranspose2d` with ``in_channels`` inferred from the first input."""

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyTrueConvTranspose, ConvTranspose3d):
    """:class:`torchflip.nn.ConvTranspose3d` with ``in_channels`` inferred from the first input."""

    cls_to_become = ConvTranspose3d
