r"""The direct engine: windows of a true convolution through torchflip's conv op.

For a window ``full[start : start + length]`` (per axis) of

.. math::
    \mathrm{full}[i] = \sum_{k=0}^{M-1} x[i - k]\, w[k],

pad ``x`` with ``M - 1 - start`` zeros before and ``start + length - N``
after (a negative count crops) and take the 'valid' true convolution, whose
output ``t`` is ``full[start + t]``. The symmetric part of that padding is
passed to the conv op, so only an uneven remainder (an even kernel in 'same'
mode) costs an explicit pad.

The conv op is real; complex inputs become two channels (real, imaginary),
and one convolution with a 2-channel kernel forms
``(a + ib)(c + id) = (ac - bd) + i(ad + bc)``. A real input stays real
(only one channel), so mixed real/complex costs half of complex/complex.
Up to 3 dimensions map onto conv1d/2d/3d; more dimensions are a sum over
the kernel's leading axis of lower-dimensional convolutions.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from torchflip import _ops


def _real_conv(x: Tensor, w: Tensor, padding: list[int], groups: int = 1) -> Tensor:
    ones = [1] * (w.dim() - 2)
    if (not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))
            and not torch.compiler.is_compiling() and not _ops._functorch_path()):
        # Nothing to differentiate: the twin operator runs the same kernel
        # without building an autograd node, which matters for small inputs.
        return torch.ops.torchflip._conv.default(x, w, None, ones, padding, ones, groups)
    return _ops.conv(x, w, None, ones, padding, ones, groups)


def _valid_conv_3d(x: Tensor, w: Tensor, padding: list[int]) -> Tensor:
    """x: (B, *S), w: (*K) with 1 to 3 spatial dims -> (B, *out): the true
    convolution of each batch item, zero-padded by ``padding`` per side."""
    complex_x, complex_w = x.is_complex(), w.is_complex()
    if not complex_x and not complex_w:
        out = _real_conv(x.unsqueeze(1), w.view((1, 1) + w.shape), padding)
        return out.view((out.shape[0],) + out.shape[2:])
    if complex_x and complex_w:
        # Output channel 0 = re(x)*re(w) - im(x)*im(w); channel 1 = re(x)*im(w) + im(x)*re(w).
        channels = torch.stack([x.real, x.imag], 1)
        weight = torch.stack([torch.stack([w.real, -w.imag]), torch.stack([w.imag, w.real])])
        out = _real_conv(channels, weight, padding)
    elif complex_x:
        # Each part of x meets the same real kernel: a grouped convolution.
        channels = torch.stack([x.real, x.imag], 1)
        out = _real_conv(channels, torch.stack([w, w]).unsqueeze(1), padding, groups=2)
    else:
        out = _real_conv(x.unsqueeze(1), torch.stack([w.real, w.imag]).unsqueeze(1), padding)
    return torch.complex(out[:, 0], out[:, 1])


def _valid_conv(x: Tensor, w: Tensor, padding: list[int]) -> Tensor:
    """x: (B, *S), w: (*K) with any number of spatial dims."""
    if w.dim() <= 3:
        return _valid_conv_3d(x, w, padding)
    # y[t0, ...] = sum_k0 (x[t0 + M0 - 1 - k0, ...] (*) w[k0, ...]) over the leading axis.
    if padding[0]:
        x = torch.nn.functional.pad(x, [0, 0] * (w.dim() - 1) + [padding[0]] * 2)
    batch, m0 = x.shape[0], w.shape[0]
    out0 = x.shape[1] - m0 + 1
    total = None
    for k0 in range(m0):
        rows = x.narrow(1, m0 - 1 - k0, out0).reshape(batch * out0, *x.shape[2:])
        term = _valid_conv(rows, w[k0], padding[1:])
        total = term if total is None else total + term
    return total.reshape(batch, out0, *total.shape[1:])


def direct_window(in1: Tensor, in2: Tensor, start: Sequence[int],
                  length: Sequence[int]) -> Tensor:
    """``full[start : start + length]`` along every axis of the true convolution
    of ``in1`` and ``in2`` (same ndim >= 1, same precision, each real or
    complex), computed by the conv op."""
    padding, extra, uneven = [], [], False
    for size, m, s, n in zip(in1.shape, in2.shape, start, length):
        before, after = m - 1 - s, s + n - size
        common = max(0, min(before, after))
        padding.append(common)
        extra = [before - common, after - common] + extra  # F.pad lists the last dim first
        uneven = uneven or before != common or after != common
    x = torch.nn.functional.pad(in1, extra) if uneven else in1
    out = _valid_conv(x.unsqueeze(0), in2, padding)
    return out.view(out.shape[1:])
