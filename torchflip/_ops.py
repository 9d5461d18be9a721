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

from typing import Optional, Sequence

import torch
from torch import Tensor
from torch.autograd import forward_ad

from torchflip import _autograd


def functorch_path() -> bool:
    """Whether a torch.func transform or forward-mode AD is active (outside
    torch.compile), which needs the Python autograd path."""
    if torch.compiler.is_compiling():
        return False
    return functorch_transform_active()


def functorch_transform_active() -> bool:
    """Whether a torch.func transform or forward-mode AD level is active."""
    return torch._C._are_functorch_transforms_active() or forward_ad._current_level >= 0


def conv(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: Sequence[int],
         padding: Sequence[int], dilation: Sequence[int], groups: int) -> Tensor:
    if functorch_path():
        spec = _autograd.ConvSpec(False, tuple(stride), tuple(padding), tuple(dilation),
                                  (0,) * len(stride), groups)
        return _autograd.TrueConv.apply(input, weight, bias, spec)
    return torch.ops.torchflip.conv(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose(input: Tensor, weight: Tensor, bias: Optional[Tensor],
                   stride: Sequence[int], padding: Sequence[int],
                   output_padding: Sequence[int], groups: int,
                   dilation: Sequence[int]) -> Tensor:
    if functorch_path():
        spec = _autograd.ConvSpec(True, tuple(stride), tuple(padding), tuple(dilation),
                                  tuple(output_padding), groups)
        return _autograd.TrueConv.apply(input, weight, bias, spec)
    return torch.ops.torchflip.conv_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation)


def check_conv_args(input: Tensor, weight: Tensor, bias: Optional[Tensor],
                    stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
                    groups: int) -> None:
    """Runs the compiled operator's argument checks without computing: the
    operator is shape-inferred on meta copies. For engines other than the
    operator (the FFT path), so every engine rejects the same inputs with the
    same messages. Skipped under torch.compile and torch.func, where tensors
    are symbolic or wrapped and the engine's own shape errors surface."""
    if torch.compiler.is_compiling() or functorch_path():
        return
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.device != input.device:
            raise RuntimeError(f"torchflip.conv: expected '{name}' to be on the device of "
                               f"'input' ({input.device}), but got {t.device}")

    def meta(t: Optional[Tensor]) -> Optional[Tensor]:
        return None if t is None else t.detach().to("meta")

    torch.ops.torchflip._conv(meta(input), meta(weight), meta(bias), stride, padding, dilation,
                              groups)
