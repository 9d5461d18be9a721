"""Turning the arguments of the signal functions into tensors of one dtype.

scipy.signal returns ``numpy.result_type(in1, in2)``, which this module
reproduces for the supported dtypes:

* floating and complex: float32, float64, complex64, complex128, promoted
  as :func:`torch.promote_types` does (float32 with complex64 gives
  complex64, float64 with complex64 complex128);
* integer: bool, uint8, int8, int16, int32, int64, promoted among
  themselves as torch does (uint8 with int8 gives int16);
* integer with floating or complex, where numpy and torch differ: numpy
  picks a floating type that holds every value of the integer type, so
  bool, uint8, int8 and int16 count as float32 and int32 and int64 as
  float64 (int64 with float32 gives float64, torch would say float32).

scipy.signal's FFT functions (fftconvolve, oaconvolve) transform integer and
bool inputs as float64 (scipy.fft's rule), whatever the other input is:
:func:`fft_result_dtype`.
"""

from __future__ import annotations

import torch
from torch import Tensor

FLOATING_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
INTEGER_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
SUPPORTED_DTYPES = FLOATING_DTYPES + INTEGER_DTYPES
# Written out rather than dtype.to_real()/to_complex(), which torch.compile cannot trace.
REAL_DTYPE = {torch.float32: torch.float32, torch.float64: torch.float64,
              torch.complex64: torch.float32, torch.complex128: torch.float64}
COMPLEX_DTYPE = {torch.float32: torch.complex64, torch.float64: torch.complex128,
                 torch.complex64: torch.complex64, torch.complex128: torch.complex128}
# The smallest floating type numpy considers able to hold an integer type.
_FLOAT_OF_INTEGER = {torch.bool: torch.float32, torch.uint8: torch.float32,
                     torch.int8: torch.float32, torch.int16: torch.float32,
                     torch.int32: torch.float64, torch.int64: torch.float64}


def as_tensor(value, name: str, op: str) -> Tensor:
    """``value`` as a tensor (tensors pass through untouched, so autograd and
    the device are kept; anything else goes through :func:`torch.as_tensor`)."""
    if isinstance(value, Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{op}: {name} must be a tensor or array-like, got "
                        f"{type(value).__name__}") from error


def is_integral(dtype: torch.dtype) -> bool:
    """bool or an integer dtype (the exact-arithmetic results)."""
    return dtype in _FLOAT_OF_INTEGER


def numpy_result_type(dtype1: torch.dtype, dtype2: torch.dtype) -> torch.dtype:
    """``numpy.result_type`` of two supported dtypes (see the module docstring)."""
    if dtype1 == dtype2:
        return dtype1
    integral1, integral2 = is_integral(dtype1), is_integral(dtype2)
    if integral1 != integral2:
        if integral1:
            dtype1 = _FLOAT_OF_INTEGER[dtype1]
        else:
            dtype2 = _FLOAT_OF_INTEGER[dtype2]
    return torch.promote_types(dtype1, dtype2)


def check_inputs(in1: Tensor, in2: Tensor, op: str) -> None:
    """Both inputs have a supported dtype and share a device."""
    for name, tensor in (("in1", in1), ("in2", in2)):
        if tensor.dtype not in SUPPORTED_DTYPES:
            raise TypeError(
                f"{op}: {name} has dtype {tensor.dtype}; supported dtypes are float32, "
                "float64, complex64, complex128, bool, uint8, int8, int16, int32 and int64 "
                "(convert half-precision inputs first)")
    if in1.device != in2.device:
        raise ValueError(f"{op}: in1 and in2 must be on the same device, got {in1.device} "
                         f"and {in2.device}")


def result_dtype(in1: Tensor, in2: Tensor, op: str) -> torch.dtype:
    """The dtype of the result (``numpy.result_type``), after checking both
    inputs are supported and share a device."""
    check_inputs(in1, in2, op)
    return numpy_result_type(in1.dtype, in2.dtype)


def fft_result_dtype(in1: Tensor, in2: Tensor, op: str) -> torch.dtype:
    """The dtype of fftconvolve's and oaconvolve's result: integer and bool
    inputs count as float64."""
    check_inputs(in1, in2, op)
    d1 = torch.float64 if is_integral(in1.dtype) else in1.dtype
    d2 = torch.float64 if is_integral(in2.dtype) else in2.dtype
    return torch.promote_types(d1, d2)


def to_precision(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    """``tensor`` at the precision of the floating or complex ``dtype``,
    keeping it real if it is real (integer tensors become real floating).

    The direct engine convolves real and imaginary parts separately, so a real
    input need not be promoted to complex (which would double its work)."""
    target = dtype if tensor.is_complex() else REAL_DTYPE[dtype]
    return tensor if tensor.dtype == target else tensor.to(target)
