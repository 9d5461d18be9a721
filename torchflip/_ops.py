"""The thin layer between the public Python API and the compiled operators.

Every torchflip computation goes through :func:`conv` or
:func:`conv_transpose` here, which pick how autograd is attached:

* normally (eager, torch.compile, torch.export, TorchScript tracing), the
  public operator ``torch.ops.torchflip.conv`` / ``conv_transpose`` runs, with
  its C++ autograd kernel;
* under a torch.func transform or forward-mode AD, which cannot enter C++
  autograd functions, the same compiled kernels run through the Python
  autograd.Functions of :mod:`torchflip._autograd`.

Arguments arrive normalised: one int per spatial dimension.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor
from torch.autograd import forward_ad

from torchflip import _autograd, _inductor


def functorch_path() -> bool:
    """Whether a torch.func transform or forward-mode AD is active (outside
    torch.compile), which needs the Python autograd path."""
    if torch.compiler.is_compiling():
        return False
    return functorch_transform_active()


def functorch_transform_active() -> bool:
    """Whether a torch.func transform or forward-mode AD level is active."""
    return torch._C._are_functorch_transforms_active() or forward_ad._current_level >= 0


def needs_gradient(*tensors: Optional[Tensor]) -> bool:
    """Whether autograd records this call for any of ``tensors`` (None
    entries skipped): grad mode is on and one of them requires a gradient."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


@contextlib.contextmanager
def plain_tensors():
    """Where cached values are made (the flip cache, kept spectra, DFT
    matrices): without autograd, and outside inference mode, whose tensors a
    later call that tracks gradients (a frozen layer passing gradients to its
    input) could not save for its backward pass."""
    with torch.inference_mode(False), torch.no_grad():
        yield


def plain_eager_mode() -> bool:
    """Whether this call runs in plain eager mode: not under torch.compile,
    export or tracing, which record the operators, nor under a torch.func
    transform or forward-mode AD, which need their autograd path. Only there
    may a layer take its Python shortcuts (the flip cache, the FFT engine's
    autograd.Function, timing engines)."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    return not functorch_transform_active()


def conv(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: Sequence[int],
         padding: Sequence[int], dilation: Sequence[int], groups: int) -> Tensor:
    _inductor.register_when_compiling()
    if functorch_path():
        spec = _autograd.ConvSpec(False, tuple(stride), tuple(padding), tuple(dilation),
                                  (0,) * len(stride), groups)
        return _autograd.TrueConv.apply(input, weight, bias, spec)
    return torch.ops.torchflip.conv(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose(input: Tensor, weight: Tensor, bias: Optional[Tensor],
                   stride: Sequence[int], padding: Sequence[int],
                   output_padding: Sequence[int], groups: int,
                   dilation: Sequence[int]) -> Tensor:
    _inductor.register_when_compiling()
    if functorch_path():
        spec = _autograd.ConvSpec(True, tuple(stride), tuple(padding), tuple(dilation),
                                  tuple(output_padding), groups)
        return _autograd.TrueConv.apply(input, weight, bias, spec)
    return torch.ops.torchflip.conv_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation)


# Call signatures whose arguments the operator has accepted (see
# validate_once). Cleared rather than trimmed when full: plain dict operations
# are atomic, so threads sharing it need no lock.
_VALIDATED: dict = {}
_VALIDATED_MAX = 4096


def _describe(t: Optional[Tensor]) -> Optional[tuple]:
    return None if t is None else (t.shape, t.dtype, t.device, t.layout)


def validate_once(entry_point: Callable[..., Tensor], input: Tensor, weight: Tensor,
                  bias: Optional[Tensor], *args) -> None:
    """Runs ``entry_point``'s argument checks without computing, once per
    call signature (the shapes, dtypes, devices and layouts of the tensors,
    and ``args``): ``entry_point(input[:0], weight, bias, *args)`` computes
    nothing but validates everything. For the paths that do not call the
    operator itself (the flip cache calls torch's convolution, the FFT engine
    its own transforms), so that every path rejects the same inputs with the
    operator's messages.

    An empty batch rather than meta tensors: they agree on every error, but
    meta kernels also raise on some zero-size results that the device
    kernels return. Skipped under torch.compile and torch.func, where tensors
    are symbolic or wrapped and the engine's own shape errors surface."""
    if torch.compiler.is_compiling() or functorch_path():
        return
    signature = (entry_point, _describe(input), _describe(weight), _describe(bias),
                 *(tuple(a) if isinstance(a, list) else a for a in args))
    if signature in _VALIDATED:
        return
    if input.dim() == weight.dim():
        probe = input[:0]
    elif input.dim() == weight.dim() - 1:  # unbatched
        probe = input.unsqueeze(0)[:0]
    else:
        probe = input  # a wrong rank: rejected before any compute
    with torch.no_grad():
        entry_point(probe, weight, bias, *args)
    if len(_VALIDATED) >= _VALIDATED_MAX:
        _VALIDATED.clear()
    _VALIDATED[signature] = None
