r"""Output-shape rules of scipy.signal: modes, centring, input swapping, axes.

Along one axis, with :math:`n_1` samples of ``in1`` and :math:`n_2` of ``in2``,
the full linear convolution has :math:`n_1 + n_2 - 1` samples

.. math::
    \mathrm{full}[i] = \sum_k \mathrm{in1}[i - k] \, \mathrm{in2}[k],

and each mode keeps the window ``full[start : start + length]``:

========  =====================  ====================
mode      start                  length
========  =====================  ====================
'full'    0                      n1 + n2 - 1
'same'    (n2 - 1) // 2          n1
'valid'   n2 - 1                 n1 - n2 + 1
========  =====================  ====================

'same' is centred as scipy centres it (``_centered``): the window starts
at ``(full_length - n1) // 2 = (n2 - 1) // 2``, so an even kernel puts the
extra sample of the full result at the end. In 'valid' mode scipy swaps the
inputs when ``in2`` is at least as large as ``in1`` in every dimension (so
the kernel is never the larger one), and raises ValueError when neither
input contains the other.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

MODES = ("full", "same", "valid")


def check_mode(mode, op: str) -> None:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"{op}: acceptable mode flags are 'valid', 'same', or 'full', "
                         f"got mode={mode!r}")


def inputs_swap_needed(mode: str, shape1: Sequence[int], shape2: Sequence[int],
                       axes: Sequence[int] | None = None) -> bool:
    """True when, in 'valid' mode, ``in2`` is the larger input and must become
    ``in1``; ValueError when neither input is at least as large as the other
    in every axis."""
    if mode != "valid" or len(shape1) == 0:
        return False
    if axes is None:
        axes = range(len(shape1))
    ok1 = all(shape1[i] >= shape2[i] for i in axes)
    ok2 = all(shape2[i] >= shape1[i] for i in axes)
    if not (ok1 or ok2):
        raise ValueError("For 'valid' mode, one must be at least as large as the other in "
                         f"every dimension, but got shapes {tuple(shape1)} and {tuple(shape2)}")
    return not ok1


def window(mode: str, n1: int, n2: int) -> tuple[int, int]:
    """``(start, length)`` of ``mode``'s window of the full convolution along one
    axis (for 'valid', ``n1 >= n2``: swap first)."""
    if mode == "full":
        return 0, n1 + n2 - 1
    if mode == "same":
        return (n2 - 1) // 2, n1
    return n2 - 1, n1 - n2 + 1


def normalize_axes(axes, ndim: int, op: str) -> list[int]:
    """scipy.fft's reading of ``axes``: None means every axis, an int one axis;
    negative axes count from the end; they must be in range and unique."""
    if axes is None:
        return list(range(ndim))
    try:
        values = [operator.index(axes)]
    except TypeError:
        try:
            values = [operator.index(a) for a in axes]
        except TypeError as error:
            raise ValueError(f"{op}: axes must be a scalar or iterable of integers, "
                             f"got {axes!r}") from error
    if not values:
        raise ValueError(f"{op}: when provided, axes cannot be empty")
    values = [a + ndim if a < 0 else a for a in values]
    if any(a < 0 or a >= ndim for a in values):
        raise ValueError(f"{op}: axes {axes!r} exceeds dimensionality of input ({ndim})")
    if len(set(values)) != len(values):
        raise ValueError(f"{op}: all axes must be unique, got {axes!r}")
    return values


def centered_start(current: int, new: int) -> int:
    """Where scipy's ``_centered`` starts a length-``new`` window of a
    length-``current`` array."""
    return (current - new) // 2
