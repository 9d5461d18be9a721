r"""Choosing between the direct, FFT and overlap-add engines.

The cost model predicts the run time of each engine from the sizes alone:

* direct (the conv op): ``constant + mac * (window size) * (kernel size) * c``,
  where every output sample of the window costs one multiply-add per kernel
  tap and ``c`` is 1 for real inputs, 2 for one complex input, 4 for two;
* FFT: ``constant + nlogn * 3 P log2 P * c`` for transforms of ``P`` points in
  all (two forward, one inverse), ``c`` = 1 real, 2 complex;
* overlap-add: ``constant + nlogn * (2B + 1) L log2 L * c + sample * B L``
  for ``B`` blocks of ``L`` points (the kernel is transformed once; the
  sample term covers padding and adding the overlaps).

The constants (:mod:`torchflip.signal._calibration`) are least-squares fits
of measured times on the development machine; ``benchmarks/calibrate_signal.py``
measures and refits them. ``measure=True`` times the engines instead.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import torch
from torch import Tensor

from torchflip.signal import _calibration
from torchflip.signal._fast_len import next_fast_len
from torchflip.signal._fft import oa_plan
from torchflip.signal._fft_op import alias_free_length
from torchflip.signal._inputs import as_tensor, result_dtype
from torchflip.signal._modes import check_mode, inputs_swap_needed, window

__all__ = ["choose_conv_method"]

METHODS = ("direct", "fft", "oa")


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def _nlogn(points: int) -> float:
    return points * math.log2(points) if points > 1 else 0.0


def predicted_times(shape1: Sequence[int], shape2: Sequence[int], start: Sequence[int],
                    length: Sequence[int], complex1: bool, complex2: bool) -> dict[str, float]:
    """Modelled seconds of each engine for the window ``start``/``length`` of
    the convolution of inputs of ``shape1`` and ``shape2``."""
    direct_factor = (2 if complex1 else 1) * (2 if complex2 else 1)
    fft_factor = 2 if (complex1 or complex2) else 1
    times = {}
    macs = _prod(length) * _prod(shape2)
    times["direct"] = (_calibration.DIRECT["constant"]
                       + _calibration.DIRECT["mac"] * macs * direct_factor)
    fft_points = _prod(
        next_fast_len(alias_free_length(n1 + n2 - 1, s, n))
        for n1, n2, s, n in zip(shape1, shape2, start, length))
    times["fft"] = (_calibration.FFT["constant"]
                    + _calibration.FFT["nlogn"] * 3 * _nlogn(fft_points) * fft_factor)
    axes = range(len(shape1))
    plan = oa_plan(shape1, shape2, axes)
    if plan:
        blocks, points = 1, 1
        for a in axes:
            if a in plan:
                which, block = plan[a]
                n_long = shape1[a] if which == 0 else shape2[a]
                m = shape2[a] if which == 0 else shape1[a]
                blocks *= -(-n_long // (block - m + 1))
                points *= block
            else:
                points *= next_fast_len(shape1[a] + shape2[a] - 1)
        times["oa"] = (_calibration.OA["constant"]
                       + _calibration.OA["nlogn"] * (2 * blocks + 1) * _nlogn(points) * fft_factor
                       + _calibration.OA["sample"] * blocks * points * fft_factor)
    else:
        times["oa"] = math.inf  # overlap-add would be one plain FFT
    return times


_CHOICES: dict[tuple, str] = {}


def choose_method(in1: Tensor, in2: Tensor, start: Sequence[int], length: Sequence[int]) -> str:
    """The engine the cost model predicts fastest (inputs already swapped).
    Decisions depend on sizes only, so they are cached (not while compiling:
    the trace then records the decision itself)."""
    key = (tuple(in1.shape), tuple(in2.shape), tuple(start), tuple(length), in1.is_complex(),
           in2.is_complex())
    if torch.compiler.is_compiling():
        return _choose(*key)
    method = _CHOICES.get(key)
    if method is None:
        if len(_CHOICES) >= 4096:
            _CHOICES.clear()
        method = _CHOICES[key] = _choose(*key)
    return method


def _choose(shape1, shape2, start, length, complex1, complex2) -> str:
    times = predicted_times(shape1, shape2, start, length, complex1, complex2)
    return min(METHODS, key=lambda m: times[m])


def _time_call(fn) -> float:
    """Seconds per call: the best of 3 repeats, each long enough (at least
    ~5 ms) to dwarf timer resolution, as scipy's ``_timeit_fast`` does."""
    number = 1
    while True:
        begin = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - begin
        if elapsed >= 5e-4 or number >= 10**6:
            break
        number *= 10
    if elapsed > 1.0:
        return elapsed / number
    number *= 10
    best = math.inf
    for _ in range(3):
        begin = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, time.perf_counter() - begin)
    return best / number


def choose_conv_method(in1, in2, mode: str = "full", measure: bool = False):
    r"""Find the fastest convolution method (scipy.signal.choose_conv_method).

    Returns the ``method`` that :func:`convolve` and :func:`correlate` use for
    ``method='auto'``: 'direct' (torchflip's conv op), 'fft'
    (:func:`fftconvolve`) or, beyond scipy's two, 'oa' (overlap-add,
    :func:`oaconvolve`). Every one of them is also accepted as ``method=`` by
    :func:`convolve` and :func:`correlate`.

    Without ``measure``, the choice comes from a cost model of each engine's
    run time on the inputs' sizes and dtypes (constants fitted on the
    development machine; see ``benchmarks/calibrate_signal.py``). With
    ``measure=True``, each method runs on the actual inputs (convolution in
    ``mode``), timed as scipy does (best of 3 repeats of enough calls to take
    ~5 ms), and the fastest wins.

    Args:
        in1: first input (tensor or array-like).
        in2: second input, with the same number of dimensions.
        mode: 'full' (default), 'same' or 'valid'.
        measure: time the methods instead of predicting them.

    Returns:
        The method name; with ``measure=True``, ``(method, times)`` where
        ``times`` maps each method name to seconds per call.

    Raises:
        ValueError: inputs of different dimensionality, an unknown ``mode``, or
            'valid' mode where neither input contains the other.

    Example:
        >>> import torch
        >>> from torchflip.signal import choose_conv_method
        >>> choose_conv_method(torch.randn(100), torch.randn(3))
        'direct'
        >>> choose_conv_method(torch.randn(2**20), torch.randn(4096))
        'oa'
    """
    op = "choose_conv_method"
    in1 = as_tensor(in1, "in1", op)
    in2 = as_tensor(in2, "in2", op)
    result_dtype(in1, in2, op)  # validates dtypes and devices
    check_mode(mode, op)
    if in1.dim() != in2.dim():
        raise ValueError(f"{op}: in1 and in2 should have the same dimensionality, got "
                         f"shapes {tuple(in1.shape)} and {tuple(in2.shape)}")
    if measure:
        from torchflip.signal._convolve import convolve

        times = {m: _time_call(lambda m=m: convolve(in1, in2, mode=mode, method=m))
                 for m in METHODS}
        return min(METHODS, key=lambda m: times[m]), times
    if in1.dim() == 0 or in1.numel() == 0 or in2.numel() == 0:
        return "direct"
    if inputs_swap_needed(mode, in1.shape, in2.shape):
        in1, in2 = in2, in1
    start, length = zip(*(window(mode, n1, n2) for n1, n2 in zip(in1.shape, in2.shape)))
    return choose_method(in1, in2, start, length)
