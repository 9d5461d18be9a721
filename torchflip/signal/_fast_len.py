"""Fast FFT lengths: the 5-smooth numbers (no prime factor above 5).

FFT libraries (MKL, pocketfft, cuFFT) factor a transform length into small
radices; a length whose prime factors are all 2, 3 or 5 runs close to the
speed of a power of two, while a length with a large prime factor can be
several times slower. Padding a convolution to the next 5-smooth length
rather than the next power of two wastes at most a few percent of samples.
"""

from __future__ import annotations

import operator

import torch

__all__ = ["next_fast_len"]


def next_fast_len(target: int) -> int:
    """The smallest 5-smooth integer ``n >= target``: ``n = 2**a * 3**b * 5**c``.

    This is the transform length the FFT paths of :mod:`torchflip.signal` pad
    to, and the value of ``scipy.fft.next_fast_len(target, real=True)``.

    Args:
        target: a positive integer.

    Returns:
        The smallest ``n >= target`` with no prime factor larger than 5.

    Raises:
        ValueError: if ``target`` is not positive.
        TypeError: if ``target`` is not an integer.

    Example:
        >>> from torchflip.signal import next_fast_len
        >>> [next_fast_len(n) for n in (7, 11, 97, 1000, 1025)]
        [8, 12, 100, 1000, 1080]
    """
    target = operator.index(target)
    known = _KNOWN.get(target)
    if known is not None:
        return known
    if target < 1:
        raise ValueError(f"next_fast_len: target must be a positive integer, got {target}")
    result = _search(target)
    if not torch.compiler.is_compiling():  # a traced dict write would be guarded on
        if len(_KNOWN) > 65536:
            _KNOWN.clear()
        _KNOWN[target] = result
    return result


_KNOWN: dict[int, int] = {}


def _search(target: int) -> int:
    if target <= 6:
        return target
    if target & (target - 1) == 0:
        return target
    best = 1 << (target - 1).bit_length()  # the next power of two is 5-smooth
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            # The smallest power of two that lifts power35 to at least target.
            quotient = -(-target // power35)
            candidate = power35 << (quotient - 1).bit_length()
            if candidate == target:
                return candidate
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best
