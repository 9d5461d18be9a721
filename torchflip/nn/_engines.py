"""A true convolution run with the engines chosen for its two passes.

Direct in both passes is the compiled operator with its C++ autograd. Any
use of the FFT runs, in eager mode, through :class:`TwoEngineConv`, whose
forward and backward each call their own engine (see torchflip.nn._method).
Where autograd.Functions with Python control flow do not belong (torch.compile,
torch.func, tracing and export), the FFT engine is :func:`fft_conv`, with
autograd through torch.fft.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from torchflip import _ops
from torchflip.nn._fft_conv import (ForwardPlan, WeightSpectra, all_finite, fft_backward,
                                     fft_conv, fft_forward, finite_results)
from torchflip.nn._method import Engines


class TwoEngineConv(torch.autograd.Function):
    """Stride-1 true convolution: forward by ``engines.forward``, gradients by
    ``engines.backward``. Both backward engines are differentiable (the
    direct one is the operator ``torchflip::conv_backward``, the FFT one is
    built from torch operations), so gradients of any order exist."""

    @staticmethod
    def forward(ctx, input: Tensor, weight: Tensor, bias: Optional[Tensor], engines: Engines,
                padding: Sequence[int], dilation: Sequence[int], groups: int,
                weight_spectra: Optional[WeightSpectra] = None,
                plan: Optional[ForwardPlan] = None) -> Tensor:
        ctx.save_for_backward(input, weight)
        ctx.engines, ctx.padding, ctx.dilation, ctx.groups = engines, padding, dilation, groups
        ctx.has_bias, ctx.weight_spectra = bias is not None, weight_spectra
        return _forward(input, weight, bias, engines, padding, dilation, groups, weight_spectra,
                        plan)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        input, weight = ctx.saved_tensors
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1],
                ctx.has_bias and ctx.needs_input_grad[2]]
        grads = None
        if ctx.engines.backward == "fft":
            grads = fft_backward(grad_output, input, weight, ctx.padding, ctx.dilation,
                                 ctx.groups, mask, ctx.weight_spectra)
            if not finite_results(*grads[:2]):
                grads = None  # see finite_results
        if grads is None:
            grads = torch.ops.torchflip.conv_backward(
                grad_output, input, weight, [1] * len(ctx.padding), ctx.padding, ctx.dilation,
                ctx.groups, mask)
        grads = [g if wanted else None for g, wanted in zip(grads, mask)]
        return (*grads, None, None, None, None, None, None)


def _forward(input: Tensor, weight: Tensor, bias: Optional[Tensor], engines: Engines,
             padding: Sequence[int], dilation: Sequence[int], groups: int,
             weight_spectra: Optional[WeightSpectra], plan: Optional[ForwardPlan] = None
             ) -> Tensor:
    if engines.forward == "fft":
        out = fft_forward(input, weight, bias, padding, dilation, groups, weight_spectra, plan)
        if finite_results(out):
            return out  # else see finite_results
    return torch.ops.torchflip._conv(input, weight, bias, [1] * len(padding), padding, dilation,
                                     groups)


def true_conv(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: Sequence[int],
              padding: Sequence[int], dilation: Sequence[int], groups: int,
              engines: Engines, weight_spectra: Optional[WeightSpectra] = None,
              plan: Optional[ForwardPlan] = None) -> Tensor:
    """True convolution of a batched input with normalised arguments; an
    engine other than 'direct' requires stride 1 (checked by the caller).
    ``weight_spectra`` (a layer's, for a weight that needs no gradient) keeps
    the FFT engine's weight spectra between eager calls; ``plan`` (a
    layer's) is the FFT engine's forward plan for these operands' shapes."""
    if not engines.uses_fft:
        return _ops.conv(input, weight, bias, stride, padding, dilation, groups)
    if _ops.plain_eager_mode():
        if _ops.needs_gradient(input, weight, bias):
            return TwoEngineConv.apply(input, weight, bias, engines, tuple(padding),
                                       tuple(dilation), groups, weight_spectra, plan)
        # Nothing to differentiate: the autograd.Function would only cost
        # time (fir1024@16k in eval mode: 30-50 us of a 0.6 ms call).
        return _forward(input, weight, bias, engines, padding, dilation, groups, weight_spectra,
                        plan)
    if not all_finite(input, weight, bias):
        return _ops.conv(input, weight, bias, stride, padding, dilation, groups)
    return fft_conv(input, weight, bias, padding, dilation, groups)
