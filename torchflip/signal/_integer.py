r"""Convolution with an integer or bool result, as scipy.signal computes it.

scipy.signal's convolve, correlate, convolve2d and correlate2d return
``numpy.result_type(in1, in2)`` for integer and bool inputs (bool, uint8,
int8, int16, int32, int64 here; see :mod:`torchflip.signal._inputs`):

* method 'direct' (convolve2d and correlate2d always convolve directly):
  the sums :math:`\sum_k \mathrm{in1}[i - k]\, \mathrm{in2}[k]` in integer
  arithmetic, exact unless they overflow the result type, where numpy's
  arithmetic wraps them modulo :math:`2^{\mathrm{bits}}`. Here they are
  computed exactly modulo :math:`2^{64}` (int64) and cast to the result
  type, which reduces them modulo :math:`2^{\mathrm{bits}}`: the same values
  as scipy's, overflow included.
* method 'fft' (and 'oa'): the convolution of the inputs as float64, rounded
  to the nearest integer and cast to the result type (scipy's rule for
  'fft'). Exact while the FFT's rounding error stays below 1/2.
* bool: the products are logical ANDs and the sums logical ORs, so the
  result is True where at least one product ``in1 and in2`` is; computed as
  the count of such products, then ``!= 0``. (scipy's 'fft' casts the
  unrounded float result to bool, so a rounding residue of a zero count
  turns True there; here the count is rounded first.)
* method 'auto': 'direct' for bool inputs (as scipy), otherwise the cost
  model's choice, replaced by 'direct' when the FFT result could round to
  a wrong integer (:func:`fft_is_exact`).

The direct sums are exact by construction: 1-D CPU inputs run the
multiply-add kernel in int64 (``_fir_window``); otherwise, when every
partial sum is an integer of magnitude below :math:`2^{52}` (bounded by
``max|in1| * sum|in2|``), the float64 conv op on the CPU, whose products and
sums of such integers are exact in any order; otherwise int64
shift-and-accumulate, one pass over the output per kernel tap.

Integer results carry no gradient (torch does not differentiate integer
tensors).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from torchflip.signal._direct import conv_window, fir_applies, fir_window
from torchflip.signal._fast_len import next_fast_len
from torchflip.signal._fft import fft_engine, oa_engine
from torchflip.signal._method import choose_method

# Below this bound on every partial sum float64 represents all of them exactly
# (2**53), with a factor 2 to spare for the rounding of the bound itself.
EXACT_FLOAT_BOUND = 2.0 ** 52


def integer_window(in1: Tensor, in2: Tensor, start: Sequence[int], length: Sequence[int],
                   method: str, dtype: torch.dtype) -> Tensor:
    """``full[start : start + length]`` along every axis of the convolution of
    integer or bool inputs, of the integral result dtype ``dtype``, by
    ``method`` ('auto' chooses; see the module docstring)."""
    a, b = in1.to(torch.int64), in2.to(torch.int64)
    if method == "auto":
        method = integer_method(a, b, start, length, dtype)
    if method == "direct":
        out = exact_direct(a, b, start, length)
    else:
        engine = fft_engine if method == "fft" else oa_engine
        out = engine(a.double(), b.double(), start, length).round().to(torch.int64)
    return out != 0 if dtype == torch.bool else out.to(dtype)


def integer_method(a: Tensor, b: Tensor, start: Sequence[int], length: Sequence[int],
                   dtype: torch.dtype) -> str:
    """What 'auto' runs for int64 copies ``a``, ``b`` of integer inputs whose
    result dtype is ``dtype``."""
    if dtype == torch.bool:
        return "direct"
    method = choose_method(a, b, start, length)
    if method != "direct" and not fft_is_exact(a, b):
        return "direct"
    return method


def fft_is_exact(a: Tensor, b: Tensor) -> bool:
    r"""Whether float64 FFT convolution of integer tensors ``a`` and ``b``
    rounds to the exact integers.

    The FFT's error in each output sample is bounded (Higham, *Accuracy and
    Stability of Numerical Algorithms*, section 24.1: a normwise relative
    error of about :math:`\log_2 P` times a few unit roundoffs per transform
    of :math:`P` points) by roughly
    :math:`c \,\varepsilon \log_2 P \, \min(\|a\|_1 \|b\|_2, \|a\|_2 \|b\|_1)`;
    with :math:`c = 8` (three transforms and the products, with margin),
    the result is accepted when that estimate stays below 1/4, half of the
    1/2 that would round to a wrong integer."""
    a, b = a.double(), b.double()
    l1a, l2a = a.abs().sum().item(), a.square().sum().sqrt().item()
    l1b, l2b = b.abs().sum().item(), b.square().sum().sqrt().item()
    points = math.prod(next_fast_len(n1 + n2 - 1) for n1, n2 in zip(a.shape, b.shape))
    estimate = 8 * 2.0 ** -53 * max(1.0, math.log2(points)) * min(l1a * l2b, l2a * l1b)
    return estimate < 0.25


def exact_direct(a: Tensor, b: Tensor, start: Sequence[int], length: Sequence[int]) -> Tensor:
    """The window of the convolution of int64 tensors ``a`` and ``b``, exact
    modulo 2**64 (see the module docstring for the three ways)."""
    if fir_applies(a, b):
        return fir_window(a, b, start[0], length[0])
    if a.device.type == "cpu":
        bound = a.double().abs().max().item() * b.double().abs().sum().item()
        if bound < EXACT_FLOAT_BOUND:
            out = conv_window(a.double(), b.double(), start, length)
            return out.round().to(torch.int64)
    return shift_accumulate(a, b, start, length)


def shift_accumulate(a: Tensor, b: Tensor, start: Sequence[int],
                     length: Sequence[int]) -> Tensor:
    r"""The window by :math:`\mathrm{out}[t] = \sum_k b[k]\, a_p[t + M - 1 - k]`,
    with :math:`a_p` ``a`` padded (or cropped) to the window, one pass per
    nonzero tap of ``b``; int64 arithmetic wraps modulo 2**64."""
    pads = []
    for size, m, s, n in zip(a.shape, b.shape, start, length):
        pads = [m - 1 - s, s + n - size] + pads  # F.pad lists the last dim first
    padded = torch.nn.functional.pad(a, pads)
    out = torch.zeros(list(length), dtype=torch.int64, device=a.device)
    taps = b.flatten().tolist()
    for index, tap in zip(itertools.product(*(range(m) for m in b.shape)), taps):
        if tap == 0:
            continue
        view = padded[tuple(slice(m - 1 - k, m - 1 - k + n)
                            for m, k, n in zip(b.shape, index, length))]
        out.add_(view, alpha=tap)
    return out
