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

Speed. The eager engine transforms nothing it can skip: the weight's
spectrum once per block of groups (not per block of samples), operands
without their zero padding (padding before an operand only shifts the
result's window), one axis at a time so that the zero rows a small kernel
gains from padding are never transformed, and inverse transforms only for
the rows of the window they feed. Channels mix by broadcast multiply-adds,
several times faster on CPU than batched complex matrix products of a few
channels per frequency.
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
    """The real FFT of ``t`` zero-padded at the end to ``lengths``, one axis
    at a time: each 1-D transform pads its own axis, so the zero rows that a
    small kernel gains from padding are never transformed (a 31x31 kernel
    in a 160x160 transform: 31 row transforms instead of 160)."""
    dims = list(range(2, t.dim()))
    if all(int(t.shape[d]) == n for d, n in zip(dims, lengths)):
        return torch.fft.rfftn(t, dim=dims)
    out = torch.fft.rfft(t, n=lengths[-1], dim=dims[-1])
    for d, n in zip(dims[:-1], lengths[:-1]):
        out = torch.fft.fft(out, n=n, dim=d)
    return out


def _irfft_window(t: Tensor, lengths: Sequence[int], start: Sequence[int],
                  size: Sequence[int]) -> Tensor:
    """The window [start, start + size) of the inverse real FFT of the
    half-spectrum ``t``, one axis at a time: after each axis's inverse
    transform only the window's rows go on, so a weight gradient (a kernel's
    worth of a transform's length) costs a fraction of the full inverse."""
    dims = list(range(2, t.dim()))
    for d, n, a, m in zip(dims[:-1], lengths[:-1], start[:-1], size[:-1]):
        t = torch.fft.ifft(t, n=n, dim=d).narrow(d, a, m)
    return torch.fft.irfft(t, n=lengths[-1], dim=dims[-1]).narrow(dims[-1], start[-1], size[-1])


def _frequencies(lengths: Sequence[int]) -> tuple[int, ...]:
    """The shape of a real FFT's half-spectrum over ``lengths``."""
    return tuple(lengths[:-1]) + (lengths[-1] // 2 + 1,)


# Channel mixing per frequency, spectra laid out (batch, group, channel, F)
# with F the flattened frequencies: a sum of broadcast products, one
# multiply-add over all frequencies per channel summed. On CPU this runs 2-6
# times faster than the equivalent batched complex matrix products, whose
# matrices (a few channels, one per frequency) are too small for BLAS.
def _mix_forward(x_hat: Tensor, w_hat: Tensor) -> Tensor:
    """(N, g, C/g, F), (g, O/g, C/g, F) -> (N, g, O/g, F): sum over c."""
    out = x_hat[:, :, :1] * w_hat[:, :, 0].unsqueeze(0)
    for c in range(1, x_hat.shape[2]):
        out.addcmul_(x_hat[:, :, c:c + 1], w_hat[:, :, c].unsqueeze(0))
    return out


def _mix_input_grad(g_hat: Tensor, w_hat: Tensor) -> Tensor:
    """(N, g, O/g, F), (g, O/g, C/g, F) -> (N, g, C/g, F): sum over o of g conj(w)."""
    w_conj = w_hat.conj()
    out = g_hat[:, :, :1] * w_conj[:, 0].unsqueeze(0)
    for o in range(1, g_hat.shape[2]):
        out.addcmul_(g_hat[:, :, o:o + 1], w_conj[:, o].unsqueeze(0))
    return out


def _mix_weight_grad(g_hat: Tensor, x_hat: Tensor,
                     out: Optional[Tensor] = None) -> Tensor:
    """(N, g, O/g, F), (N, g, C/g, F) -> (g, O/g, C/g, F): sum over n of
    g conj(x), added to ``out`` when given."""
    x_conj = x_hat.conj()
    for n in range(g_hat.shape[0]):
        term = (g_hat[n].unsqueeze(2), x_conj[n].unsqueeze(1))
        out = term[0] * term[1] if out is None else out.addcmul_(*term)
    return out


def _by_group(t: Tensor, groups: int, batched: bool) -> Tensor:
    """Flatten a spectrum's frequencies and split its channel axis by group:
    (N, C, *F) -> (N, g, C/g, F), or (O, C/g, *F) -> (g, O/g, C/g, F)."""
    if batched:
        return t.reshape(t.shape[0], groups, t.shape[1] // groups, -1)
    return t.reshape(groups, t.shape[0] // groups, t.shape[1], -1)


def _weight_spectrum(w_dilated: Tensor, lengths: Sequence[int], groups: int) -> Tensor:
    return _by_group(_rfft(w_dilated, lengths), groups, False)


def _forward_block(x: Tensor, w_hat: Tensor, kernel: Sequence[int], padding: Sequence[int],
                   lengths: Sequence[int], groups: int) -> Tensor:
    """The true convolution of one block (all of x's groups against the
    weight spectrum's), without bias: rfft, spectral product, irfft, window.

    Zero padding before x only shifts the full convolution, so x is
    transformed unpadded and the window moves back by the padding instead
    (by the part up to K_d - 1; beyond that, the zeros are real), which
    spares the padded copy and the transform of its zero rows. The transform
    lengths (>= S + 2 p) leave the window free of wrap-around: it ends at
    S' + p, and its first index takes no wrapped terms from the full
    convolution's S' + K_d - 1 samples."""
    before = [max(0, p - (k - 1)) for p, k in zip(padding, kernel)]
    x = _pad(x, before, [0] * len(before))
    x_hat = _by_group(_rfft(x, lengths), groups, True)
    y_hat = _mix_forward(x_hat, w_hat).reshape((x.shape[0], -1) + _frequencies(lengths))
    start = [k - 1 - (p - b) for k, p, b in zip(kernel, padding, before)]
    out = [s - b + 2 * p - k + 1 for s, b, p, k in zip(x.shape[2:], before, padding, kernel)]
    return _irfft_window(y_hat, lengths, start, out)


def fft_conv(input: Tensor, weight: Tensor, bias: Optional[Tensor], padding: Sequence[int],
             dilation: Sequence[int], groups: int) -> Tensor:
    """True convolution with stride 1 through the FFT, in one block, with
    autograd through torch.fft: the form for torch.compile, torch.func,
    tracing and export. Arguments normalised, input batched (N, C, *S).

    It is the module doc's formula as it stands (padded input, whole
    transforms, a complex matrix product per frequency): the eager engine's
    shortcuts (broadcast products in a loop over channels, windows of
    complex spectra) are op sequences that ONNX's exporter cannot translate
    for complex tensors, and gain little under a compiler."""
    dims = list(range(2, input.dim()))
    lengths = transform_lengths(input.shape[2:], padding)
    w_dilated = _dilate(weight, dilation)
    x_hat = _by_group(torch.fft.rfftn(_pad(input, padding, padding), s=lengths, dim=dims),
                      groups, True)
    w_hat = _by_group(torch.fft.rfftn(w_dilated, s=lengths, dim=dims), groups, False)
    y_hat = torch.matmul(x_hat.permute(1, 3, 0, 2), w_hat.permute(0, 3, 2, 1)).permute(2, 0, 3, 1)
    y = torch.fft.irfftn(y_hat.reshape((input.shape[0], weight.shape[0]) + _frequencies(lengths)),
                         s=lengths, dim=dims)
    kernel = w_dilated.shape[2:]
    out = y[(slice(None), slice(None)) + tuple(
        slice(k - 1, s + 2 * p) for k, s, p in zip(kernel, input.shape[2:], padding))]
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
    c_per, o_per = input.shape[1] // groups, weight.shape[0] // groups
    kernel = w_dilated.shape[2:]
    out_size = [s + 2 * p - k + 1 for s, p, k in zip(input.shape[2:], padding, kernel)]
    out = input.new_empty((input.shape[0], weight.shape[0], *out_size))
    for g0, gs in _ranges(groups, group_step):
        # One weight spectrum per block of groups, shared by its sample blocks.
        w_hat = _weight_spectrum(w_dilated.narrow(0, g0 * o_per, gs * o_per), lengths, gs)
        x_block = input.narrow(1, g0 * c_per, gs * c_per)
        for n0, ns in _ranges(input.shape[0], sample_step):
            y = _forward_block(x_block.narrow(0, n0, ns), w_hat, kernel, padding, lengths, gs)
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
        w_hat = (_weight_spectrum(w_dilated.narrow(0, g0 * o_per, gs * o_per), lengths, gs)
                 if mask[0] else None)
        w_grad_hat = None
        for n0, ns in _ranges(input.shape[0], sample_step):
            g_hat = _by_group(_rfft(_pad(g_block.narrow(0, n0, ns), g_before, g_after),
                                    lengths), gs, True)
            if mask[0]:
                gx_hat = _mix_input_grad(g_hat, w_hat).reshape((ns, gs * c_per) + freq_shape)
                gx = _irfft_window(gx_hat, lengths, padding, input.shape[2:])
                grad_input.narrow(0, n0, ns).narrow(1, g0 * c_per, gs * c_per).copy_(gx)
            if mask[1]:
                # Unpadded: x_p = x shifted by p, so the window moves by p.
                x_hat = _by_group(_rfft(x_block.narrow(0, n0, ns), lengths), gs, True)
                w_grad_hat = _mix_weight_grad(g_hat, x_hat, w_grad_hat)
        if mask[1]:
            gw_hat = w_grad_hat.reshape((gs * o_per, c_per) + freq_shape)
            gw = _irfft_window(gw_hat, lengths, padding, kernel)
            if any(d != 1 for d in dilation):
                gw = gw[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)]
            grad_weight.narrow(0, g0 * o_per, gs * o_per).copy_(gw)
    grad_bias = grad_output.sum([0] + list(range(2, 2 + dims))) if mask[2] else None
    return grad_input, grad_weight, grad_bias
