r"""The FFT engine of the true-convolution layers (stride 1).

By the convolution theorem, a true convolution is a product of spectra; no
flip is needed. For input :math:`x` of shape :math:`(N, C, *S)` zero-padded
to :math:`x_p` of shape :math:`*S_p`, and weight :math:`w` of shape
:math:`(O, C/g, *K)` dilated to :math:`w_d` (zeros inserted, :math:`*K_d`),
with transform lengths :math:`n_i \ge S_{p,i}` (the next 5-smooth lengths)
and :math:`\mathcal{F}` the real FFT over the spatial axes:

.. math::
    y = \mathcal{F}^{-1}\Big(\sum_{c \in \gamma(o)}
        \mathcal{F}(x_p)[n, c] \, \mathcal{F}(w_d)[o, c]\Big)[\ldots, K_{d,i} - 1 : S_{p,i}]

The window :math:`[K_{d,i} - 1, S_{p,i})` of the cyclic convolution is free
of wrap-around as soon as :math:`n_i \ge S_{p,i}`. Channels mix in the
frequency domain, so each map is transformed once. The gradients are cyclic
correlations, with :math:`g_f` the output gradient placed at offset
:math:`K_d - 1` in a zero map of shape :math:`*S_p`:

.. math::
    \frac{\partial L}{\partial x_p}[n, c] = \mathcal{F}^{-1}\Big(\sum_{o \in \gamma(c)}
        \mathcal{F}(g_f)[n, o] \, \overline{\mathcal{F}(w_d)[o, c]}\Big), \qquad
    \frac{\partial L}{\partial w_d}[o, c] = \mathcal{F}^{-1}\Big(\sum_n
        \mathcal{F}(g_f)[n, o] \, \overline{\mathcal{F}(x_p)[n, c]}\Big)[:K_d]

(no wrap-around either: :math:`g_f` is zero below :math:`K_d - 1`).

Memory. The spectra of a whole layer are larger than its activations (a
complex half-spectrum of the padded map), so :func:`fft_forward` and
:func:`fft_backward` work through blocks of groups and samples, writing each
block's result into the output, and the backward pass recomputes the input's
spectrum instead of keeping it from the forward pass: a block's input
spectrum is about a twelfth of the input's size. (Blocks are also faster
than one whole-layer transform: they stay in cache.) Under torch.compile,
torch.func, tracing or export, :func:`fft_conv` computes the same formula
in one block, with autograd through torch.fft.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from torchflip.signal._fast_len import next_fast_len

# A block's complex spectra are kept under this share of the input's bytes
# (and under BLOCK_MIN_BYTES for small layers, where blocks cost only
# per-call overhead).
BLOCK_INPUT_SHARE = 12
BLOCK_MIN_BYTES = 1 << 18


def check_fft_inputs(input: Tensor, weight: Tensor, stride: Sequence[int], op: str) -> None:
    if any(s != 1 for s in stride):
        raise ValueError(f"{op}: method='fft' supports stride 1 only, but got stride={stride}")


def fft_supports(input: Tensor) -> bool:
    """The FFT engine computes in float32 and float64; other dtypes (half
    precision, integers) run the direct operator whatever the method."""
    return input.dtype in (torch.float32, torch.float64)


def all_finite(*tensors: Optional[Tensor]) -> bool:
    """Whether every element is finite. A NaN or infinity would spread over a
    whole FFT output row, where the direct sum confines it to the outputs it
    touches, so the FFT engine runs only on finite operands (checked in
    eager mode; under torch.compile the check would break the graph).

    One sum per tensor decides: it is finite only if every element is. A sum
    that overflows from finite elements reads as non-finite, which costs only
    the FFT's speed (the direct engine runs), never a wrong result."""
    if torch.compiler.is_compiling():
        return True
    return all(t is None or bool(torch.isfinite(t.sum())) for t in tensors)


def transform_lengths(spatial: Sequence[int], padding: Sequence[int]) -> list[int]:
    return [next_fast_len(int(s) + 2 * int(p)) for s, p in zip(spatial, padding)]


def _dilate(weight: Tensor, dilation: Sequence[int]) -> Tensor:
    if all(d == 1 for d in dilation):
        return weight
    dilated = [d * (k - 1) + 1 for d, k in zip(dilation, weight.shape[2:])]
    sparse = weight.new_zeros(weight.shape[:2] + tuple(dilated))
    sparse[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)] = weight
    return sparse


def _pad(t: Tensor, before: Sequence[int], after: Sequence[int]) -> Tensor:
    if not any(before) and not any(after):
        return t
    pad = [p for b, a in zip(reversed(before), reversed(after)) for p in (b, a)]
    return torch.nn.functional.pad(t, pad)


def _rfft(t: Tensor, lengths: Sequence[int]) -> Tensor:
    return torch.fft.rfftn(t, s=lengths, dim=list(range(2, t.dim())))


def _irfft(t: Tensor, lengths: Sequence[int]) -> Tensor:
    return torch.fft.irfftn(t, s=lengths, dim=list(range(2, t.dim())))


def _frequencies(lengths: Sequence[int]) -> tuple[int, ...]:
    """The shape of a real FFT's half-spectrum over ``lengths``."""
    return tuple(lengths[:-1]) + (lengths[-1] // 2 + 1,)


def _window(t: Tensor, start: Sequence[int], size: Sequence[int]) -> Tensor:
    return t[(slice(None), slice(None)) + tuple(slice(a, a + n) for a, n in zip(start, size))]


# Channel mixing per frequency, spectra laid out (batch, group, channel, F)
# with F the flattened frequencies: one complex matrix product per group and
# frequency, or a broadcast product when groups hold one channel each.
def _mix_forward(x_hat: Tensor, w_hat: Tensor) -> Tensor:
    """(N, g, C/g, F), (g, O/g, C/g, F) -> (N, g, O/g, F): sum over c."""
    if x_hat.shape[2] == 1:
        return x_hat * w_hat.squeeze(2).unsqueeze(0)
    return torch.matmul(x_hat.permute(1, 3, 0, 2), w_hat.permute(0, 3, 2, 1)).permute(2, 0, 3, 1)


def _mix_input_grad(g_hat: Tensor, w_hat: Tensor) -> Tensor:
    """(N, g, O/g, F), (g, O/g, C/g, F) -> (N, g, C/g, F): sum over o of g conj(w)."""
    if w_hat.shape[1] == 1:
        return g_hat * w_hat.conj().squeeze(1).unsqueeze(0)
    return torch.matmul(g_hat.permute(1, 3, 0, 2), w_hat.conj().permute(0, 3, 1, 2)).permute(
        2, 0, 3, 1)


def _mix_weight_grad(g_hat: Tensor, x_hat: Tensor) -> Tensor:
    """(N, g, O/g, F), (N, g, C/g, F) -> (g, O/g, C/g, F): sum over n of g conj(x)."""
    if g_hat.shape[2] == 1 and x_hat.shape[2] == 1:
        return (g_hat * x_hat.conj()).sum(0).unsqueeze(2)
    return torch.matmul(g_hat.permute(1, 3, 2, 0), x_hat.conj().permute(1, 3, 0, 2)).permute(
        0, 2, 3, 1)


def _by_group(t: Tensor, groups: int, batched: bool) -> Tensor:
    """Flatten a spectrum's frequencies and split its channel axis by group:
    (N, C, *F) -> (N, g, C/g, F), or (O, C/g, *F) -> (g, O/g, C/g, F)."""
    if batched:
        return t.reshape(t.shape[0], groups, t.shape[1] // groups, -1)
    return t.reshape(groups, t.shape[0] // groups, t.shape[1], -1)


def _forward_block(x: Tensor, w_dilated: Tensor, padding: Sequence[int],
                   lengths: Sequence[int], groups: int) -> Tensor:
    """The true convolution of one block (all of x's groups against w's),
    without bias: rfft, spectral product, irfft, window."""
    x_hat = _by_group(_rfft(_pad(x, padding, padding), lengths), groups, True)
    w_hat = _by_group(_rfft(w_dilated, lengths), groups, False)
    y_hat = _mix_forward(x_hat, w_hat).reshape((x.shape[0], w_dilated.shape[0])
                                               + _frequencies(lengths))
    kernel = w_dilated.shape[2:]
    out = [s + 2 * p - k + 1 for s, p, k in zip(x.shape[2:], padding, kernel)]
    return _window(_irfft(y_hat, lengths), [k - 1 for k in kernel], out)


def fft_conv(input: Tensor, weight: Tensor, bias: Optional[Tensor], padding: Sequence[int],
             dilation: Sequence[int], groups: int) -> Tensor:
    """True convolution with stride 1 through the FFT, in one block, with
    autograd through torch.fft: the form for torch.compile, torch.func,
    tracing and export. Arguments normalised, input batched (N, C, *S)."""
    lengths = transform_lengths(input.shape[2:], padding)
    out = _forward_block(input, _dilate(weight, dilation), padding, lengths, groups)
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * (weight.dim() - 2))
    return out


def _blocks(input: Tensor, lengths: Sequence[int], groups: int) -> tuple[int, int]:
    """(groups per block, samples per block) keeping a block's input spectrum
    under max(|input| / BLOCK_INPUT_SHARE, BLOCK_MIN_BYTES)."""
    n = int(input.shape[0])
    maps = n * int(input.shape[1])
    spectrum = maps * math.prod(_frequencies(lengths)) * 2 * input.element_size()
    budget = max(input.numel() * input.element_size() // BLOCK_INPUT_SHARE, BLOCK_MIN_BYTES)
    count = -(-spectrum // budget)
    if count <= 1:
        return groups, n
    # Split groups first: a group block's weight spectrum and weight-gradient
    # accumulator shrink with it, a sample block's do not.
    if count <= groups:
        return -(-groups // count), n
    return 1, max(1, -(-n // -(-count // groups)))


def _ranges(total: int, step: int):
    for start in range(0, total, step):
        yield start, min(step, total - start)


def fft_forward(input: Tensor, weight: Tensor, bias: Optional[Tensor], padding: Sequence[int],
                dilation: Sequence[int], groups: int) -> Tensor:
    """:func:`fft_conv`'s result, computed a block of groups and samples at a
    time into the output (see the module doc). Gradients come from
    :func:`fft_backward`, not from autograd."""
    lengths = transform_lengths(input.shape[2:], padding)
    group_step, sample_step = _blocks(input, lengths, groups)
    w_dilated = _dilate(weight, dilation)
    if group_step == groups and sample_step == input.shape[0]:
        return fft_conv(input, weight, bias, padding, dilation, groups)
    c_per, o_per = input.shape[1] // groups, weight.shape[0] // groups
    kernel = w_dilated.shape[2:]
    out_size = [s + 2 * p - k + 1 for s, p, k in zip(input.shape[2:], padding, kernel)]
    out = input.new_empty((input.shape[0], weight.shape[0], *out_size))
    for g0, gs in _ranges(groups, group_step):
        w_block = w_dilated.narrow(0, g0 * o_per, gs * o_per)
        x_block = input.narrow(1, g0 * c_per, gs * c_per)
        for n0, ns in _ranges(input.shape[0], sample_step):
            y = _forward_block(x_block.narrow(0, n0, ns), w_block, padding, lengths, gs)
            out.narrow(0, n0, ns).narrow(1, g0 * o_per, gs * o_per).copy_(y)
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * (weight.dim() - 2))
    return out


def fft_backward(grad_output: Tensor, input: Tensor, weight: Tensor, padding: Sequence[int],
                 dilation: Sequence[int], groups: int,
                 mask: Sequence[bool]) -> tuple[Optional[Tensor], ...]:
    """(grad_input, grad_weight, grad_bias) of :func:`fft_forward` for the
    gradients ``mask`` asks for, by the correlation formulas of the module
    doc, a block at a time. Built from differentiable operations, so a
    backward pass with create_graph=True can differentiate it again."""
    dims = weight.dim() - 2
    lengths = transform_lengths(input.shape[2:], padding)
    group_step, sample_step = _blocks(input, lengths, groups)
    w_dilated = _dilate(weight, dilation)
    kernel = w_dilated.shape[2:]
    c_per, o_per = input.shape[1] // groups, weight.shape[0] // groups
    freq_shape = _frequencies(lengths)
    # The output gradient placed where its window sits in the full result,
    # [K_d - 1, S_p): zeros before it, none after.
    g_before, g_after = [k - 1 for k in kernel], [0] * dims
    grad_input = input.new_empty(input.shape) if mask[0] else None
    grad_weight = weight.new_empty(weight.shape) if mask[1] else None
    for g0, gs in _ranges(groups, group_step):
        x_block = input.narrow(1, g0 * c_per, gs * c_per)
        g_block = grad_output.narrow(1, g0 * o_per, gs * o_per)
        w_hat = (_by_group(_rfft(w_dilated.narrow(0, g0 * o_per, gs * o_per), lengths), gs,
                           False) if mask[0] else None)
        w_grad_hat = None
        for n0, ns in _ranges(input.shape[0], sample_step):
            g_hat = _by_group(_rfft(_pad(g_block.narrow(0, n0, ns), g_before, g_after),
                                    lengths), gs, True)
            if mask[0]:
                gx_hat = _mix_input_grad(g_hat, w_hat).reshape((ns, gs * c_per) + freq_shape)
                gx = _window(_irfft(gx_hat, lengths), padding, input.shape[2:])
                grad_input.narrow(0, n0, ns).narrow(1, g0 * c_per, gs * c_per).copy_(gx)
            if mask[1]:
                x_hat = _by_group(_rfft(_pad(x_block.narrow(0, n0, ns), padding, padding),
                                        lengths), gs, True)
                term = _mix_weight_grad(g_hat, x_hat)
                w_grad_hat = term if w_grad_hat is None else w_grad_hat + term
        if mask[1]:
            gw_hat = w_grad_hat.reshape((gs * o_per, c_per) + freq_shape)
            gw = _window(_irfft(gw_hat, lengths), [0] * dims, kernel)
            if any(d != 1 for d in dilation):
                gw = gw[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)]
            grad_weight.narrow(0, g0 * o_per, gs * o_per).copy_(gw)
    grad_bias = grad_output.sum([0] + list(range(2, 2 + dims))) if mask[2] else None
    return grad_input, grad_weight, grad_bias
