"""Transposed true-convolution layers: drop-in replacements for
torch.nn.ConvTranspose1d/2d/3d computing the adjoint of torchflip's true
convolution (torch's transposed convolution with the kernel flipped)."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn
from torch.nn.modules.conv import _ConvTransposeNd
from torch.nn.modules.utils import _ntuple

from torchflip._ops import validate_once
from torchflip.nn import functional as TF
from torch.nn.modules.lazy import LazyModuleMixin

from torchflip.nn._arguments import check_layer_sizes
from torchflip.nn._conversion import copy_convolution
from torchflip.nn._flip_cache import FlipCacheMixin, FlippedWeightCache

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class _TrueConvTransposeNd(FlipCacheMixin, _ConvTransposeNd):
    _dims: int
    _torch_cls: type[nn.Module]

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        to_tuple = _ntuple(self._dims, "_")
        if in_channels != 0 or not isinstance(self, LazyModuleMixin):
            check_layer_sizes(type(self).__name__, in_channels, out_channels, kernel_size)
        super().__init__(
            in_channels, out_channels, to_tuple(kernel_size), to_tuple(stride),
            to_tuple(padding), to_tuple(dilation), True, to_tuple(output_padding), groups,
            bias, padding_mode, device=device, dtype=dtype)
        self._flip_cache = FlippedWeightCache()

    def forward(self, input: Tensor, output_size: Optional[list[int]] = None) -> Tensor:
        if self.padding_mode != "zeros":
            raise ValueError(f"Only `zeros` padding mode is supported for {type(self).__name__}")
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__}: expected 'input' to be a Tensor, but got "
                            f"{type(input).__name__}")
        output_padding = self._output_padding(
            input, output_size, self.stride, self.padding, self.kernel_size, self._dims,
            self.dilation)
        if FlippedWeightCache.applies(self.weight):
            # No gradient reaches the weight: torch's transposed convolution with
            # the cached flipped weight is the same operator, minus the flip.
            validate_once(
                (TF.conv_transpose1d, TF.conv_transpose2d, TF.conv_transpose3d)[self._dims - 1],
                input, self.weight, self.bias, self.stride, self.padding, tuple(output_padding),
                self.groups, self.dilation)
            conv = (nn.functional.conv_transpose1d, nn.functional.conv_transpose2d,
                    nn.functional.conv_transpose3d)
            return conv[self._dims - 1](input, self._flip_cache.get(self.weight), self.bias,
                                        self.stride, self.padding, output_padding, self.groups,
                                        self.dilation)
        conv = (TF.conv_transpose1d, TF.conv_transpose2d, TF.conv_transpose3d)[self._dims - 1]
        return conv(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                    self.groups, self.dilation)

    def __prepare_scriptable__(self):
        from torchflip.nn._scriptable import ScriptableConvTranspose

        return ScriptableConvTranspose(self)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", true convolution"

    @classmethod
    def from_torch(cls, conv: nn.Module, flip_weights: bool = True):
        """The transposed true-convolution layer computing exactly what
        ``conv`` (a torch.nn transposed layer of the same dimensionality)
        computes: the weight flipped along the spatial dimensions, everything
        else copied. ``flip_weights=False`` copies the weight unflipped."""
        if not isinstance(conv, cls._torch_cls):
            raise TypeError(
                f"{cls.__name__}.from_torch expects a {cls._torch_cls.__module__}."
                f"{cls._torch_cls.__name__}, but got {type(conv).__name__}")
        return copy_convolution(conv, cls, flip_weights)

    def to_torch(self, flip_weights: bool = True):
        """The torch.nn transposed layer computing exactly what this layer
        computes; see :meth:`from_torch`."""
        return copy_convolution(self, self._torch_cls, flip_weights)


class ConvTranspose1d(_TrueConvTransposeNd):
    r"""1-D transposed true convolution: the adjoint of
    :class:`torchflip.nn.Conv1d` with the same weight, i.e.
    :class:`torch.nn.ConvTranspose1d` with the kernel flipped. Arguments,
    attributes, initialisation, state_dict and ``forward(input, output_size)``
    as torch.nn's.

    >>> import torch, torchflip
    >>> up = torchflip.nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1)
    >>> up(torch.randn(1, 4, 10)).shape
    torch.Size([1, 2, 20])
    """

    _dims = 1
    _torch_cls = nn.ConvTranspose1d


class ConvTranspose2d(_TrueConvTransposeNd):
    r"""2-D transposed true convolution: the adjoint of
    :class:`torchflip.nn.Conv2d`, i.e. :class:`torch.nn.ConvTranspose2d` with
    the kernel flipped along both spatial dimensions.

    >>> import torch, torchflip
    >>> up = torchflip.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    >>> up(torch.randn(1, 4, 8, 8), output_size=[16, 16]).shape
    torch.Size([1, 2, 16, 16])
    """

    _dims = 2
    _torch_cls = nn.ConvTranspose2d


class ConvTranspose3d(_TrueConvTransposeNd):
    r"""3-D transposed true convolution: the adjoint of
    :class:`torchflip.nn.Conv3d`, i.e. :class:`torch.nn.ConvTranspose3d` with
    the kernel flipped along all three spatial dimensions.

    >>> import torch, torchflip
    >>> torchflip.nn.ConvTranspose3d(2, 2, 2, stride=2)(torch.randn(1, 2, 3, 3, 3)).shape
    torch.Size([1, 2, 6, 6, 6])
    """

    _dims = 3
    _torch_cls = nn.ConvTranspose3d
