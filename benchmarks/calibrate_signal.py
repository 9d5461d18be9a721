"""Measure the cost-model constants of torchflip.signal's method='auto'.

Times each engine ('direct', 'fft', 'oa') of torchflip.signal.convolve on a
grid of 1-D and 2-D sizes and modes, for float32 and float64, on one thread,
and fits, per (dimensionality class, precision), the model of
torchflip/signal/_method.py by non-negative least squares on *relative*
error (times span six orders of magnitude):

    direct: constant + mac * W + polyphase_mac * W' + polyphase_constant * [polyphase]
            + cliff * max(0, W * itemsize - cliff_bytes)
    fir:    constant + mac * W       (1-D only: the multiply-add kernel)
    fft:    constant + nlogn * F + point * P
    oa:     constant + nlogn * F + point * P + block * B

(W multiply-adds of a plain direct convolution, W' of a polyphase one; F =
sum of n log2 n over the transforms; P points touched by elementwise
passes; B overlap-add blocks; see _method.py). ``cliff_bytes`` is chosen by grid
search: past it, the conv op's unfolded input no longer fits in cache and
fresh memory must be faulted in, and direct convolution slows several-fold.

Prints a new torchflip/signal/_calibration.py (or writes it with --write).
Takes a few minutes; uses one core. Run from the repository root:

    python benchmarks/calibrate_signal.py [--write] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import nnls  # noqa: E402

from torchflip import signal  # noqa: E402
from torchflip.signal import _calibration  # noqa: E402
from torchflip.signal._direct import conv_window  # noqa: E402
from torchflip.signal._method import features  # noqa: E402
from torchflip.signal._modes import window  # noqa: E402

GRID = {
    1: [(n, k) for n in (100, 1_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
        for k in (2, 5, 12, 30, 48, 80, 200, 600, 2_000, 6_000, 20_000) if k <= n],
    2: [(n, k) for n in (16, 40, 100, 250, 600, 1200)
        for k in (2, 3, 5, 9, 15, 27, 45, 81) if k <= n],
}
MODES = ("full", "same", "valid")
MAX_SECONDS = 0.5  # skip an engine once a call is predicted (or seen) to take longer


def per_call(fn, min_seconds=0.005, repeats=5) -> float:
    """Best of `repeats` timings, each looping calls for at least min_seconds
    (the best, not the median: other load on the machine only adds time)."""
    fn()
    number, elapsed = 1, 0.0
    while True:
        begin = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - begin
        if elapsed >= min_seconds:
            break
        number *= 4
    best = elapsed / number
    for _ in range(repeats - 1):
        begin = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - begin) / number)
    return best


def collect(ndim: int, dtype: torch.dtype, quick: bool):
    # In 1-D, convolve(method='direct') runs the multiply-add kernel ("fir")
    # on these no-grad CPU calls; the conv op path ("direct", used when a
    # gradient is needed) is timed through its engine function.
    rows = {"direct": [], "fft": [], "oa": []}
    if ndim == 1:
        rows["fir"] = []
    grid = GRID[ndim][::3] if quick else GRID[ndim]
    for index, (n, k) in enumerate(grid):
        mode = MODES[index % 3]
        shape1, shape2 = (n,) * ndim, (k,) * ndim
        start, length = zip(*(window(mode, a, b) for a, b in zip(shape1, shape2)))
        x, h = torch.randn(shape1, dtype=dtype), torch.randn(shape2, dtype=dtype)
        feats = features(shape1, shape2, start, length, False, False)
        for method, samples in rows.items():
            if method in ("direct", "fir") and feats["direct"][1] + feats["direct"][2] > 4e8:
                continue  # seconds per call: never the best choice
            if method == "oa" and feats["oa"] is None:
                continue
            if method == "direct" and ndim == 1:
                def call(x=x, h=h, start=start, length=length):
                    return conv_window(x, h, start, length)
            else:
                def call(x=x, h=h, mode=mode, method=method):
                    return signal.convolve(x, h, mode, "direct" if method == "fir" else method)
            seconds = per_call(call)
            samples.append((feats[method], seconds))
            if seconds > MAX_SECONDS:
                print(f"  slow: {method} {shape1} {shape2} {seconds:.2f}s", flush=True)
        print(f"  {ndim}-D {str(dtype)[6:]} {n:>8} x {k:<6} {mode:5} " + " ".join(
            f"{m}={rows[m][-1][1] * 1e3:8.3f}ms" for m in rows if rows[m]
            and rows[m][-1][0] is feats[m]), flush=True)
    return rows


def fit(samples, columns):
    """Non-negative least squares minimising relative error."""
    a = np.array([[f[c] for c in columns] for f, _ in samples], dtype=float)
    t = np.array([s for _, s in samples])
    coef, _ = nnls(a / t[:, None], np.ones(len(t)))
    rel = a @ coef / t - 1
    return coef, float(np.sqrt(np.mean(rel ** 2)))


def fit_direct(samples, itemsize):
    best = None
    for cliff_bytes in [2.0 ** p for p in range(16, 30)]:
        rows = [((1.0, f[1], f[2], f[3], max(0.0, f[1] * itemsize - cliff_bytes)), s)
                for f, s in samples]
        coef, err = fit(rows, [0, 1, 2, 3, 4])
        if best is None or err < best[1]:
            best = (coef, err, cliff_bytes)
    coef, err, cliff_bytes = best
    return {"constant": coef[0], "mac": coef[1], "polyphase_mac": coef[2],
            "polyphase_constant": coef[3], "cliff": coef[4], "cliff_bytes": cliff_bytes}, err


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="overwrite _calibration.py")
    parser.add_argument("--quick", action="store_true", help="a third of the grid")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    constants = {}
    for ndim in (1, 2):
        for dtype, precision in ((torch.float64, "double"), (torch.float32, "single")):
            rows = collect(ndim, dtype, args.quick)
            itemsize = torch.empty((), dtype=dtype).element_size()
            direct, err_d = fit_direct(rows["direct"], itemsize)
            fft, err_f = fit([((1.0, f[1], f[2]), s) for f, s in rows["fft"]], [0, 1, 2])
            oa, err_o = fit([((1.0, f[1], f[2], f[3]), s) for f, s in rows["oa"]], [0, 1, 2, 3])
            constants[(ndim, precision)] = {
                "direct": direct,
            }
            if ndim == 1:
                fir, err_r = fit([((1.0, f[1]), s) for f, s in rows["fir"]], [0, 1])
                constants[(ndim, precision)]["fir"] = dict(zip(("constant", "mac"), fir))
                print(f"1-D {precision}: rms relative error fir {err_r:.2f}", flush=True)
            constants[(ndim, precision)] |= {
                "fft": dict(zip(("constant", "nlogn", "point"), fft)),
                "oa": dict(zip(("constant", "nlogn", "point", "block"), oa)),
            }
            print(f"{ndim}-D {precision}: rms relative error direct {err_d:.2f}, "
                  f"fft {err_f:.2f}, oa {err_o:.2f}", flush=True)
    text = render(constants)
    if args.write:
        path = os.path.join(os.path.dirname(_calibration.__file__), "_calibration.py")
        with open(path, "w") as handle:
            handle.write(text)
        print(f"wrote {path}")
    else:
        print(text)


def render(constants) -> str:
    def number(v):
        return f"{float(v):.4g}"

    lines = [
        '"""Cost-model constants for ``method=\'auto\'`` (see :mod:`torchflip.signal._method`).',
        "",
        "Generated by ``benchmarks/calibrate_signal.py`` (one thread, float32 and",
        "float64, 1-D and 2-D grids) on the development machine; rerun it with",
        "``--write`` to retune for other hardware. Results never depend on these",
        "numbers, only speed does. Seconds per call =",
        "",
        "* direct: constant + mac * W + polyphase_mac * W' + polyphase_constant * [polyphase]",
        "          + cliff * max(0, W * itemsize - cliff_bytes)",
        "* fir (1-D direct by the multiply-add kernel): constant + mac * W",
        "* fft: constant + nlogn * F + point * P",
        "* oa: constant + nlogn * F + point * P + block * B",
        "",
        "keyed by (1 for 1-D inputs, 2 for more dimensions; precision). CUDA uses",
        "CUDA (uncalibrated defaults: no GPU was available to measure).",
        '"""',
        "",
        "CPU = {",
    ]
    for key, engines in constants.items():
        lines.append(f"    {key!r}: {{")
        for engine, values in engines.items():
            body = ", ".join(f'"{k}": {number(v)}' for k, v in values.items())
            lines.append(f'        "{engine}": {{{body}}},')
        lines.append("    },")
    lines += [
        "}",
        "",
        "# Unmeasured: a GPU launches kernels in microseconds and runs FFTs near",
        "# memory speed, so direct convolution only pays for small kernels.",
        "CUDA = {",
        '    "direct": {"constant": 2e-5, "mac": 2e-12, "polyphase_mac": 2e-12, "cliff": 0.0,',
        '               "cliff_bytes": 1e30},',
        '    "fft": {"constant": 6e-5, "nlogn": 2e-12, "point": 1e-11},',
        '    "oa": {"constant": 1e-4, "nlogn": 2e-12, "point": 2e-11, "block": 0.0},',
        "}",
        "",
        "# Overlap-add block choice (_fft.oa_block_length): per-block overhead in",
        "# units of L log2 L work, and the smallest and largest block lengths.",
        f"OA_BLOCK_OVERHEAD = {_calibration.OA_BLOCK_OVERHEAD!r}",
        f"OA_MIN_BLOCK = {_calibration.OA_MIN_BLOCK!r}",
        f"OA_MAX_BLOCK = {_calibration.OA_MAX_BLOCK!r}",
        "",
        "# In 2 or more dimensions overlap-add is chosen only when predicted at least",
        "# this much faster (its model is least accurate there: many small transforms).",
        f"OA_MARGIN_ND = {_calibration.OA_MARGIN_ND!r}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
