r"""Choosing between the direct, FFT and overlap-add engines.

The cost model predicts the run time of each engine from the sizes alone,
from three work measures:

* direct (the conv op): ``W`` multiply-adds, one per kernel tap per output
  sample of the window, times 1 for real inputs, 2 with one complex input,
  4 with two (complex inputs run as real and imaginary channels); long 1-D
  real convolutions run polyphase (see :mod:`torchflip.signal._direct`),
  with a slope of their own; real 1-D inputs that run the multiply-add
  kernel instead of the conv op (:func:`torchflip.signal._direct.fir_applies`)
  have a constant and slope of their own on ``W``;
* FFT: ``F = 3 P log2 P`` for the three transforms of ``P`` points (two
  forward, one inverse), and ``P`` for the elementwise passes; doubled for
  complex transforms;
* overlap-add with ``B`` blocks of ``L`` points: ``F = (2B + 1) L log2 L``
  (the kernel is transformed once), ``P = B L``, and ``B`` itself (small
  blocks cost more than their ``L log L``).

Seconds are ``constant + slope * work`` per engine, plus, for plain direct
convolution, a steeper slope once its unfolded input (``W`` elements)
outgrows the cache, and for polyphase direct convolution a fixed cost of
its own. The constants, per dimensionality class (1-D or more)
and precision, are fitted to measured times on the development machine by
``benchmarks/calibrate_signal.py`` (:mod:`torchflip.signal._calibration`).
``measure=True`` times the engines instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
from torch import Tensor

from torchflip.signal import _calibration
from torchflip.signal._direct import fir_applies, polyphase_applies
from torchflip.signal._fast_len import next_fast_len
from torchflip.signal._fft import oa_plan
from torchflip.signal._fft_op import alias_free_length
from torchflip.signal._inputs import as_tensor, is_integral, result_dtype
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


def features(shape1: Sequence[int], shape2: Sequence[int], start: Sequence[int],
             length: Sequence[int], complex1: bool, complex2: bool) -> dict[str, tuple | None]:
    """Work measures ``(1, main, secondary)`` of each engine (None for
    overlap-add when it would not split); "fir" is the direct engine's
    multiply-add kernel (``W`` multiply-adds)."""
    direct_factor = (2 if complex1 else 1) * (2 if complex2 else 1)
    fft_factor = 2 if (complex1 or complex2) else 1
    macs = float(_prod(length) * _prod(shape2) * direct_factor)
    polyphase = (len(shape1) == 1 and not complex1 and not complex2
                 and polyphase_applies(shape2[0], length[0]))
    points = _prod(
        next_fast_len(alias_free_length(n1 + n2 - 1, s, n))
        for n1, n2, s, n in zip(shape1, shape2, start, length))
    out = {
        "direct": (1.0, 0.0 if polyphase else macs, macs if polyphase else 0.0,
                   1.0 if polyphase else 0.0),
        "fir": (1.0, macs),
        "fft": (1.0, 3 * _nlogn(points) * fft_factor, float(points * fft_factor)),
        "oa": None,
    }
    axes = range(len(shape1))
    plan = oa_plan(shape1, shape2, axes)
    if plan:
        blocks, block_points = 1, 1
        for a in axes:
            if a in plan:
                which, block = plan[a]
                n_long, m = (shape1[a], shape2[a]) if which == 0 else (shape2[a], shape1[a])
                blocks *= -(-n_long // (block - m + 1))
                block_points *= block
            else:
                block_points *= next_fast_len(shape1[a] + shape2[a] - 1)
        out["oa"] = (1.0, (2 * blocks + 1) * _nlogn(block_points) * fft_factor,
                     float(blocks * block_points * fft_factor), float(blocks))
    return out


def _constants(ndim: int, double: bool, device_type: str) -> dict:
    if device_type != "cpu":
        return _calibration.CUDA
    return _calibration.CPU[(1 if ndim == 1 else 2, "double" if double else "single")]


def predicted_times(shape1: Sequence[int], shape2: Sequence[int], start: Sequence[int],
                    length: Sequence[int], complex1: bool, complex2: bool, double: bool = True,
                    device_type: str = "cpu", fir: bool = False) -> dict[str, float]:
    """Modelled seconds of each engine for the window ``start``/``length`` of
    the convolution of inputs of ``shape1`` and ``shape2``; ``fir``: the
    direct engine runs the multiply-add kernel (see :func:`fir_applies`)."""
    consts = _constants(len(shape1), double, device_type)
    feats = features(shape1, shape2, start, length, complex1, complex2)
    itemsize = 8 if double else 4
    if fir and "fir" in consts:
        d = consts["fir"]
        times = {"direct": d["constant"] + d["mac"] * feats["fir"][1]}
    else:
        d = consts["direct"]
        _, plain, polyphase, uses_polyphase = feats["direct"]
        times = {"direct": d["constant"] + d["mac"] * plain + d["polyphase_mac"] * polyphase
                 + d["polyphase_constant"] * uses_polyphase
                 + d["cliff"] * max(0.0, plain * itemsize - d["cliff_bytes"])}
    c = consts["fft"]
    _, work, points = feats["fft"]
    times["fft"] = c["constant"] + c["nlogn"] * work + c["point"] * points
    if feats["oa"] is None:
        times["oa"] = math.inf  # overlap-add would be one plain FFT
    else:
        c = consts["oa"]
        _, work, points, blocks = feats["oa"]
        times["oa"] = (c["constant"] + c["nlogn"] * work + c["point"] * points
                       + c["block"] * blocks)
    return times


_CHOICES: dict[tuple, str] = {}
_SINGLE = (torch.float32, torch.complex64)


def choose_method(in1: Tensor, in2: Tensor, start: Sequence[int], length: Sequence[int]) -> str:
    """The engine the cost model predicts fastest (inputs already swapped).
    Decisions depend on sizes only, so they are cached (not while compiling:
    the trace then records the decision itself)."""
    # Integer inputs (see _integer.py) run their float engines in float64.
    double = not (in1.dtype in _SINGLE and in2.dtype in _SINGLE)
    key = (in1.shape, in2.shape, tuple(start), tuple(length), in1.is_complex(),
           in2.is_complex(), double, in1.device.type, fir_applies(in1, in2))
    if torch.compiler.is_compiling():
        return _choose(*key)
    method = _CHOICES.get(key)
    if method is None:
        if len(_CHOICES) >= 4096:
            _CHOICES.clear()
        method = _CHOICES[key] = _choose(*key)
    return method


def _choose(*key) -> str:
    times = predicted_times(*key)
    # Overlap-add in two or more dimensions runs many small multi-dimensional
    # transforms, which the model predicts least well; it must promise a
    # clear gain before it is preferred.
    if len(key[0]) >= 2:
        times["oa"] /= _calibration.OA_MARGIN_ND
    return min(METHODS, key=lambda m: times[m])


def _time_call(fn, device: torch.device) -> float:
    """Seconds per call: the best of 3 repeats, each long enough (at least
    ~5 ms) to dwarf timer resolution, as scipy's ``_timeit_fast`` does. GPU
    work is asynchronous, so each repeat waits for the device to finish."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def run(number: int) -> float:
        sync()
        begin = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        return time.perf_counter() - begin

    number = 1
    while True:
        elapsed = run(number)
        if elapsed >= 5e-4 or number >= 10**6:
            break
        number *= 10
    if elapsed > 1.0:
        return elapsed / number
    number *= 10
    return min(run(number) for _ in range(3)) / number


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

    For integer inputs with an integer result, 'auto' is 'direct' when both
    inputs are bool (as scipy) or when the FFT's float64 rounding error could
    reach 1/2 (an error estimate from the inputs' norms, see
    :func:`torchflip.signal._integer.fft_is_exact`), so the result is exact.

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
        >>> choose_conv_method(torch.randn(10_000), torch.randn(3))
        'direct'
        >>> choose_conv_method(torch.randn(2**20), torch.randn(4096))
        'oa'
    """
    op = "choose_conv_method"
    in1 = as_tensor(in1, "in1", op)
    in2 = as_tensor(in2, "in2", op)
    dtype = result_dtype(in1, in2, op)  # validates dtypes and devices
    check_mode(mode, op)
    if in1.dim() != in2.dim():
        raise ValueError(f"{op}: in1 and in2 should have the same dimensionality, got "
                         f"shapes {tuple(in1.shape)} and {tuple(in2.shape)}")
    if measure:
        from torchflip.signal._convolve import convolve

        times = {m: _time_call(lambda m=m: convolve(in1, in2, mode=mode, method=m), in1.device)
                 for m in METHODS}
        return min(METHODS, key=lambda m: times[m]), times
    if in1.dim() == 0 or in1.numel() == 0 or in2.numel() == 0:
        return "direct"
    if inputs_swap_needed(mode, in1.shape, in2.shape):
        in1, in2 = in2, in1
    start, length = zip(*(window(mode, n1, n2) for n1, n2 in zip(in1.shape, in2.shape)))
    if is_integral(dtype):
        from torchflip.signal._integer import integer_method

        return integer_method(in1.to(torch.int64), in2.to(torch.int64), start, length, dtype)
    return choose_method(in1, in2, start, length)
