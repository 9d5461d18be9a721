"""torchflip.signal on integer and bool inputs, against scipy.signal.

scipy is the reference for values and dtypes throughout: its direct method
computes integer sums exactly in the result type (wrapping on overflow), its
'fft' method rounds a float64 result, and fftconvolve/oaconvolve return
float64. Where scipy has a quirk that is not reproduced (bool through the
FFT, N-D bool convolution, which scipy refuses), the reference is scipy's
exact int64 direct result compared with zero.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest
import scipy.signal
import torch

from torchflip import signal

INTEGER = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_]
SHAPES = [((40,), (7,)), ((6,), (9,)), ((9, 8), (3, 4)), ((5, 6, 7), (2, 3, 2))]


def draw(rng, shape, dtype, low=-6, high=7):
    if dtype in (np.uint8, np.bool_):
        low = 0
    if dtype is np.bool_:
        high = 2
    return rng.integers(low, high, shape).astype(dtype)


def reference(name, a, b, mode, method):
    """scipy's result; bool (and scipy's FFT of bool) via the exact int64 count."""
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        count = getattr(scipy.signal, name)(a.astype(np.int64), b.astype(np.int64), mode=mode,
                                            method="direct")
        return count != 0
    return getattr(scipy.signal, name)(a, b, mode=mode,
                                       method="fft" if method == "oa" else method)


def assert_equal(out: torch.Tensor, ref: np.ndarray) -> None:
    ref = np.asarray(ref)
    assert out.numpy().dtype == ref.dtype
    assert tuple(out.shape) == ref.shape
    np.testing.assert_array_equal(out.numpy(), ref)


@pytest.mark.parametrize("name", ["convolve", "correlate"])
@pytest.mark.parametrize("method", ["auto", "direct", "fft", "oa"])
@pytest.mark.parametrize("dtype", INTEGER, ids=lambda d: np.dtype(d).name)
def test_integer_inputs_match_scipy_exactly(name, method, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{name}-{method}-{np.dtype(dtype).name}".encode()))
    for shape1, shape2 in SHAPES:
        for mode in ("full", "same", "valid"):
            a, b = draw(rng, shape1, dtype), draw(rng, shape2, dtype)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = reference(name, a, b, mode, method)
            out = getattr(signal, name)(torch.from_numpy(a), torch.from_numpy(b), mode=mode,
                                        method=method)
            assert_equal(out, expected)


@pytest.mark.parametrize("shape1,shape2", [((3000,), (25,)), ((40, 50), (6, 5)),
                                           ((12, 9, 10), (3, 4, 2))])
@pytest.mark.parametrize("method", ["auto", "direct"])
def test_large_int64_values_are_exact(shape1, shape2, method):
    # Sums up to about 2**60: far beyond float64's 2**53, yet no overflow.
    rng = np.random.default_rng(len(shape1))
    a = rng.integers(-2**40, 2**40, shape1)
    b = rng.integers(-2**14, 2**14, shape2)
    for mode in ("full", "same", "valid"):
        expected = scipy.signal.convolve(a, b, mode=mode, method="direct")
        assert np.abs(expected).max() > 2**53
        out = signal.convolve(torch.from_numpy(a), torch.from_numpy(b), mode=mode, method=method)
        assert_equal(out, expected)
        expected = scipy.signal.correlate(a, b, mode=mode, method="direct")
        out = signal.correlate(torch.from_numpy(a), torch.from_numpy(b), mode=mode,
                               method=method)
        assert_equal(out, expected)
    assert signal.choose_conv_method(torch.from_numpy(a), torch.from_numpy(b)) == "direct"


def test_auto_uses_the_fft_only_where_it_rounds_exactly():
    # Large int32 signals with moderate values: the FFT is both faster and
    # exact, and auto may take it; the result must equal scipy's exact sums.
    rng = np.random.default_rng(7)
    a = rng.integers(-1000, 1000, 100_000).astype(np.int32)
    b = rng.integers(-1000, 1000, 5000).astype(np.int32)
    assert signal.choose_conv_method(torch.from_numpy(a), torch.from_numpy(b)) != "direct"
    assert_equal(signal.convolve(torch.from_numpy(a), torch.from_numpy(b)),
                 scipy.signal.convolve(a, b, method="direct"))
    # Values near 2**24 over 5000 taps: the FFT could round wrongly, so direct.
    a = rng.integers(-2**24, 2**24, 100_000)
    b = rng.integers(-2**24, 2**24, 5000)
    assert signal.choose_conv_method(torch.from_numpy(a), torch.from_numpy(b)) == "direct"
    bools = torch.ones(10_000, dtype=torch.bool)
    assert signal.choose_conv_method(bools, bools[:5000]) == "direct"  # as scipy


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32])
def test_overflow_wraps_as_scipy(dtype):
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    for shape1, shape2 in [((50,), (6,)), ((9, 7), (3, 3))]:
        a = rng.integers(info.min // 2, info.max // 2, shape1).astype(dtype)
        b = rng.integers(info.min // 2, info.max // 2, shape2).astype(dtype)
        expected = scipy.signal.convolve(a, b, method="direct")
        out = signal.convolve(torch.from_numpy(a), torch.from_numpy(b), method="direct")
        assert_equal(out, expected)


MIXED = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_, np.float32, np.float64,
         np.complex64, np.complex128]


@pytest.mark.parametrize("name", ["convolve", "correlate", "fftconvolve", "oaconvolve"])
def test_mixed_dtypes_follow_scipy(name):
    rng = np.random.default_rng(11)
    for d1 in MIXED:
        for d2 in MIXED:
            a = draw(rng, (30,), d1) if np.dtype(d1).kind in "biu" else \
                rng.standard_normal(30).astype(d1)
            b = draw(rng, (5,), d2) if np.dtype(d2).kind in "biu" else \
                rng.standard_normal(5).astype(d2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = getattr(scipy.signal, name)(a, b)
            out = getattr(signal, name)(torch.from_numpy(a), torch.from_numpy(b))
            assert out.numpy().dtype == expected.dtype, (d1, d2)
            if expected.dtype.kind in "biu":
                np.testing.assert_array_equal(out.numpy(), expected)
            else:
                # scipy transforms a float32/complex64 input in single precision
                # even when the result is double.
                single = any(d in (np.float32, np.complex64) for d in (a.dtype, b.dtype))
                np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4 if single else 1e-10,
                                           atol=1e-4 if single else 1e-10)


def test_integer_scalars_follow_numpy():
    for d1, d2 in [(np.int8, np.int8), (np.int64, np.float32), (np.uint8, np.int8),
                   (np.bool_, np.bool_)]:
        expected = scipy.signal.convolve(np.array(3, d1), np.array(2, d2))
        out = signal.convolve(torch.from_numpy(np.array(3, d1)), torch.from_numpy(np.array(2, d2)))
        assert out.numpy().dtype == np.asarray(expected).dtype
        assert out.item() == expected


@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8],
                         ids=lambda d: np.dtype(d).name)
def test_2d_integer_boundaries_and_fillvalues_match_scipy(name, dtype):
    rng = np.random.default_rng(np.dtype(dtype).itemsize)
    for boundary in ("fill", "wrap", "symm"):
        for mode in ("full", "same", "valid"):
            for fillvalue in (0, 3, -2.7, 127.5, 300, -1, 2 + 0j):
                a = draw(rng, (7, 6), dtype, -30, 30)
                b = draw(rng, (3, 4), dtype, -30, 30)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        expected = getattr(scipy.signal, name)(a, b, mode, boundary, fillvalue)
                except ValueError:
                    with pytest.raises(ValueError, match="fillvalue"):
                        getattr(signal, name)(torch.from_numpy(a), torch.from_numpy(b), mode,
                                              boundary, fillvalue)
                    continue
                out = getattr(signal, name)(torch.from_numpy(a), torch.from_numpy(b), mode,
                                            boundary, fillvalue)
                assert_equal(out, expected)


def test_2d_bool_is_refused_like_scipy():
    a = np.ones((3, 3), dtype=bool)
    with pytest.raises(ValueError):
        scipy.signal.convolve2d(a, a)
    with pytest.raises(ValueError, match="bool"):
        signal.convolve2d(torch.from_numpy(a), torch.from_numpy(a))


def test_integer_input_with_float_weights_keeps_the_float_gradient():
    # Integer tensors cannot require gradients; a floating partner still gets
    # its gradient: d/dh sum(x * h) = sum of the x samples each tap meets.
    x = torch.arange(1, 6)  # int64 -> result float64 (numpy promotion)
    h = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    out = signal.convolve(x, h)
    assert out.dtype == torch.float64
    out.sum().backward()
    expected = np.full(2, np.arange(1, 6).sum(), dtype=np.float64)
    np.testing.assert_allclose(h.grad.numpy(), expected)
