"""torchflip.signal against scipy.signal: values, shapes, dtypes and errors.

Every case is drawn from a seeded generator and compared with scipy.signal
on the same numbers; scipy is the reference, never torchflip itself.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.fft
import scipy.signal
import torch

from torchflip import signal

NUMPY_OF = {torch.float32: np.float32, torch.float64: np.float64,
            torch.complex64: np.complex64, torch.complex128: np.complex128}
DTYPES = list(NUMPY_OF)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_array(rng, shape, dtype) -> np.ndarray:
    values = rng.standard_normal(shape)
    if NUMPY_OF[dtype] in (np.complex64, np.complex128):
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(NUMPY_OF[dtype])


def tolerance(*arrays) -> float:
    single = any(a.dtype in (np.float32, np.complex64) for a in arrays)
    return 2e-4 if single else 1e-10


def assert_matches(out: torch.Tensor, ref: np.ndarray, *inputs) -> None:
    ref = np.asarray(ref)
    assert tuple(out.shape) == ref.shape
    assert NUMPY_OF[out.dtype] == ref.dtype
    tol = tolerance(*inputs)
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    np.testing.assert_allclose(out.detach().cpu().numpy(), ref, rtol=tol, atol=tol * scale)


def run_both(reference, ours):
    """Run scipy and torchflip; both must raise the same exception type or
    both return, in which case the results are returned."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = reference()
    except Exception as error:  # noqa: BLE001  (scipy's exception type is the specification)
        with pytest.raises(type(error)):
            ours()
        return None, None
    return expected, ours()


def shape_pair(rng, ndim: int, long: bool):
    s1 = [int(v) for v in rng.integers(1, 7, ndim)]
    s2 = [int(v) for v in rng.integers(1, 7, ndim)]
    if long:  # one long axis so that overlap-add really splits
        axis = int(rng.integers(0, ndim))
        s1[axis] = int(rng.integers(60, 400 if ndim == 1 else 120))
        s2[axis] = int(rng.integers(2, 24))
        if rng.random() < 0.3:
            s1, s2 = s2, s1
    return tuple(s1), tuple(s2)


def nd_cases(count: int, seed: int):
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        ndim = int(rng.choice([1, 1, 2, 2, 3, 4]))
        s1, s2 = shape_pair(rng, ndim, long=rng.random() < 0.35 and ndim <= 3)
        d1, d2 = (DTYPES[int(i)] for i in rng.integers(0, 4, 2))
        cases.append(pytest.param(index, s1, s2, d1, d2,
                                  id=f"{index}-{s1}-{s2}-{d1}-{d2}".replace("torch.", "")))
    return cases


@pytest.mark.parametrize("seed,shape1,shape2,dtype1,dtype2", nd_cases(120, 0))
@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_convolve_correlate_match_scipy(name, seed, shape1, shape2, dtype1, dtype2):
    rng = np.random.default_rng(1000 + seed)
    a, b = random_array(rng, shape1, dtype1), random_array(rng, shape2, dtype2)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    for mode in ("full", "same", "valid"):
        for method in ("auto", "direct", "fft", "oa"):
            if method != "direct" and len(shape1) > 3 and max(a.size, b.size) > 200:
                continue
            expected, out = run_both(
                lambda mode=mode: getattr(scipy.signal, name)(a, b, mode, "direct"),
                lambda mode=mode, method=method: getattr(signal, name)(ta, tb, mode, method))
            if expected is not None:
                assert_matches(out, expected, a, b)


def axes_cases(count: int, seed: int):
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        ndim = int(rng.integers(1, 4))
        s1, s2 = (list(s) for s in shape_pair(rng, ndim, long=rng.random() < 0.4))
        draw = rng.random()
        if draw < 0.25:
            axes = None
        elif draw < 0.45:
            axes = int(rng.integers(-ndim, ndim))
        else:
            picked = [int(a) for a in rng.choice(ndim, int(rng.integers(1, ndim + 1)),
                                                replace=False)]
            axes = [a - ndim if rng.random() < 0.3 else a for a in picked]
        convolved = range(ndim) if axes is None else [
            a % ndim for a in ([axes] if isinstance(axes, int) else axes)]
        for d in range(ndim):  # mostly broadcastable, sometimes not (an error case)
            if d not in convolved and rng.random() < 0.85:
                s2[d] = [s1[d], 1, s2[d]][int(rng.integers(0, 2))]
                if rng.random() < 0.3:
                    s1[d], s2[d] = 1, s1[d]
        d1, d2 = (DTYPES[int(i)] for i in rng.integers(0, 4, 2))
        cases.append(pytest.param(index, tuple(s1), tuple(s2), axes, d1, d2,
                                  id=f"{index}-{tuple(s1)}-{tuple(s2)}-{axes}"))
    return cases


@pytest.mark.parametrize("seed,shape1,shape2,axes,dtype1,dtype2", axes_cases(100, 1))
@pytest.mark.parametrize("name", ["fftconvolve", "oaconvolve"])
def test_fftconvolve_oaconvolve_axes_match_scipy(name, seed, shape1, shape2, axes, dtype1,
                                                 dtype2):
    rng = np.random.default_rng(2000 + seed)
    a, b = random_array(rng, shape1, dtype1), random_array(rng, shape2, dtype2)
    for mode in ("full", "same", "valid"):
        expected, out = run_both(
            lambda mode=mode: getattr(scipy.signal, name)(a, b, mode=mode, axes=axes),
            lambda mode=mode: getattr(signal, name)(torch.from_numpy(a), torch.from_numpy(b),
                                                    mode=mode, axes=axes))
        if expected is not None:
            assert_matches(out, expected, a, b)


def cases_2d(count: int, seed: int):
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        big = rng.random() < 0.15
        s1 = tuple(int(v) for v in rng.integers(1, 40 if big else 8, 2))
        s2 = tuple(int(v) for v in rng.integers(1, 8, 2))
        if rng.random() < 0.2:
            s1, s2 = s2, s1
        d1, d2 = (DTYPES[int(i)] for i in rng.integers(0, 4, 2))
        cases.append(pytest.param(index, s1, s2, d1, d2, id=f"{index}-{s1}-{s2}"))
    return cases


@pytest.mark.parametrize("seed,shape1,shape2,dtype1,dtype2", cases_2d(60, 2))
@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
def test_convolve2d_correlate2d_match_scipy(name, seed, shape1, shape2, dtype1, dtype2):
    rng = np.random.default_rng(3000 + seed)
    a, b = random_array(rng, shape1, dtype1), random_array(rng, shape2, dtype2)
    complex_result = np.iscomplexobj(a) or np.iscomplexobj(b)
    for mode in ("full", "same", "valid"):
        for boundary in ("fill", "pad", "wrap", "circular", "symm", "symmetric"):
            fillvalue = 0.0 if rng.random() < 0.3 else float(rng.standard_normal())
            if complex_result and rng.random() < 0.5:
                fillvalue = complex(rng.standard_normal(), rng.standard_normal())
            expected, out = run_both(
                lambda mode=mode, boundary=boundary, fillvalue=fillvalue: getattr(
                    scipy.signal, name)(a, b, mode, boundary, fillvalue),
                lambda mode=mode, boundary=boundary, fillvalue=fillvalue: getattr(signal, name)(
                    torch.from_numpy(a), torch.from_numpy(b), mode, boundary, fillvalue))
            if expected is not None:
                assert_matches(out, expected, a, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n,m", [(1000, 7), (3000, 64), (5000, 400), (257, 256), (64, 1000)])
def test_long_signals_all_methods(device, n, m):
    rng = np.random.default_rng(n + m)
    a, b = rng.standard_normal(n), rng.standard_normal(m)
    ta, tb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
    for mode in ("full", "same", "valid"):
        expected = scipy.signal.convolve(a, b, mode, "fft")
        for method in ("auto", "direct", "fft", "oa"):
            assert_matches(signal.convolve(ta, tb, mode, method), expected, a, b)
        assert_matches(signal.oaconvolve(ta, tb, mode), scipy.signal.oaconvolve(a, b, mode), a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_images_all_methods(device):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((90, 70)), rng.standard_normal((9, 4))
    ta, tb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
    for mode in ("full", "same", "valid"):
        expected = scipy.signal.correlate(a, b, mode, "direct")
        for method in ("auto", "direct", "fft", "oa"):
            assert_matches(signal.correlate(ta, tb, mode, method), expected, a, b)
        for boundary in ("fill", "wrap", "symm"):
            assert_matches(signal.convolve2d(ta, tb, mode, boundary, 0.25),
                           scipy.signal.convolve2d(a, b, mode, boundary, 0.25), a, b)


def test_scalars_and_array_likes():
    assert_matches(signal.convolve(torch.tensor(2.0, dtype=torch.float64),
                                   torch.tensor(3.0, dtype=torch.float64)),
                   scipy.signal.convolve(np.float64(2.0), np.float64(3.0)))
    a, b = np.complex128(2 + 1j), np.complex128(3 - 2j)
    assert_matches(signal.correlate(torch.tensor(a), torch.tensor(b)),
                   scipy.signal.correlate(a, b))
    assert_matches(signal.fftconvolve(torch.tensor(a), torch.tensor(b)),
                   scipy.signal.fftconvolve(a, b))
    # Non-tensors go through torch.as_tensor.
    out = signal.convolve([1.0, 2.0, 3.0], torch.tensor([1.0, 1.0]))
    np.testing.assert_allclose(out.numpy(), np.convolve([1, 2, 3], [1, 1]))


@pytest.mark.parametrize("name", ["fftconvolve", "oaconvolve"])
def test_empty_inputs_give_empty_results_like_scipy(name):
    for s1, s2 in [((0,), (3,)), ((2, 0), (1, 3))]:
        expected = getattr(scipy.signal, name)(np.ones(s1), np.ones(s2))
        out = getattr(signal, name)(torch.ones(s1, dtype=torch.float64),
                                    torch.ones(s2, dtype=torch.float64))
        assert_matches(out, expected)


def test_result_dtypes_follow_numpy_promotion():
    for d1 in DTYPES:
        for d2 in DTYPES:
            expected = np.result_type(NUMPY_OF[d1], NUMPY_OF[d2])
            for method in ("direct", "fft", "oa"):
                out = signal.convolve(torch.ones(5, dtype=d1), torch.ones(3, dtype=d2),
                                      method=method)
                assert NUMPY_OF[out.dtype] == expected


ERROR_CASES = [
    # (function name, args, kwargs)
    ("convolve", (np.ones(3), np.ones((2, 2))), {}),
    ("convolve", (np.ones(3), np.ones(2)), {"mode": "bogus"}),
    ("convolve", (np.ones(3), np.ones(2)), {"method": "bogus"}),
    ("convolve", (np.ones((3, 1)), np.ones((1, 3))), {"mode": "valid"}),
    ("correlate", (np.ones((3, 1)), np.ones((1, 3))), {"mode": "valid"}),
    ("correlate", (np.ones(3), np.ones((2, 2))), {}),
    ("correlate", (np.ones(3), np.ones(2)), {"mode": "same", "method": "bogus"}),
    ("fftconvolve", (np.ones(3), np.ones(2)), {"mode": "bogus"}),
    ("fftconvolve", (np.ones(3), np.ones((1, 3))), {}),
    ("fftconvolve", (np.ones((3, 4)), np.ones((5, 3))), {"axes": 1}),
    ("fftconvolve", (np.ones((3, 4)), np.ones((3, 3))), {"axes": [2]}),
    ("fftconvolve", (np.ones((3, 4)), np.ones((3, 3))), {"axes": [-3]}),
    ("fftconvolve", (np.ones((3, 4)), np.ones((3, 3))), {"axes": [1, -1]}),
    ("fftconvolve", (np.ones((3, 4)), np.ones((3, 3))), {"axes": []}),
    ("fftconvolve", (np.ones((3, 4)), np.ones((3, 3))), {"axes": 1.5}),
    ("oaconvolve", (np.ones((3, 4)), np.ones((3, 3))), {"axes": []}),
    ("oaconvolve", (np.ones((30, 4)), np.ones((5, 3))), {"axes": 0}),
    ("convolve2d", (np.ones(3), np.ones((2, 2))), {}),
    ("convolve2d", (np.ones((3, 3)), np.ones((2, 2))), {"mode": "bogus"}),
    ("convolve2d", (np.ones((3, 3)), np.ones((2, 2))), {"boundary": "bogus"}),
    ("convolve2d", (np.ones((3, 3)), np.ones((2, 2))), {"boundary": "reflect"}),
    ("convolve2d", (np.ones((3, 1)), np.ones((1, 3))), {"mode": "valid"}),
    ("convolve2d", (np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": [1.0, 2.0]}),
    ("convolve2d", (np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": 1j}),
    ("correlate2d", (np.ones((3, 3, 1)), np.ones((2, 2, 1))), {}),
    ("correlate2d", (np.ones((3, 3)), np.ones((2, 2))), {"boundary": "mirror"}),
    ("correlate2d", (np.ones((1, 3)), np.ones((3, 1))), {"mode": "valid"}),
    ("choose_conv_method", (np.ones(3), np.ones(2)), {"mode": "bogus"}),
]


@pytest.mark.parametrize("name,args,kwargs", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_errors_match_scipy(name, args, kwargs):
    with pytest.raises(Exception) as scipy_error:
        getattr(scipy.signal, name)(*args, **kwargs)
    tensors = [torch.from_numpy(a) for a in args]
    with pytest.raises(scipy_error.type) as ours:
        getattr(signal, name)(*tensors, **kwargs)
    assert name in str(ours.value) or "valid" in str(ours.value)


def test_errors_beyond_scipy():
    with pytest.raises(TypeError, match="float16"):
        signal.convolve(torch.ones(3, dtype=torch.float16), torch.ones(2))
    with pytest.raises(ValueError, match="empty"):
        signal.convolve(torch.ones(0), torch.ones(2))
    with pytest.raises(ValueError, match="empty"):
        signal.convolve2d(torch.ones(0, 2), torch.ones(2, 2))


def test_next_fast_len_matches_scipy_real():
    for target in list(range(1, 3000)) + [10**6 + 1, 2**20 + 1, 123456789]:
        assert signal.next_fast_len(target) == scipy.fft.next_fast_len(target, real=True)
    with pytest.raises(ValueError):
        signal.next_fast_len(0)


def test_choose_conv_method():
    x, h = torch.randn(200), torch.randn(5)
    assert signal.choose_conv_method(x, h) in ("direct", "fft", "oa")
    assert signal.choose_conv_method(x.numpy(), h.numpy(), mode="valid") in ("direct", "fft", "oa")
    method, times = signal.choose_conv_method(x, h, mode="same", measure=True)
    assert set(times) == {"direct", "fft", "oa"}
    assert all(t > 0 for t in times.values())
    assert method == min(times, key=times.get)
    # What auto picks is what choose_conv_method says, and every choice is valid.
    for shape1, shape2 in [((100,), (3,)), ((2**16,), (1024,)), ((4000,), (3000,)),
                           ((64, 64), (5, 5)), ((300, 300), (40, 40))]:
        a, b = torch.randn(shape1, dtype=torch.float64), torch.randn(shape2, dtype=torch.float64)
        chosen = signal.choose_conv_method(a, b)
        assert chosen in ("direct", "fft", "oa")
        torch.testing.assert_close(signal.convolve(a, b, method=chosen), signal.convolve(a, b))
