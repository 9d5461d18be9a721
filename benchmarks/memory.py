"""Peak memory allocated by one call, on CPU and on CUDA.

The figure is the largest amount of tensor memory the call holds at once on
top of what was already allocated before it (input, parameters, output
gradient): the activations, workspaces and gradients it creates.

* CPU: process-level numbers (RSS, tracemalloc) cannot see it: glibc keeps
  freed blocks and tracemalloc only tracks Python objects. torch's profiler
  with ``profile_memory=True`` records every allocation and free made through
  c10's CPU allocator with its size (negative for a free); the peak is the
  maximum of their running sum over the call. Memory a library allocates
  behind c10's back (e.g. oneDNN scratch space, when not routed through it) is
  not seen; both sides of a comparison run the same ATen kernels, so the
  ratio is unaffected.
* CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the
  call, after resetting the peak counter.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile


def _allocation_sizes(events) -> list[tuple[int, int]]:
    """(time, signed size) of every allocation event in a profiler event tree."""
    found = []
    stack = list(events)
    while stack:
        event = stack.pop()
        if event.tag == _EventType.Allocation:
            found.append((event.start_time_ns, event.extra_fields.alloc_size))
        stack.extend(event.children)
    return found


def cpu_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes held by ``fn()`` through c10's CPU allocator (see module doc)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
        del result
    sizes = _allocation_sizes(prof.profiler.kineto_results.experimental_event_tree())
    held = peak = 0
    for _, size in sorted(sizes):
        held += size
        peak = max(peak, held)
    return peak


def cuda_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes held by ``fn()`` through the CUDA caching allocator."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    result = fn()
    del result
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def peak_bytes(fn: Callable[[], object], device: str) -> int:
    """Peak memory of one call of ``fn``, after one warm-up call (lazy
    initialisation and caches are not part of the steady state)."""
    fn()
    return cuda_peak_bytes(fn) if device == "cuda" else cpu_peak_bytes(fn)
