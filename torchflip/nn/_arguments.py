"""Normalisation of torch.nn.functional-style convolution arguments: ints or
tuples, the 'same' and 'valid' padding strings, unbatched inputs."""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import Tensor

IntOrTuple = Union[int, Sequence[int]]
PaddingArg = Union[str, int, Sequence[int]]

_PADDING_STRINGS = ("valid", "same")


def expand(name: str, value: IntOrTuple, dims: int, op: str) -> tuple[int, ...]:
    """An int or a sequence of 1 or `dims` ints -> a tuple of `dims` ints."""
    if isinstance(value, (int, torch.SymInt)) and not isinstance(value, bool):
        return (value,) * dims
    if isinstance(value, (tuple, list, torch.Size)):
        values = tuple(value)
        if len(values) == 1:
            values = values * dims
        if len(values) == dims and all(
            isinstance(v, (int, torch.SymInt)) and not isinstance(v, bool) for v in values
        ):
            return values
        raise ValueError(
            f"{op}: expected '{name}' to be an int or a tuple of {dims} ints, but got "
            f"{name}={value!r}"
        )
    raise TypeError(
        f"{op}: expected '{name}' to be an int or a tuple of {dims} ints, but got "
        f"{type(value).__name__} {value!r}"
    )


def check_padding_string(padding: str, op: str) -> None:
    if padding not in _PADDING_STRINGS:
        raise ValueError(
            f"{op}: invalid padding string {padding!r}, expected one of {_PADDING_STRINGS} "
            "or an int or a tuple of ints"
        )


def same_padding(
    weight: Tensor, dilation: tuple[int, ...], stride: tuple[int, ...], op: str
) -> tuple[tuple[int, ...], list[int]]:
    """torch.nn's padding='same': total padding d*(k-1) per dimension, the
    left (lower) side taking the floor half and the right (upper) side the
    rest. Returns the symmetric padding for the operator and the extra
    right-side padding, in torch.nn.functional.pad order (last dim first),
    which is all zeros for odd kernels."""
    if any(s != 1 for s in stride):
        raise ValueError(
            f"{op}: padding='same' is not supported for strided convolutions, but got "
            f"stride={stride}"
        )
    dims = len(dilation)
    left, pad_nd = [], [0] * (2 * dims)
    for i in range(dims):
        # int(): kernel sizes are static; under torch.jit.trace a traced size
        # would make the padding list non-constant.
        total = dilation[i] * (int(weight.shape[2 + i]) - 1)
        left.append(total // 2)
        pad_nd[2 * (dims - 1 - i) + 1] = total - total // 2 - total // 2
    return tuple(left), pad_nd


def batchify(input: Tensor, dims: int, op: str) -> tuple[Tensor, bool]:
    """(C, *spatial) -> (1, C, *spatial); returns whether it was unbatched."""
    if input.dim() == dims + 1:
        return input.unsqueeze(0), True
    if input.dim() == dims + 2:
        return input, False
    raise ValueError(
        f"{op}: expected 'input' to be {dims + 1}-D (unbatched: C, *spatial) or "
        f"{dims + 2}-D (batched: N, C, *spatial), but got input of shape {tuple(input.shape)}"
    )


def check_weight_rank(weight: Tensor, dims: int, op: str, layout: str) -> None:
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: expected 'weight' to be a Tensor, but got {type(weight).__name__}")
    if weight.dim() != dims + 2:
        raise ValueError(
            f"{op}: expected 'weight' of shape {layout} with {dims + 2} dimensions, but got "
            f"weight of shape {tuple(weight.shape)}"
        )


def check_layer_sizes(layer: str, in_channels, out_channels, kernel_size) -> None:
    """torch.nn's constructors fail deep inside tensor creation on these; say
    which argument is wrong instead."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{layer}: expected '{name}' to be a non-negative int, but got "
                             f"{name}={value!r}")
    sizes = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size,)
    if not sizes or any(isinstance(k, bool) or not isinstance(k, int) or k <= 0 for k in sizes):
        raise ValueError(f"{layer}: expected 'kernel_size' to be a positive int or a tuple of "
                         f"positive ints, but got kernel_size={kernel_size!r}")
