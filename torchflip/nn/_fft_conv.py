r"""The FFT engine of the true-convolution layers, and the choice between it
and the direct operator.

By the convolution theorem, a true convolution is a product of spectra; no
flip is needed. For input :math:`x` of shape :math:`(N, C, *S)` zero-padded
to :math:`*S_p`, and weight :math:`w` of shape :math:`(O, C/g, *K)` (dilated
by inserting zeros), with transform lengths :math:`n_i \ge S_{p,i}`:

.. math::
    Y[n, o] = \sum_{c \in \gamma(o)} \mathcal{F}(x_p)[n, c] \, \mathcal{F}(w)[o, c],
    \qquad y = \mathcal{F}^{-1}(Y)[\ldots, K_i - 1 : S_{p,i}]

The window :math:`[K_i - 1, S_{p,i})` of the cyclic convolution is free of
wrap-around as soon as :math:`n_i \ge S_{p,i}`; :math:`n_i` is the next
5-smooth length. Channels are mixed in the frequency domain (one complex
multiply-add per frequency, input and output channel), so each input and
output map is transformed once. Real inputs use rfftn/irfftn. Gradients come
from the autograd formulas of torch.fft and einsum, which are FFTs and
spectral products again: the backward pass never falls back to a direct
convolution. Stride 1 only.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Optional, Sequence

import torch
from torch import Tensor

from torchflip.signal._fast_len import next_fast_len

METHODS = ("auto", "direct", "fft")
# Smaller kernels stay direct: the FFT rarely wins there, and costs memory.
FFT_MIN_TAPS = 100

# Static cost model, used where nothing can be timed (torch.compile,
# torch.export, tracing, torch.func). Fitted on the 2-core development CPU
# (torch 2.13, float32): seconds per multiply-add of the direct convolution
# (oneDNN is several times faster on dense multi-channel 2-D/3-D layers than
# on depthwise or 1-D ones), per (point x log2 points) of a real FFT, and per
# complex multiply-add of the spectral product.
_DIRECT_MAC_DENSE = 1.2e-11
_DIRECT_MAC_OTHER = 5e-11
_FFT_POINT_LOG = 2.7e-10
_SPECTRAL_MAC = 1.5e-9
# Direct wins near the crossover anyway (exact, no extra memory): FFT must be
# predicted this much faster to be chosen.
_FFT_MARGIN = 1.5

# Eager 'auto' times both engines once per layer configuration and reuses the
# winner, as torch.backends.cudnn.benchmark does: the direct engine's speed
# varies too much between backends and layer shapes for any static model.
_MEASURED: "OrderedDict[tuple, str]" = OrderedDict()
_MEASURED_MAX = 1024


def check_method(method: str, op: str) -> None:
    if method not in METHODS:
        raise ValueError(f"{op}: expected 'method' to be one of {METHODS}, but got {method!r}")


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
    touches, so the FFT engine is used only for finite operands (checked in
    eager mode; under torch.compile the check would break the graph)."""
    if torch.compiler.is_compiling():
        return True
    return all(t is None or bool(torch.isfinite(t).all()) for t in tensors)


def _transform_lengths(spatial: Sequence[int], padding: Sequence[int]) -> list[int]:
    return [next_fast_len(s + 2 * p) for s, p in zip(spatial, padding)]


def predicted_costs(input_shape: Sequence[int], weight_shape: Sequence[int],
                    padding: Sequence[int], dilation: Sequence[int],
                    groups: int) -> tuple[float, float]:
    """(direct, fft) predicted seconds for one forward call, stride 1."""
    n, c = input_shape[0], input_shape[1]
    o, cg = weight_shape[0], weight_shape[1]
    spatial, kernel = input_shape[2:], weight_shape[2:]
    out = [s + 2 * p - d * (k - 1) for s, p, d, k in zip(spatial, padding, dilation, kernel)]
    if min(out) <= 0:
        return 0.0, math.inf
    mac = _DIRECT_MAC_DENSE if cg >= 8 and len(kernel) >= 2 else _DIRECT_MAC_OTHER
    direct = mac * n * o * cg * math.prod(kernel) * math.prod(out)
    lengths = _transform_lengths(spatial, padding)
    points = math.prod(lengths)
    freqs = points // lengths[-1] * (lengths[-1] // 2 + 1)
    transforms = n * c + o * cg + n * o  # input, weight and output maps
    fft = (_FFT_POINT_LOG * transforms * points * math.log2(max(points, 2))
           + _SPECTRAL_MAC * n * o * cg * freqs)
    return direct, fft


def _static_choice(input: Tensor, weight: Tensor, padding: Sequence[int],
                   dilation: Sequence[int], groups: int) -> str:
    dims = weight.dim() - 2
    sample = [1, int(weight.shape[1]) * groups] + [int(s) for s in input.shape[-dims:]]
    direct, fft = predicted_costs(sample, [int(s) for s in weight.shape], padding, dilation,
                                  groups)
    return "fft" if fft * _FFT_MARGIN < direct else "direct"


def _measured_choice(input: Tensor, weight: Tensor, padding: Sequence[int],
                     dilation: Sequence[int], groups: int) -> str:
    # Training calls are timed with their backward pass, which can rank the
    # engines differently from the forward alone.
    backward = torch.is_grad_enabled() and (input.requires_grad or weight.requires_grad)
    key = (tuple(input.shape[1:]), tuple(weight.shape), input.dtype, input.device,
           tuple(padding), tuple(dilation), groups, backward)
    if key in _MEASURED:
        _MEASURED.move_to_end(key)
        return _MEASURED[key]
    from torchflip import _ops

    x = input.detach().requires_grad_(backward)
    w = weight.detach().requires_grad_(backward)
    stride = (1,) * (w.dim() - 2)

    def timed(forward):
        def run():
            out = forward()
            if backward:
                torch.autograd.grad(out, (x, w), torch.ones_like(out))
        return run

    engines = {
        "direct": timed(lambda: _ops.conv(x, w, None, stride, padding, dilation, groups)),
        "fft": timed(lambda: fft_conv(x, w, None, padding, dilation, groups)),
    }
    best = {}
    with torch.set_grad_enabled(backward):
        for name, run in engines.items():
            run()  # warm-up: allocations, FFT plans, oneDNN primitives
            times = []
            for _ in range(2):
                if x.device.type == "cuda":
                    torch.cuda.synchronize(x.device)
                start = time.perf_counter()
                run()
                if x.device.type == "cuda":
                    torch.cuda.synchronize(x.device)
                times.append(time.perf_counter() - start)
            best[name] = min(times)
    choice = "fft" if best["fft"] < best["direct"] else "direct"
    _MEASURED[key] = choice
    if len(_MEASURED) > _MEASURED_MAX:
        _MEASURED.popitem(last=False)
    return choice


def fft_candidate(kernel_size: Sequence[int], stride: Sequence[int]) -> bool:
    """Whether a layer's geometry lets 'auto' consider the FFT: stride 1 and
    a kernel of FFT_MIN_TAPS taps or more. Fixed for a layer's lifetime."""
    if math.prod([int(k) for k in kernel_size]) < FFT_MIN_TAPS:  # kernel sizes are static
        return False
    return all(s == 1 for s in stride)


def choose_method(input: Tensor, weight: Tensor, stride: Sequence[int],
                  padding: Sequence[int], dilation: Sequence[int], groups: int) -> str:
    """The engine for method='auto': 'fft' or 'direct'.

    Only stride-1 float32/float64 layers with kernels of 100 taps or more
    are candidates for the FFT. In eager mode both engines are timed once per
    configuration (input shape without the batch, weight shape, dtype, device,
    padding, dilation, groups) and the faster one is kept, like
    torch.backends.cudnn.benchmark. Under torch.compile, export, tracing or
    torch.func, where nothing can be timed, a static cost model decides from
    one sample's shapes, so the choice does not depend on the batch size."""
    if (not fft_candidate(weight.shape[2:], stride)
            or weight.dtype not in (torch.float32, torch.float64)):
        return "direct"
    if input.dim() == weight.dim() - 1:  # unbatched (the layers accept it)
        input = input.unsqueeze(0)
    if input.dim() != weight.dim():
        return "direct"  # a wrong rank: the operator reports it
    if not torch.compiler.is_compiling() and (input.numel() == 0 or weight.numel() == 0):
        return "direct"  # nothing to compute; FFT libraries reject empty transforms
    from torchflip import _ops

    # Timings differ between runs and machines; deterministic mode must not
    # let them pick the engine (and so the rounding) of a computation.
    if (torch.compiler.is_compiling() or torch.jit.is_tracing() or _ops.functorch_path()
            or input.device.type == "meta" or torch.are_deterministic_algorithms_enabled()):
        return _static_choice(input, weight, padding, dilation, groups)
    return _measured_choice(input, weight, padding, dilation, groups)


def fft_conv(input: Tensor, weight: Tensor, bias: Optional[Tensor], padding: Sequence[int],
             dilation: Sequence[int], groups: int) -> Tensor:
    """True convolution with stride 1 through the FFT; arguments normalised,
    input batched (N, C, *S), padding symmetric per spatial dimension."""
    dims = weight.dim() - 2
    spatial_axes = list(range(2, 2 + dims))
    if any(d != 1 for d in dilation):
        dilated = [d * (k - 1) + 1 for d, k in zip(dilation, weight.shape[2:])]
        sparse = weight.new_zeros(weight.shape[:2] + tuple(dilated))
        sparse[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)] = weight
        weight = sparse
    if any(padding):
        pad = [p for p in reversed(padding) for _ in range(2)]
        input = torch.nn.functional.pad(input, pad)
    padded = input.shape[2:]
    kernel = weight.shape[2:]
    lengths = [next_fast_len(s) for s in padded]

    x_hat = torch.fft.rfftn(input, s=lengths, dim=spatial_axes)
    w_hat = torch.fft.rfftn(weight, s=lengths, dim=spatial_axes)
    n, c = input.shape[:2]
    o = weight.shape[0]
    freq_shape = x_hat.shape[2:]
    # (N, g, C/g, F) x (g, O/g, C/g, F) -> (N, g, O/g, F): channels mix per frequency.
    cg, og = c // groups, o // groups
    x_hat = x_hat.reshape(n, groups, cg, -1)
    w_hat = w_hat.reshape(groups, og, cg, -1)
    if cg == 1:
        # Depthwise-like: no channel sum, a broadcast product.
        y_hat = x_hat * w_hat.squeeze(2).unsqueeze(0)
    else:
        # One (N x C/g) @ (C/g x O/g) product per group and frequency, laid out
        # with the frequencies as the batch of a single batched matmul.
        y_hat = torch.matmul(x_hat.permute(1, 3, 0, 2), w_hat.permute(0, 3, 2, 1))
        y_hat = y_hat.permute(2, 0, 3, 1)
    y_hat = y_hat.reshape((n, o) + tuple(freq_shape))
    full = torch.fft.irfftn(y_hat, s=lengths, dim=spatial_axes)
    window = tuple(slice(k - 1, s) for k, s in zip(kernel, padded))
    out = full[(slice(None), slice(None)) + window]
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * dims)
    return out
