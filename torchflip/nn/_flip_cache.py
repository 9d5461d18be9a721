"""Reuse of the flipped weight, and of its spectra, while a layer's weight is
unchanged.

When no gradient will flow to the weight (inference, torch.no_grad, a frozen
layer), a true-convolution layer is exactly torch's cross-correlation with the
spatially flipped weight. The flip costs a full copy of the weight on every
call, which is a visible fraction of a deep layer's time; this cache keeps the
flipped copy and rebuilds it only when the weight may have changed. A layer
on the FFT engine keeps the weight's spectrum instead, for the same reason:
transforming a 3 -> 3 channel 31x31 kernel at 288x288 took a third of the
forward pass (psf31@256). A spectrum is far larger than its kernel
(psf31@256: 3 MB for a 35 KB weight), so a layer keeps spectra up to a limit
(:func:`spectra_limit`): SPECTRA_MAX_BYTES, or for a large weight up to
SPECTRA_WEIGHT_MULTIPLE times its own bytes, never above SPECTRA_CEILING_BYTES;
larger ones are transformed on every call, a block at a time.

The key is the weight tensor's identity (a weak reference), its version
counter (bumped by every in-place change: optimizer steps, load_state_dict,
``with torch.no_grad(): w.mul_(2)``), data pointer, device, dtype, shape and
strides, so a stale flip or spectrum is never served after an optimizer
step, an in-place edit, load_state_dict or .to(). The flip costs one extra
weight-sized tensor per layer (none for 1x1 kernels, which are their own
reversal and are used as they are).

Edits through ``.data`` (or a numpy view) bypass the version counter, as they
bypass autograd. To catch the common whole-tensor ones (EMA updates, copies,
re-initialisation, scaling), a hit also compares 16 elements sampled across
the weight with their values when the entry was made. An edit that touches
none of the sampled elements can still be missed: call
``layer.clear_flip_cache()`` after such edits, or turn the cache off with
:func:`set_flip_cache_enabled`.
"""

from __future__ import annotations

import ctypes
import weakref
from typing import Callable, Optional, Union

import torch
from torch import Tensor

from torchflip import _ops


def _key(weight: Tensor) -> tuple:
    return (weight._version, weight.data_ptr(), weight.device, weight.dtype, weight.shape,
            weight.stride())


_SAMPLES = 16

# Unsigned integers of each element size: a CPU weight's samples are read as
# raw bits through them.
_BITS = {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64}


def _sample_view(weight: Tensor) -> Union[memoryview, Tensor, None]:
    """A view of up to 16 elements spread evenly over ``weight``, read again
    on every hit: a memoryview of a contiguous CPU weight's memory, whose
    bytes are read without an ATen call (between convolutions that evict the
    CPU's caches, the two ATen calls of a strided view and torch.equal took
    about 20 us of a 0.4 ms call, fir64@16k in inference); a strided tensor
    view of a contiguous weight elsewhere (an accelerator), compared by
    torch.equal; None for a non-contiguous weight, sampled from a contiguous
    copy each time. The entry's key (data pointer, shape, strides) is
    compared first, so the view still addresses this weight's elements.
    Callers run where no autograd graph can be recorded (see
    FlippedWeightCache.applies)."""
    if not weight.is_contiguous():
        return None
    bits = _BITS.get(weight.element_size())
    if weight.device.type == "cpu" and bits is not None:
        numel = weight.numel()
        memory = memoryview((bits * numel).from_address(weight.data_ptr()))
        return memory[::max(1, numel // _SAMPLES)][:_SAMPLES]
    return _strided_samples(weight)


def _strided_samples(weight: Tensor) -> Tensor:
    """The sampled elements of a contiguous ``weight`` as a tensor view (it
    keeps the weight's storage alive)."""
    numel = weight.numel()
    return weight.as_strided((min(_SAMPLES, numel),), (max(1, numel // _SAMPLES),),
                             weight.storage_offset())


def _sampled(view: Union[memoryview, Tensor, None], weight: Tensor) -> Union[bytes, Tensor]:
    """The sampled elements' values now: bytes, or a tensor view."""
    if isinstance(view, memoryview):
        return view.tobytes()
    return view if view is not None else _strided_samples(weight.contiguous())


def _unchanged(view: Union[memoryview, Tensor, None], samples: Union[bytes, Tensor],
               weight: Tensor) -> bool:
    now = _sampled(view, weight)
    return now == samples if isinstance(now, bytes) else torch.equal(now, samples)


def plain_eager(weight: Tensor) -> bool:
    """Whether a call may run torch's own convolution in place of the
    operator: plain eager execution (torch.compile, export and tracing keep
    the operator in the graph; torch.func and forward-mode AD keep their
    autograd path), and a dtype torch's CPU kernels flip and compare
    (complex32 has neither; the operator splits it into real parts)."""
    return weight.dtype != torch.complex32 and _ops.plain_eager_mode()


# The bytes of spectra one layer keeps (see the module doc and spectra_limit).
SPECTRA_MAX_BYTES = 4 << 20
# A dense layer's weight spectra take (transform size / kernel size) times
# its weight: 27 for 16 -> 16 channels of 31x31 kernels at 128x128 (26.5 MB
# for a 1 MB weight; 22 and 21.5 MB at the shorter transforms of 91af60b),
# whose transforms were then two thirds of an inference call (2-core AMD
# EPYC VM: 11.5 ms a call, 6.4 ms with the spectrum kept; one thread 21.7
# and 10.4 ms).
SPECTRA_WEIGHT_MULTIPLE = 32
SPECTRA_CEILING_BYTES = 64 << 20


def spectra_limit(weight: Tensor) -> int:
    """The most bytes of spectra a layer with this weight keeps."""
    by_weight = SPECTRA_WEIGHT_MULTIPLE * weight.numel() * weight.element_size()
    return max(SPECTRA_MAX_BYTES, min(by_weight, SPECTRA_CEILING_BYTES))


class FlippedWeightCache:
    """One layer's cached flip and spectra. The entry (weight reference, key,
    sample view, sampled values, derived values) is read and replaced as a
    single tuple, so threads sharing a layer never pair one weight's key
    with another weight's values."""

    def __init__(self) -> None:
        self._entry: Optional[tuple] = None

    @staticmethod
    def applies(weight: Tensor) -> bool:
        """Whether the cached path computes exactly what the operator would:
        caching is enabled, no gradient for the weight, plain eager execution
        (torch.compile, export and tracing keep the operator in the graph;
        torch.func and forward-mode AD keep their autograd path)."""
        if not _enabled or _ops.needs_gradient(weight):
            return False
        return plain_eager(weight)

    def _derived(self, weight: Tensor) -> dict:
        """The values derived from ``weight`` as it is now: the entry's, or
        a new empty entry's where the weight may have changed."""
        key = _key(weight)
        entry = self._entry
        if (entry is not None and entry[0]() is weight and entry[1] == key
                and _unchanged(entry[2], entry[3], weight)):
            return entry[4]
        derived: dict = {}
        view = _sample_view(weight)
        samples = _sampled(view, weight)
        if isinstance(samples, Tensor):
            with _ops.plain_tensors():
                samples = samples.detach().clone()
        self._entry = (weakref.ref(weight), key, view, samples, derived)
        return derived

    def get(self, weight: Tensor) -> Tensor:
        """The weight flipped along its spatial dimensions."""
        if weight.shape[2:].numel() == 1:
            return weight  # a 1x1 kernel is its own reversal: nothing to keep
        derived = self._derived(weight)
        flipped = derived.get("flip")
        if flipped is None:
            data = weight.detach()
            with _ops.plain_tensors():
                flipped = derived["flip"] = data.flip(list(range(2, data.dim())))
        return flipped

    def spectrum(self, weight: Tensor, key: tuple, nbytes: int,
                 compute: Callable[[], Tensor]) -> Optional[Tensor]:
        """The spectrum ``compute()`` of ``weight`` named by ``key`` (its
        transform lengths and layout), kept while the weight is unchanged;
        None, without computing it, where its ``nbytes`` alone exceed
        :func:`spectra_limit`. The spectra kept longest make room for a new
        one (a layer called on inputs of several sizes keeps those of the
        latest sizes)."""
        limit = spectra_limit(weight)
        if nbytes > limit:
            return None
        spectra = self._derived(weight).setdefault("spectra", {})
        found = spectra.get(key)
        if found is not None:
            return found
        while spectra and nbytes + sum(t.nbytes for t in spectra.values()) > limit:
            del spectra[next(iter(spectra))]
        with _ops.plain_tensors():
            found = spectra[key] = compute()
        return found

    def clear(self) -> None:
        self._entry = None

    # Weak references cannot be pickled or deep-copied; a copy starts empty.
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __deepcopy__(self, memo) -> "FlippedWeightCache":
        return FlippedWeightCache()


_enabled = True


def set_flip_cache_enabled(enabled: bool) -> None:
    """Turns the reuse of flipped weights and of their spectra on (default) or
    off for every layer.

    Turn it off, or call ``layer.clear_flip_cache()``, if weights are edited
    partially through ``.data`` (or a numpy view): such edits bypass the
    version counter, as they bypass autograd, and are caught only when they
    touch a sampled element. In-place edits of the parameter itself
    (``with torch.no_grad(): layer.weight[0] = 0``), optimizer steps,
    load_state_dict and .to() are always seen."""
    global _enabled
    _enabled = bool(enabled)


def flip_cache_enabled() -> bool:
    return _enabled


class FlipCacheMixin:
    """What every torchflip layer shares about its flip cache and its name."""

    _flip_cache: FlippedWeightCache

    def clear_flip_cache(self) -> None:
        """Drops the cached flipped weight and spectra (needed only after
        edits through ``.data``; see torchflip.nn.set_flip_cache_enabled)."""
        self._flip_cache.clear()

    def _replicate_for_data_parallel(self):
        # Replicas hold their own weights, so they get their own caches.
        replica = super()._replicate_for_data_parallel()
        replica._flip_cache = FlippedWeightCache()
        return replica

    def _get_name(self) -> str:
        return f"torchflip.nn.{type(self).__name__}"
