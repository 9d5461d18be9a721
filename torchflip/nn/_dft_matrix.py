r"""Discrete Fourier transforms along one axis as matrix products, for the
FFT engine's short operands (a kernel, or a kernel's worth of a gradient).

A kernel of :math:`K` taps zero-padded to a transform of length :math:`n`
has the spectrum

.. math::
    X[k] = \sum_{a=0}^{K-1} x[a] \, e^{-2\pi i k a / n}, \qquad 0 \le k < n,

a product with the :math:`n \times K` matrix of those exponentials
(:func:`spectrum_matrix`). Likewise the :math:`m` samples
:math:`[s, s + m)` (modulo :math:`n`) of an inverse transform are

.. math::
    x[s + j] = \frac{1}{n} \sum_{k=0}^{n-1} X[k] \, e^{2\pi i (s + j) k / n},
    \qquad 0 \le j < m,

a product with an :math:`m \times n` matrix (:func:`window_matrix`).

Why: a product costs :math:`K n` multiply-adds a column, the FFT about
:math:`n \log_2 n` flops, but on CPU the FFT of a non-last axis also pays
for its zero-padded copy, a transpose to the last axis and back, and a
plan made afresh on every call (torch.fft on MKL), where a matrix product
runs at BLAS speed and writes its result in place. Timed at two threads on
nine maps of 145 columns: n = 288, K = 31 0.39 ms against 0.66 ms by FFT
(K = 63: 0.78 against 0.69); n = 160, K = 31 0.13 against 0.15; at one
thread n = 64, K = 15 0.026 against 0.027 (K = 31: 0.046 against 0.031).
:func:`cheaper` takes the product up to K = MATRIX_MAX_LOG_RATIO log2 n.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from torchflip._ops import plain_tensors

# The product replaces an axis's FFT for up to this many times log2(n) taps
# (or window samples); see the module doc for the timings it rests on.
MATRIX_MAX_LOG_RATIO = 4


def cheaper(count: int, length: int) -> bool:
    """Whether ``count`` taps (or window samples) of an axis of transform
    ``length`` cost less as a matrix product than as an FFT."""
    return count < length and count <= MATRIX_MAX_LOG_RATIO * math.log2(length)


@functools.lru_cache(maxsize=64)
def _exponentials(rows_start: int, rows: int, columns: int, length: int, sign: int,
                  dtype: torch.dtype, device: torch.device) -> Tensor:
    """exp(sign 2 pi i r c / length) for r in [rows_start, rows_start + rows)
    and c in [0, columns), scaled by 1 / length for the inverse (sign +1).
    The phase index r c is reduced modulo the length in integers, so every
    entry is accurate to the dtype whatever the length."""
    with plain_tensors():
        r = torch.arange(rows_start, rows_start + rows, dtype=torch.int64).unsqueeze(1)
        c = torch.arange(columns, dtype=torch.int64).unsqueeze(0)
        phase = torch.remainder(r * c, length).to(torch.float64) * (sign * 2 * math.pi / length)
        scale = 1.0 / length if sign > 0 else 1.0
        matrix = torch.polar(torch.full_like(phase, scale), phase)
        return matrix.to(device=device, dtype=dtype)


def spectrum_matrix(length: int, taps: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(length, taps): the forward DFT of ``taps`` samples zero-padded to
    ``length``, as a left factor."""
    return _exponentials(0, length, taps, length, -1, dtype, device)


def window_matrix(length: int, start: int, count: int, dtype: torch.dtype,
                  device: torch.device) -> Tensor:
    """(count, length): the samples [start, start + count), modulo
    ``length``, of the inverse DFT of a full spectrum, as a left factor."""
    return _exponentials(start, count, length, length, 1, dtype, device)


def along_axis(t: Tensor, dim: int, matrix: Tensor) -> Tensor:
    """``matrix`` (m, K) applied to axis ``dim`` (of length K) of ``t``:
    (..., K, *rest) -> (..., m, *rest), contiguous."""
    lead, rest = tuple(t.shape[:dim]), tuple(t.shape[dim + 1:])
    flat = t.reshape(lead + (t.shape[dim], math.prod(rest)))
    return torch.matmul(matrix, flat).reshape(lead + (matrix.shape[0],) + rest)
