r"""scipy.signal's convolution functions on torch tensors: true convolution
(the kernel is flipped), differentiable in both inputs, on CPU and CUDA,
usable under ``torch.compile``.

===========================  ==================================================
:func:`convolve`             N-D convolution; method 'auto', 'direct', 'fft', 'oa'
:func:`correlate`            N-D cross-correlation (conjugates ``in2``)
:func:`fftconvolve`          FFT convolution over chosen axes, with broadcasting
:func:`oaconvolve`           overlap-add convolution over chosen axes
:func:`convolve2d`           2-D convolution with 'fill', 'wrap', 'symm' boundaries
:func:`correlate2d`          2-D cross-correlation with those boundaries
:func:`choose_conv_method`   the method 'auto' picks (cost model or timing)
:func:`next_fast_len`        the next 5-smooth FFT length
===========================  ==================================================

Names, arguments, defaults, shapes, dtypes and errors follow scipy.signal
(see each function for the exact rules, including scipy's centring of
'same' mode). Supported dtypes: float32, float64, complex64, complex128, and
bool, uint8, int8, int16, int32, int64 with scipy's result dtypes
(``numpy.result_type``; exact integer sums for the direct method, wrapping on
overflow as numpy's arithmetic does; see :mod:`torchflip.signal._integer`).
Integer results have no gradient.

Engines: 'direct' runs a multiply-add kernel (``torch.ops.torchflip._fir_window``)
for real 1-D CPU inputs that need no gradient, and otherwise torchflip's conv
op (``torch.ops.torchflip.conv``; complex inputs as real and imaginary
channels); 'fft' and 'oa' run ``torch.ops.torchflip.fft_conv``, whose
backward pass is again an FFT convolution.
"""

from torchflip.signal import _fft_op  # noqa: F401  (registers the fft_conv autograd)
from torchflip.signal._2d import convolve2d, correlate2d
from torchflip.signal._convolve import convolve, correlate
from torchflip.signal._fast_len import next_fast_len
from torchflip.signal._fft import fftconvolve, oaconvolve
from torchflip.signal._method import choose_conv_method

__all__ = [
    "choose_conv_method",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "fftconvolve",
    "next_fast_len",
    "oaconvolve",
]
