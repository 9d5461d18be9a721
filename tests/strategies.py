"""Hypothesis strategies for valid convolution problems.

A :class:`ConvCase` holds the shapes and hyper-parameters of one true
convolution (or transposed convolution) that torch.nn.functional accepts; the
tests draw tensors for it and compare torchflip with the references in
:mod:`tests.reference`. Sizes stay small: parity does not depend on size, and
the suite shares a small CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from hypothesis import assume
from hypothesis import strategies as st
from torch import Tensor


@dataclass(frozen=True)
class ConvCase:
    transposed: bool
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    input_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    bias: bool

    @property
    def dims(self) -> int:
        return len(self.kernel_size)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def tensors(self, dtype: torch.dtype = torch.float64, requires_grad: bool = False
                ) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        """Random (input, weight, bias) for this case."""
        def make(*shape):
            return torch.randn(*shape, dtype=dtype).requires_grad_(requires_grad)

        x = make(self.batch, self.in_channels, *self.input_size)
        w = make(*self.weight_shape)
        b = make(self.out_channels) if self.bias else None
        return x, w, b

    def kwargs(self) -> dict:
        """Hyper-parameters as keyword arguments of torch.nn.functional."""
        kw = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                  groups=self.groups)
        if self.transposed:
            kw["output_padding"] = self.output_padding
        return kw


@st.composite
def conv_cases(draw, transposed: bool = False, dims: Optional[int] = None) -> ConvCase:
    dims = dims if dims is not None else draw(st.integers(1, 3))
    per_dim = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(dims))  # noqa: E731
    groups = draw(st.integers(1, 3))
    kernel = per_dim(1, 3 if dims < 3 else 2)
    stride = per_dim(1, 3)
    dilation = per_dim(1, 2)
    padding = per_dim(0, 2)
    if transposed:
        input_size = per_dim(1, 4)
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        out = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op in
               zip(input_size, stride, padding, dilation, kernel, output_padding)]
        assume(all(o > 0 for o in out))
    else:
        # The padded input must hold the dilated kernel.
        smallest = [max(1, d * (k - 1) + 1 - 2 * p) for k, d, p in zip(kernel, dilation, padding)]
        input_size = tuple(draw(st.integers(m, m + (5 if dims < 3 else 2))) for m in smallest)
        output_padding = (0,) * dims
    return ConvCase(
        transposed=transposed,
        batch=draw(st.integers(1, 2)),
        in_channels=groups * draw(st.integers(1, 2)),
        out_channels=groups * draw(st.integers(1, 2)),
        groups=groups,
        input_size=input_size,
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
        bias=draw(st.booleans()),
    )
