"""Reuse of the flipped weight while a layer's weight is unchanged.

When no gradient will flow to the weight (inference, torch.no_grad, a frozen
layer), a true-convolution layer is exactly torch's cross-correlation with the
spatially flipped weight. The flip costs a full copy of the weight on every
call, which is a visible fraction of a deep layer's time; this cache keeps the
flipped copy and rebuilds it only when the weight may have changed.

The key is the weight tensor's identity (a weak reference), its version
counter (bumped by every in-place change: optimizer steps, load_state_dict,
``with torch.no_grad(): w.mul_(2)``), data pointer, device, dtype, shape and
strides, so a stale flip is never served after an optimizer step, an in-place
edit, load_state_dict or .to(). Costs one extra weight-sized tensor per layer.
"""

from __future__ import annotations

import weakref
from typing import Optional

import torch
from torch import Tensor

from torchflip import _ops


def _key(weight: Tensor) -> tuple:
    return (weight._version, weight.data_ptr(), weight.device, weight.dtype,
            tuple(weight.shape), weight.stride())


class FlippedWeightCache:
    def __init__(self) -> None:
        self._weight: Optional[weakref.ref] = None
        self._key: Optional[tuple] = None
        self._flipped: Optional[Tensor] = None

    @staticmethod
    def applies(weight: Tensor) -> bool:
        """Whether the cached path computes exactly what the operator would:
        no gradient for the weight, plain eager execution (torch.compile,
        export and tracing keep the operator in the graph; torch.func and
        forward-mode AD keep their autograd path)."""
        if torch.is_grad_enabled() and weight.requires_grad:
            return False
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return False
        return not _ops.functorch_path()

    def get(self, weight: Tensor) -> Tensor:
        key = _key(weight)
        if self._weight is None or self._weight() is not weight or self._key != key:
            with torch.no_grad():
                self._flipped = weight.flip(list(range(2, weight.dim())))
            self._weight, self._key = weakref.ref(weight), key
        return self._flipped

    def clear(self) -> None:
        self._weight = self._key = self._flipped = None

    # Weak references cannot be pickled or deep-copied; a copy starts empty.
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __deepcopy__(self, memo) -> "FlippedWeightCache":
        return FlippedWeightCache()
