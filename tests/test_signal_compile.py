"""torchflip.signal under torch.compile(fullgraph=True), and the fft_conv
operator's registration checked by torch.library.opcheck."""

from __future__ import annotations

import pytest
import torch
from torch.library import opcheck

from torchflip import signal
from torchflip.signal._fast_len import next_fast_len
from torchflip.signal._fft_op import alias_free_length


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("shape1,shape2,axes,start,length", [
    ((2, 5, 3), (1, 4, 2), [1, 2], [0, 0], [8, 4]),     # full
    ((2, 5, 3), (1, 4, 2), [1, 2], [1, 0], [5, 3]),     # 'same'-like
    ((2, 5, 3), (1, 5, 2), [2], [1], [2]),              # 'valid' on one axis, broadcasting
    ((2, 5, 3), (1, 4, 2), [-2, -1], [-2, 1], [9, 6]),  # a window reaching past both ends
    ((3, 9), (3, 4), [1], [0], [12]),                   # one axis, equal batch: stacked rfft
    ((2, 2), (2, 9), [1], [4], [2]),                    # FFT length shorter than in2
])
def test_opcheck_fft_conv(dtype, shape1, shape2, axes, start, length):
    in1 = torch.randn(*shape1, dtype=dtype, requires_grad=True)
    in2 = torch.randn(*shape2, dtype=dtype, requires_grad=True)
    fft_shape = [next_fast_len(alias_free_length(in1.shape[a] + in2.shape[a] - 1, s, n))
                 for a, s, n in zip(axes, start, length)]
    opcheck(torch.ops.torchflip.fft_conv.default, (in1, in2, axes, start, length, fft_shape))


def test_fft_conv_rejects_aliasing_fft_length():
    x, h = torch.randn(7, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="alias"):
        torch.ops.torchflip.fft_conv(x, h, [0], [0], [9], [8])


CASES = {
    "convolve-auto": lambda x, h: signal.convolve(x, h, "same"),
    "correlate-direct": lambda x, h: signal.correlate(x, h, "full", "direct"),
    "fftconvolve": lambda x, h: signal.fftconvolve(x, h, "valid"),
    "oaconvolve": lambda x, h: signal.oaconvolve(x, h, "full"),
    "convolve2d-symm": lambda x, h: signal.convolve2d(x.view(12, 25), h.view(3, 3), "same", "symm"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compile_fullgraph_forward_and_backward(name):
    fn = CASES[name]
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    x = torch.randn(300, dtype=torch.float64, requires_grad=True)
    h = torch.randn(9, dtype=torch.float64, requires_grad=True)
    out = compiled(x, h)
    grads = torch.autograd.grad(out.square().sum(), (x, h))
    expected = fn(x, h)
    expected_grads = torch.autograd.grad(expected.square().sum(), (x, h))
    torch.testing.assert_close(out, expected)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)


def test_compile_inductor_fftconvolve():
    torch._dynamo.reset()
    fn = lambda x, h: signal.fftconvolve(x, h, "same")  # noqa: E731
    compiled = torch.compile(fn, fullgraph=True)
    x = torch.randn(4, 200, dtype=torch.complex64)
    h = torch.randn(1, 15, dtype=torch.float32)
    torch.testing.assert_close(compiled(x, h), fn(x, h))
