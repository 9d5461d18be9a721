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
    """The real FFT over the trailing dimensions of ``t``, zero-padded at
    their ends to ``lengths``, one axis
    at a time: each 1-D transform pads its own axis, so the zero rows that a
    small kernel gains from padding are never transformed (a 31x31 kernel
    in a 160x160 transform: 31 row transforms instead of 160)."""
    dims = list(range(t.dim() - len(lengths), t.dim()))
    rows = math.prod([int(t.shape[d]) for d in dims[:-1]])
    if 2 * rows > math.prod(lengths[:-1]):
        # Most rows are data: one multi-dimensional transform holds fewer
        # temporaries (torch.fft pads, and copies for a strided axis, per call).
        return torch.fft.rfftn(t, s=lengths, dim=dims)
    out = torch.fft.rfft(t, n=lengths[-1], dim=dims[-1])
    for d, n in zip(dims[:-1], lengths[:-1]):
        out = torch.fft.fft(out, n=n, dim=d)
    return out


def _irfft_window(t: Tensor, lengths: Sequence[int], start: Sequence[int],
                  size: Sequence[int]) -> Tensor:
    """The window [start, start + size) of the inverse real FFT of the
    half-spectrum ``t`` (trailing dimensions), one axis at a time: after each
    axis's inverse transform only the window's rows go on, so a weight
    gradient (a kernel's worth of a transform's length) costs a fraction of
    the full inverse. The result is cyclic: a window starting below 0 (or
    ending past the length) wraps around."""
    dims = list(range(t.dim() - len(lengths), t.dim()))
    if 2 * math.prod(size[:-1]) > math.prod(lengths[:-1]):
        # A window of most rows: one inverse, then the window (see _rfft).
        t = torch.fft.irfftn(t, s=lengths, dim=dims)
        for d, a, m in zip(dims, start, size):
            t = _cyclic_window(t, d, a, m)
        return t
    for d, n, a, m in zip(dims[:-1], lengths[:-1], start[:-1], size[:-1]):
        t = _cyclic_window(torch.fft.ifft(t, n=n, dim=d), d, a, m)
    return _cyclic_window(torch.fft.irfft(t, n=lengths[-1], dim=dims[-1]), dims[-1], start[-1],
                          size[-1])


def _cyclic_window(t: Tensor, dim: int, start: int, size: int) -> Tensor:
    length = t.shape[dim]
    if 0 <= start and start + size <= length:
        return t.narrow(dim, start, size)
    index = (torch.arange(start, start + size, device=t.device) % length)
    return t.index_select(dim, index)


def _frequencies(lengths: Sequence[int]) -> tuple[int, ...]:
    """The shape of a real FFT's half-spectrum over ``lengths``."""
    return tuple(lengths[:-1]) + (lengths[-1] // 2 + 1,)


# Spectra are laid out (batch, group, channel, F), F the flattened
# frequencies. Channels mix by a sum of broadcast products, one multiply-add
# over all frequencies per channel summed: on CPU 2-6 times faster than the
# equivalent batched complex matrix products, whose matrices (a few channels,
# one per frequency) are too small for BLAS.
def _spectrum(t: Tensor, lengths: Sequence[int]) -> Tensor:
    """(..., *S) -> (..., F): the real FFT over the trailing dimensions,
    frequencies flattened."""
    return _rfft(t, lengths).flatten(-len(lengths))


def _channels(t: Tensor, groups: int, start: int, count: int) -> Tensor:
    """(A, groups * per, *rest) -> (A, groups, count, *rest): the channels
    [start, start + count) of every group (a view)."""
    return t.unflatten(1, (groups, -1)).narrow(2, start, count)


def _mix_forward(x_hat: Tensor, w_hat: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """(N, g, c, F), (g, O/g, c, F) -> (N, g, O/g, F): sum over the c
    channels, added to ``out`` when given."""
    for c in range(x_hat.shape[2]):
        term = (x_hat[:, :, c:c + 1], w_hat[:, :, c].unsqueeze(0))
        out = term[0] * term[1] if out is None else out.addcmul_(*term)
    return out


def _mix_input_grad(g_hat: Tensor, w_hat: Tensor) -> Tensor:
    """(N, g, O/g, F), (g, O/g, c, F) -> (N, g, c, F): sum over o of g conj(w)."""
    w_conj = w_hat.conj()
    out = g_hat[:, :, :1] * w_conj[:, 0].unsqueeze(0)
    for o in range(1, g_hat.shape[2]):
        out.addcmul_(g_hat[:, :, o:o + 1], w_conj[:, o].unsqueeze(0))
    return out


def _mix_weight_grad(g_hat: Tensor, x_hat: Tensor,
                     out: Optional[Tensor] = None) -> Tensor:
    """(N, g, O/g, F), (N, g, c, F) -> (g, O/g, c, F): sum over n of
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


def _blocks(input: Tensor, out_per_group: int, lengths: Sequence[int],
            groups: int) -> tuple[int, int, int]:
    """(groups, samples, input channels per group) per block.

    Groups and samples: a block's input spectrum stays under the budget,
    max(|input| / BLOCK_INPUT_SHARE, BLOCK_MIN_BYTES), splitting groups first
    (a block of groups also shrinks the weight's spectrum and its gradient's;
    a block of samples does not). Input channels: a block's weight spectrum
    (groups x outputs per group x channels) stays under the same budget, so
    a dense layer never holds the spectrum of its whole weight (16 -> 16
    channels of 31x31 kernels at 128x128: 26 MB, against 2 MB of input).
    Blocks of channels take every sample at once: the spectra of the output
    (forward) and of its gradient (backward) then accumulate over the channel
    blocks with no transform done twice."""
    n, c_per = int(input.shape[0]), int(input.shape[1]) // groups
    complex_bytes = 2 * input.element_size()
    frequencies = math.prod(_frequencies(lengths))
    budget = max(input.numel() * input.element_size() // BLOCK_INPUT_SHARE, BLOCK_MIN_BYTES)
    count = -(-(n * c_per * groups * frequencies * complex_bytes) // budget)
    if count <= 1:
        group_step, sample_step = groups, n
    elif count <= groups:
        group_step, sample_step = -(-groups // count), n
    else:
        group_step, sample_step = 1, max(1, -(-n // -(-count // groups)))
    per_channel = group_step * out_per_group * frequencies * complex_bytes
    channel_step = max(1, min(c_per, budget // per_channel))
    if channel_step < c_per:
        sample_step = n
    return group_step, sample_step, channel_step


def _sample_chunk(input: Tensor, maps_per_sample: int, lengths: Sequence[int]) -> int:
    """Samples per full-size transform of an output (or output gradient)
    spectrum: their spectra under the block budget."""
    per_sample = maps_per_sample * math.prod(_frequencies(lengths)) * 2 * input.element_size()
    budget = max(input.numel() * input.element_size() // BLOCK_INPUT_SHARE, BLOCK_MIN_BYTES)
    return max(1, budget // per_sample)


def _ranges(total: int, step: int):
    for start in range(0, total, step):
        yield start, min(step, total - start)


def fft_forward(input: Tensor, weight: Tensor, bias: Optional[Tensor], padding: Sequence[int],
                dilation: Sequence[int], groups: int) -> Tensor:
    """:func:`fft_conv`'s result, computed a block of groups, samples and
    input channels at a time into the output (see the module doc and
    :func:`_blocks`). Gradients come from :func:`fft_backward`, not from
    autograd.

    Zero padding before x only shifts the full convolution, so x is
    transformed unpadded and the window moves back by the padding instead,
    which spares the padded copy and the transform of its zero rows. The
    window [K_d - 1 - p, S + p) is taken cyclically: with transform lengths
    n >= S + 2p, its indices below 0 (padding beyond the kernel) land past
    the full convolution's S + K_d - 1 samples, where the cyclic result is
    zero, and no index of it receives a wrapped term."""
    n = input.shape[0]
    lengths = transform_lengths(input.shape[2:], padding)
    frequencies = _frequencies(lengths)
    w_dilated = _dilate(weight, dilation)
    kernel = w_dilated.shape[2:]
    c_per, o_per = input.shape[1] // groups, weight.shape[0] // groups
    group_step, sample_step, channel_step = _blocks(input, o_per, lengths, groups)
    start = [k - 1 - p for k, p in zip(kernel, padding)]
    out_size = [s + 2 * p - k + 1 for s, p, k in zip(input.shape[2:], padding, kernel)]
    out = input.new_empty((n, weight.shape[0], *out_size))
    channel_blocks = list(_ranges(c_per, channel_step))
    sample_chunk = _sample_chunk(input, group_step * o_per, lengths)
    for g0, gs in _ranges(groups, group_step):
        x_g = input.narrow(1, g0 * c_per, gs * c_per)
        w_g = w_dilated.narrow(0, g0 * o_per, gs * o_per).unflatten(0, (gs, o_per))
        # One weight spectrum per block of groups when it fits whole.
        shared = _spectrum(w_g, lengths) if len(channel_blocks) == 1 else None
        for n0, ns in _ranges(n, sample_step):
            y_hat = None
            for c0, cs in channel_blocks:
                x_hat = _spectrum(_channels(x_g.narrow(0, n0, ns), gs, c0, cs), lengths)
                w_hat = shared if shared is not None else _spectrum(w_g.narrow(2, c0, cs),
                                                                    lengths)
                y_hat = _mix_forward(x_hat, w_hat, y_hat)
            # The inverse a few samples at a time: its temporaries (torch.fft
            # clones what a complex-to-real transform destroys) stay small.
            for i0, count in _ranges(ns, sample_chunk):
                y = _irfft_window(y_hat.narrow(0, i0, count).reshape((count, gs * o_per)
                                                                     + frequencies),
                                  lengths, start, out_size)
                out.narrow(0, n0 + i0, count).narrow(1, g0 * o_per, gs * o_per).copy_(y)
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
    n = input.shape[0]
    lengths = transform_lengths(input.shape[2:], padding)
    frequencies = _frequencies(lengths)
    w_dilated = _dilate(weight, dilation)
    kernel = w_dilated.shape[2:]
    c_per, o_per = input.shape[1] // groups, weight.shape[0] // groups
    group_step, sample_step, channel_step = _blocks(input, o_per, lengths, groups)
    channel_blocks = list(_ranges(c_per, channel_step))
    sample_chunk = _sample_chunk(input, group_step * o_per, lengths)
    # The output gradient sits at [K_d - 1, S_p) of the full result; it is
    # transformed as it is, and the windows of both gradients move back by
    # K_d - 1 instead (wrapping around, which the transform lengths >= S + 2p
    # leave free of aliasing).
    grad_start = [p - (k - 1) for p, k in zip(padding, kernel)]
    grad_input = input.new_empty(input.shape) if mask[0] else None
    grad_weight = weight.new_empty(weight.shape) if mask[1] else None
    for g0, gs in _ranges(groups, group_step):
        x_g = input.narrow(1, g0 * c_per, gs * c_per)
        g_g = grad_output.narrow(1, g0 * o_per, gs * o_per)
        w_g = w_dilated.narrow(0, g0 * o_per, gs * o_per).unflatten(0, (gs, o_per))
        shared = (_spectrum(w_g, lengths) if mask[0] and len(channel_blocks) == 1 else None)
        # The weight gradient's spectrum of a channel block sums over every
        # sample block (there are several only with one channel block).
        w_grad_hats: dict = {}

        def store_weight_grad(c0: int, cs: int) -> None:
            # Unpadded x (x_p is x shifted by p): the window starts p later.
            gw = _irfft_window(w_grad_hats.pop(c0).unflatten(-1, frequencies), lengths,
                               grad_start, kernel)
            if any(d != 1 for d in dilation):
                gw = gw[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation)]
            target = grad_weight.narrow(0, g0 * o_per, gs * o_per).unflatten(0, (gs, o_per))
            target.narrow(2, c0, cs).copy_(gw)

        for n0, ns in _ranges(n, sample_step):
            # Transformed a few samples at a time into one spectrum (as the
            # forward's inverse).
            g_hat = g_g.new_empty((ns, gs, o_per, math.prod(frequencies)),
                                  dtype=torch.promote_types(g_g.dtype, torch.complex64))
            for i0, count in _ranges(ns, sample_chunk):
                g_hat.narrow(0, i0, count).copy_(_spectrum(
                    g_g.narrow(0, n0 + i0, count).unflatten(1, (gs, o_per)), lengths))
            for c0, cs in channel_blocks:
                if mask[0]:
                    w_hat = shared if shared is not None else _spectrum(w_g.narrow(2, c0, cs),
                                                                        lengths)
                    gx_hat = _mix_input_grad(g_hat, w_hat).unflatten(-1, frequencies)
                    gx = _irfft_window(gx_hat, lengths, grad_start, input.shape[2:])
                    _channels(grad_input.narrow(0, n0, ns).narrow(1, g0 * c_per, gs * c_per),
                              gs, c0, cs).copy_(gx)
                if mask[1]:
                    x_hat = _spectrum(_channels(x_g.narrow(0, n0, ns), gs, c0, cs), lengths)
                    w_grad_hats[c0] = _mix_weight_grad(g_hat, x_hat, w_grad_hats.get(c0))
                    if sample_step >= n:
                        store_weight_grad(c0, cs)
        for c0, cs in channel_blocks:
            if c0 in w_grad_hats:
                store_weight_grad(c0, cs)
    grad_bias = grad_output.sum([0] + list(range(2, 2 + dims))) if mask[2] else None
    return grad_input, grad_weight, grad_bias
