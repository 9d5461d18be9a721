"""True convolution against scipy.signal, a reference outside torch.

For one channel, torchflip's convolution with zero padding K-1 is
scipy.signal.convolve(mode='full'), without padding it is mode='valid', and
the transposed convolution (the adjoint of 'valid') is
scipy.signal.correlate(mode='full'). Several channels sum per output channel.
"""

import numpy as np
import pytest
import scipy.signal
import torch

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)
import torchflip.nn.functional as TF

SHAPES = {1: ((13,), (4,)), 2: ((9, 8), (3, 4)), 3: ((6, 5, 7), (2, 3, 3))}
CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
CONV_T = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}


def _arrays(dims, c_in=3, c_out=2):
    size, kernel = SHAPES[dims]
    rng = np.random.default_rng(dims)
    return rng.standard_normal((c_in, *size)), rng.standard_normal((c_out, c_in, *kernel))


def _scipy(fn, x, w, mode):
    """Per output channel o: sum over input channels c of fn(x[c], w[o, c], mode)."""
    return np.stack([sum(fn(x[c], w[o, c], mode=mode, method="direct")
                         for c in range(x.shape[0])) for o in range(w.shape[0])])


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_valid_is_scipy_convolve_valid(dims):
    x, w = _arrays(dims)
    out = CONV[dims](torch.from_numpy(x), torch.from_numpy(w))  # unbatched input
    np.testing.assert_allclose(out.numpy(), _scipy(scipy.signal.convolve, x, w, "valid"),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_padding_k_minus_1_is_scipy_convolve_full(dims):
    x, w = _arrays(dims)
    padding = tuple(k - 1 for k in w.shape[2:])
    out = CONV[dims](torch.from_numpy(x)[None], torch.from_numpy(w), padding=padding)[0]
    np.testing.assert_allclose(out.numpy(), _scipy(scipy.signal.convolve, x, w, "full"),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv_transpose_is_scipy_correlate_full(dims):
    y, _ = _arrays(dims, c_in=3)
    _, w = _arrays(dims, c_in=3, c_out=2)
    w = w.transpose(1, 0, *range(2, w.ndim)).copy()  # (C_in = 3, C_out = 2, *K)
    out = CONV_T[dims](torch.from_numpy(y), torch.from_numpy(w))
    # conv_transpose's input channels index w's first dimension.
    expected = np.stack([sum(scipy.signal.correlate(y[o], w[o, c], mode="full",
                                                    method="direct")
                             for o in range(y.shape[0])) for c in range(w.shape[1])])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_strided_dilated_is_subsampled_scipy_convolution(dims):
    """Dilation d inserts d-1 zeros between kernel taps and stride s keeps
    every s-th output: both are expressible with scipy on the plain arrays."""
    x, w = _arrays(dims, c_in=1, c_out=1)
    stride, dilation = (2,) * dims, (2,) * dims
    dilated = np.zeros([d * (k - 1) + 1 for d, k in zip(dilation, w.shape[2:])])
    dilated[tuple(slice(None, None, d) for d in dilation)] = w[0, 0]
    assert all(n >= k for n, k in zip(x.shape[1:], dilated.shape))
    expected = scipy.signal.convolve(x[0], dilated, mode="valid", method="direct")
    expected = expected[tuple(slice(None, None, s) for s in stride)]
    out = CONV[dims](torch.from_numpy(x), torch.from_numpy(w), stride=stride, dilation=dilation)
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel", [3, 5])
def test_same_odd_kernel_is_scipy_same(kernel):
    rng = np.random.default_rng(kernel)
    x, w = rng.standard_normal((1, 11, 10)), rng.standard_normal((1, 1, kernel, kernel))
    out = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding="same")
    expected = scipy.signal.convolve(x[0], w[0, 0], mode="same", method="direct")
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel", [2, 4])
def test_same_even_kernel_starts_full_output_at_k_over_2(kernel):
    """torch.nn's 'same' for the flipped kernel: the full convolution cropped
    from K//2 (MATLAB's conv 'same'), one sample later than scipy's (K-1)//2."""
    rng = np.random.default_rng(kernel)
    x, w = rng.standard_normal((1, 12)), rng.standard_normal((1, 1, kernel))
    out = TF.conv1d(torch.from_numpy(x), torch.from_numpy(w), padding="same")
    full = scipy.signal.convolve(x[0], w[0, 0], mode="full", method="direct")
    np.testing.assert_allclose(out[0].numpy(), full[kernel // 2: kernel // 2 + 12],
                               rtol=1e-10, atol=1e-10)
