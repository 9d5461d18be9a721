"""Cross-check torchflip.signal against scipy.signal and a second, independent
implementation on freshly drawn random cases.

The cases come from the seed(s) on the command line, not from the test
suite. Every case is computed three ways:

* torchflip.signal (the code under test), with the method named in the case;
* scipy.signal (the specification);
* an independent reference written here: numpy.convolve / numpy.correlate
  for 1-D convolve/correlate, and otherwise an explicit loop over the kernel
  taps (``full[i + k] += in2[k] * in1[i]`` as shifted slices, in float64 /
  complex128, or Python integers for integer inputs), followed by this
  script's own reading of the modes ('same' centred on in1, 'valid' the
  fully overlapping part), axes, broadcasting and 2-D boundaries (numpy.pad
  'wrap' and 'symmetric').

It prints, per function, the number of cases and the largest error of
torchflip against each reference, relative to the result's largest
magnitude, and exits with status 1 if any exceeds the tolerance (1e-9 in
double precision, 1e-4 in single; integer results must be exact). Run from
the repository root::

    python benchmarks/crosscheck_signal.py --seed 1 --seed 2 [--cases 400]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import warnings
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402
import torch  # noqa: E402

from torchflip import signal  # noqa: E402

FLOAT = [np.float32, np.float64, np.complex64, np.complex128]
INTEGER = [np.int8, np.int16, np.int32, np.int64, np.uint8]


# ---------------------------------------------------------------------------
# The independent reference


def naive_full(a: np.ndarray, b: np.ndarray, axes) -> np.ndarray:
    """Full linear convolution over ``axes`` by an explicit loop over the taps
    of ``b``; other dimensions broadcast. Integer inputs are summed as Python
    integers (exact, no overflow)."""
    exact = a.dtype.kind in "biu" and b.dtype.kind in "biu"
    if exact:
        a, b = a.astype(object), b.astype(object)
    else:
        kind = complex if (a.dtype.kind == "c" or b.dtype.kind == "c") else float
        a, b = a.astype(np.complex128 if kind is complex else np.float64), \
            b.astype(np.complex128 if kind is complex else np.float64)
    shape = [a.shape[d] + b.shape[d] - 1 if d in axes else max(a.shape[d], b.shape[d])
             for d in range(a.ndim)]
    out = np.zeros(shape, dtype=object if exact else np.result_type(a, b))
    for k in itertools.product(*(range(b.shape[d]) if d in axes else [None]
                                 for d in range(a.ndim))):
        tap = b[tuple(slice(k[d], k[d] + 1) if d in axes else slice(None)
                      for d in range(a.ndim))]
        target = tuple(slice(k[d], k[d] + a.shape[d]) if d in axes else slice(None)
                       for d in range(a.ndim))
        out[target] = out[target] + a * tap
    return out


def window(full: np.ndarray, n1, n2, mode: str, axes) -> np.ndarray:
    """The mode's part of a full convolution: 'full' all, 'same' the
    len(in1) samples centred in it, 'valid' the samples where the inputs
    overlap completely (min(n1, n2) - 1 onwards)."""
    index = []
    for d in range(full.ndim):
        if d not in axes:
            if mode == "same" and full.shape[d] != n1[d]:
                begin = (full.shape[d] - n1[d]) // 2
                index.append(slice(begin, begin + n1[d]))
            else:
                index.append(slice(None))
            continue
        total = full.shape[d]
        if mode == "full":
            index.append(slice(None))
        elif mode == "same":
            begin = (total - n1[d]) // 2
            index.append(slice(begin, begin + n1[d]))
        else:
            index.append(slice(min(n1[d], n2[d]) - 1, max(n1[d], n2[d])))
    return full[tuple(index)]


def reverse_conj(x: np.ndarray, axes=None) -> np.ndarray:
    axes = range(x.ndim) if axes is None else axes
    return np.conj(np.flip(x, tuple(axes))) if x.dtype.kind == "c" else np.flip(x, tuple(axes))


def independent(name: str, a, b, mode: str, axes=None, boundary="fill", fillvalue=0):
    ndim = a.ndim
    axes = list(range(ndim)) if axes is None else [x % ndim for x in np.atleast_1d(axes)]
    if name in ("convolve", "correlate") and ndim == 1 and (mode != "same" or len(a) >= len(b)):
        # numpy's own 1-D routines (their 'same' centres on the longer input).
        fn = np.convolve if name == "convolve" else np.correlate
        if a.dtype.kind in "biu" and b.dtype.kind in "biu":
            return fn(a.astype(np.int64), b.astype(np.int64), mode)
        return fn(a.astype(np.result_type(a, b, np.float64)), b, mode)
    if name in ("convolve", "correlate", "fftconvolve", "oaconvolve"):
        kernel = reverse_conj(b, axes) if name == "correlate" else b
        return window(naive_full(a, kernel, axes), a.shape, b.shape, mode, axes)
    # convolve2d / correlate2d: extend in1 by the boundary rule, then 'valid'.
    kernel = reverse_conj(b) if name == "correlate2d" else b
    m = kernel.shape
    pad = [(k - 1, k - 1) for k in m]
    if boundary == "fill":
        ext = np.pad(a.astype(np.result_type(a, np.asarray(fillvalue))), pad,
                     constant_values=fillvalue)
    else:
        ext = np.pad(a, pad, mode="wrap" if boundary == "wrap" else "symmetric")
    full = window(naive_full(ext, kernel, [0, 1]), ext.shape, m, "valid", [0, 1])
    if mode == "full":
        return full
    if mode == "same":
        # scipy centres 2-D correlation's even kernels one sample later.
        begin = [k // 2 if name == "correlate2d" else (k - 1) // 2 for k in m]
        return full[begin[0]:begin[0] + a.shape[0], begin[1]:begin[1] + a.shape[1]]
    return full[m[0] - 1:a.shape[0], m[1] - 1:a.shape[1]]


# ---------------------------------------------------------------------------
# Drawing cases


def array(rng, shape, dtype):
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        low, high = max(info.min, -50), min(info.max, 50)
        return rng.integers(low, high + 1, shape).astype(dtype)
    values = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


def draw(rng):
    name = rng.choice(["convolve", "correlate", "fftconvolve", "oaconvolve", "convolve2d",
                       "correlate2d"])
    integer = name in ("convolve", "correlate", "convolve2d", "correlate2d") and rng.random() < 0.3
    dtypes = INTEGER if integer else FLOAT
    d1, d2 = (dtypes[i] for i in rng.integers(0, len(dtypes), 2))
    ndim = 2 if name.endswith("2d") else int(rng.integers(1, 4))
    big = 400 if ndim == 1 else (40 if ndim == 2 else 12)
    s1 = [int(rng.integers(1, big)) for _ in range(ndim)]
    s2 = [int(rng.integers(1, min(big, 20) if rng.random() < 0.7 else big)) for _ in range(ndim)]
    mode = str(rng.choice(["full", "same", "valid"]))
    kwargs = {"mode": mode}
    axes = None
    if name in ("fftconvolve", "oaconvolve") and rng.random() < 0.5:
        picked = sorted(int(x) for x in rng.choice(ndim, int(rng.integers(1, ndim + 1)),
                                                   replace=False))
        for d in range(ndim):
            if d not in picked:
                s2[d] = [s1[d], 1][int(rng.integers(0, 2))]
        axes = picked if rng.random() < 0.5 else [p - ndim for p in picked]
        kwargs["axes"] = axes
    if mode == "valid" and not (all(x >= y for x, y in zip(s1, s2))
                                or all(y >= x for x, y in zip(s1, s2))):
        s2 = [min(x, y) for x, y in zip(s1, s2)]
    if name.endswith("2d"):
        kwargs["boundary"] = str(rng.choice(["fill", "wrap", "symm"]))
        kwargs["fillvalue"] = 0 if rng.random() < 0.5 else int(rng.integers(-3, 4))
        if mode == "valid":
            s2 = [min(x, y) for x, y in zip(s1, s2)]  # no swap: in1 contains in2
    elif name in ("convolve", "correlate"):
        kwargs["method"] = str(rng.choice(["auto", "direct", "fft", "oa"]))
        if integer and kwargs["method"] in ("fft", "oa"):
            kwargs["method"] = "direct"
    return name, array(rng, s1, d1), array(rng, s2, d2), kwargs


# ---------------------------------------------------------------------------


def wrap(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Exact integer sums reduced to ``dtype``'s two's-complement range, as
    numpy's integer arithmetic wraps them."""
    bits = 8 * dtype.itemsize
    offset = 1 << (bits - 1) if dtype.kind == "i" else 0
    reduced = [((int(v) + offset) % (1 << bits)) - offset for v in values.ravel()]
    return np.array(reduced, dtype=dtype).reshape(values.shape)


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    if out.shape != ref.shape:
        return float("inf")
    if ref.size == 0:
        return 0.0
    ref = ref.astype(np.complex128 if np.iscomplexobj(ref) else np.float64)
    scale = max(1.0, float(np.abs(ref).max()))
    return float(np.abs(out.astype(ref.dtype) - ref).max()) / scale


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, action="append", required=True,
                        help="random seed (repeat for several runs)")
    parser.add_argument("--cases", type=int, default=400, help="cases per seed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    stats = defaultdict(lambda: {"cases": 0, "scipy": 0.0, "independent": 0.0})
    failures = []
    for seed in args.seed:
        rng = np.random.default_rng(seed)
        for case in range(args.cases):
            name, a, b, kwargs = draw(rng)
            ours = getattr(signal, name)(torch.from_numpy(a), torch.from_numpy(b), **kwargs)
            ours = ours.numpy()
            ref_kwargs = {k: v for k, v in kwargs.items() if k != "method"}
            if kwargs.get("method") in ("fft", "oa"):
                ref_kwargs["method"] = "fft"
            elif "method" in kwargs:
                ref_kwargs["method"] = kwargs["method"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = np.asarray(getattr(scipy.signal, name)(a, b, **ref_kwargs))
            second = np.asarray(independent(name, a, b, kwargs["mode"], kwargs.get("axes"),
                                            kwargs.get("boundary", "fill"),
                                            kwargs.get("fillvalue", 0)))
            integer = ours.dtype.kind in "biu"
            if integer:
                second = wrap(second, ours.dtype)
            e_scipy = relative_error(ours, expected)
            e_second = relative_error(ours, second)
            single = any(x.dtype in (np.float32, np.complex64) for x in (a, b))
            tol = 0.0 if integer else (1e-4 if single else 1e-9)
            kind = "int" if integer else ("single" if single else "double")
            entry = stats[(name, kind)]
            entry["cases"] += 1
            entry["scipy"] = max(entry["scipy"], e_scipy)
            entry["independent"] = max(entry["independent"], e_second)
            if ours.dtype != expected.dtype or e_scipy > tol or e_second > tol:
                failures.append((seed, case, name, a.shape, a.dtype, b.shape, b.dtype, kwargs,
                                 ours.dtype, expected.dtype, e_scipy, e_second))
    print(f"seeds {args.seed}, {args.cases} cases each\n")
    print(f"{'function':<12} {'inputs':<7} {'cases':>6} {'max err vs scipy':>17} "
          f"{'max err vs independent':>23}")
    for (name, kind), entry in sorted(stats.items()):
        print(f"{name:<12} {kind:<7} {entry['cases']:>6} {entry['scipy']:>17.2e} "
              f"{entry['independent']:>23.2e}")
    print(f"\ntotal cases: {sum(e['cases'] for e in stats.values())}, failures: {len(failures)}")
    for failure in failures[:20]:
        print("FAIL", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
