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
of wrap-around as soon as :math:`n_i \ge S_{p,i}`; the eager engine, which
transforms the input unpadded, needs only :math:`n_i \ge S_i + p_i`
(:func:`transform_lengths`). Channels mix in the
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
:func:`fft_backward` work through blocks of groups, samples, input channels
and output channels (:func:`_blocks`), writing each block's result into the
output, and the backward pass recomputes the input's spectrum instead of
keeping it from the forward pass: a block's spectra are about a twelfth of
the input's size. Each transform runs in chunks written into its spectrum
(:func:`_spectrum`, :func:`_inverse_into`), because torch.fft holds two or
three temporaries of its output's size. A long 1-D signal of few samples and
channels, whose single spectrum already outweighs the budget, is cut into
overlapping segments (overlap-save), which then block like samples (or, where
their spectra are small, go through both passes in one block of few calls); so is
the forward pass of a 1-D bank of many filters per signal, whose weight
spectra would otherwise be transformed at the signal's length. (Blocks
are also faster than one whole-layer transform: they stay in cache.) Under
torch.compile, torch.func, tracing or export, :func:`fft_conv` computes the
same formula in one block, with autograd through torch.fft.

Speed. The eager engine transforms nothing it can skip: the weight's
spectrum once per block of groups (not per block of samples), or not at all
where a layer keeps it (a weight that needs no gradient, see
torchflip.nn._flip_cache), operands
without their zero padding (padding before an operand only shifts the
result's window), one axis at a time so that the zero rows a small kernel
gains from padding are never transformed, and inverse transforms only for
the rows of the window they feed. A kernel's short axes (and a weight
gradient's window) are products with DFT matrices instead of FFTs
(torchflip.nn._dft_matrix). Channels mix by broadcast multiply-adds,
several times faster on CPU than batched complex matrix products of a few
channels per frequency.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple, Optional, Sequence

import torch
from torch import Tensor

from torchflip.nn import _dft_matrix as dft_matrix
from torchflip.signal._fast_len import next_fast_len

# A block's complex spectra are kept under this share of the input's bytes
# (and under BLOCK_MIN_BYTES for small layers, where blocks cost only
# per-call overhead).
BLOCK_INPUT_SHARE = 12
BLOCK_MIN_BYTES = 1 << 18
# A layer whose spectra (input, output and weight, every block together) take
# at most this many bytes is one block: cut in two, it would save at most
# half of them, a few hundred KB, and every transform would be called twice
# (fir1024@16k, 16k samples through four filters of 1024 taps, split its
# 544 KB of spectra in two: its forward pass took 0.62 ms, 0.43 ms whole).
WHOLE_LAYER_BYTES = 1 << 20
# The forward pass's blocks take this many budgets. It holds no gradient
# spectra, so its peak stays under the backward pass's (which sets the peak
# of a training step) with blocks twice as large: on the large-kernel
# benchmark layers the forward's peak rose from 0.58-0.89 of the backward's
# (output included) to 0.73-1.04 (fir4096@64k: 2.9 MB against 2.8), and the
# forward took 0.70-0.97 of the time at two threads (dw7x7@64 0.70,
# bank1025@16k 0.78, psf31@256 0.94).
FORWARD_BUDGETS = 2
# A transform is cut into chunks of at least this many 1-D rows: torch.fft
# plans every call afresh (on MKL, ATen's x86 CPU backend, 45 us of a 48 us
# transform of one 4096-point row), so a call's cost is amortised over the
# rows of its batch (a 17496-point real transform: 202 us for one row, 35 us
# a row for eight).
CHUNK_MIN_ROWS = 8
# Chunks hold up to this many block budgets of spectrum: fewer, larger calls
# are faster, and torch.fft's temporaries grow with them (at 4, dense31@128's
# peak fwd+bwd memory rose from 0.94 to 1.07 of torch.nn's).
CHUNK_BUDGETS = 2
# On CPU a chunk also takes at least one map per thread: torch.fft (MKL)
# spreads a batch of multi-dimensional transforms over threads a
# map at a time, and a single map of a few hundred rows barely parallelises
# (six 288x288 real transforms on two threads: 0.66 ms one map a call, 0.43
# two, 0.27-0.36 all six; on one thread 0.67-0.87 ms whatever the batch).
# A 1-D layer of one block transforms its input and weight in one call from
# this transform length (see _joint_spectra).
JOINT_MIN_LENGTH = 4096


def check_fft_inputs(input: Tensor, weight: Tensor, stride: Sequence[int], op: str) -> None:
    if any(s != 1 for s in stride):
        raise ValueError(f"{op}: method='fft' supports stride 1 only, but got stride={stride}")


def fft_supports(input: Tensor) -> bool:
    """The FFT engine computes in float32 and float64; other dtypes (half
    precision, integers) run the direct operator whatever the method."""
    return input.dtype in (torch.float32, torch.float64)


def fft_runs(input: Tensor) -> bool:
    """Whether the FFT engine computes a call on ``input`` that asked for it:
    not where there is nothing to transform, nor for a dtype it does not
    serve (non-finite operands are checked where the FFT runs)."""
    return input.numel() != 0 and fft_supports(input)


def all_finite(*tensors: Optional[Tensor]) -> bool:
    """Whether every element is finite. A NaN or infinity would spread over a
    whole FFT output row, where the direct sum confines it to the outputs it
    touches, so the FFT engine runs only on finite operands outside plain
    eager mode (the eager engine checks its results instead, see
    :func:`finite_results`, whose sums decide here too). Under torch.compile
    the check would break the graph, and nothing is checked."""
    if torch.compiler.is_compiling():
        return True
    return finite_results(*tensors)


def finite_results(*results: Optional[Tensor]) -> bool:
    """Whether every element of the eager engine's ``results`` is finite;
    where not, the caller computes them again by the direct engine.

    A NaN or infinity in an operand spreads over the whole transformed row
    of every map it touches, where the direct sum confines it to the outputs
    whose window covers it. Such an operand makes at least one result non-
    finite, and any result computed from finite operands is finite. One sum
    per tensor decides: it is finite only if every element is (a sum that
    overflows from finite elements reads as non-finite, which costs only the
    direct engine's time, never a wrong result). The sums are added and read
    once: a NaN or infinity in any of them survives the addition
    (infinities of both signs make a NaN). Checking the results costs two
    ATen calls for one result, where the operands took seven: after an FFT
    has evicted the CPU's caches each call takes about 8 us (fir1024@16k's
    forward pass, 0.55 ms at one thread: the operands' check took 50 us
    there, 14 us alone)."""
    sums = [r.sum() for r in results if r is not None]
    if not sums:
        return True
    return math.isfinite(sum(sums[1:], sums[0]).item())


def transform_lengths(spatial: Sequence[int], padding: Sequence[int],
                      kernel: Sequence[int]) -> list[int]:
    """The eager engine's transform length per axis: the smallest even
    5-smooth length n >= max(S + p, S + 2p - K_d + 1, K_d) (see
    :func:`fast_transform_length`), for input extent S, padding p and
    dilated kernel extent K_d.

    It transforms the input unpadded, so every cyclic result it reads (the
    output's window, and both gradients' windows, see
    :func:`_blocked_forward` and :func:`_blocked_backward`) spans S + p
    samples of the linear result's support plus its window: n >= S + p
    keeps wrapped terms out of every window, and n must also hold the
    window (the output, S + 2p - K_d + 1 samples) and each operand (the
    kernel). A 'same' layer's p = (K_d - 1) / 2 then needs S + p, where the
    padded input (:func:`padded_lengths`) needs S + 2p: dense31@128's
    transforms shrink from 160 to 144 points an axis, its spectra by 19%."""
    return [fast_transform_length(max(int(s) + int(p), int(s) + 2 * int(p) - int(k) + 1,
                                      int(k)))
            for s, p, k in zip(spatial, padding, kernel)]


def fast_transform_length(target: int) -> int:
    """The smallest even 5-smooth length n >= target. Odd lengths are
    slower per point on MKL (a 2-D real transform and its inverse, two
    threads: 135 and 75 points an axis 186 and 151 ns a point, 144 and 150
    points 143 and 94), and the engine took dw13x13@128 1.3-1.4 times
    longer at 135 points than at 144."""
    return 2 * next_fast_len(-(-int(target) // 2))


def padded_lengths(spatial: Sequence[int], padding: Sequence[int]) -> list[int]:
    """:func:`fft_conv`'s transform length per axis: the next 5-smooth
    n >= S + 2p, the padded input's extent."""
    return [next_fast_len(int(s) + 2 * int(p)) for s, p in zip(spatial, padding)]


def dilated_extents(kernel: Sequence[int], dilation: Sequence[int]) -> list[int]:
    """K_d: the extents of a kernel of sizes ``kernel`` once dilated."""
    return [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]


def _dilate(weight: Tensor, dilation: Sequence[int]) -> Tensor:
    if all(d == 1 for d in dilation):
        return weight
    dilated = dilated_extents(weight.shape[2:], dilation)
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
        if dft_matrix.cheaper(out.shape[d], n):
            # A kernel's few taps: a matrix product, contiguous (see
            # torchflip.nn._dft_matrix).
            matrix = dft_matrix.spectrum_matrix(n, out.shape[d], out.dtype, out.device)
            out = dft_matrix.along_axis(out, d, matrix)
            continue
        # Transformed as the last axis: the zero padding's copy then also
        # makes it contiguous, where torch.fft would copy a non-last axis to
        # the end and back (psf31@256's weight spectra: 0.2 ms of copies a
        # map). The result is a transposed view, which the copy into the
        # spectrum or its flattening reorders once.
        out = torch.fft.fft(out.transpose(d, -1), n=n, dim=-1).transpose(d, -1)
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
        if dft_matrix.cheaper(m, n):
            # A kernel's worth of rows (a weight gradient): only those rows
            # are computed, by a matrix product.
            t = dft_matrix.along_axis(t, d, dft_matrix.window_matrix(n, a, m, t.dtype, t.device))
        else:
            t = _cyclic_window(torch.fft.ifft(t, n=n, dim=d), d, a, m)
    return _cyclic_window(torch.fft.irfft(t, n=lengths[-1], dim=dims[-1]), dims[-1], start[-1],
                          size[-1])


def _cyclic_window(t: Tensor, dim: int, start: int, size: int) -> Tensor:
    """The indices [start, start + size) of ``dim``, modulo its length (size
    at most the length): a view, or two pieces joined (an index tensor of
    int64 would take twice the memory of a float32 window)."""
    length = t.shape[dim]
    start %= length
    first = min(size, length - start)
    if first == size:
        return t.narrow(dim, start, size)
    return torch.cat([t.narrow(dim, start, first), t.narrow(dim, 0, size - first)], dim)


def _narrow(t: Tensor, dim: int, start: int, length: int) -> Tensor:
    """``t.narrow(dim, start, length)``, or ``t`` itself where that is all of
    it. Every view is an ATen call, about 2 us each after an FFT has evicted
    the CPU's caches; a layer of one block took a dozen views that changed
    nothing (fir1024@16k's forward pass)."""
    if start == 0 and length == t.shape[dim]:
        return t
    return t.narrow(dim, start, length)


def _part(t: Tensor, index: Optional[tuple]) -> Tensor:
    """``t[index]``, or ``t`` itself for the index None (the whole of it,
    see :func:`_leading_chunks`)."""
    return t if index is None else t[index]


def _frequencies(lengths: Sequence[int]) -> tuple[int, ...]:
    """The shape of a real FFT's half-spectrum over ``lengths``."""
    return tuple(lengths[:-1]) + (lengths[-1] // 2 + 1,)


def _map_bytes(lengths: Sequence[int], element_size: int) -> int:
    """Bytes of one map's half-spectrum over ``lengths``, for real elements
    of ``element_size`` bytes (complex: twice that per frequency)."""
    return math.prod(_frequencies(lengths)) * 2 * element_size


# Spectra are laid out (batch, group, channel, F), F the flattened
# frequencies. Channels mix by a sum of broadcast products, one multiply-add
# over all frequencies per channel summed: on CPU 2-6 times faster than the
# equivalent batched complex matrix products, whose matrices (a few channels,
# one per frequency) are too small for BLAS.
def _channels(t: Tensor, groups: int, start: int, count: int) -> Tensor:
    """(A, groups * per, *rest) -> (A, groups, count, *rest): the channels
    [start, start + count) of every group (a view)."""
    return _narrow(t.unflatten(1, (groups, -1)), 2, start, count)


def _mix_forward(x_hat: Tensor, w_hat: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """(N, g, c, *F), (g, O/g, c, *F) -> (N, g, O/g, *F): sum over the c
    channels, added to ``out`` when given (*F broadcasts: overlap-save's
    (count, F) against the weight's (1, F))."""
    for c in range(x_hat.shape[2]):
        term = (_narrow(x_hat, 2, c, 1), w_hat.select(2, c))
        out = term[0] * term[1] if out is None else out.addcmul_(*term)
    return out


def _mix_input_grad(g_hat: Tensor, w_hat: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """(N, g, O/g, *F), (g, O/g, c, *F) -> (N, g, c, *F): sum over o of
    g conj(w), added to ``out`` when given (*F broadcasts, as in
    :func:`_mix_forward`)."""
    w_conj = w_hat.conj()
    for o in range(g_hat.shape[2]):
        term = (_narrow(g_hat, 2, o, 1), w_conj.select(1, o))
        out = term[0] * term[1] if out is None else out.addcmul_(*term)
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
    lengths = padded_lengths(input.shape[2:], padding)
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


class Blocks(NamedTuple):
    """How many groups, samples, input channels (per group) and output
    channels (per group) one block of the FFT engine takes."""

    groups: int
    samples: int
    channels: int
    outputs: int


def _budget(input: Tensor) -> int:
    """Bytes of complex spectra a block keeps (see BLOCK_INPUT_SHARE)."""
    return max(input.numel() * input.element_size() // BLOCK_INPUT_SHARE, BLOCK_MIN_BYTES)


def _blocks(input: Tensor, out_per_group: int, lengths: Sequence[int], groups: int,
            budget: int) -> Blocks:
    """The blocks of :func:`fft_forward` and :func:`fft_backward`.

    A layer whose spectra together take at most WHOLE_LAYER_BYTES is one
    block. Otherwise, groups and samples: a block's input spectrum, and its output's (the
    larger of the two), stay under the budget (:func:`_budget`), splitting
    groups first (a block of groups also shrinks the weight's spectrum and
    its gradient's; a block of samples does not).
    Input channels: a block's weight spectrum (groups x outputs per group x
    channels) stays under the same budget, so a dense layer never holds the
    spectrum of its whole weight (16 -> 16 channels of 31x31 kernels at
    128x128: 26 MB, against 2 MB of input). Blocks of input channels take
    every sample at once: spectra summed over channels (the output's forward,
    the input gradient's backward) then accumulate over the channel blocks
    with no transform done twice, and each weight gradient block is complete
    after one pass. Output channels: where one block takes every sample and
    every input channel and the weight spectrum is still too large (a bank of
    long 1-D filters over one signal), it is split by outputs, which also
    splits the spectra of the output and of its gradient."""
    n, c_per = int(input.shape[0]), int(input.shape[1]) // groups
    map_bytes = _map_bytes(lengths, input.element_size())
    whole_layer = (n * (c_per + out_per_group) + out_per_group * c_per) * groups * map_bytes
    if whole_layer <= WHOLE_LAYER_BYTES:
        return Blocks(groups, n, c_per, out_per_group)
    count = -(-(n * max(c_per, out_per_group) * groups * map_bytes) // budget)
    if count <= 1:
        group_step, sample_step = groups, n
    elif count <= groups:
        group_step, sample_step = -(-groups // count), n
    else:
        group_step, sample_step = 1, max(1, -(-n // -(-count // groups)))
    channel_step = max(1, min(c_per, budget // (group_step * out_per_group * map_bytes)))
    out_step = out_per_group
    if channel_step < c_per:
        sample_step = n
    elif sample_step == n:
        out_step = max(1, min(out_per_group, budget // (group_step * c_per * map_bytes)))
    return Blocks(group_step, sample_step, channel_step, out_step)


def _ranges(total: int, step: int):
    for start in range(0, total, step):
        yield start, min(step, total - start)


def _chunk_bytes(map_bytes: int, budget: int, lengths: Sequence[int],
                 device: torch.device) -> int:
    """The most bytes of spectrum one chunk of a transform takes:
    CHUNK_BUDGETS block budgets, but at least CHUNK_MIN_ROWS rows and, on
    CPU, one map per thread."""
    rows = math.prod(lengths[:-1])
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    return max(CHUNK_BUDGETS * budget, -(-CHUNK_MIN_ROWS // rows) * map_bytes,
               threads * map_bytes)


def _leading_chunks(shape: Sequence[int], map_bytes: int, budget: int):
    """Index tuples (slices of the leading dimensions ``shape``) that cover
    them in order, each taking at most ``budget`` bytes of maps (one map at
    least); the one index None where a single chunk takes them all."""
    if math.prod(shape) * map_bytes <= budget:
        yield None
        return
    yield from _chunks_of(shape, map_bytes, budget)


def _chunks_of(shape: Sequence[int], map_bytes: int, budget: int):
    if not shape:
        yield ()
        return
    inner = math.prod(shape[1:]) * map_bytes
    if inner <= budget:
        for start, count in _ranges(int(shape[0]), max(1, budget // inner)):
            yield (slice(start, start + count),)
        return
    for i in range(int(shape[0])):
        for rest in _chunks_of(shape[1:], map_bytes, budget):
            yield (slice(i, i + 1),) + rest


def _spectrum(t: Tensor, lengths: Sequence[int], budget: int) -> Tensor:
    """(..., *S) -> (..., F): the real FFT over the trailing dimensions,
    frequencies flattened, transformed a chunk (:func:`_chunk_bytes`) at a time
    into the result where that holds less memory. torch.fft holds two or
    three temporaries of its output's size (the padded copy, a layout copy,
    the result), so a whole transform needs about three times the spectrum,
    and a chunked one the spectrum plus three times its largest chunk: whole
    transforms are taken up to one and a half chunks, which spares the copies
    (a 3-map weight spectrum of psf31@256 in chunks of 2 maps: 0.28 ms
    against 0.16 ms whole on two threads)."""
    k = len(lengths)
    frequencies = _frequencies(lengths)
    leading = tuple(t.shape[:-k])
    map_bytes = _map_bytes(lengths, t.element_size())
    chunk_bytes = _chunk_bytes(map_bytes, budget, lengths, t.device)
    if _transformed_whole(math.prod(leading), map_bytes, chunk_bytes):
        return _rfft(t, lengths).flatten(-k)
    out = t.new_empty(leading + (math.prod(frequencies),),
                      dtype=torch.promote_types(t.dtype, torch.complex64))
    for index in _leading_chunks(leading, map_bytes, chunk_bytes):
        _part(out, index).unflatten(-1, frequencies).copy_(_rfft(_part(t, index), lengths))
    return out


def _transformed_whole(maps: int, map_bytes: int, chunk_bytes: int) -> bool:
    """Whether :func:`_spectrum` transforms ``maps`` maps in one call."""
    return 2 * maps * map_bytes <= 3 * chunk_bytes


def _copy_padded(rows: Tensor, t: Tensor) -> None:
    """Writes ``t`` (..., K) into ``rows`` (..., L), K <= L, with zeros after
    it: rows zero-padded for one transform call with other operands."""
    size = t.shape[-1]
    _narrow(rows, -1, 0, size).copy_(t)
    if size < rows.shape[-1]:
        rows.narrow(-1, size, rows.shape[-1] - size).zero_()


def _joint_spectra(x: Tensor, w: Tensor, length: int, budget: int
                   ) -> Optional[tuple[Tensor, Tensor]]:
    """The spectra (..., F) of the 1-D maps ``x`` (..., S) and ``w`` (..., K)
    at one transform length, by one torch.fft call on their rows stacked,
    where that saves time: torch.fft plans every call afresh, at a cost that
    grows with the length (on MKL: 13 us at 1024 points, 45 at 4096, 180 at
    16384, against about 3 us to transform a 4096-point row), and the rows
    must be copied into one tensor. From JOINT_MIN_LENGTH points the saved
    plan outweighs the copies (fir1024@16k's forward pass, six 4096-point
    segments and four filters: 0.95-0.97 of the time of two calls, at one
    and two threads; fir64@16k's 1024-point segments: 1.00-1.03). None
    there, and where :func:`_spectrum` would transform the rows in chunks."""
    x_rows, w_rows = x.numel() // x.shape[-1], w.numel() // w.shape[-1]
    map_bytes = _map_bytes([length], x.element_size())
    if length < JOINT_MIN_LENGTH or not _transformed_whole(
            x_rows + w_rows, map_bytes, _chunk_bytes(map_bytes, budget, [length], x.device)):
        return None
    size = max(x.shape[-1], w.shape[-1])
    rows = x.new_empty((x_rows + w_rows, size))
    for part, t in ((rows[:x_rows], x), (rows[x_rows:], w)):
        _copy_padded(part.view(t.shape[:-1] + (size,)), t)
    spectra = torch.fft.rfft(rows, n=length)
    return (spectra[:x_rows].view(x.shape[:-1] + (-1,)),
            spectra[x_rows:].view(w.shape[:-1] + (-1,)))


def _inverse_into(dest: Tensor, spectrum: Tensor, lengths: Sequence[int], start: Sequence[int],
                  size: Sequence[int], budget: int, step: Optional[Sequence[int]] = None) -> None:
    """Writes into ``dest`` (..., *out) the window [start, start + size) of
    the inverse transform of ``spectrum`` (..., F), taking every ``step``-th
    sample of it when given (a dilated kernel's taps), a chunk of at most
    ``budget`` bytes of spectrum at a time (see :func:`_spectrum`)."""
    map_bytes = spectrum.shape[-1] * spectrum.element_size()
    frequencies = _frequencies(lengths)
    chunk_bytes = _chunk_bytes(map_bytes, budget, lengths, spectrum.device)
    for index in _leading_chunks(tuple(spectrum.shape[:-1]), map_bytes, chunk_bytes):
        window = _irfft_window(_part(spectrum, index).unflatten(-1, frequencies), lengths,
                               start, size)
        if step is not None and any(d != 1 for d in step):
            window = window[(Ellipsis,) + tuple(slice(None, None, d) for d in step)]
        _part(dest, index).copy_(window)


# Where a layer's weight needs no gradient, its spectra can be kept between
# calls (torchflip.nn._flip_cache): a function (key, bytes, compute) -> the
# kept spectrum, or None where it is not kept (then nothing is computed).
WeightSpectra = Callable[[tuple, int, Callable[[], Tensor]], Optional[Tensor]]


def _weight_spectrum_key(weight_shape: Sequence[int], lengths: Sequence[int],
                         groups: int, element_size: int) -> tuple[tuple, int]:
    """The key under which a WeightSpectra keeps the whole weight's spectrum
    at ``lengths`` (weight of the dilated kernel's shape), and its bytes."""
    nbytes = math.prod(weight_shape[:2]) * _map_bytes(lengths, element_size)
    return (tuple(lengths), groups, tuple(weight_shape[2:])), nbytes


def _kept_weight_spectrum(weight_spectra: Optional[WeightSpectra], w_dilated: Tensor,
                          lengths: Sequence[int], groups: int, budget: int,
                          key: Optional[tuple[tuple, int]] = None) -> Optional[Tensor]:
    """The whole weight's spectrum (g, O/g, C/g, F) as ``weight_spectra``
    keeps it, or None. ``key``: its :func:`_weight_spectrum_key`, where the
    caller has it already."""
    if weight_spectra is None:
        return None
    key, nbytes = key or _weight_spectrum_key(w_dilated.shape, lengths, groups,
                                              w_dilated.element_size())
    return weight_spectra(key, nbytes, lambda: _spectrum(w_dilated.unflatten(0, (groups, -1)),
                                                         lengths, budget))


def _weight_block(w_g: Tensor, w_g_kept: Optional[Tensor], o0: int, os: int, c0: int, cs: int,
                  lengths: Sequence[int], budget: int) -> Tensor:
    """The spectrum of the output channels [o0, o0 + os) and input channels
    [c0, c0 + cs) of ``w_g`` (gs, O/g, C/g, *K), the weight of a block of
    groups: a view of its kept spectrum where there is one."""
    if w_g_kept is not None:
        return _narrow(_narrow(w_g_kept, 1, o0, os), 2, c0, cs)
    return _spectrum(_narrow(_narrow(w_g, 1, o0, os), 2, c0, cs), lengths, budget)


def _blocked_forward(input: Tensor, weight: Tensor, bias: Optional[Tensor],
                     padding: Sequence[int], dilation: Sequence[int], groups: int,
                     weight_spectra: Optional[WeightSpectra] = None,
                     out: Optional[Tensor] = None) -> Tensor:
    """:func:`fft_conv`'s result (written into ``out`` when given), computed
    a block of groups, samples, input channels and output channels at a time
    (see the module doc and :func:`_blocks`). Gradients come from
    :func:`fft_backward`, not from autograd.

    Zero padding before x only shifts the full convolution, so x is
    transformed unpadded and the window moves back by the padding instead,
    which spares the padded copy and the transform of its zero rows. The
    window [K_d - 1 - p, S + p) is taken cyclically: with transform lengths
    n >= S + p (:func:`transform_lengths`), its indices below 0 (padding
    beyond the kernel) land at or past the full convolution's S + K_d - 1
    samples, where the cyclic result is zero, and no index of it receives a
    wrapped term."""
    n = input.shape[0]
    w_dilated = _dilate(weight, dilation)
    kernel = w_dilated.shape[2:]
    lengths = transform_lengths(input.shape[2:], padding, kernel)
    c_per, o_per = input.shape[1] // groups, weight.shape[0] // groups
    budget = FORWARD_BUDGETS * _budget(input)
    blocks = _blocks(input, o_per, lengths, groups, budget)
    start = [k - 1 - p for k, p in zip(kernel, padding)]
    out_size = [s + 2 * p - k + 1 for s, p, k in zip(input.shape[2:], padding, kernel)]
    if out is None:
        out = input.new_empty((n, weight.shape[0], *out_size))
    channel_blocks = list(_ranges(c_per, blocks.channels))
    output_blocks = list(_ranges(o_per, blocks.outputs))
    w_kept = _kept_weight_spectrum(weight_spectra, w_dilated, lengths, groups, budget)
    # One block of a 1-D layer transforms its input and weight in one call.
    one_block = (len(lengths) == 1 and w_kept is None and blocks.groups == groups
                 and blocks.samples == n and len(channel_blocks) == 1
                 and len(output_blocks) == 1)
    for g0, gs in _ranges(groups, blocks.groups):
        x_g = _narrow(input, 1, g0 * c_per, gs * c_per)
        w_g = _narrow(w_dilated, 0, g0 * o_per, gs * o_per).unflatten(0, (gs, o_per))
        w_g_kept = None if w_kept is None else _narrow(w_kept, 0, g0, gs)
        out_g = _narrow(out, 1, g0 * o_per, gs * o_per).unflatten(1, (gs, o_per))
        joint = (_joint_spectra(_channels(x_g, gs, 0, c_per), w_g, lengths[0], budget)
                 if one_block else None)
        # A spectrum that one block covers whole is transformed once.
        if joint is not None:
            w_whole = joint[1]
        elif len(channel_blocks) == 1 and len(output_blocks) == 1:
            w_whole = _weight_block(w_g, w_g_kept, 0, o_per, 0, c_per, lengths, budget)
        else:
            w_whole = None
        for n0, ns in _ranges(n, blocks.samples):
            x_n = _narrow(x_g, 0, n0, ns)
            if joint is not None:
                x_whole = joint[0]
            elif len(channel_blocks) == 1:
                x_whole = _spectrum(_channels(x_n, gs, 0, c_per), lengths, budget)
            else:
                x_whole = None
            for o0, os in output_blocks:
                y_hat = None
                for c0, cs in channel_blocks:
                    x_hat = (x_whole if x_whole is not None
                             else _spectrum(_channels(x_n, gs, c0, cs), lengths, budget))
                    w_hat = (w_whole if w_whole is not None
                             else _weight_block(w_g, w_g_kept, o0, os, c0, cs, lengths, budget))
                    y_hat = _mix_forward(x_hat, w_hat, y_hat)
                    # Freed before the next block's spectra are made.
                    del x_hat, w_hat
                _inverse_into(_narrow(_narrow(out_g, 0, n0, ns), 2, o0, os), y_hat, lengths, start,
                              out_size, budget)
                del y_hat
            del x_whole
    if bias is not None:
        out.add_(bias.reshape((1, -1) + (1,) * (weight.dim() - 2)))
    return out


def _blocked_backward(grad_output: Tensor, input: Tensor, weight: Tensor,
                      padding: Sequence[int], dilation: Sequence[int], groups: int,
                      mask: Sequence[bool],
                      weight_spectra: Optional[WeightSpectra] = None
                      ) -> tuple[Optional[Tensor], ...]:
    """(grad_input, grad_weight) of :func:`_blocked_forward` for the
    gradients ``mask`` asks for, by the correlation formulas of the module
    doc, a block at a time."""
    n = input.shape[0]
    w_dilated = _dilate(weight, dilation)
    kernel = w_dilated.shape[2:]
    lengths = transform_lengths(input.shape[2:], padding, kernel)
    c_per, o_per = input.shape[1] // groups, weight.shape[0] // groups
    budget = _budget(input)
    blocks = _blocks(input, o_per, lengths, groups, budget)
    channel_blocks = list(_ranges(c_per, blocks.channels))
    output_blocks = list(_ranges(o_per, blocks.outputs))
    # The output gradient sits at [K_d - 1, S_p) of the full result; it is
    # transformed as it is, and the windows of both gradients move back by
    # K_d - 1 instead (wrapping around, which the transform lengths >= S + p
    # leave free of aliasing: both gradients' linear supports and windows
    # span S + p samples, see transform_lengths). Unpadded x (x_p is x
    # shifted by p) moves the weight gradient's window p later.
    grad_start = [p - (k - 1) for p, k in zip(padding, kernel)]
    grad_input = input.new_empty(input.shape) if mask[0] else None
    grad_weight = weight.new_empty(weight.shape) if mask[1] else None
    w_kept = (_kept_weight_spectrum(weight_spectra, w_dilated, lengths, groups, budget)
              if mask[0] else None)
    for g0, gs in _ranges(groups, blocks.groups):
        x_g = _narrow(input, 1, g0 * c_per, gs * c_per)
        g_g = _narrow(grad_output, 1, g0 * o_per, gs * o_per).unflatten(1, (gs, o_per))
        w_g = _narrow(w_dilated, 0, g0 * o_per, gs * o_per).unflatten(0, (gs, o_per))
        w_g_kept = None if w_kept is None else _narrow(w_kept, 0, g0, gs)
        w_whole = (_weight_block(w_g, w_g_kept, 0, o_per, 0, c_per, lengths, budget)
                   if mask[0] and len(channel_blocks) == 1 and len(output_blocks) == 1 else None)
        # The weight gradient's spectrum of a block of channels sums over
        # every block of samples (there are several only with one block of
        # input and of output channels).
        w_grad_hats: dict = {}

        def store_weight_grad(c0: int, cs: int, o0: int, os: int) -> None:
            target = _narrow(grad_weight, 0, g0 * o_per, gs * o_per).unflatten(0, (gs, o_per))
            _inverse_into(_narrow(_narrow(target, 1, o0, os), 2, c0, cs),
                          w_grad_hats.pop((c0, cs, o0, os)), lengths, grad_start, kernel, budget,
                          dilation)

        for n0, ns in _ranges(n, blocks.samples):
            g_n = _narrow(g_g, 0, n0, ns)
            g_whole = _spectrum(g_n, lengths, budget) if len(output_blocks) == 1 else None
            for c0, cs in channel_blocks:
                x_hat = (_spectrum(_channels(_narrow(x_g, 0, n0, ns), gs, c0, cs), lengths, budget)
                         if mask[1] else None)
                gx_hat = None
                for o0, os in output_blocks:
                    g_hat = (g_whole if g_whole is not None
                             else _spectrum(_narrow(g_n, 2, o0, os), lengths, budget))
                    if mask[0]:
                        w_hat = (w_whole if w_whole is not None
                                 else _weight_block(w_g, w_g_kept, o0, os, c0, cs, lengths,
                                                    budget))
                        gx_hat = _mix_input_grad(g_hat, w_hat, gx_hat)
                        # Freed before the next block's spectra are made.
                        del w_hat
                    if mask[1]:
                        key = (c0, cs, o0, os)
                        w_grad_hats[key] = _mix_weight_grad(g_hat, x_hat, w_grad_hats.get(key))
                        if blocks.samples >= n:
                            store_weight_grad(*key)
                    del g_hat
                if mask[0]:
                    target = _narrow(_narrow(grad_input, 0, n0, ns), 1, g0 * c_per, gs * c_per)
                    _inverse_into(_channels(target, gs, c0, cs), gx_hat, lengths, grad_start,
                                  input.shape[2:], budget)
                del x_hat, gx_hat
            del g_whole
        for key in list(w_grad_hats):
            store_weight_grad(*key)
    return grad_input, grad_weight


# Overlap-save: torch.fft amortises its per-call work over the rows of a
# batch of transforms (see CHUNK_MIN_ROWS), so a long 1-D signal with few
# samples x channels transforms slowly per row, and its whole-length spectra
# take memory by the megabyte. Cut into segments of
# about OVERLAP_SAVE_KERNELS kernels (at least OVERLAP_SAVE_MIN_LENGTH
# samples), the same signal is many short rows: batched, and blocked like
# the samples of a batch.
OVERLAP_SAVE_ROWS = 4
OVERLAP_SAVE_KERNELS = 4
OVERLAP_SAVE_MIN_LENGTH = 1024
OVERLAP_SAVE_MIN_SEGMENTS = 4
# Up to this many bytes of spectra (segments, weight and output), the forward
# pass takes every segment in one block (:func:`_segments_in_one_block`):
# compare_fft_engine.py against blocks of segments, forward pass, one and two
# threads: 0.74-0.82 at 16k samples, 0.47-0.76 at 64k (64 to 4096 taps, four
# filters). Its peak is the segments' rows with their spectra, which sets a
# training step's peak at 64k samples: 0.94-1.02 of torch.nn's there
# (`benchmarks/run.py --suite memory`; fir4096@64k, 2.2 MB of spectra, 1.024),
# more once the rows outlived their transform or with 8 MiB allowed.
SEGMENTS_ONE_BLOCK_BYTES = 4 << 20
# The backward pass (:func:`_overlap_save_backward`) takes every segment at once
# where their spectra take at most WHOLE_LAYER_BYTES, as _blocks does, and
# otherwise chunks of segments of at most this many bytes of spectra: its
# peak is about twice a chunk's spectra beside the output gradient, and at
# 64k samples torch.nn's training step peaks at only 3.1-3.2 MiB (oneDNN,
# one thread). Every segment at once (up to 2 MiB of spectra) peaked at
# 1.59-1.62 of that, chunks of 1 MiB at 1.16-1.18; with chunks of 512 KiB
# the forward pass sets the peak (0.94-1.02). Against the blocks of segments
# before, backward pass at one and two threads: 0.96-1.0 at 16k samples (one
# chunk), 0.51-0.85 at 64k.
SEGMENT_GRADIENTS_CHUNK_BYTES = 1 << 19


def _overlap_save_hop(input: Tensor, weight: Tensor, padding: Sequence[int],
                      dilation: Sequence[int]) -> Optional[int]:
    """The outputs per segment of overlap-save for a 1-D layer (each
    segment's transform is a fast length), or None where whole transforms
    are better: more rows than OVERLAP_SAVE_ROWS, or fewer segments than
    OVERLAP_SAVE_MIN_SEGMENTS."""
    if input.dim() != 3 or input.shape[0] * input.shape[1] >= OVERLAP_SAVE_ROWS:
        return None
    kernel, = dilated_extents(weight.shape[2:], dilation)
    hop = _segment_hop(kernel, OVERLAP_SAVE_KERNELS)
    outputs = input.shape[2] + 2 * padding[0] - kernel + 1
    return hop if outputs // hop >= OVERLAP_SAVE_MIN_SEGMENTS else None


def _segment_hop(kernel: int, kernels: int) -> int:
    """The outputs of a segment of about ``kernels`` kernels (at least
    OVERLAP_SAVE_MIN_LENGTH samples), its length a fast transform length."""
    return next_fast_len(max(kernels * kernel, OVERLAP_SAVE_MIN_LENGTH)) - kernel + 1


# A bank of many filters per signal spends most of a whole-length forward
# pass transforming its weight: bank1025@16k (16 -> 16 filters of 1025 taps
# over 2 x 16k samples) transforms 256 weight rows of 17496 points against 64
# rows of signal and output. Overlap-save transforms the weight at the
# segments' length instead (once per sample). The forward pass takes it where
# its transform work, estimated as rows x n log2 n over segments of
# OVERLAP_SAVE_BANK_KERNELS kernels, is under OVERLAP_SAVE_BANK_SHARE of the
# whole transforms'. The estimate leaves out the multiply-adds of spectra,
# which the segments' overlap increases. On seven banks (4 to 64 channels, 9
# to 1025 taps, 8k to 64k samples), every estimate under 0.75 measured
# 0.21-0.82 of the whole transforms' time on one thread and 0.21-1.03 on two
# (bank1025@16k: 0.55 estimated, 0.53-0.59 measured; the 1.03 is 64 -> 64
# channels of 9 taps, where the multiply-adds dominate either way). The
# backward pass keeps whole transforms: with overlap-save it measured no
# faster (its spectra multiply over more frequencies, and the weight gradient
# sums over every segment), and the peak memory of fwd+bwd rose from 0.75 to
# 1.25 of torch.nn's.
OVERLAP_SAVE_BANK_KERNELS = (2, 4)
OVERLAP_SAVE_BANK_SHARE = 0.75


def _transform_work(rows: int, length: int) -> float:
    return rows * length * math.log2(length)


def _filter_bank_hop(input: Tensor, weight: Tensor, padding: Sequence[int],
                     dilation: Sequence[int], groups: int) -> Optional[int]:
    """The outputs per segment of overlap-save for the forward pass of a 1-D
    filter bank, or None where whole transforms are estimated to cost less
    than 1 / OVERLAP_SAVE_BANK_SHARE times as much (see above)."""
    if input.dim() != 3:
        return None
    n, c, o = int(input.shape[0]), int(input.shape[1]), int(weight.shape[0])
    weight_rows = o * (c // groups)
    kernel, = dilated_extents(weight.shape[2:], dilation)
    padded = int(input.shape[2]) + 2 * padding[0]
    outputs = padded - kernel + 1
    best_hop = None
    whole, = transform_lengths(input.shape[2:], padding, [kernel])
    best_work = OVERLAP_SAVE_BANK_SHARE * _transform_work(n * c + weight_rows + n * o, whole)
    for kernels in OVERLAP_SAVE_BANK_KERNELS:
        hop = _segment_hop(kernel, kernels)
        count, rest = divmod(outputs, hop)
        if count < OVERLAP_SAVE_MIN_SEGMENTS:
            continue
        work = n * _transform_work(count * (c + o) + weight_rows, hop + kernel - 1)
        if rest:
            work += n * _transform_work(c + o + weight_rows, next_fast_len(rest + kernel - 1))
        if work < best_work:
            best_hop, best_work = hop, work
    return best_hop


def _segments(t: Tensor, size: int, hop: int, count: int) -> Tensor:
    """(C, L) -> (count, C, size): the windows [j hop, j hop + size) of
    ``t``, overlapping where size > hop; a view."""
    return _narrow(t.unfold(-1, size, hop), 1, 0, count).transpose(0, 1)


def _overlap_add(segments: Tensor, hop: int, length: int) -> Tensor:
    """(..., J, size) -> (..., length): the sum of segment j placed at j hop
    (the adjoint of :func:`_segments`), for hop <= size <= 2 hop."""
    count, size = segments.shape[-2:]
    lead = tuple(segments.shape[:-2])
    out = segments.new_zeros(lead + (length,))
    out.narrow(-1, 0, count * hop).unflatten(-1, (count, hop)).add_(segments.narrow(-1, 0, hop))
    tail = size - hop
    if tail:
        # The last tail on its own: the signal may end within its hop.
        tails = segments.narrow(-1, hop, tail)
        out.narrow(-1, hop, (count - 1) * hop).unflatten(-1, (count - 1, hop)).narrow(
            -1, 0, tail).add_(tails.narrow(-2, 0, count - 1))
        out.narrow(-1, count * hop, tail).add_(tails.select(-2, count - 1))
    return out


class SegmentLayout(NamedTuple):
    """Overlap-save's forward pass for one layer's shapes, worked out once
    (:func:`_overlap_save_forward`, :func:`_segments_in_one_block`; the
    backward pass derives the same from its operands, where building this
    cost 1.5-2% of fir64@16k's 0.32 ms): input (N, C, S), weight (O, C/g, K)
    dilated to K_d taps, ``count`` segments of ``size`` = hop + K_d - 1
    samples giving ``hop`` outputs each, ``length`` outputs, of which the
    first ``full`` segments give full hops."""

    signal_pad: tuple[int, int]  # zeros before and after the signal
    dilation: tuple[int, ...]
    groups: int
    kernel: int
    hop: int
    count: int
    size: int
    length: int
    full: int
    spectrum_key: tuple[tuple, int]  # the weight spectrum's, see _weight_spectrum_key


def _segment_layout(input: Tensor, weight: Tensor, padding: Sequence[int],
                    dilation: Sequence[int], groups: int, hop: int) -> SegmentLayout:
    kernel, = dilated_extents(weight.shape[2:], dilation)
    length = int(input.shape[2]) + 2 * padding[0] - kernel + 1
    count = -(-length // hop)
    size = hop + kernel - 1
    key = _weight_spectrum_key(tuple(weight.shape[:2]) + (kernel,), [size], groups,
                               input.element_size())
    return SegmentLayout((padding[0], padding[0] + count * hop - length), tuple(dilation),
                         groups, kernel, hop, count, size, length, length // hop, key)


def _padded_signal(layout: SegmentLayout, input: Tensor) -> Tensor:
    """The input with the layer's zeros before it and zeros after it to the
    end of the last segment."""
    if layout.signal_pad == (0, 0):
        return input
    return torch.nn.functional.pad(input, layout.signal_pad)


def _overlap_save_forward(layout: SegmentLayout, input: Tensor, weight: Tensor,
                          bias: Optional[Tensor],
                          weight_spectra: Optional[WeightSpectra] = None) -> Tensor:
    """:func:`fft_conv`'s result for a 1-D layer by overlap-save, in blocks
    of segments: the padded signal's segments [j hop, j hop + hop + K_d - 1)
    give the outputs [j hop, (j + 1) hop) as 'valid' convolutions, which the
    blocked engine computes with the segments as samples. (Where every
    segment's spectra are small, :func:`_segments_in_one_block` takes them
    at once instead.)

    The signal gains zeros at its end until its last segment is whole, and
    the outputs past the true length are cut off. A shorter last segment
    would take its own transforms of signal, weight and output, and
    torch.fft plans every call afresh (on MKL, 45 us of a 48 us transform of
    one 4096-point row): fir1024@16k's forward pass took 0.68 ms with one,
    0.54 ms without."""
    n = input.shape[0]
    hop, count, size, length = layout.hop, layout.count, layout.size, layout.length
    x_p = _padded_signal(layout, input)
    out = input.new_empty((n, weight.shape[0], count * hop))
    for i in range(n):
        _blocked_forward(_segments(x_p[i], size, hop, count), weight, None, [0],
                         layout.dilation, layout.groups, weight_spectra,
                         out=_segments(out[i], hop, hop, count))
    if count * hop != length:
        out = out.narrow(2, 0, length).contiguous()
    if bias is not None:
        out.add_(bias.reshape(1, -1, 1))
    return out


def _one_block_segments(input: Tensor, weight: Tensor, count: int, size: int) -> bool:
    """Whether the spectra of every segment of every sample, of the weight
    and of the output take at most SEGMENTS_ONE_BLOCK_BYTES."""
    n, c = int(input.shape[0]), int(input.shape[1])
    o, c_per = int(weight.shape[0]), int(weight.shape[1])
    rows = n * count * (c + o) + o * c_per
    return rows * _map_bytes([size], input.element_size()) <= SEGMENTS_ONE_BLOCK_BYTES


def _segments_in_one_block(layout: SegmentLayout, input: Tensor, weight: Tensor,
                           bias: Optional[Tensor],
                           weight_spectra: Optional[WeightSpectra]) -> Tensor:
    """:func:`_overlap_save_forward`'s result with every segment in one
    block. One transform takes the segments of the padded signal, together
    with the weight's rows zero-padded to the segment length from
    JOINT_MIN_LENGTH points (below, the weight has its own transform; none
    where its spectrum is kept); one inverse transform gives
    every output segment, whose window [K_d - 1, K_d - 1 + hop) is written
    straight into the output with the bias added. The blocks of segments
    made more transforms (torch.fft plans every call: 3 at fir64@16k, 7 at
    fir1024@64k) and wrote the output three times: segments into a padded
    buffer, its first samples copied out, then the bias. Every ATen call
    counts here, views included: between layers, with the CPU's caches
    evicted, each takes several microseconds (see :func:`forward_plan`)."""
    n, c = input.shape[:2]
    o, c_per = weight.shape[:2]
    groups, kernel, hop, count, size = (layout.groups, layout.kernel, layout.hop, layout.count,
                                        layout.size)
    x_p = _padded_signal(layout, input)
    w_dilated = _dilate(weight, layout.dilation)
    kept = _kept_weight_spectrum(weight_spectra, w_dilated, [size], groups, 0,
                                 layout.spectrum_key)
    x_rows = n * c * count
    if kept is None and size >= JOINT_MIN_LENGTH:
        # One transform of the segments' and the weight's rows (torch.fft
        # plans every call: see _joint_spectra).
        rows = x_p.new_empty((x_rows + o * c_per, size))
        _copy_padded(rows[x_rows:].view(o, c_per, size), w_dilated)
        rows[:x_rows].view(n, c, count, size).copy_(x_p.unfold(2, size, hop))
        spectra = torch.fft.rfft(rows)
        del rows  # no view of it is left
        spectra, kept = spectra[:x_rows], spectra[x_rows:]
    else:
        # The segments' overlapping view is transformed as it is (torch.fft
        # takes strided rows; 0.7 of the time of a copy and its transform),
        # and below JOINT_MIN_LENGTH points the weight on its own, padded by
        # torch.fft: the plan saved by one call costs less than the ATen
        # calls that fill a joint row buffer (forward pass, one and two
        # threads: 0.93-0.97 at fir64@16k, fir256@16k and fir64@64k's
        # 1024-point segments; 1.09-1.15 at 4096 points and more).
        spectra = torch.fft.rfft(x_p.unfold(2, size, hop))
        if kept is None:
            kept = torch.fft.rfft(w_dilated, n=size)
    frequencies = spectra.shape[-1]
    # (N, g, C/g, count, F) and (g, O/g, C/g, 1, F): channel c's products
    # broadcast to (N, g, O/g, count, F).
    x_hat = spectra.view(n, groups, c // groups, count, frequencies)
    w_hat = kept.view(groups, o // groups, c_per, 1, frequencies)
    y_hat = _mix_forward(x_hat, w_hat)
    # Freed before the inverse transform, the step of the largest temporaries.
    del spectra, kept, x_hat, w_hat
    y = torch.fft.irfft(y_hat.view(n, o, count, frequencies), n=size)
    del y_hat
    length, full = layout.length, layout.full
    out = x_p.new_empty((n, o, length))
    # The windows [K_d - 1, K_d - 1 + hop) of the first `full` segments,
    # then the rest's shorter one, as (N, O, segments, samples) views of y
    # and of the output, one as_strided call each (the views' narrow/select
    # chains took three to five calls a piece).
    y_strides, y_offset = y.stride(), y.storage_offset() + (kernel - 1) * y.stride(3)
    out_strides = (o * length, length, hop, 1)
    pieces = [(full, hop, 0)]
    if full < count:
        pieces.append((1, length - full * hop, full))
    for segments, samples, first in pieces:
        shape = (n, o, segments, samples)
        dest = out.as_strided(shape, out_strides, first * hop)
        window = y.as_strided(shape, y_strides, y_offset + first * y_strides[2])
        if bias is None:
            dest.copy_(window)
        else:
            torch.add(window, bias.view(1, o, 1, 1), out=dest)
    return out


def _gradient_segments(rows: Tensor, grad_output: Tensor, hop: int) -> None:
    """Writes into ``rows`` (N, O, count, L) segment j of ``grad_output``
    (N, O, length) at [L - hop, L) of row j, zeros elsewhere: the output
    gradient as each segment's full convolution sees it."""
    count, segment = rows.shape[2:]
    length = grad_output.shape[2]
    rows.narrow(3, 0, segment - hop).zero_()
    full, rest = divmod(length, hop)
    rows.narrow(2, 0, full).narrow(3, segment - hop, hop).copy_(
        grad_output.narrow(2, 0, full * hop).unflatten(2, (full, hop)))
    if rest:
        last = rows.select(2, full)
        last.narrow(2, segment - hop, rest).copy_(grad_output.narrow(2, full * hop, rest))
        last.narrow(2, segment - hop + rest, hop - rest).zero_()


def _overlap_save_backward(grad_output: Tensor, input: Tensor, weight: Tensor,
                           padding: Sequence[int], dilation: Sequence[int], groups: int,
                           mask: Sequence[bool], hop: int,
                           weight_spectra: Optional[WeightSpectra] = None
                           ) -> tuple[Optional[Tensor], Optional[Tensor]]:
    """The gradients of :func:`_overlap_save_forward`, a chunk of segments
    at a time, each with one transform and one inverse transform.
    Segment j of the output gradient, placed at [K_d - 1, K_d - 1 + hop) in
    a zero row of the segment length L = hop + K_d - 1 (the last one
    completed with zeros), gives by the correlation theorem the input
    gradient of the padded signal's segment j, irfft(G_j conj(W)) over all
    of [0, L), which overlap-add, and the weight gradient's share
    G_j conj(X_j), summed over segments and samples before one inverse
    transform, of which [0, K_d) is kept; neither wraps around. One transform
    takes a chunk's rows of the gradient and of the signal (for the weight
    gradient), with the weight's rows in the first chunk (for the input
    gradient), and one inverse transform the spectra the chunk completes.
    A chunk's spectra take at most SEGMENT_GRADIENTS_CHUNK_BYTES. Built
    from differentiable operations, for a second backward pass."""
    if not (mask[0] or mask[1]):
        return None, None
    w_dilated = _dilate(weight, dilation)
    pad, tap_step = padding[0], dilation[0]
    n, c, size = input.shape
    o, c_per, kernel = w_dilated.shape
    length = grad_output.shape[2]
    count = -(-length // hop)
    segment = hop + kernel - 1
    w_hat = (_kept_weight_spectrum(weight_spectra, w_dilated, [segment], groups, 0)
             if mask[0] else None)
    w_rows = o * c_per if mask[0] and w_hat is None else 0
    per_segment = n * (o + (c if mask[1] else 0))
    map_bytes = _map_bytes([segment], input.element_size())
    if (count * per_segment + w_rows) * map_bytes <= WHOLE_LAYER_BYTES:
        step = count
    else:
        step = max(1, (SEGMENT_GRADIENTS_CHUNK_BYTES // map_bytes - w_rows) // per_segment)
    # The padded signal, with zeros to the end of the last segment.
    x_p = _pad(input, [pad], [pad + count * hop - length]) if mask[1] else None
    grad_x_p = (input.new_zeros((n, c, count * hop + kernel - 1))
                if mask[0] and step < count else None)
    gw_hat = grad_weight = None
    for j0, js in _ranges(count, step):
        g_rows, x_rows = n * o * js, n * c * js if mask[1] else 0
        rows = input.new_empty((g_rows + x_rows + w_rows, segment))
        _gradient_segments(rows[:g_rows].view(n, o, js, segment),
                           grad_output.narrow(2, j0 * hop, min(length - j0 * hop, js * hop)),
                           hop)
        if x_rows:
            rows[g_rows:g_rows + x_rows].view(n, c, js, segment).copy_(
                x_p.narrow(2, j0 * hop, js * hop + kernel - 1).unfold(2, segment, hop))
        if w_rows:
            _copy_padded(rows[g_rows + x_rows:].view(o, c_per, segment), w_dilated)
        spectra = torch.fft.rfft(rows)
        del rows  # no view of it is left
        frequencies = spectra.shape[-1]
        if w_rows:
            w_hat = spectra[g_rows + x_rows:]
            if js < count:
                w_hat = w_hat.clone()  # so that this chunk's spectra are freed
            w_rows = 0
        g_hat = spectra[:g_rows].view(n, groups, o // groups, js, frequencies)
        last = j0 + js == count
        inverse = []
        if mask[0]:
            # (N, g, O/g, js, F) x (g, O/g, C/g, 1, F) -> (N, g, C/g, js, F)
            gx_hat = _mix_input_grad(g_hat, w_hat.view(groups, o // groups, c_per, 1,
                                                       frequencies))
            inverse.append(gx_hat.reshape(-1, frequencies))
            del gx_hat
        if mask[1]:
            # Summed over samples and segments: (g, O/g, C/g, F).
            x_conj = spectra[g_rows:g_rows + x_rows].view(
                n, groups, c_per, js, frequencies).conj()
            sums = torch.stack([(g_hat * _narrow(x_conj, 2, ci, 1)).sum((0, 3))
                                for ci in range(c_per)], dim=2)
            gw_hat = sums if gw_hat is None else gw_hat + sums
            if last:
                inverse.append(gw_hat.reshape(-1, frequencies))
            del x_conj, sums
        del spectra, g_hat
        if not inverse:
            continue
        grads = torch.fft.irfft(torch.cat(inverse) if len(inverse) > 1 else inverse[0],
                                n=segment)
        del inverse
        if mask[0]:
            segments = _overlap_add(grads[:n * c * js].view(n, c, js, segment), hop,
                                    js * hop + kernel - 1)
            if grad_x_p is None:
                grad_x_p = segments
            else:
                grad_x_p.narrow(2, j0 * hop, js * hop + kernel - 1).add_(segments)
            del segments
        if mask[1] and last:
            taps = grads[grads.shape[0] - o * c_per:].view(o, c_per, segment)
            grad_weight = taps.narrow(2, 0, kernel)[:, :, ::tap_step].contiguous()
    grad_input = grad_x_p.narrow(2, pad, size).contiguous() if mask[0] else None
    return grad_input, grad_weight


# How fft_forward computes a layer of given shapes: (input, weight, bias,
# weight_spectra) -> output, for operands of the shapes, dtype and device it
# was made for (see forward_plan).
ForwardPlan = Callable[[Tensor, Tensor, Optional[Tensor], Optional[WeightSpectra]], Tensor]


def forward_plan(input: Tensor, weight: Tensor, padding: Sequence[int],
                 dilation: Sequence[int], groups: int) -> ForwardPlan:
    """How :func:`fft_forward` computes a layer of these operands' shapes,
    dtype and device: by overlap-save for long 1-D signals of few rows
    (:func:`_overlap_save_hop`) and for 1-D filter banks
    (:func:`_filter_bank_hop`), in one block where the segments' spectra are
    small; by whole transforms in blocks otherwise. Layers keep the plan with
    the route they remember for a call's signature: between convolutions
    that evict the CPU's caches every line of Python and every ATen call
    costs several times its time alone, and at fir64@16k the layer's path
    around the engine took about 90 us of a 0.32 ms inference call (two
    threads), more than torch.nn's whole margin over direct convolution."""
    padding, dilation = tuple(padding), tuple(dilation)  # kept by the plan
    hop = _overlap_save_hop(input, weight, padding, dilation)
    if hop is None:
        hop = _filter_bank_hop(input, weight, padding, dilation, groups)
    if hop is None:
        return lambda x, w, b, spectra: _blocked_forward(x, w, b, padding, dilation, groups,
                                                         spectra)
    layout = _segment_layout(input, weight, padding, dilation, groups, hop)
    if _one_block_segments(input, weight, layout.count, layout.size):
        return functools.partial(_segments_in_one_block, layout)
    return functools.partial(_overlap_save_forward, layout)


def fft_forward(input: Tensor, weight: Tensor, bias: Optional[Tensor], padding: Sequence[int],
                dilation: Sequence[int], groups: int,
                weight_spectra: Optional[WeightSpectra] = None,
                plan: Optional[ForwardPlan] = None) -> Tensor:
    """:func:`fft_conv`'s result in eager mode, computed as
    :func:`forward_plan` says (``plan``: one made for these operands'
    shapes). Gradients come from :func:`fft_backward`. ``weight_spectra``
    keeps the weight's spectra between calls (see WeightSpectra)."""
    if plan is None:
        plan = forward_plan(input, weight, padding, dilation, groups)
    if torch.is_grad_enabled():
        # Nothing here is recorded for autograd (the layers call it with
        # grad mode off), and results are written with out= arguments.
        with torch.no_grad():
            return plan(input, weight, bias, weight_spectra)
    return plan(input, weight, bias, weight_spectra)


def fft_backward(grad_output: Tensor, input: Tensor, weight: Tensor, padding: Sequence[int],
                 dilation: Sequence[int], groups: int, mask: Sequence[bool],
                 weight_spectra: Optional[WeightSpectra] = None) -> tuple[Optional[Tensor], ...]:
    """(grad_input, grad_weight, grad_bias) of :func:`fft_forward` for the
    gradients ``mask`` asks for. Built from differentiable operations, so a
    backward pass with create_graph=True can differentiate it again (kept
    weight spectra carry no gradient: only a weight that needs none may
    have them)."""
    hop = _overlap_save_hop(input, weight, padding, dilation)
    if hop is None:
        grad_input, grad_weight = _blocked_backward(grad_output, input, weight, padding,
                                                    dilation, groups, mask, weight_spectra)
    else:
        grad_input, grad_weight = _overlap_save_backward(grad_output, input, weight, padding,
                                                         dilation, groups, mask, hop,
                                                         weight_spectra)
    grad_bias = grad_output.sum([0] + list(range(2, grad_output.dim()))) if mask[2] else None
    return grad_input, grad_weight, grad_bias
