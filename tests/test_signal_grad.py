"""Gradients of torchflip.signal: gradcheck and gradgradcheck on every
function and engine, torch.func transforms, and the FFT backward staying on
the FFT (no direct convolution in the backward pass).

Most checks use gradcheck's fast mode (Jacobian-vector products against
finite differences along random directions) to keep the suite quick; one
test per engine compares the full Jacobians."""

from __future__ import annotations

import pytest
import torch
import torch.func
from torch.autograd import gradcheck, gradgradcheck
from torch.utils._python_dispatch import TorchDispatchMode

from torchflip import signal

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
KINDS = {"real": (False, False), "complex-real": (True, False), "real-complex": (False, True),
         "complex": (True, True)}


def leaf(*shape, complex_=False, device="cpu", seed=0):
    generator = torch.Generator().manual_seed(seed)
    dtype = torch.complex128 if complex_ else torch.float64
    return torch.randn(*shape, dtype=dtype, generator=generator).to(device).requires_grad_()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("method", ["direct", "fft", "oa"])
@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_gradcheck_convolve_correlate(name, method, kind, device):
    c1, c2 = KINDS[kind]
    fn = getattr(signal, name)
    # (90,) with (5,) makes overlap-add split into blocks.
    for shape1, shape2 in [((90,), (5,)), ((6, 5), (3, 2)), ((3, 4, 2), (2, 3, 2))]:
        a, b = leaf(*shape1, complex_=c1, device=device), leaf(*shape2, complex_=c2,
                                                              device=device, seed=1)
        for mode in ("full", "same", "valid"):
            assert gradcheck(lambda a, b, mode=mode: fn(a, b, mode, method), (a, b),
                             fast_mode=True)


@pytest.mark.parametrize("method", ["direct", "fft", "oa"])
def test_gradcheck_full_jacobian(method):
    for c1, c2 in [(False, False), (True, True)]:
        a, b = leaf(9, complex_=c1), leaf(4, complex_=c2, seed=1)
        for mode in ("full", "same", "valid"):
            assert gradcheck(lambda a, b, mode=mode: signal.convolve(a, b, mode, method), (a, b))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["fftconvolve", "oaconvolve"])
def test_gradcheck_fft_functions_with_axes_and_broadcasting(name, device):
    fn = getattr(signal, name)
    cases = [((90,), (5,), None), ((3, 80), (1, 4), 1), ((2, 70), (2, 4), [-1]),
             ((2, 9, 3), (1, 3, 3), [1]), ((7, 6), (3, 2), None)]
    for shape1, shape2, axes in cases:
        for c1, c2 in KINDS.values():
            a = leaf(*shape1, complex_=c1, device=device)
            b = leaf(*shape2, complex_=c2, device=device, seed=1)
            for mode in ("full", "same", "valid"):
                assert gradcheck(lambda a, b, mode=mode, axes=axes: fn(a, b, mode, axes), (a, b),
                                 fast_mode=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
def test_gradcheck_2d_boundaries(name, device):
    fn = getattr(signal, name)
    for boundary in ("fill", "wrap", "symm"):
        for c1, c2 in [(False, False), (True, False), (False, True)]:
            a = leaf(5, 4, complex_=c1, device=device)
            b = leaf(3, 6, complex_=c2, device=device, seed=1)
            for mode in ("full", "same"):
                assert gradcheck(lambda a, b, mode=mode, boundary=boundary: fn(a, b, mode, boundary, 0.5),
                                 (a, b),
                                 fast_mode=True)
            b_small = leaf(2, 3, complex_=c2, device=device, seed=1)
            assert gradcheck(lambda a, b, boundary=boundary: fn(a, b, "valid", boundary), (a, b_small),
                             fast_mode=True)


@pytest.mark.parametrize("method", ["direct", "fft", "oa"])
def test_gradgradcheck(method):
    for c1, c2 in [(False, False), (True, True)]:
        a, b = leaf(70, complex_=c1), leaf(4, complex_=c2, seed=1)
        for mode in ("full", "same", "valid"):
            assert gradgradcheck(lambda a, b, mode=mode: signal.convolve(a, b, mode, method), (a, b),
                                 fast_mode=True)
    a, b = leaf(6, 5), leaf(2, 3, seed=1)
    assert gradgradcheck(lambda a, b: signal.convolve2d(a, b, "same", "wrap"), (a, b),
                         fast_mode=True)


class RecordOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", ["fft", "oa"])
def test_fft_backward_is_fft_based(method):
    a, b = leaf(500), leaf(40, seed=1)
    out = signal.convolve(a, b, "same", method)
    with RecordOps() as record:
        out.backward(torch.ones_like(out))
    assert any("fft_conv" in op for op in record.ops)
    assert not any("conv" in op and "fft_conv" not in op for op in record.ops), record.ops
    assert a.grad is not None and b.grad is not None


@pytest.mark.parametrize("method", ["direct", "fft", "oa"])
def test_torch_func_grad_jacfwd_vmap(method):
    x = torch.randn(90, dtype=torch.float64)
    h = torch.randn(5, dtype=torch.float64)

    def loss(x):
        return signal.convolve(x, h, "same", method).pow(2).sum()

    xr = x.clone().requires_grad_()
    expected = torch.autograd.grad(loss(xr), xr)[0]
    torch.testing.assert_close(torch.func.grad(loss)(x), expected)
    jacobian = torch.func.jacrev(lambda x: signal.convolve(x, h, "same", method))(x)
    torch.testing.assert_close(torch.func.jacfwd(lambda x: signal.convolve(x, h, "same",
                                                                             method))(x),
                               jacobian)
    batch = torch.randn(3, 90, dtype=torch.float64)
    torch.testing.assert_close(
        torch.func.vmap(lambda x: signal.convolve(x, h, "full", method))(batch),
        torch.stack([signal.convolve(row, h, "full", method) for row in batch]))
