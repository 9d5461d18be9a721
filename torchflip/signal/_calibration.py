"""Cost-model constants for ``method='auto'`` (see :mod:`torchflip.signal._method`).

Measured on the development machine by ``benchmarks/calibrate_signal.py``
(one thread), which prints this file. Rerun it on other hardware and paste
its output here to retune ``method='auto'``; results never depend on these
numbers, only speed does.
"""

# Seconds = constant + slope * work, per engine (CPU).
DIRECT = {"constant": 2e-5, "mac": 5e-10}
FFT = {"constant": 3e-5, "nlogn": 2e-9}
OA = {"constant": 6e-5, "nlogn": 2e-9, "sample": 5e-9}

# Overlap-add block choice: per-block overhead, in units of L*log2(L) work,
# and the smallest block length considered.
OA_BLOCK_OVERHEAD = 256.0
OA_MIN_BLOCK = 64
