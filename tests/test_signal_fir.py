"""The multiply-add kernel behind 1-D direct convolution
(``torch.ops.torchflip._fir_window``, csrc/fir_window.cpp), against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from torchflip import signal


def window_of(full: np.ndarray, start: int, length: int) -> np.ndarray:
    """full[start : start + length], zero outside the support."""
    return np.array([full[i] if 0 <= i < len(full) else 0 for i in range(start, start + length)],
                    dtype=full.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_windows_match_numpy(dtype, threads):
    # `threads` (conftest): with 3, outputs of several 2048-sample blocks
    # are split between threads.
    rng = np.random.default_rng(0)
    for n, m in [(1, 1), (5, 3), (3, 5), (10, 4), (9, 8), (100, 7), (5000, 33), (4100, 4)]:
        if dtype == torch.int64:
            x, w = rng.integers(-2**40, 2**40, n), rng.integers(-2**20, 2**20, m)
        else:
            x, w = rng.standard_normal(n), rng.standard_normal(m)
        full = np.convolve(x, w)
        tx, tw = torch.from_numpy(x).to(dtype), torch.from_numpy(w).to(dtype)
        for start, length in [(0, n + m - 1), ((m - 1) // 2, n), (m - 1, max(0, n - m + 1)),
                              (-3, n + m + 5), (n + m + 2, 4), (2, 1), (0, 0)]:
            out = torch.ops.torchflip._fir_window(tx, tw, start, length)
            expected = window_of(full, start, length)
            if dtype == torch.int64:
                np.testing.assert_array_equal(out.numpy(), expected)
            else:
                tol = 1e-4 if dtype == torch.float32 else 1e-12
                np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol * max(
                    1.0, np.abs(full).max()))


def test_argument_errors():
    x = torch.ones(4)
    with pytest.raises(TypeError, match="dtype"):
        torch.ops.torchflip._fir_window(x, torch.ones(2, dtype=torch.float64), 0, 5)
    with pytest.raises(TypeError, match="float32, float64 or int64"):
        torch.ops.torchflip._fir_window(x.int(), torch.ones(2, dtype=torch.int32), 0, 5)
    with pytest.raises(ValueError, match="1-D"):
        torch.ops.torchflip._fir_window(x.view(2, 2), torch.ones(2), 0, 5)
    with pytest.raises(ValueError, match="length"):
        torch.ops.torchflip._fir_window(x, torch.ones(2), 0, -1)


def test_gradient_path_and_kernel_path_agree_with_scipy():
    # Without a gradient the kernel runs; with one, the conv op: both are
    # checked against scipy, for each mode.
    rng = np.random.default_rng(1)
    x, h = rng.standard_normal(3000), rng.standard_normal(11)
    for mode in ("full", "same", "valid"):
        expected = scipy.signal.convolve(x, h, mode=mode, method="direct")
        plain = signal.convolve(torch.from_numpy(x), torch.from_numpy(h), mode, "direct")
        hg = torch.from_numpy(h).requires_grad_()
        tracked = signal.convolve(torch.from_numpy(x), hg, mode, "direct")
        assert tracked.requires_grad and not plain.requires_grad
        for out in (plain, tracked):
            np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
