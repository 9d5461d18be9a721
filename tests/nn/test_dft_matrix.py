"""The FFT engine's matrix-product transforms (torchflip/nn/_dft_matrix.py),
against torch.fft in float64."""

import math

import pytest
import torch

from torchflip.nn import _dft_matrix as dft_matrix
from torchflip.nn import _fft_conv as engine


@pytest.mark.parametrize("length,taps", [(8, 1), (8, 3), (16, 5), (64, 15), (288, 31)])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_spectrum_matrix_is_the_zero_padded_fft(length, taps, dtype):
    data = torch.randn(3, taps, 7, dtype=torch.complex128)
    matrix = dft_matrix.spectrum_matrix(length, taps, dtype, data.device)
    got = dft_matrix.along_axis(data.to(dtype), 1, matrix)
    expected = torch.fft.fft(data, n=length, dim=1)
    tol = 1e-6 if dtype == torch.complex64 else 1e-12
    assert got.shape == (3, length, 7) and got.is_contiguous()
    torch.testing.assert_close(got.to(torch.complex128), expected, rtol=0,
                               atol=tol * float(expected.abs().max()))


@pytest.mark.parametrize("length,start,count", [
    (8, 0, 3), (8, 6, 5), (16, -4, 7), (64, -14, 15), (288, 270, 31), (288, -300, 31)])
def test_window_matrix_is_a_cyclic_window_of_the_inverse(length, start, count):
    spectrum = torch.randn(2, length, 5, dtype=torch.complex128)
    matrix = dft_matrix.window_matrix(length, start, count, spectrum.dtype, spectrum.device)
    got = dft_matrix.along_axis(spectrum, 1, matrix)
    full = torch.fft.ifft(spectrum, dim=1)
    expected = full[:, [(start + j) % length for j in range(count)]]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12 * float(full.abs().max()))


def test_along_axis_contracts_a_middle_axis():
    data = torch.randn(2, 3, 4, 5, 6, dtype=torch.complex128)
    matrix = torch.randn(7, 4, dtype=torch.complex128)
    got = dft_matrix.along_axis(data, 2, matrix)
    torch.testing.assert_close(got, torch.einsum("mk,abkcd->abmcd", matrix, data))


def test_cheaper_takes_short_axes_only():
    assert dft_matrix.cheaper(31, 288)
    assert not dft_matrix.cheaper(63, 288)
    assert not dft_matrix.cheaper(8, 8)  # no zero padding: nothing to skip
    ratio = dft_matrix.MATRIX_MAX_LOG_RATIO
    assert dft_matrix.cheaper(math.floor(ratio * math.log2(160)), 160)
    assert not dft_matrix.cheaper(math.floor(ratio * math.log2(160)) + 1, 160)


@pytest.mark.parametrize("lengths,shape", [((288, 288), (2, 31, 31)), ((16, 20, 24), (1, 3, 4, 5)),
                                          ((64, 64, 64), (2, 15, 15, 15))])
def test_engine_transform_takes_the_product_and_matches_rfftn(lengths, shape):
    """_rfft and _irfft_window (the engine's transforms) over axes short
    enough for the product, against torch.fft in float64."""
    data = torch.randn(shape, dtype=torch.float64)
    assert all(dft_matrix.cheaper(k, n) for k, n in zip(shape[1:-1], lengths[:-1]))
    dims = list(range(1, len(shape)))
    spectrum = engine._rfft(data, lengths)
    torch.testing.assert_close(spectrum, torch.fft.rfftn(data, s=lengths, dim=dims))
    start = [-(k // 2) for k in shape[1:]]
    window = engine._irfft_window(spectrum, lengths, start, shape[1:])
    full = torch.fft.irfftn(spectrum, s=lengths, dim=dims)
    index = torch.meshgrid(*[torch.arange(a, a + k) % n
                             for a, k, n in zip(start, shape[1:], lengths)], indexing="ij")
    torch.testing.assert_close(window, full[(slice(None),) + index])


def test_matrices_made_in_inference_mode_serve_autograd():
    """A matrix first made under torch.inference_mode is cached; a later
    call that records a graph must be able to save it for backward."""
    dft_matrix._exponentials.cache_clear()
    with torch.inference_mode():
        dft_matrix.spectrum_matrix(32, 5, torch.complex128, torch.device("cpu"))
    data = torch.randn(5, 3, dtype=torch.complex128, requires_grad=True)
    torch.autograd.gradcheck(
        lambda d: dft_matrix.along_axis(
            d, 0, dft_matrix.spectrum_matrix(32, 5, torch.complex128, torch.device("cpu"))),
        (data,))
