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

Two reformulations keep the conv op fast: long real 1-D convolutions run
polyphase (a P-channel convolution, below), and large outputs are computed
in slabs so that the conv op's unfolded input stays cache-sized.

Real 1-D inputs of one dtype (float32, float64, int64) on the CPU that need
no gradient skip the conv op altogether: ``torch.ops.torchflip._fir_window``
(csrc/fir_window.cpp) computes the window with the ``M`` multiply-adds per
output the sum above asks for, several times faster than the conv op's
single-channel matrix product. It has no autograd, so calls that need a
gradient, and calls under torch.compile, tracing or torch.func, keep the
conv op (:func:`fir_applies`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from torchflip import _ops

FIR_DTYPES = (torch.float32, torch.float64, torch.int64)


def fir_applies(in1: Tensor, in2: Tensor) -> bool:
    """Whether :func:`direct_window` runs the ``_fir_window`` kernel: real 1-D
    CPU tensors of one dtype in FIR_DTYPES, nothing to differentiate, eager
    (outside torch.compile, jit tracing and torch.func transforms)."""
    return (in1.dim() == 1 and in2.dim() == 1 and in1.dtype == in2.dtype
            and in1.dtype in FIR_DTYPES and in1.device.type == "cpu"
            and in2.device.type == "cpu"
            and not _ops.needs_gradient(in1, in2) and _ops.plain_eager_mode())


def fir_window(in1: Tensor, in2: Tensor, start: int, length: int) -> Tensor:
    """1-D ``full[start : start + length]`` by the multiply-add kernel (the
    caller has checked :func:`fir_applies`)."""
    return torch.ops.torchflip._fir_window.default(in1, in2, start, length)


def _real_conv(x: Tensor, w: Tensor, padding: list[int], groups: int = 1) -> Tensor:
    ones = [1] * (w.dim() - 2)
    # Not under tracing either: a trace must not depend on the grad mode.
    if not _ops.needs_gradient(x, w) and _ops.plain_eager_mode():
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


# The conv op unfolds its input into a (kernel taps x outputs) matrix; past a
# few megabytes that matrix falls out of cache and must be faulted into fresh
# memory on every call, which slows direct convolution several-fold (and a
# large kernel could ask for gigabytes). Outputs are therefore computed in
# slabs along the first axis whose unfolded input stays below this size.
UNFOLD_BUDGET_BYTES = 4 << 20


def direct_window(in1: Tensor, in2: Tensor, start: Sequence[int],
                  length: Sequence[int]) -> Tensor:
    """``full[start : start + length]`` along every axis of the true convolution
    of ``in1`` and ``in2`` (same ndim >= 1, same precision, each real or
    complex), by the multiply-add kernel where it applies, else the conv op."""
    if fir_applies(in1, in2):
        return fir_window(in1, in2, start[0], length[0])
    return conv_window(in1, in2, start, length)


def conv_window(in1: Tensor, in2: Tensor, start: Sequence[int],
                length: Sequence[int]) -> Tensor:
    """:func:`direct_window` through the conv op (floating inputs)."""
    if use_polyphase(in1, in2, length):
        return _polyphase_window(in1, in2, start[0], length[0])
    padding, extra, uneven = [], [], False
    for size, m, s, n in zip(in1.shape, in2.shape, start, length):
        before, after = m - 1 - s, s + n - size
        common = max(0, min(before, after))
        padding.append(common)
        extra = [before - common, after - common] + extra  # F.pad lists the last dim first
        uneven = uneven or before != common or after != common
    taps = in2.numel() * (2 if in1.is_complex() else 1) * (2 if in2.is_complex() else 1)
    unfolded = _prod(length) * taps * in1.element_size()
    slabs = min(length[0], -(-unfolded // UNFOLD_BUDGET_BYTES))
    if slabs <= 1:
        x = torch.nn.functional.pad(in1, extra) if uneven else in1
        out = _valid_conv(x.unsqueeze(0), in2, padding)
        return out.view(out.shape[1:])
    # Pad the first axis explicitly, then convolve slabs of rows.
    extra[-2] += padding[0]
    extra[-1] += padding[0]
    x = torch.nn.functional.pad(in1, extra).unsqueeze(0)
    rows, m0 = -(-length[0] // slabs), in2.shape[0]
    pieces = []
    for first in range(0, length[0], rows):
        count = min(rows, length[0] - first)
        piece = _valid_conv(x.narrow(1, first, count + m0 - 1), in2, [0] + padding[1:])
        pieces.append(piece)
    out = torch.cat(pieces, 1)
    return out.view(out.shape[1:])


# A single-channel 1-D convolution is a poor fit for the conv op (one
# multiply-add per unfolded element). Splitting signal and output into P
# phases, x_p[t] = x[tP + p] and c_q[t] = c[tP + q], turns it into a P-channel
# convolution with taps W[q, p, m] = w[mP + q - p]:
#     c_q[t] = sum_p sum_m x_p[t - m] W[q, p, m],
# a dense matrix product per output block. For long signals and kernels of
# 16 taps or more it runs several times faster, although it does (M + P) / M
# times the multiply-adds; below the thresholds its fixed cost (building W,
# reordering the signal) outweighs the gain.
POLYPHASE_MIN_TAPS = 16
POLYPHASE_MIN_MACS = 1_000_000


def use_polyphase(in1: Tensor, in2: Tensor, length: Sequence[int]) -> bool:
    return (in1.dim() == 1 and not in1.is_complex() and not in2.is_complex()
            and polyphase_applies(in2.shape[0], length[0]))


def polyphase_applies(taps: int, outputs: int) -> bool:
    """Whether a real 1-D direct convolution runs polyphase (see above)."""
    return taps >= POLYPHASE_MIN_TAPS and taps * outputs >= POLYPHASE_MIN_MACS


def polyphase_phases(taps: int) -> int:
    return min(64, max(8, 1 << (taps - 1).bit_length()))


def _polyphase_weight(w: Tensor, phases: int) -> Tensor:
    taps = w.shape[0]
    per_phase = -(-(taps + phases - 1) // phases)
    m = torch.arange(per_phase, device=w.device).view(1, 1, per_phase)
    q = torch.arange(phases, device=w.device).view(phases, 1, 1)
    p = torch.arange(phases, device=w.device).view(1, phases, 1)
    index = m * phases + q - p
    inside = (index >= 0) & (index < taps)
    return torch.where(inside, w[index.clamp(0, taps - 1)], w.new_zeros(()))


def _polyphase_window(x: Tensor, w: Tensor, start: int, length: int) -> Tensor:
    """1-D real ``full[start : start + length]`` by the polyphase convolution."""
    taps, size = w.shape[0], x.shape[0]
    phases = polyphase_phases(taps)
    weight = _polyphase_weight(w, phases)
    per_phase = weight.shape[2]
    # Causal convolution c[u] = sum_k z[u - k] w[k] of z = x padded so that the
    # window is c[taps - 1 : taps - 1 + length].
    z = torch.nn.functional.pad(x, [taps - 1 - start, start + length - size])
    # Slabs of outputs whose unfolded (P * per_phase x rows) input fits the budget.
    rows_budget = max(1, UNFOLD_BUDGET_BYTES // (phases * per_phase * x.element_size()))
    slab = max(phases, min(length, rows_budget * phases) // phases * phases)
    pieces = []
    for first in range(0, length, slab):
        count = min(slab, length - first)
        chunk = z.narrow(0, first, count + taps - 1)
        rows = -(-(count + taps - 1) // phases)
        chunk = torch.nn.functional.pad(chunk, [0, rows * phases - chunk.shape[0]])
        signal = chunk.view(rows, phases).t().unsqueeze(0)  # (1, P, rows)
        out = _real_conv(signal, weight, [per_phase - 1]).narrow(2, 0, rows)
        causal = out[0].t().reshape(rows * phases)
        pieces.append(causal.narrow(0, taps - 1, count))
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out
