"""A steady CPU heap for timing.

glibc's malloc serves a large block (above a threshold that it moves at run
time, up to 32 MiB) with a fresh mmap, and returns freed memory at the top of
its heap to the system once more than a trim threshold is free. A tensor that
lands in a fresh mapping pays a page fault for every page it first touches,
so the time of the same convolution then depends on what was allocated and
freed before it: on the 2-core development VM, a depthwise 13x13 layer at
64x64 (batch 2, 64 channels) took 1.1 ms or 3.5 ms in the same process,
depending only on its output's address history. Candidates that allocate
different temporaries (a flipped weight, an FFT's spectra) would be timed in
different allocator states.

The suite therefore pins both thresholds (``MALLOC_MMAP_THRESHOLD_`` at its
maximum, 32 MiB, and ``MALLOC_TRIM_THRESHOLD_`` out of reach), so that every
candidate reuses warm heap memory, as it would under a caching allocator
(jemalloc, tcmalloc, or CUDA's). The variables are read when the process
starts, so the runner re-executes itself with them set.
"""

from __future__ import annotations

import os
import platform
import sys

STEADY_HEAP = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 46),
}


def _glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def steady_heap_active() -> bool:
    return all(os.environ.get(name) == value for name, value in STEADY_HEAP.items())


def ensure_steady_heap() -> None:
    """Re-executes this Python process with STEADY_HEAP in its environment,
    unless it is there already (or malloc is not glibc's)."""
    if not _glibc() or steady_heap_active():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]],
              {**os.environ, **STEADY_HEAP})


def describe() -> str:
    """For the machine record of a run."""
    if not _glibc():
        return "system malloc (not glibc)"
    if steady_heap_active():
        return "glibc, steady heap (mmap threshold 32 MiB, no trim)"
    return "glibc defaults"
