r""":func:`convolve` and :func:`correlate`: N-dimensional convolution and
cross-correlation with scipy.signal's semantics and a choice of engine."""

from __future__ import annotations

import torch
from torch import Tensor

from torchflip import _ops
from torchflip.signal._direct import direct_window, fir_window
from torchflip.signal._fft import fft_engine, oa_engine
from torchflip.signal._inputs import as_tensor, is_integral, result_dtype, to_precision
from torchflip.signal._integer import integer_window
from torchflip.signal._method import METHODS, choose_method
from torchflip.signal._modes import MODES, check_mode, inputs_swap_needed, window

__all__ = ["convolve", "correlate"]

ENGINES = {"direct": direct_window, "fft": fft_engine, "oa": oa_engine}


def check_method(method, op: str) -> None:
    if not isinstance(method, str) or (method != "auto" and method not in METHODS):
        raise ValueError(f"{op}: acceptable method flags are 'auto', 'direct', 'fft', or 'oa', "
                         f"got method={method!r}")


def _check_dims(in1: Tensor, in2: Tensor, op: str) -> None:
    if in1.dim() != in2.dim():
        raise ValueError(f"{op}: in1 and in2 should have the same dimensionality, got "
                         f"shapes {tuple(in1.shape)} and {tuple(in2.shape)}")
    if in1.numel() == 0 or in2.numel() == 0:
        raise ValueError(f"{op}: in1 and in2 must not be empty, got shapes "
                         f"{tuple(in1.shape)} and {tuple(in2.shape)}")


def convolve_window(in1: Tensor, in2: Tensor, start: list[int], length: list[int],
                    method: str) -> Tensor:
    """``full[start : start + length]`` along every axis of the convolution of
    non-empty inputs of one dimensionality, by ``method`` ('auto' chooses)."""
    dtype = result_dtype(in1, in2, "convolve")
    if is_integral(dtype):
        return integer_window(in1, in2, start, length, method, dtype)
    in1, in2 = to_precision(in1, dtype), to_precision(in2, dtype)
    if method == "auto":
        method = choose_method(in1, in2, start, length)
    return ENGINES[method](in1, in2, start, length)


def _windows(mode: str, shape1, shape2) -> tuple[bool, list[int], list[int]]:
    """``(swap, start, length)``: whether 'valid' mode swaps the inputs, and
    the window of the full convolution to keep along every axis."""
    swap = mode == "valid" and inputs_swap_needed(mode, shape1, shape2)
    if swap:
        shape1, shape2 = shape2, shape1
    start, length = [], []
    for n1, n2 in zip(shape1, shape2):
        s, n = window(mode, n1, n2)
        start.append(s)
        length.append(n)
    return swap, start, length


def windowed_convolution(in1: Tensor, in2: Tensor, mode: str, method: str) -> Tensor:
    """The convolution of checked, non-empty inputs of one dimensionality
    (at least 1) in ``mode``, swapping them first if 'valid' mode needs it."""
    swap, start, length = _windows(mode, in1.shape, in2.shape)
    if swap:
        in1, in2 = in2, in1
    return convolve_window(in1, in2, start, length, method)


# The common call, two tensors of one floating dtype on the CPU with nothing
# to differentiate, is answered from a per-shape plan (swap, window, engine)
# after a handful of checks: the general path's argument handling costs
# several times what the multiply-add kernel needs for a short signal.
_PLANS: dict[tuple, tuple | None] = {}
_FAST_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def _plan(in1: Tensor, in2: Tensor, mode, method) -> tuple | None:
    """``(swap, start, length, engine)`` for non-empty inputs of one dtype in
    _FAST_DTYPES and one dimensionality, or None when the general path must
    handle the call (it also reports every argument error)."""
    if (in1.dim() == 0 or in1.dim() != in2.dim() or in1.dtype != in2.dtype
            or in1.dtype not in _FAST_DTYPES or in1.numel() == 0 or in2.numel() == 0
            or not isinstance(mode, str) or mode not in MODES
            or not isinstance(method, str) or method not in ("auto",) + METHODS):
        return None
    swap, start, length = _windows(mode, in1.shape, in2.shape)
    if method == "auto":
        first, second = (in2, in1) if swap else (in1, in2)
        method = choose_method(first, second, start, length)
    if method == "direct" and in1.dim() == 1 and not in1.is_complex():
        method = "fir"
    return swap, start, length, method


def _fast(in1, in2, mode, method) -> Tensor | None:
    """:func:`convolve` through a cached plan, or None when the call is not
    the common case (see above)."""
    if (type(in1) is not Tensor or type(in2) is not Tensor or not _ops.plain_eager_mode()
            or in1.device.type != "cpu" or in2.device.type != "cpu"
            or _ops.needs_gradient(in1, in2)):
        return None
    key = (in1.shape, in2.shape, in1.dtype, in2.dtype, mode, method)
    try:
        plan = _PLANS[key]
    except (KeyError, TypeError):  # TypeError: an unhashable mode or method
        try:
            plan = _plan(in1, in2, mode, method)
        except ValueError:
            return None  # 'valid' shapes that do not nest: the general path says so
        if len(_PLANS) >= 4096:
            _PLANS.clear()
        try:
            _PLANS[key] = plan
        except TypeError:
            return None
    if plan is None:
        return None
    swap, start, length, engine = plan
    if swap:
        in1, in2 = in2, in1
    if engine == "fir":
        return fir_window(in1, in2, start[0], length[0])
    return ENGINES[engine](in1, in2, start, length)


def convolve(in1, in2, mode: str = "full", method: str = "auto") -> Tensor:
    r"""Convolve two N-dimensional tensors (scipy.signal.convolve).

    True convolution (the kernel is flipped), along every axis:

    .. math::
        \mathrm{full}[i] = \sum_k \mathrm{in1}[i - k]\, \mathrm{in2}[k],
        \qquad 0 \le i < n_1 + n_2 - 1,

    of which ``mode`` keeps 'full' all; 'same' ``n1`` samples starting at
    ``(n2 - 1) // 2`` (centred as scipy centres it: with an even kernel the
    output starts one sample later than MATLAB's ``conv(..., 'same')``);
    'valid' the ``n1 - n2 + 1`` samples computed without zero padding. In
    'valid' mode the inputs are swapped when ``in2`` is at least as large as
    ``in1`` in every dimension; if neither contains the other, ValueError.

    Args:
        in1: first input (tensor or array-like), any number of dimensions.
        in2: second input, with the same number of dimensions as ``in1``.
        mode: 'full' (default), 'same' or 'valid'.
        method: 'auto' (default) picks the engine a calibrated cost model
            predicts fastest (:func:`choose_conv_method`); 'direct' sums the
            products directly (a multiply-add kernel for real 1-D CPU inputs
            without gradient, else torchflip's conv op,
            ``torch.ops.torchflip.conv``), 'fft' the FFT
            (:func:`fftconvolve`'s engine), 'oa' overlap-add
            (:func:`oaconvolve`'s engine). All give the same result up to
            floating-point rounding, with gradients for both inputs.

    Returns:
        A tensor of dtype ``numpy.result_type(in1, in2)`` (as scipy) on the
        inputs' device. Integer and bool inputs give an integer (bool) result:
        exact sums for 'direct' (and for 'auto', which avoids the FFT when it
        could round wrongly), wrapping on overflow as numpy's arithmetic does;
        'fft' and 'oa' round a float64 result. 0-d inputs return ``in1 * in2``.

    Raises:
        ValueError: inputs of different dimensionality, an empty input, an
            unknown ``mode`` or ``method``, or 'valid' mode where neither input
            contains the other.
        TypeError: a dtype other than float32, float64, complex64, complex128,
            bool, uint8, int8, int16, int32, int64.

    Example:
        >>> import torch
        >>> from torchflip.signal import convolve
        >>> x = torch.tensor([1., 2., 3.], dtype=torch.float64)
        >>> h = torch.tensor([0., 1., 0.5], dtype=torch.float64)
        >>> convolve(x, h, method="direct")
        tensor([0.0000, 1.0000, 2.5000, 4.0000, 1.5000], dtype=torch.float64)
        >>> convolve(x, h, mode="same", method="direct")
        tensor([1.0000, 2.5000, 4.0000], dtype=torch.float64)
        >>> convolve(x, torch.tensor([1., 1.], dtype=torch.float64), mode="same", method="direct")
        tensor([1., 3., 5.], dtype=torch.float64)
        >>> big = convolve(torch.ones(100_000), torch.ones(500))  # 'auto' picks overlap-add
        >>> big.shape, round(big[1000].item())
        (torch.Size([100499]), 500)
    """
    fast = _fast(in1, in2, mode, method)
    if fast is not None:
        return fast
    op = "convolve"
    in1 = as_tensor(in1, "in1", op)
    in2 = as_tensor(in2, "in2", op)
    dtype = result_dtype(in1, in2, op)
    if in1.dim() == 0 and in2.dim() == 0:
        return in1.to(dtype) * in2.to(dtype)
    check_mode(mode, op)
    check_method(method, op)
    _check_dims(in1, in2, op)
    return windowed_convolution(in1, in2, mode, method)


def correlate(in1, in2, mode: str = "full", method: str = "auto") -> Tensor:
    r"""Cross-correlate two N-dimensional tensors (scipy.signal.correlate).

    .. math::
        \mathrm{full}[i] = \sum_k \mathrm{in1}[i + k - (n_2 - 1)]\,
            \overline{\mathrm{in2}[k]},
        \qquad 0 \le i < n_1 + n_2 - 1,

    that is, :func:`convolve` of ``in1`` with ``in2`` reversed along every axis
    and complex-conjugated (scipy conjugates the second input), with the same
    ``mode`` windows, 'valid'-mode swapping and ``method`` choices. Lag
    ``i - (n2 - 1)`` of the full output is the correlation at that shift.

    Args:
        in1: first input (tensor or array-like).
        in2: second input, with the same number of dimensions as ``in1``.
        mode: 'full' (default), 'same' or 'valid'.
        method: 'auto' (default), 'direct', 'fft' or 'oa', as for :func:`convolve`.

    Returns:
        A tensor of dtype ``numpy.result_type(in1, in2)``, as :func:`convolve`.
        0-d inputs return ``in1 * conj(in2)``.

    Raises:
        ValueError, TypeError: as :func:`convolve`.

    Example:
        >>> import torch
        >>> from torchflip.signal import correlate
        >>> x = torch.tensor([1., 2., 3.], dtype=torch.float64)
        >>> correlate(x, torch.tensor([0., 1., 0.5], dtype=torch.float64), method="direct")
        tensor([0.5000, 2.0000, 3.5000, 3.0000, 0.0000], dtype=torch.float64)
        >>> correlate(torch.tensor([1j, 1.]), torch.tensor([1j]), mode="valid", method="direct")
        tensor([1.+0.j, 0.-1.j])
    """
    if type(in2) is Tensor and in2.dim() > 0:
        fast = _fast(in1, in2.flip(list(range(in2.dim()))).conj(), mode, method)
        if fast is not None:
            return fast
    op = "correlate"
    in1 = as_tensor(in1, "in1", op)
    in2 = as_tensor(in2, "in2", op)
    dtype = result_dtype(in1, in2, op)
    if in1.dim() == 0 and in2.dim() == 0:
        return in1.to(dtype) * in2.to(dtype).conj()
    check_mode(mode, op)
    check_method(method, op)
    _check_dims(in1, in2, op)
    return windowed_convolution(in1, in2.flip(list(range(in2.dim()))).conj(), mode, method)
