"""torchflip.signal.convolve against scipy.signal.convolve, one thread each.

For every (signal, kernel) size in a 1-D and a 2-D grid, times in one run,
interleaved round by round so that machine load affects all alike:

* scipy.signal.convolve(method='auto')   (scipy's own choice, single-threaded)
* torchflip.signal.convolve(method='auto')
* torchflip.signal.convolve with each single method: 'direct', 'fft', 'oa'

and prints medians and the ratios

* auto / scipy-auto          (acceptance: median over each grid <= 1.0)
* auto / best single method  (acceptance: never above 1.10)
* chosen / best: the same comparison made with the timing of the method
  auto chose rather than of auto itself; auto runs exactly that method, so
  this isolates the quality of the choice from timing noise between runs

Direct convolution is skipped (shown as '-') where one call would take
seconds; it is then far from being the best method. Run from the repository
root::

    python benchmarks/bench_signal.py [--quick] [--mode full] [--dtype float64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from torchflip import signal  # noqa: E402
from torchflip.signal._method import predicted_times  # noqa: E402
from torchflip.signal._modes import window  # noqa: E402

GRID_1D = [(n, k) for n in (1_000, 10_000, 100_000, 1_000_000)
           for k in (4, 32, 256, 2_048, 16_384) if k < n]
GRID_2D = [(n, k) for n in (64, 256, 1024) for k in (3, 9, 27, 81) if k < n]
QUICK_1D = [(10_000, 32), (100_000, 256), (1_000_000, 2_048)]
QUICK_2D = [(256, 9), (1024, 27)]


def per_call(fn, min_seconds: float) -> float:
    """Seconds per call of fn, looping enough calls to last min_seconds."""
    number = 1
    while True:
        begin = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - begin
        if elapsed >= min_seconds or number >= 10_000:
            return elapsed / number
        number = max(number * 2, int(number * min_seconds / max(elapsed, 1e-9)))


def measure(shape1, shape2, dtype, mode, repeats, min_seconds):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape1).astype(dtype), rng.standard_normal(shape2).astype(dtype)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    start, length = zip(*(window(mode, n, m) for n, m in zip(shape1, shape2)))
    model = predicted_times(shape1, shape2, start, length, False, False)
    candidates = {
        "scipy": lambda: scipy.signal.convolve(a, b, mode, "auto"),
        "auto": lambda: signal.convolve(ta, tb, mode, "auto"),
        "direct": lambda: signal.convolve(ta, tb, mode, "direct"),
        "fft": lambda: signal.convolve(ta, tb, mode, "fft"),
        "oa": lambda: signal.convolve(ta, tb, mode, "oa"),
    }
    if model["direct"] > 20 * min(model["fft"], model["oa"]) and model["direct"] > 0.5:
        del candidates["direct"]
    times = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()  # warm up (allocator, FFT plans, oneDNN primitives)
    for _ in range(repeats):
        for name, fn in candidates.items():
            times[name].append(per_call(fn, min_seconds))
    medians = {name: statistics.median(t) for name, t in times.items()}
    medians["chosen"] = signal.choose_conv_method(ta, tb, mode)
    medians["scipy_chosen"] = scipy.signal.choose_conv_method(a, b, mode)
    return medians


def fmt(seconds):
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:9.3f}"


def run_grid(title, grid, ndim, dtype, mode, repeats, min_seconds):
    print(f"\n{title} (mode={mode!r}, dtype={np.dtype(dtype).name}; times in ms, medians of "
          f"{repeats})")
    header = (f"{'signal':>10} {'kernel':>7} | {'scipy':>9} {'auto':>9} {'direct':>9} "
              f"{'fft':>9} {'oa':>9} | {'picks':>6} {'scipy':>6} | {'auto/scipy':>10} "
              f"{'auto/best':>9} {'chosen/best':>11}")
    print(header)
    print("-" * len(header))
    ratios_scipy, ratios_best, ratios_chosen = [], [], []
    for n, k in grid:
        m = measure((n,) * ndim, (k,) * ndim, dtype, mode, repeats, min_seconds)
        best = min(m[name] for name in ("direct", "fft", "oa") if name in m)
        r_scipy, r_best = m["auto"] / m["scipy"], m["auto"] / best
        r_chosen = m[m["chosen"]] / best if m["chosen"] in m else float("inf")
        ratios_scipy.append(r_scipy)
        ratios_best.append(r_best)
        ratios_chosen.append(r_chosen)
        size = lambda v: f"{v}" if ndim == 1 else f"{v}x{v}"  # noqa: E731
        print(f"{size(n):>10} {size(k):>7} | {fmt(m['scipy'])} {fmt(m['auto'])} "
              f"{fmt(m.get('direct'))} {fmt(m['fft'])} {fmt(m['oa'])} | "
              f"{m['chosen']:>6} {m['scipy_chosen']:>6} | {r_scipy:10.2f} {r_best:9.2f} "
              f"{r_chosen:11.2f}", flush=True)
    print(f"median auto/scipy = {statistics.median(ratios_scipy):.2f}   "
          f"geometric mean = {float(np.exp(np.mean(np.log(ratios_scipy)))):.2f}   "
          f"max auto/best = {max(ratios_best):.2f}   "
          f"cells with auto/best > 1.10: {sum(r > 1.10 for r in ratios_best)}/{len(grid)}   "
          f"max chosen/best = {max(ratios_chosen):.2f}")
    return ratios_scipy, ratios_best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few cells only")
    parser.add_argument("--mode", default="full", choices=["full", "same", "valid"])
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=0.02,
                        help="each timing loops calls for at least this long")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dtype = np.dtype(args.dtype).type
    print(f"torch {torch.__version__}, threads: torch {torch.get_num_threads()}, scipy 1 "
          "(threadpoolctl)")
    with threadpool_limits(limits=1):
        run_grid("1-D", QUICK_1D if args.quick else GRID_1D, 1, dtype, args.mode, args.repeats,
                 args.min_seconds)
        run_grid("2-D", QUICK_2D if args.quick else GRID_2D, 2, dtype, args.mode, args.repeats,
                 args.min_seconds)


if __name__ == "__main__":
    main()
