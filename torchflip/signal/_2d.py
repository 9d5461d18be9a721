r""":func:`convolve2d` and :func:`correlate2d`: 2-D convolution with scipy's
boundary conditions.

The output is a window of the full convolution of ``in2`` with ``in1``
extended beyond its edges by the boundary rule (index ``i`` of an axis of
length ``n``):

* 'fill' (or 'pad'): ``fillvalue`` outside ``[0, n)``;
* 'wrap' (or 'circular'): ``in1[i mod n]``, periodic extension;
* 'symm' (or 'symmetric'): ``in1[j]`` with ``j = i mod 2n`` reflected to
  ``2n - 1 - j`` when ``j >= n``: mirror images that repeat the edge sample
  (``... x1 x0 | x0 x1 ... x(n-1) | x(n-1) x(n-2) ...``).

The extension repeats as far as the kernel reaches, even past several
periods when the kernel is larger than the input. For a kernel of ``m``
samples the window starts, per axis, at 0 ('full'), at ``(m - 1) // 2`` for
convolve2d 'same' (as :func:`convolve`) but at ``m // 2`` for correlate2d
'same', where scipy's 2-D correlation centres an even kernel one sample
later than :func:`correlate` does. 'valid' mode never reads the extension.
correlate2d conjugates ``in2``; when 'valid' mode swaps the inputs it returns
the swapped correlation reversed along both axes (not conjugated), as scipy
does.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from torchflip.signal._convolve import convolve_window, windowed_convolution
from torchflip.signal._inputs import (
    COMPLEX_DTYPE,
    as_tensor,
    is_integral,
    result_dtype,
    to_precision,
)
from torchflip.signal._modes import check_mode, inputs_swap_needed

__all__ = ["convolve2d", "correlate2d"]

BOUNDARIES = {"fill": "fill", "pad": "fill", "wrap": "wrap", "circular": "wrap",
              "symm": "symm", "symmetric": "symm"}


def _check_boundary(boundary, op: str) -> str:
    if isinstance(boundary, str) and boundary in BOUNDARIES:
        return BOUNDARIES[boundary]
    if boundary == "reflect":
        # scipy lists 'reflect' among its boundary names but its 2-D kernel rejects it.
        raise ValueError(f"{op}: incorrect boundary value 'reflect'; acceptable boundary flags "
                         "are 'fill', 'circular' (or 'wrap'), and 'symmetric' (or 'symm')")
    raise ValueError(f"{op}: acceptable boundary flags are 'fill', 'circular' (or 'wrap'), and "
                     f"'symmetric' (or 'symm'), got boundary={boundary!r}")


def _check_fillvalue(fillvalue, dtype: torch.dtype, op: str):
    if isinstance(fillvalue, Tensor):
        if fillvalue.numel() != 1:
            raise ValueError(f"{op}: `fillvalue` must be scalar or an array with one element, "
                             f"got shape {tuple(fillvalue.shape)}")
        fillvalue = fillvalue.item()
    elif not isinstance(fillvalue, numbers.Number):
        try:
            values = torch.as_tensor(fillvalue)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{op}: `fillvalue` must be a number, got {fillvalue!r}") from error
        if values.numel() != 1:
            raise ValueError(f"{op}: `fillvalue` must be scalar or an array with one element, "
                             f"got {fillvalue!r}")
        fillvalue = values.item()
    if is_integral(dtype):
        # scipy converts fillvalue to the integer output type: complex values
        # (even with a zero imaginary part) are refused, floats truncated
        # toward zero, and the value must lie in the type's range.
        info = torch.iinfo(dtype)
        if isinstance(fillvalue, complex) or (
                isinstance(fillvalue, float) and not math.isfinite(fillvalue)) or not (
                info.min <= math.trunc(fillvalue) <= info.max):
            raise ValueError(f"{op}: could not cast `fillvalue` {fillvalue!r} directly to the "
                             f"output type {dtype}")
        return math.trunc(fillvalue)
    if isinstance(fillvalue, complex) and not dtype.is_complex:
        if fillvalue.imag != 0:
            raise ValueError(f"{op}: could not cast `fillvalue` {fillvalue!r} directly to the "
                             f"output type {dtype}")
        fillvalue = fillvalue.real
    return fillvalue


def _extension_index(first: int, count: int, n: int, rule: str, device) -> Tensor:
    """Indices into an axis of length ``n`` for positions first .. first+count-1."""
    positions = torch.arange(first, first + count, device=device)
    if rule == "wrap":
        return positions.remainder(n)
    folded = positions.remainder(2 * n)
    return torch.where(folded >= n, 2 * n - 1 - folded, folded)


def _extend(in1: Tensor, first: list[int], count: list[int], rule: str, fillvalue) -> Tensor:
    """``in1`` over positions ``first[d] .. first[d] + count[d] - 1`` per axis,
    beyond its edges by the boundary rule."""
    if rule == "fill":
        if isinstance(fillvalue, complex) and not in1.is_complex():
            in1 = in1.to(COMPLEX_DTYPE[in1.dtype])  # only when in2 is complex
        # The window always covers all of in1 (first <= 0, first + count >= n).
        out = torch.full(count, fillvalue, dtype=in1.dtype, device=in1.device)
        out[-first[0]:in1.shape[0] - first[0], -first[1]:in1.shape[1] - first[1]] = in1
        return out
    out = in1
    for d in range(2):
        index = _extension_index(first[d], count[d], in1.shape[d], rule, in1.device)
        out = out.index_select(d, index)
    return out


def _convolve2d(in1, in2, mode, boundary, fillvalue, op: str, correlation: bool) -> Tensor:
    in1 = as_tensor(in1, "in1", op)
    in2 = as_tensor(in2, "in2", op)
    dtype = result_dtype(in1, in2, op)
    if dtype == torch.bool:
        raise ValueError(f"{op} is not available for bool inputs (as in scipy); convert in1 "
                         "and in2 to an integer dtype first")
    if in1.dim() != 2 or in2.dim() != 2:
        raise ValueError(f"{op} inputs must both be 2-D arrays, got shapes "
                         f"{tuple(in1.shape)} and {tuple(in2.shape)}")
    if in1.numel() == 0 or in2.numel() == 0:
        raise ValueError(f"{op}: in1 and in2 must not be empty, got shapes "
                         f"{tuple(in1.shape)} and {tuple(in2.shape)}")
    swapped = inputs_swap_needed(mode, in1.shape, in2.shape)
    check_mode(mode, op)
    rule = _check_boundary(boundary, op)
    # scipy reads (and validates) fillvalue only for the 'fill' boundary.
    fillvalue = _check_fillvalue(fillvalue, dtype, op) if rule == "fill" else 0
    if swapped:
        in1, in2 = in2, in1
    kernel = in2.flip([0, 1]).conj() if correlation else in2
    if mode == "valid":
        out = windowed_convolution(in1, kernel, mode, "auto")
        return out.flip([0, 1]) if correlation and swapped else out

    starts, lengths = [], []
    for n, m in zip(in1.shape, kernel.shape):
        if mode == "full":
            starts.append(0)
            lengths.append(n + m - 1)
        else:
            starts.append(m // 2 if correlation else (m - 1) // 2)
            lengths.append(n)
    if rule == "fill" and fillvalue == 0:
        # Zero extension is what every engine assumes anyway.
        return convolve_window(in1, kernel, starts, lengths, "auto")
    # Output t reads in1 at t + start - k, k in [0, m): extend in1 over
    # [start - (m - 1), start + length - 1] and take the 'valid' part.
    first = [s - (m - 1) for s, m in zip(starts, kernel.shape)]
    count = [n + m - 1 for n, m in zip(lengths, kernel.shape)]
    at_precision = in1.to(dtype) if is_integral(dtype) else to_precision(in1, dtype)
    ext = _extend(at_precision, first, count, rule, fillvalue)
    return convolve_window(ext, kernel, [m - 1 for m in kernel.shape], lengths, "auto")


def convolve2d(in1, in2, mode: str = "full", boundary: str = "fill", fillvalue=0) -> Tensor:
    r"""Convolve two 2-D tensors, with boundary conditions (scipy.signal.convolve2d).

    .. math::
        \mathrm{full}[i, j] = \sum_{k, l} \tilde x[i - k, j - l]\, \mathrm{in2}[k, l],

    where :math:`\tilde x` is ``in1`` extended by ``boundary`` ('fill' with
    ``fillvalue``, 'wrap' periodically, 'symm' by mirror images repeating the
    edge sample; the aliases 'pad', 'circular' and 'symmetric' are accepted).
    ``mode`` keeps 'full' (``n + m - 1`` samples per axis), 'same' (``n``
    samples from ``(m - 1) // 2``, as :func:`convolve`) or 'valid' (``n - m + 1``
    samples, no extension; the inputs are swapped when ``in2`` is the larger).

    The engine (direct, FFT or overlap-add) is chosen by the cost model of
    :func:`choose_conv_method`; scipy always convolves directly here.

    Args:
        in1: 2-D input.
        in2: 2-D kernel.
        mode: 'full' (default), 'same' or 'valid'.
        boundary: 'fill' (default), 'wrap' or 'symm'.
        fillvalue: the value of the extension for 'fill' (default 0); a number
            or a one-element tensor, complex only for complex inputs.

    Returns:
        A 2-D tensor of dtype ``numpy.result_type(in1, in2)``; integer inputs
        give exact integer sums (wrapping on overflow, as scipy's), with
        ``fillvalue`` truncated toward zero.

    Raises:
        ValueError: bool inputs (as scipy), inputs that are not 2-D, an empty input, an unknown ``mode``
            or ``boundary``, a ``fillvalue`` with more than one element or a
            complex one for real inputs (any complex one, or one outside the
            type's range, for integer inputs; checked only for 'fill'), or
            'valid' mode where neither input contains the other.
        TypeError: a dtype other than float32, float64, complex64, complex128,
            uint8, int8, int16, int32, int64.

    Example:
        >>> import torch
        >>> from torchflip.signal import convolve2d
        >>> x = torch.arange(9, dtype=torch.float64).reshape(3, 3)
        >>> convolve2d(x, torch.ones(2, 2, dtype=torch.float64), mode="same")
        tensor([[ 0.,  1.,  3.],
                [ 3.,  8., 12.],
                [ 9., 20., 24.]], dtype=torch.float64)
        >>> convolve2d(x, torch.ones(1, 3, dtype=torch.float64), mode="same", boundary="wrap")
        tensor([[ 3.,  3.,  3.],
                [12., 12., 12.],
                [21., 21., 21.]], dtype=torch.float64)
    """
    return _convolve2d(in1, in2, mode, boundary, fillvalue, "convolve2d", correlation=False)


def correlate2d(in1, in2, mode: str = "full", boundary: str = "fill", fillvalue=0) -> Tensor:
    r"""Cross-correlate two 2-D tensors, with boundary conditions
    (scipy.signal.correlate2d).

    .. math::
        \mathrm{full}[i, j] = \sum_{k, l} \tilde x[i + k - (m_0 - 1), j + l - (m_1 - 1)]\,
            \overline{\mathrm{in2}[k, l]},

    :func:`convolve2d` of the extended ``in1`` with ``in2`` reversed and
    conjugated, with two differences that follow scipy: 'same' keeps ``n``
    samples per axis starting at ``m // 2`` (not ``(m - 1) // 2``, so an even
    kernel is centred one sample later than in :func:`correlate`), and when
    'valid' mode swaps the inputs the result is reversed along both axes but
    not conjugated.

    Args:
        in1: 2-D input.
        in2: 2-D template.
        mode: 'full' (default), 'same' or 'valid'.
        boundary: 'fill' (default), 'wrap' or 'symm'.
        fillvalue: the value of the extension for 'fill' (default 0).

    Returns:
        A 2-D tensor of dtype ``numpy.result_type(in1, in2)``, as :func:`convolve2d`.

    Raises:
        ValueError, TypeError: as :func:`convolve2d`.

    Example:
        >>> import torch
        >>> from torchflip.signal import correlate2d
        >>> x = torch.arange(9, dtype=torch.float64).reshape(3, 3)
        >>> correlate2d(x, torch.tensor([[1., -1.]], dtype=torch.float64), mode="same")
        tensor([[-1., -1.,  2.],
                [-1., -1.,  5.],
                [-1., -1.,  8.]], dtype=torch.float64)
    """
    return _convolve2d(in1, in2, mode, boundary, fillvalue, "correlate2d", correlation=True)
