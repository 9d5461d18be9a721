"""Turning the arguments of the signal functions into tensors of one dtype.

scipy.signal returns ``numpy.result_type(in1, in2)``; torch's
:func:`torch.promote_types` follows the same rules for the dtypes supported
here (float32 with float64 gives float64, float32 with complex64 gives
complex64, float64 with complex64 gives complex128).
"""

from __future__ import annotations

import torch
from torch import Tensor

SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
# Written out rather than dtype.to_real()/to_complex(), which torch.compile cannot trace.
REAL_DTYPE = {torch.float32: torch.float32, torch.float64: torch.float64,
              torch.complex64: torch.float32, torch.complex128: torch.float64}
COMPLEX_DTYPE = {torch.float32: torch.complex64, torch.float64: torch.complex128,
                 torch.complex64: torch.complex64, torch.complex128: torch.complex128}


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


def result_dtype(in1: Tensor, in2: Tensor, op: str) -> torch.dtype:
    """The dtype of the result, after checking both inputs are supported and
    share a device."""
    for name, tensor in (("in1", in1), ("in2", in2)):
        if tensor.dtype not in SUPPORTED_DTYPES:
            raise TypeError(
                f"{op}: {name} has dtype {tensor.dtype}; supported dtypes are float32, "
                "float64, complex64 and complex128 (convert integer or half-precision "
                "inputs first)")
    if in1.device != in2.device:
        raise ValueError(f"{op}: in1 and in2 must be on the same device, got {in1.device} "
                         f"and {in2.device}")
    return torch.promote_types(in1.dtype, in2.dtype)


def to_precision(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    """``tensor`` at the precision of ``dtype``, keeping it real if it is real.

    The direct engine convolves real and imaginary parts separately, so a real
    input need not be promoted to complex (which would double its work)."""
    target = dtype if tensor.is_complex() else REAL_DTYPE[dtype]
    return tensor if tensor.dtype == target else tensor.to(target)
