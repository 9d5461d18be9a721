"""Autograd for torch.func transforms and forward-mode AD.

The public operators carry C++ autograd kernels, which torch.func cannot enter
("cannot use C++ torch::autograd::Function with functorch transforms"). When a
functorch transform (grad, vmap, jacrev, jvp, ...) or forward-mode AD is active,
``torchflip._ops`` routes through the Python autograd.Functions below instead.
They call the underscored twin operators (``torch.ops.torchflip._conv`` and
friends), which run the same compiled kernels but have no autograd kernel, and
supply what torch.func needs:

* ``backward``: the same formulas as csrc/autograd.cpp, built from these
  Functions again, so derivatives of any order exist;
* ``jvp``: forward-mode AD, exact because the operators are bilinear;
* ``vmap``: a real batching rule (no per-sample fallback). A vmapped batch
  dimension either folds into N, when only activations are batched, or into
  ``groups``: B independent convolutions are one grouped convolution with B
  times the groups, the batch stacked along the channel dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass(frozen=True)
class ConvSpec:
    """Hyper-parameters of a true convolution (transposed or not), one value
    per spatial dimension."""

    transposed: bool
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int

    def with_groups(self, groups: int) -> "ConvSpec":
        return ConvSpec(self.transposed, self.stride, self.padding, self.dilation,
                        self.output_padding, groups)

    # The underscored operators have no autograd kernel, so these never record
    # a C++ autograd node; the Functions below supply the derivatives.
    def raw_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        if self.transposed:
            return torch.ops.torchflip._conv_transpose(
                input, weight, bias, self.stride, self.padding, self.output_padding,
                self.groups, self.dilation)
        return torch.ops.torchflip._conv(
            input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def raw_backward(self, grad_output: Tensor, input: Tensor, weight: Tensor,
                     mask: tuple[bool, bool, bool]):
        if self.transposed:
            return torch.ops.torchflip._conv_transpose_backward(
                grad_output, input, weight, self.stride, self.padding,
                self.output_padding, self.groups, self.dilation, list(mask))
        return torch.ops.torchflip._conv_backward(
            grad_output, input, weight, self.stride, self.padding, self.dilation,
            self.groups, list(mask))


def _add(a: Optional[Tensor], b: Optional[Tensor]) -> Optional[Tensor]:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _bias_view(bias: Tensor, ndim: int) -> Tensor:
    """(C,) -> (1, C, 1, ...) for broadcasting against an (N, C, *spatial) tensor."""
    return bias.reshape((1, -1) + (1,) * (ndim - 2))


def _batch_first(t: Optional[Tensor], bdim: Optional[int], size: int) -> Optional[Tensor]:
    """Moves the vmapped dimension to the front, materialising it if absent."""
    if t is None:
        return None
    if bdim is None:
        return t.unsqueeze(0).expand((size,) + t.shape)
    return t.movedim(bdim, 0)


def _to_group_layout(x: Tensor) -> Tensor:
    """(B, N, C, *s) -> (N, B*C, *s): the batch stacked along the channels."""
    b, n, c = x.shape[:3]
    return x.movedim(0, 1).reshape((n, b * c) + x.shape[3:])


def _from_group_layout(x: Tensor, batch: int) -> Tensor:
    """(N, B*C, *s) -> (B, N, C, *s)."""
    n, bc = x.shape[:2]
    return x.reshape((n, batch, bc // batch) + x.shape[2:]).movedim(1, 0)


def _weight_to_group_layout(w: Tensor) -> Tensor:
    """(B, W0, *rest) -> (B*W0, *rest); W0 is C_out (conv) or C_in (transposed),
    the dimension whose blocks belong to the groups in order."""
    return w.reshape((w.shape[0] * w.shape[1],) + w.shape[2:])


class TrueConv(torch.autograd.Function):
    """y = conv(input, weight, bias) or conv_transpose(...), per ``spec``."""

    @staticmethod
    def forward(input, weight, bias, spec: ConvSpec):
        return spec.raw_forward(input, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, weight, bias, spec = inputs
        ctx.spec = spec
        ctx.has_bias = bias is not None
        ctx.save_for_backward(input, weight)
        ctx.save_for_forward(input, weight)

    @staticmethod
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        mask = (ctx.needs_input_grad[0], ctx.needs_input_grad[1],
                ctx.has_bias and ctx.needs_input_grad[2])
        grad_input, grad_weight, grad_bias = TrueConvBackward.apply(
            grad_output, input, weight, ctx.spec, mask)
        return grad_input, grad_weight, grad_bias, None

    @staticmethod
    def jvp(ctx, d_input, d_weight, d_bias, _):
        # Bilinear: d(x * w + b) = dx * w + x * dw + db.
        input, weight = ctx.saved_tensors
        out = None
        if d_input is not None:
            out = TrueConv.apply(d_input, weight, None, ctx.spec)
        if d_weight is not None:
            out = _add(out, TrueConv.apply(input, d_weight, None, ctx.spec))
        if d_bias is not None:
            out = _add(out, _bias_view(d_bias, input.dim()))
        return out

    @staticmethod
    def vmap(info, in_dims, input, weight, bias, spec: ConvSpec):
        x_dim, w_dim, b_dim, _ = in_dims
        size = info.batch_size
        if w_dim is None and b_dim is None:
            # Only the activations are batched: fold the batch into N.
            x = input.movedim(x_dim, 0)
            out = TrueConv.apply(x.flatten(0, 1), weight, bias, spec)
            return out.unflatten(0, (size, x.shape[1])), 0
        x = _to_group_layout(_batch_first(input, x_dim, size))
        w = _weight_to_group_layout(_batch_first(weight, w_dim, size))
        out = TrueConv.apply(x, w, None, spec.with_groups(spec.groups * size))
        out = _from_group_layout(out, size)
        if bias is not None:
            b = _batch_first(bias, b_dim, size)  # (B, C_out)
            out = out + b.reshape((size, 1, -1) + (1,) * (out.dim() - 3))
        return out, 0


class TrueConvBackward(torch.autograd.Function):
    """(grad_input, grad_weight, grad_bias) of TrueConv, for the entries of
    ``mask``; None elsewhere."""

    @staticmethod
    def forward(grad_output, input, weight, spec: ConvSpec, mask):
        return tuple(spec.raw_backward(grad_output, input, weight, mask))

    @staticmethod
    def setup_context(ctx, inputs, output):
        grad_output, input, weight, spec, mask = inputs
        ctx.spec = spec
        ctx.mask = mask
        ctx.save_for_backward(grad_output, input, weight)
        ctx.save_for_forward(grad_output, input, weight)
        ctx.mark_non_differentiable(*[t for t, m in zip(output, mask) if not m and t is not None])

    @staticmethod
    def backward(ctx, ggi, ggw, ggb):
        # gi = A_w^T g, gw = B_x^T g, gb = sum(g) with A_w x = B_x w = conv(x, w):
        #   d/dg = conv(ggi, w) + conv(x, ggw) + ggb
        #   d/dx = backward(g, x, ggw).grad_input
        #   d/dw = backward(g, ggi, w).grad_weight
        grad_output, input, weight = ctx.saved_tensors
        spec = ctx.spec
        ggi = ggi if ctx.mask[0] else None
        ggw = ggw if ctx.mask[1] else None
        ggb = ggb if ctx.mask[2] else None
        d_grad_output = d_input = d_weight = None
        if ctx.needs_input_grad[0]:
            if ggi is not None:
                d_grad_output = TrueConv.apply(ggi, weight, None, spec)
            if ggw is not None:
                d_grad_output = _add(d_grad_output, TrueConv.apply(input, ggw, None, spec))
            if ggb is not None:
                term = _bias_view(ggb, grad_output.dim()).expand_as(grad_output)
                d_grad_output = _add(d_grad_output, term)
        if ctx.needs_input_grad[1] and ggw is not None:
            d_input = TrueConvBackward.apply(
                grad_output, input, ggw, spec, (True, False, False))[0]
        if ctx.needs_input_grad[2] and ggi is not None:
            d_weight = TrueConvBackward.apply(
                grad_output, ggi, weight, spec, (False, True, False))[1]
        return d_grad_output, d_input, d_weight, None, None

    @staticmethod
    def jvp(ctx, d_grad_output, d_input, d_weight, _spec, _mask):
        # Each output is bilinear in its two tensor arguments.
        grad_output, input, weight = ctx.saved_tensors
        spec, mask = ctx.spec, ctx.mask
        out = [None, None, None]
        if d_grad_output is not None:
            terms = TrueConvBackward.apply(d_grad_output, input, weight, spec, mask)
            out = [_add(o, t) for o, t in zip(out, terms)]
        if d_weight is not None and mask[0]:
            term = TrueConvBackward.apply(grad_output, input, d_weight, spec,
                                          (True, False, False))[0]
            out[0] = _add(out[0], term)
        if d_input is not None and mask[1]:
            term = TrueConvBackward.apply(grad_output, d_input, weight, spec,
                                          (False, True, False))[1]
            out[1] = _add(out[1], term)
        return tuple(out)

    @staticmethod
    def vmap(info, in_dims, grad_output, input, weight, spec: ConvSpec, mask):
        g_dim, x_dim, w_dim, _, _ = in_dims
        size = info.batch_size
        if w_dim is None and not mask[1] and not mask[2]:
            # Only grad_input of batched activations: fold the batch into N.
            g = _batch_first(grad_output, g_dim, size)
            x = _batch_first(input, x_dim, size)
            gi = TrueConvBackward.apply(g.flatten(0, 1), x.flatten(0, 1), weight, spec, mask)[0]
            return (gi.unflatten(0, (size, x.shape[1])), None, None), (0, None, None)
        g = _to_group_layout(_batch_first(grad_output, g_dim, size))
        x = _to_group_layout(_batch_first(input, x_dim, size))
        w = _weight_to_group_layout(_batch_first(weight, w_dim, size))
        gi, gw, gb = TrueConvBackward.apply(g, x, w, spec.with_groups(spec.groups * size), mask)
        outs = (
            _from_group_layout(gi, size) if gi is not None else None,
            gw.unflatten(0, (size, -1)) if gw is not None else None,
            gb.unflatten(0, (size, -1)) if gb is not None else None,
        )
        return outs, tuple(0 if o is not None else None for o in outs)
