r"""FFT convolution: :func:`fftconvolve`, :func:`oaconvolve` and the FFT and
overlap-add engines behind :func:`torchflip.signal.convolve`.

Both compute, over ``axes``, the linear convolution

.. math::
    \mathrm{out}[i] = \sum_k \mathrm{in1}[i - k]\, \mathrm{in2}[k]

through the convolution theorem (``torch.ops.torchflip.fft_conv``: rfftn /
irfftn for real inputs, fftn / ifftn for complex ones, at 5-smooth transform
lengths). Unlike scipy, which always transforms at the full length
``n1 + n2 - 1`` and crops, the operator transforms at the shortest length
that keeps the requested window free of wrap-around: ``n1`` for 'valid',
about ``n1 + n2 / 2`` for 'same'.

Overlap-add cuts the longer input into blocks of ``step`` samples, convolves
every block with the shorter input at one small FFT length ``L = step + m - 1``
(a single batched transform), and adds the ``m - 1`` overlapping samples of
each block's result to the start of the next. It wins when one input is much
longer than the other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from torchflip.signal import _calibration
from torchflip.signal._fast_len import next_fast_len
from torchflip.signal._fft_op import fft_window
from torchflip.signal._inputs import as_tensor, fft_result_dtype, is_integral, numpy_result_type
from torchflip.signal._modes import (
    centered_start,
    check_mode,
    inputs_swap_needed,
    normalize_axes,
    window,
)

__all__ = ["fftconvolve", "oaconvolve"]


def _common(in1: Tensor, in2: Tensor) -> tuple[Tensor, Tensor]:
    if in1.dtype == in2.dtype:
        return in1, in2
    dtype = torch.promote_types(in1.dtype, in2.dtype)
    return in1.to(dtype), in2.to(dtype)


def _pad_dim(t: Tensor, dim: int, before: int, after: int) -> Tensor:
    return torch.nn.functional.pad(t, [0, 0] * (t.dim() - 1 - dim) + [before, after])


# ---------------------------------------------------------------------------
# Overlap-add


_BLOCKS: dict[tuple[int, int], int | None] = {}


def oa_block_length(n_long: int, m: int) -> int | None:
    """The FFT block length for overlap-add of ``n_long`` samples with a
    kernel of ``m`` samples, or None when a single transform is as good.

    Minimises the modelled cost per output sample,
    ``(L log2 L + c) / (L - m + 1)`` over 5-smooth ``L >= 2m - 1`` (``c`` is the
    calibrated per-block overhead), so each block yields at least ``m`` new
    samples and the overlap fits inside the next block. Blocks stay below
    ``max(4m, OA_MAX_BLOCK)``: longer transforms leave the cache and cost
    more per point than ``L log L`` says.
    """
    key = (n_long, m)
    if key not in _BLOCKS:
        _BLOCKS[key] = _block_length(n_long, m)
    return _BLOCKS[key]


def _block_length(n_long: int, m: int) -> int | None:
    if m <= 1 or n_long <= m:
        return None
    overhead = _calibration.OA_BLOCK_OVERHEAD
    limit = max(4 * m, _calibration.OA_MAX_BLOCK)
    best, best_cost = None, math.inf
    length = next_fast_len(max(2 * m - 1, _calibration.OA_MIN_BLOCK))
    while length - m + 1 < n_long and length <= limit:
        cost = (length * math.log2(length) + overhead) / (length - m + 1)
        if cost < best_cost:
            best, best_cost = length, cost
        length = next_fast_len(length * 9 // 8 + 1)
    return best


def oa_plan(shape1: Sequence[int], shape2: Sequence[int],
            axes: Sequence[int]) -> dict[int, tuple[int, int]]:
    """For each axis that overlap-add splits: ``(which input, block length)``."""
    plan = {}
    for a in axes:
        n1, n2 = shape1[a], shape2[a]
        if n1 == n2:
            continue
        which = 0 if n1 > n2 else 1
        block = oa_block_length(max(n1, n2), min(n1, n2))
        if block is not None:
            plan[a] = (which, block)
    return plan


def oa_full(in1: Tensor, in2: Tensor, axes: Sequence[int],
            plan: dict[int, tuple[int, int]]) -> Tensor:
    """The full convolution over ``axes`` (sorted), by overlap-add along the
    axes in ``plan`` and one transform along the others."""
    in1, in2 = _common(in1, in2)
    full = {a: in1.shape[a] + in2.shape[a] - 1 for a in axes}
    inputs = [in1, in2]
    fft_axes, lengths, splits = [], [], []
    offset = 0  # block dimensions inserted so far, each before its axis
    for a in sorted(axes):
        position = a + offset
        if a in plan:
            which, block = plan[a]
            long, short = inputs[which], inputs[1 - which]
            m = short.shape[position]
            step = block - m + 1
            nsteps = -(-long.shape[position] // step)
            long = _pad_dim(long, position, 0, nsteps * step - long.shape[position])
            long = long.unflatten(position, (nsteps, step))
            inputs[which], inputs[1 - which] = long, short.unsqueeze(position)
            fft_axes.append(position + 1)
            lengths.append(block)
            splits.append((position, step, m - 1, full[a]))
            offset += 1
        else:
            fft_axes.append(position)
            lengths.append(full[a])
    out = fft_window(inputs[0], inputs[1], fft_axes, [0] * len(fft_axes), lengths)
    # Add each block's tail to the head of the next, last axis first so that
    # merging dimensions does not move the positions still to be processed.
    for position, step, overlap, total in reversed(splits):
        head = _pad_dim(out.narrow(position + 1, 0, step), position, 0, 1)
        tail = out.narrow(position + 1, step, overlap)
        tail = _pad_dim(_pad_dim(tail, position + 1, 0, step - overlap), position, 1, 0)
        out = (head + tail).flatten(position, position + 1).narrow(position, 0, total)
    return out


# ---------------------------------------------------------------------------
# Engines for convolve(): every axis is a convolution axis.


def fft_engine(in1: Tensor, in2: Tensor, start: Sequence[int],
               length: Sequence[int]) -> Tensor:
    in1, in2 = _common(in1, in2)
    return fft_window(in1, in2, list(range(in1.dim())), start, length)


def oa_engine(in1: Tensor, in2: Tensor, start: Sequence[int],
              length: Sequence[int]) -> Tensor:
    axes = list(range(in1.dim()))
    plan = oa_plan(in1.shape, in2.shape, axes)
    if not plan:
        return fft_engine(in1, in2, start, length)
    out = oa_full(in1, in2, axes, plan)
    for a, (s, n) in enumerate(zip(start, length)):
        if s != 0 or n != out.shape[a]:
            out = out.narrow(a, s, n)
    return out


# ---------------------------------------------------------------------------
# Public functions


def _prepare(in1, in2, mode, axes, op: str, sort_axes: bool):
    """scipy's argument handling shared by fftconvolve and oaconvolve.

    Returns ``(result, None)`` when the answer is already known (scalars,
    empty inputs), else ``(None, (in1, in2, axes))`` with axes of length 1
    dropped (they broadcast), the inputs swapped for 'valid' mode if needed.
    """
    in1 = as_tensor(in1, "in1", op)
    in2 = as_tensor(in2, "in2", op)
    dtype = fft_result_dtype(in1, in2, op)
    if in1.dim() == 0 and in2.dim() == 0:
        scalar = numpy_result_type(in1.dtype, in2.dtype)  # scipy multiplies scalars as numpy
        return in1.to(scalar) * in2.to(scalar), None
    if in1.dim() != in2.dim():
        raise ValueError(f"{op}: in1 and in2 should have the same dimensionality, got "
                         f"shapes {tuple(in1.shape)} and {tuple(in2.shape)}")
    if in1.numel() == 0 or in2.numel() == 0:
        return torch.empty(0, dtype=dtype, device=in1.device), None
    check_mode(mode, op)
    s1, s2 = in1.shape, in2.shape
    explicit_axes = normalize_axes(axes, in1.dim(), op)
    explicit_axes = [a for a in explicit_axes if s1[a] != 1 and s2[a] != 1]
    if sort_axes:
        explicit_axes.sort()
    for d in range(in1.dim()):
        if d not in explicit_axes and not (s1[d] == s2[d] or s1[d] == 1 or s2[d] == 1):
            raise ValueError(f"{op}: incompatible shapes for in1 and in2: {tuple(s1)} and "
                             f"{tuple(s2)} (dimension {d} is not convolved, so its sizes "
                             "must be equal or 1)")
    if inputs_swap_needed(mode, s1, s2, explicit_axes):
        in1, in2 = in2, in1
    # scipy.fft transforms integer and bool inputs as float64.
    if is_integral(in1.dtype):
        in1 = in1.to(torch.float64)
    if is_integral(in2.dtype):
        in2 = in2.to(torch.float64)
    return None, (in1, in2, explicit_axes)


def _apply_mode(ret: Tensor, shape1, mode: str, axes: Sequence[int]) -> Tensor:
    """scipy's ``_apply_conv_mode`` on the dimensions the windows left alone:
    'same' centres every dimension on ``in1``'s size, including the broadcast
    ones; 'valid' keeps the broadcast size."""
    if mode != "same":
        return ret
    for d in range(ret.dim()):
        if d not in axes and ret.shape[d] != shape1[d]:
            ret = ret.narrow(d, centered_start(ret.shape[d], shape1[d]), shape1[d])
    return ret


def _windows(mode: str, shape1, shape2, axes) -> tuple[list[int], list[int]]:
    starts, lengths = [], []
    for a in axes:
        s, n = window(mode, shape1[a], shape2[a])
        starts.append(s)
        lengths.append(n)
    return starts, lengths


def fftconvolve(in1, in2, mode: str = "full", axes=None) -> Tensor:
    r"""Convolve two N-dimensional tensors using the FFT (scipy.signal.fftconvolve).

    Over each axis in ``axes`` (default: all), the result is the window of

    .. math::
        \mathrm{full}[i] = \sum_k \mathrm{in1}[i - k]\, \mathrm{in2}[k],
        \qquad 0 \le i < n_1 + n_2 - 1,

    selected by ``mode``: 'full' all of it; 'same' ``n1`` samples starting at
    ``(n2 - 1) // 2`` (scipy's centring: an even kernel drops one more sample
    at the start than at the end); 'valid' the ``n1 - n2 + 1`` samples that
    do not depend on zero padding (the inputs are swapped first when ``in2``
    is at least as large as ``in1`` in every axis).

    The other dimensions broadcast (sizes equal or 1). As in scipy, axes in
    which either input has size 1 are treated as broadcast dimensions, and
    'same' mode centres *every* dimension on ``in1``'s size, so a broadcast
    dimension is cut back to ``in1``'s size.

    Transforms use rfftn/irfftn for real inputs and fftn/ifftn for complex
    ones, at 5-smooth lengths (:func:`next_fast_len`) just long enough for
    the requested window. Gradients with respect to both inputs are FFT
    convolutions too.

    Args:
        in1: first input (tensor or array-like).
        in2: second input, with the same number of dimensions.
        mode: 'full' (default), 'same' or 'valid'.
        axes: an int or a sequence of ints: the axes to convolve over;
            None (default) means all axes.

    Returns:
        A tensor of dtype ``torch.promote_types(in1.dtype, in2.dtype)``, with
        integer and bool inputs counted as float64 (scipy.fft's rule). Scalars
        (0-d inputs) return ``in1 * in2``; an empty input returns an empty
        1-D tensor, as scipy does.

    Raises:
        ValueError: inputs of different dimensionality, an unknown ``mode``,
            invalid or repeated ``axes``, non-broadcastable non-axis sizes, or
            'valid' mode where neither input contains the other.
        TypeError: a dtype other than float32, float64, complex64, complex128,
            bool, uint8, int8, int16, int32, int64.

    Example:
        >>> import torch
        >>> from torchflip.signal import fftconvolve
        >>> x = torch.tensor([1., 2., 3.], dtype=torch.float64)
        >>> fftconvolve(x, torch.tensor([1., 0.5], dtype=torch.float64))
        tensor([1.0000, 2.5000, 4.0000, 1.5000], dtype=torch.float64)
        >>> fftconvolve(x, torch.tensor([1., 0.5], dtype=torch.float64), mode="same")
        tensor([1.0000, 2.5000, 4.0000], dtype=torch.float64)
        >>> fftconvolve(torch.ones(2, 4), torch.ones(1, 2), axes=1).shape  # broadcast over axis 0
        torch.Size([2, 5])
    """
    op = "fftconvolve"
    early, prepared = _prepare(in1, in2, mode, axes, op, sort_axes=False)
    if prepared is None:
        return early
    in1, in2, axes = prepared
    shape1 = in1.shape
    if not axes:
        return _apply_mode(in1 * in2, shape1, mode, axes)
    starts, lengths = _windows(mode, in1.shape, in2.shape, axes)
    a, b = _common(in1, in2)
    return _apply_mode(fft_window(a, b, axes, starts, lengths), shape1, mode, axes)


def oaconvolve(in1, in2, mode: str = "full", axes=None) -> Tensor:
    r"""Convolve two N-dimensional tensors by overlap-add (scipy.signal.oaconvolve).

    The result equals :func:`fftconvolve`'s for the same arguments (same
    shape rules for ``mode``, ``axes`` and broadcasting); only the method
    differs. Along each convolved axis where one input is much longer than
    the other, the longer one is cut into blocks that are convolved with the
    shorter one by one batched FFT of a small fast length, and the
    overlapping ends of neighbouring blocks are added. Where splitting does
    not pay (inputs of equal shape, or too little length to split), this is
    :func:`fftconvolve`. Gradients are FFT convolutions of the blocks.

    Args:
        in1: first input (tensor or array-like).
        in2: second input, with the same number of dimensions.
        mode: 'full' (default), 'same' or 'valid'.
        axes: an int or a sequence of ints: the axes to convolve over;
            None (default) means all axes.

    Returns:
        A tensor of the dtype :func:`fftconvolve` returns.

    Raises:
        ValueError, TypeError: as :func:`fftconvolve`.

    Example:
        >>> import torch
        >>> from torchflip.signal import oaconvolve
        >>> x = torch.arange(1000, dtype=torch.float64)
        >>> y = oaconvolve(x, torch.tensor([0.5, -0.5], dtype=torch.float64), mode="valid")
        >>> y.shape, y[:3]
        (torch.Size([999]), tensor([0.5000, 0.5000, 0.5000], dtype=torch.float64))
    """
    op = "oaconvolve"
    a = as_tensor(in1, "in1", op)
    b = as_tensor(in2, "in2", op)
    if a.dim() == b.dim() and a.dim() > 0 and a.shape == b.shape:
        return fftconvolve(a, b, mode=mode, axes=axes)
    early, prepared = _prepare(a, b, mode, axes, op, sort_axes=True)
    if prepared is None:
        return early
    in1, in2, axes = prepared
    shape1 = in1.shape
    if not axes:
        return _apply_mode(in1 * in2, shape1, mode, axes)
    plan = oa_plan(in1.shape, in2.shape, axes)
    if not plan:
        return fftconvolve(in1, in2, mode=mode, axes=axes)
    out = oa_full(in1, in2, axes, plan)
    starts, lengths = _windows(mode, in1.shape, in2.shape, axes)
    for a_, s, n in zip(axes, starts, lengths):
        out = out.narrow(a_, s, n)
    return _apply_mode(out, shape1, mode, axes)
