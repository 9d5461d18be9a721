r"""Autograd and vmap for ``torch.ops.torchflip.fft_conv``, and the helper that
calls it with fast FFT lengths.

``fft_conv(in1, in2, axes, start, length, fft_shape)`` (csrc/fft_conv.cpp)
returns, along each axis of ``axes``, the window ``full[start : start + length]``
of the linear convolution ``full[i] = sum_k in1[i - k] in2[k]`` (zero outside
its ``n1 + n2 - 1`` samples), broadcasting the other dimensions.

Its derivatives are windows of convolutions again, so the backward pass runs
on the FFT too (never a direct convolution). With ``g`` the output gradient,
``flip`` the reversal over ``axes`` and ``conj`` complex conjugation (torch's
convention for the gradient of a holomorphic map ``y = A x`` is ``A^H g``):

.. math::
    \mathrm{grad\_in1}[j] = \sum_t g[t]\, \overline{\mathrm{in2}[s + t - j]}
        = \bigl(g * \overline{\mathrm{flip}(\mathrm{in2})}\bigr)[j + n_2 - 1 - s],

a window of start :math:`n_2 - 1 - s` and length :math:`n_1`; symmetrically
for ``in2`` (start :math:`n_1 - 1 - s`, length :math:`n_2`). Gradients are then
summed over the dimensions the input was broadcast along. Because the
backward calls the operator itself, double backward works as well.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from torchflip._ops import functorch_path, needs_gradient
from torchflip.signal._fast_len import next_fast_len


def alias_free_length(full: int, start: int, length: int) -> int:
    """The shortest FFT length that returns ``full[start : start + length]``
    without wrap-around (see csrc/fft_conv.cpp)."""
    lo = max(start, 0)
    hi = min(start + length, full)
    if lo >= hi:
        return 1
    return max(hi, full - lo)


def fft_window(in1: Tensor, in2: Tensor, axes: Sequence[int], start: Sequence[int],
               length: Sequence[int]) -> Tensor:
    """``fft_conv`` with each FFT length the next 5-smooth length that avoids
    aliasing. ``in1`` and ``in2`` share dtype and ndim; ``axes`` are
    non-negative."""
    fft_shape = [
        next_fast_len(alias_free_length(in1.shape[a] + in2.shape[a] - 1, s, n))
        for a, s, n in zip(axes, start, length)
    ]
    return _fft_conv(in1, in2, list(axes), list(start), list(length), fft_shape)


def _fft_conv(in1: Tensor, in2: Tensor, axes: list[int], start: list[int], length: list[int],
              fft_shape: list[int]) -> Tensor:
    # torch.func transforms cannot run the autograd registered with
    # torch.library.register_autograd, so they get an autograd.Function with
    # the same formulas (as torchflip._ops does for the conv op).
    if functorch_path():
        return FFTConvFunction.apply(in1, in2, axes, start, length, fft_shape)
    if torch.jit.is_tracing():
        # Traced sizes are 0-dim tensors, which the tracer cannot record in an
        # operator's int lists, so the trace keeps their values (it is specific
        # to the traced shapes). Always the autograd op: the graph must not
        # depend on the grad mode at tracing time (check_trace runs no_grad).
        lists = ([int(v) for v in values] for values in (axes, start, length, fft_shape))
        return torch.ops.torchflip.fft_conv.default(in1, in2, *lists)
    if (not needs_gradient(in1, in2)
            and not torch.compiler.is_compiling()):
        # No gradient wanted: the twin operator skips the Python autograd layer.
        return torch.ops.torchflip._fft_conv.default(in1, in2, axes, start, length, fft_shape)
    return torch.ops.torchflip.fft_conv.default(in1, in2, axes, start, length, fft_shape)


def _setup_context(ctx, inputs, output) -> None:
    in1, in2, axes, start, length, _ = inputs
    ndim = in1.dim()
    ctx.axes = [a + ndim if a < 0 else a for a in axes]
    ctx.start = list(start)
    ctx.length = list(length)
    ctx.save_for_backward(in1 if ctx.needs_input_grad[1] else None,
                          in2 if ctx.needs_input_grad[0] else None)
    ctx.shape1 = in1.shape
    ctx.shape2 = in2.shape


def _gradient(grad: Tensor, other: Tensor, axes: list[int], start: list[int],
              own_shape, other_shape) -> Tensor:
    # grad_x = window(grad * conj(flip(other)), start = n_other - 1 - s, length = n_x).
    kernel = other.flip(axes).conj()
    window_start = [other_shape[a] - 1 - s for a, s in zip(axes, start)]
    window_length = [own_shape[a] for a in axes]
    out = fft_window(grad, kernel, axes, window_start, window_length)
    return out.sum_to_size(own_shape)


def _backward(ctx, grad: Tensor):
    in1, in2 = ctx.saved_tensors
    grad1 = grad2 = None
    if ctx.needs_input_grad[0]:
        grad1 = _gradient(grad, in2, ctx.axes, ctx.start, ctx.shape1, ctx.shape2)
    if ctx.needs_input_grad[1]:
        grad2 = _gradient(grad, in1, ctx.axes, ctx.start, ctx.shape2, ctx.shape1)
    return grad1, grad2, None, None, None, None


def _vmap(info, in_dims, in1, in2, axes, start, length, fft_shape):
    # The operator already broadcasts every non-axis dimension, so a vmapped
    # dimension becomes a leading broadcast dimension and the axes shift by one.
    dim1, dim2 = in_dims[0], in_dims[1]
    ndim = in1.dim() - (dim1 is not None)
    in1 = in1.movedim(dim1, 0) if dim1 is not None else in1.unsqueeze(0)
    in2 = in2.movedim(dim2, 0) if dim2 is not None else in2.unsqueeze(0)
    shifted = [(a + ndim if a < 0 else a) + 1 for a in axes]
    return _fft_conv(in1, in2, shifted, list(start), list(length), list(fft_shape)), 0


class FFTConvFunction(torch.autograd.Function):
    """``fft_conv`` for torch.func transforms and forward-mode AD: the same
    backward formula, a vmap rule, and the exact jvp of a bilinear map,
    ``d(in1 * in2) = d(in1) * in2 + in1 * d(in2)``."""

    @staticmethod
    def forward(in1, in2, axes, start, length, fft_shape):
        return torch.ops.torchflip.fft_conv(in1, in2, axes, start, length, fft_shape)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _setup_context(ctx, inputs, output)
        ctx.fft_shape = list(inputs[5])
        ctx.save_for_forward(inputs[0], inputs[1])

    @staticmethod
    def backward(ctx, grad):
        return _backward(ctx, grad)

    @staticmethod
    def jvp(ctx, tangent1, tangent2, *_):
        in1, in2 = ctx.saved_tensors  # those of save_for_forward
        args = (ctx.axes, ctx.start, ctx.length, ctx.fft_shape)
        out = None
        if tangent1 is not None:
            out = _fft_conv(tangent1, in2, *args)
        if tangent2 is not None:
            term = _fft_conv(in1, tangent2, *args)
            out = term if out is None else out + term
        return out

    @staticmethod
    def vmap(info, in_dims, *args):
        return _vmap(info, in_dims, *args)


torch.library.register_autograd("torchflip::fft_conv", _backward, setup_context=_setup_context)
torch.library.register_vmap("torchflip::fft_conv", _vmap)
