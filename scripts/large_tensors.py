#!/usr/bin/env python
"""Convolutions whose input holds more than 2**31 elements give correct results.

Two cases, run with torchflip.nn.functional under no_grad, each with an input
of shape (2, 64, L), more than 2**31 elements in all, and a kernel of 4 taps
(stride 1, no padding) that maps the 64 channels to 16:

* ``conv``: conv1d; output position o reads input positions [o, o + 4);
* ``conv_transpose``: conv_transpose1d; output position o reads input
  positions [o - 3, o].

Chunks of outputs at the start, middle and end of every row (the last ones
read input elements whose flat index is beyond 2**31) are compared with
torch.nn.functional on the flipped kernel applied to the slice of the input
they read, in float32.

    python scripts/large_tensors.py                  # just above 2**31 elements, bfloat16
    python scripts/large_tensors.py --elements 1e6   # a quick check of the script itself

Peak memory is about 2.4 times the input (oneDNN reorders it once and the
output is a quarter of it): about 10.5 GB for the default size in bfloat16.
The script refuses to start when the estimate exceeds --max-gb or the memory
available.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: use this checkout's torchflip
    sys.path.insert(0, str(ROOT))

import torchflip.nn.functional as TF  # noqa: E402

K = 4  # kernel taps
BATCH, C_IN, C_OUT = 2, 64, 16
CHUNK = 4096


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def available_gb() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("inf")


def chunk_starts(length: int) -> list[int]:
    """Start, middle and end chunks of a row of `length` outputs."""
    chunk = min(CHUNK, length)
    return sorted({0, max(0, length // 2 - chunk // 2), length - chunk})


def compare(name: str, ours: torch.Tensor, reference: torch.Tensor) -> bool:
    error = (ours.float() - reference).abs().max().item()
    scale = reference.abs().max().item()
    # A bfloat16 output is rounded once (relative 2**-8), plus summation slack;
    # a wrong or shifted tap would be off by about the scale itself.
    tolerance = 2e-2 * scale + 1e-3
    status = "ok" if error <= tolerance else "MISMATCH"
    print(f"    {name}: max |error| {error:.3g} (tolerance {tolerance:.3g}) {status}")
    return error <= tolerance


def run_case(transposed: bool, length: int, dtype: torch.dtype) -> bool:
    x = torch.empty(BATCH, C_IN, length, dtype=dtype).uniform_(-1, 1)
    shape = (C_IN, C_OUT, K) if transposed else (C_OUT, C_IN, K)
    w = torch.empty(*shape, dtype=dtype).uniform_(-1, 1)
    name = "conv_transpose1d" if transposed else "conv1d"
    print(f"  {name}: input {tuple(x.shape)} = {x.numel():,} elements "
          f"({x.numel() / 2**31:.3f} x 2**31), {dtype}")
    start = time.perf_counter()
    with torch.no_grad():
        y = (TF.conv_transpose1d if transposed else TF.conv1d)(x, w)
    print(f"  output {tuple(y.shape)} in {time.perf_counter() - start:.1f} s, "
          f"peak RSS {peak_rss_gb():.2f} GB")
    reference_op = F.conv_transpose1d if transposed else F.conv1d
    w_ref = w.float().flip(-1)
    good = True
    for n in range(BATCH):
        for o0 in chunk_starts(y.shape[-1]):
            o1 = min(o0 + CHUNK, y.shape[-1])
            if transposed:
                # Outputs [o0, o1) read inputs [o0 - K + 1, o1); the reference
                # output of input slice [a, b) starts at position a.
                a, b = max(0, o0 - K + 1), min(o1, length)
                reference = reference_op(x[n:n + 1, :, a:b].float(), w_ref)[..., o0 - a:o1 - a]
            else:
                a, b = o0, o1 + K - 1
                reference = reference_op(x[n:n + 1, :, a:b].float(), w_ref)
            last = n * x.stride(0) + (C_IN - 1) * x.stride(1) + b - 1
            good &= compare(f"batch {n}, outputs [{o0}, {o1}) reading flat input index up to "
                            f"{last:,}", y[n:n + 1, :, o0:o1], reference)
    return good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=float, default=2**31 + 2**25,
                        help="elements of the input (default 2**31 + 2**25)")
    parser.add_argument("--dtype", default="bfloat16",
                        choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--case", default="all", choices=["all", "conv", "conv_transpose"])
    parser.add_argument("--max-gb", type=float, default=12.0,
                        help="refuse to run if the estimated peak memory exceeds this")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    length = max(CHUNK + K, -(-int(args.elements) // (BATCH * C_IN)))
    input_gb = BATCH * C_IN * length * dtype.itemsize / 2**30
    estimate = 2.4 * input_gb + 0.5
    print(f"input {input_gb:.2f} GB, estimated peak {estimate:.1f} GB, "
          f"available {available_gb():.1f} GB")
    if estimate > min(args.max_gb, available_gb() - 1.0):
        print("refusing to run: not enough memory (lower --elements or raise --max-gb)")
        return 2
    good = True
    for transposed in (False, True):
        if args.case in ("all", "conv_transpose" if transposed else "conv"):
            good &= run_case(transposed, length, dtype)
    print("PASS" if good else "FAIL", f"(peak RSS {peak_rss_gb():.2f} GB)")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
