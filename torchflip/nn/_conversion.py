"""Exact conversion between torch.nn convolution modules (cross-correlation)
and their torchflip counterparts (true convolution)."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)

# Constructor arguments shared by every convolution module of torch.nn.
_HYPER_PARAMETERS = ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                     "dilation", "groups", "padding_mode")


def _spatial_dims(weight: torch.Tensor) -> list[int]:
    return list(range(2, weight.dim()))


def copy_convolution(source: nn.Module, target_cls: type[M], flip_weights: bool,
                     **extra_kwargs) -> M:
    """A module of ``target_cls`` with the hyper-parameters, device, dtype,
    parameters (flipped along the spatial dimensions if ``flip_weights``),
    requires_grad flags and training mode of ``source``."""
    from torch.nn.parameter import UninitializedParameter

    if isinstance(source.weight, UninitializedParameter):
        raise ValueError(
            f"cannot convert {type(source).__name__}: its parameters are not initialised yet "
            "(a lazy module must run a forward pass first)"
        )
    kwargs = {name: getattr(source, name) for name in _HYPER_PARAMETERS}
    if getattr(source, "transposed", False):
        kwargs["output_padding"] = source.output_padding
    weight = source.weight
    target = target_cls(**kwargs, bias=source.bias is not None, device=weight.device,
                        dtype=weight.dtype, **extra_kwargs)
    with torch.no_grad():
        new_weight = weight.detach().flip(_spatial_dims(weight)) if flip_weights else weight.detach()
        # A fresh parameter keeps the source's memory format (e.g. channels_last).
        target.weight = nn.Parameter(new_weight.clone(memory_format=torch.preserve_format),
                                     requires_grad=weight.requires_grad)
        if source.bias is not None:
            target.bias.copy_(source.bias.detach())
            target.bias.requires_grad_(source.bias.requires_grad)
    target.train(source.training)
    return target
