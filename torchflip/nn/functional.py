r"""True convolution with the signatures of :mod:`torch.nn.functional`.

For input :math:`x` of shape :math:`(N, C_{in}, *S)`, weight :math:`w` of
shape :math:`(C_{out}, C_{in}/g, *K)` and bias :math:`b`, output channel
:math:`o` in group :math:`\gamma(o)` is

.. math::
    y[n, o, i] = b[o] + \sum_{c \in \gamma(o)} \sum_{k}
        x_p[n, c, s \cdot i + d \cdot k] \; w[o, c, K - 1 - k]

per spatial dimension (stride :math:`s`, dilation :math:`d`, zero-padded input
:math:`x_p`), whereas :func:`torch.nn.functional.conv2d` uses :math:`w[o, c, k]`
(cross-correlation). Hence, for every argument torch accepts::

    torchflip.nn.functional.conv2d(x, w, b, ...) == F.conv2d(x, w.flip(-1, -2), b, ...)

``padding='same'`` follows torch.nn exactly: the total padding
:math:`d (K - 1)` is split with the floor half before and the rest after, so an
even kernel gets one more zero at the end. A converted model therefore computes
the identical function; this is also MATLAB's ``conv(..., 'same')``. (The
:mod:`torchflip.signal` functions follow scipy.signal's centring instead.)

``method`` (keyword-only, not in torch's signature) picks the engine:
``'direct'`` (default) runs the compiled operator ``torch.ops.torchflip.conv``;
``'fft'`` computes the same convolution through the FFT (stride 1; float32
error about 1e-6 of the output's scale, gradients FFT-based too); ``'auto'``
picks the faster engine for the forward pass and, separately, for the
backward pass (see :mod:`torchflip.nn._method`). The FFT serves float32
and float64 operands with finite values; anything else (half precision,
integers, NaN or infinity, an empty batch) runs the direct operator.

The transposed functions compute the adjoint of the forward ones with the
same weight: ``<conv(x, w), y> == <x, conv_transpose(y, w)>``, which equals
``F.conv_transpose2d(y, w.flip(-1, -2), ...)``.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from torchflip import _ops
from torchflip.nn._engines import true_conv
from torchflip.nn._fft_conv import ForwardPlan, WeightSpectra, check_fft_inputs, fft_runs
from torchflip.nn._method import DIRECT, Engines, check_method, choose_engines
from torchflip.nn._arguments import (
    IntOrTuple,
    PaddingArg,
    batchify,
    check_padding_string,
    check_weight_rank,
    expand,
    same_padding,
)

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
]


def _conv_nd(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: IntOrTuple,
             padding: PaddingArg, dilation: IntOrTuple, groups: int, dims: int,
             method: Union[str, Engines], weight_spectra: Optional[WeightSpectra] = None
             ) -> Tensor:
    """The forward convolutions; ``method`` is a public method name, or the
    engines a layer has already chosen for 'auto'; a layer whose weight needs
    no gradient passes ``weight_spectra`` (see torchflip.nn._engines)."""
    op = f"torchflip.nn.functional.conv{dims}d"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected 'input' to be a Tensor, but got {type(input).__name__}")
    check_weight_rank(weight, dims, op, "(C_out, C_in / groups, *kernel)")
    if not isinstance(method, Engines):
        check_method(method, op)
    stride_t = expand("stride", stride, dims, op)
    dilation_t = expand("dilation", dilation, dims, op)
    input, unbatched = batchify(input, dims, op)
    if isinstance(padding, str):
        check_padding_string(padding, op)
        if padding == "valid":
            padding_t = (0,) * dims
        else:
            padding_t, extra = same_padding(weight, dilation_t, stride_t, op)
            if any(extra):
                input = torch.nn.functional.pad(input, extra)
    else:
        padding_t = expand("padding", padding, dims, op)
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{op}: expected 'bias' to be a Tensor or None, but got "
                        f"{type(bias).__name__}")
    if method == "auto":
        engines = choose_engines(input, weight, stride_t, padding_t, dilation_t, groups)
    else:
        engines = method if isinstance(method, Engines) else Engines(method, method)
    out = run_engines(input, weight, bias, stride_t, padding_t, dilation_t, groups, dims, engines,
                      weight_spectra)
    return out.squeeze(0) if unbatched else out


def run_engines(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: tuple,
                padding: tuple, dilation: tuple, groups: int, dims: int, engines: Engines,
                weight_spectra: Optional[WeightSpectra] = None, validated: bool = False,
                plan: Optional[ForwardPlan] = None) -> Tensor:
    """True convolution of a batched input with normalised arguments (one
    int per spatial dimension) by ``engines``, after the FFT engine's and the
    operator's checks: the layers call it directly, where the functional
    normalisation would only cost time between convolutions (about 10 us of
    a 0.7 ms depthwise 7x7 layer's training forward pass at two threads).
    ``validated``: a call of the same signature has passed these checks and
    run ``engines`` (the layers remember the route a signature took);
    ``plan``: the FFT engine's forward plan for these operands."""
    if engines.uses_fft and not validated:
        op = f"torchflip.nn.functional.conv{dims}d"
        # Before the operator's checks, which would first find the stride's
        # length wrong for a weight of another rank.
        check_weight_rank(weight, dims, op, "(C_out, C_in / groups, *kernel)")
        check_fft_inputs(input, weight, stride, op)
        _ops.validate_once(torch.ops.torchflip._conv, input, weight, bias, stride, padding,
                           dilation, groups)
        if not fft_runs(input):
            engines = DIRECT
    return true_conv(input, weight, bias, stride, padding, dilation, groups, engines,
                     weight_spectra, plan)


def _conv_transpose_nd(input: Tensor, weight: Tensor, bias: Optional[Tensor],
                       stride: IntOrTuple, padding: IntOrTuple, output_padding: IntOrTuple,
                       groups: int, dilation: IntOrTuple, dims: int) -> Tensor:
    op = f"torchflip.nn.functional.conv_transpose{dims}d"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected 'input' to be a Tensor, but got {type(input).__name__}")
    if isinstance(padding, str):
        raise ValueError(
            f"{op}: expected 'padding' to be an int or a tuple of {dims} ints, but got "
            f"padding={padding!r} (transposed convolutions take no padding strings)"
        )
    check_weight_rank(weight, dims, op, "(C_in, C_out / groups, *kernel)")
    input, unbatched = batchify(input, dims, op)
    out = _ops.conv_transpose(
        input, weight, bias, expand("stride", stride, dims, op),
        expand("padding", padding, dims, op), expand("output_padding", output_padding, dims, op),
        groups, expand("dilation", dilation, dims, op))
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrTuple = 1,
           padding: PaddingArg = 0, dilation: IntOrTuple = 1, groups: int = 1, *,
           method: str = "direct") -> Tensor:
    r"""1-D true convolution: ``F.conv1d(input, weight.flip(-1), ...)``.

    ``y[n, o, i] = b[o] + sum_{c, k} x_p[n, c, s*i + d*k] * w[o, c, K-1-k]``
    with input ``(N, C_in, L)`` or unbatched ``(C_in, L)`` and weight
    ``(C_out, C_in / groups, K)``. ``padding`` is an int, a 1-tuple, 'valid'
    or 'same' (torch.nn's centring: an even kernel gets the extra zero at the
    end).

    >>> import torch, torchflip.nn.functional as TF
    >>> x = torch.tensor([[[1., 2., 3., 4.]]])
    >>> w = torch.tensor([[[1., 0., -1.]]])
    >>> TF.conv1d(x, w)  # true convolution: x[i+2] - x[i]
    tensor([[[2., 2.]]])
    >>> torch.nn.functional.conv1d(x, w)  # cross-correlation: x[i] - x[i+2]
    tensor([[[-2., -2.]]])
    """
    return _conv_nd(input, weight, bias, stride, padding, dilation, groups, 1, method)


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrTuple = 1,
           padding: PaddingArg = 0, dilation: IntOrTuple = 1, groups: int = 1, *,
           method: str = "direct") -> Tensor:
    r"""2-D true convolution: ``F.conv2d(input, weight.flip(-2, -1), ...)``.

    Input ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``; weight
    ``(C_out, C_in / groups, kH, kW)``. Arguments as
    :func:`torch.nn.functional.conv2d`, including ``padding='same'`` with
    torch.nn's asymmetric padding for even kernels.

    >>> import torch, torchflip.nn.functional as TF
    >>> x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 2, 3)
    >>> ref = torch.nn.functional.conv2d(x, w.flip(-2, -1), padding="same")
    >>> torch.allclose(TF.conv2d(x, w, padding="same"), ref)
    True
    """
    return _conv_nd(input, weight, bias, stride, padding, dilation, groups, 2, method)


def conv3d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrTuple = 1,
           padding: PaddingArg = 0, dilation: IntOrTuple = 1, groups: int = 1, *,
           method: str = "direct") -> Tensor:
    r"""3-D true convolution: ``F.conv3d(input, weight.flip(-3, -2, -1), ...)``.

    Input ``(N, C_in, D, H, W)`` or unbatched ``(C_in, D, H, W)``; weight
    ``(C_out, C_in / groups, kD, kH, kW)``; arguments as
    :func:`torch.nn.functional.conv3d`.

    >>> import torch, torchflip.nn.functional as TF
    >>> x, w = torch.randn(2, 4, 3, 5, 5), torch.randn(6, 2, 1, 3, 3)
    >>> TF.conv3d(x, w, groups=2, padding=(0, 1, 1)).shape
    torch.Size([2, 6, 3, 5, 5])
    """
    return _conv_nd(input, weight, bias, stride, padding, dilation, groups, 3, method)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0,
                     output_padding: IntOrTuple = 0, groups: int = 1,
                     dilation: IntOrTuple = 1) -> Tensor:
    r"""1-D transposed true convolution, the adjoint of :func:`conv1d`:
    ``F.conv_transpose1d(input, weight.flip(-1), ...)``.

    Weight ``(C_in, C_out / groups, K)``. Output length
    ``(L - 1) * stride - 2 * padding + dilation * (K - 1) + output_padding + 1``.

    >>> import torch, torchflip.nn.functional as TF
    >>> x, y, w = torch.randn(1, 2, 7), torch.randn(1, 3, 3), torch.randn(3, 2, 3)
    >>> lhs = (TF.conv1d(x, w, stride=2) * y).sum()
    >>> rhs = (x * TF.conv_transpose1d(y, w, stride=2)).sum()
    >>> torch.allclose(lhs, rhs, atol=1e-5)
    True
    """
    return _conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups,
                              dilation, 1)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0,
                     output_padding: IntOrTuple = 0, groups: int = 1,
                     dilation: IntOrTuple = 1) -> Tensor:
    r"""2-D transposed true convolution, the adjoint of :func:`conv2d`:
    ``F.conv_transpose2d(input, weight.flip(-2, -1), ...)``.

    Weight ``(C_in, C_out / groups, kH, kW)``; arguments as
    :func:`torch.nn.functional.conv_transpose2d`.

    >>> import torch, torchflip.nn.functional as TF
    >>> TF.conv_transpose2d(torch.randn(1, 4, 5, 5), torch.randn(4, 2, 3, 3), stride=2).shape
    torch.Size([1, 2, 11, 11])
    """
    return _conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups,
                              dilation, 2)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0,
                     output_padding: IntOrTuple = 0, groups: int = 1,
                     dilation: IntOrTuple = 1) -> Tensor:
    r"""3-D transposed true convolution, the adjoint of :func:`conv3d`:
    ``F.conv_transpose3d(input, weight.flip(-3, -2, -1), ...)``.

    Weight ``(C_in, C_out / groups, kD, kH, kW)``; arguments as
    :func:`torch.nn.functional.conv_transpose3d`.

    >>> import torch, torchflip.nn.functional as TF
    >>> TF.conv_transpose3d(torch.randn(1, 2, 3, 3, 3), torch.randn(2, 1, 2, 2, 2)).shape
    torch.Size([1, 1, 4, 4, 4])
    """
    return _conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups,
                              dilation, 3)
