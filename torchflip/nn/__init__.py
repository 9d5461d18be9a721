"""Drop-in true-convolution layers for torch.nn models."""

from torchflip.nn import functional
from torchflip.nn.conv import Conv1d, Conv2d, Conv3d
from torchflip.nn._flip_cache import flip_cache_enabled, set_flip_cache_enabled
from torchflip.nn.conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from torchflip.nn.lazy import (
    LazyConv1d,
    LazyConv2d,
    LazyConv3d,
    LazyConvTranspose1d,
    LazyConvTranspose2d,
    LazyConvTranspose3d,
)

__all__ = [
    "functional",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
    "set_flip_cache_enabled",
    "flip_cache_enabled",
]
