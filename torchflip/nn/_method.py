"""The engines of a true-convolution layer, and how ``method='auto'`` picks them.

A true convolution has two engines: 'direct' (the compiled operator, one
cross-correlation with the reversed weight) and 'fft' (torchflip.nn._fft_conv,
stride 1). They compute the same function, so the forward and the backward
pass of one call may use different engines: on CPU, the direct depthwise
forward with a 13x13 kernel is several times faster than the FFT, while its
backward is several times slower. :class:`Engines` names the engine of each
pass; ``method='direct'`` and ``'fft'`` use one engine for both.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections import OrderedDict
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from torchflip import _ops
from torchflip.nn._fft_conv import (dilated_extents, fft_backward, fft_forward, forward_plan,
                                    transform_lengths)
from torchflip.nn._flip_cache import FlippedWeightCache

METHODS = ("auto", "direct", "fft")
# Which stride-1 layers 'auto' considers for the FFT. Any kernel of
# FFT_MIN_TAPS taps or more; and, with at most FEW_CHANNELS input channels per
# group (depthwise, channelwise, small groups, filter banks on one signal),
# kernels from FFT_MIN_TAPS_FEW_CHANNELS taps: there ATen's CPU direct engine
# is slow (the backward pass of a depthwise 7x7 layer takes 25x its forward
# pass, a 1-D depthwise kernel of 15 taps 15x a kernel of 9), while the FFT's
# cost barely depends on the kernel. Dense layers with smaller kernels stay
# direct: there the FFT is 10-40x slower, and timing it would cost seconds.
FFT_MIN_TAPS = 100
FFT_MIN_TAPS_FEW_CHANNELS = 10
FEW_CHANNELS = 4

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
# winners, as torch.backends.cudnn.benchmark does: the direct engine's speed
# varies too much between backends and layer shapes for any static model.
_MEASURED: "OrderedDict[tuple, Engines]" = OrderedDict()
_MEASURED_MAX = 1024
# Bumped by forget_measurements: the choices layers remember expire with it.
_generation = 0


def forget_measurements() -> None:
    """Drops every timed choice, so that 'auto' times the engines again,
    also for layers that remember their last choice."""
    global _generation
    _MEASURED.clear()
    _generation += 1


def measurement_generation() -> int:
    return _generation


class Engines(NamedTuple):
    """The engine of the forward pass and of the backward pass."""

    forward: str
    backward: str

    @property
    def uses_fft(self) -> bool:
        return "fft" in self


DIRECT = Engines("direct", "direct")
FFT = Engines("fft", "fft")


def check_method(method: str, op: str) -> None:
    if method not in METHODS:
        raise ValueError(f"{op}: expected 'method' to be one of {METHODS}, but got {method!r}")


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
    lengths = transform_lengths(spatial, padding, dilated_extents(kernel, dilation))
    points = math.prod(lengths)
    freqs = points // lengths[-1] * (lengths[-1] // 2 + 1)
    transforms = n * c + o * cg + n * o  # input, weight and output maps
    fft = (_FFT_POINT_LOG * transforms * points * math.log2(max(points, 2))
           + _SPECTRAL_MAC * n * o * cg * freqs)
    return direct, fft


def _static_choice(input: Tensor, weight: Tensor, padding: Sequence[int],
                   dilation: Sequence[int], groups: int) -> Engines:
    dims = weight.dim() - 2
    sample = [1, int(weight.shape[1]) * groups] + [int(s) for s in input.shape[-dims:]]
    direct, fft = predicted_costs(sample, [int(s) for s in weight.shape], padding, dilation,
                                  groups)
    return FFT if fft * _FFT_MARGIN < direct else DIRECT


def _timed_call(run, device: torch.device) -> float:
    """Seconds one call of ``run`` takes, the device synchronised around it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


# An engine whose warm-up call takes this many times the other engine's time
# is not timed further. Generous, because a first call also pays one-off
# costs (oneDNN primitive creation, FFT plans).
_GIVE_UP = 10.0
# Rounds of one timed call of each engine: at least _ROUNDS_MIN, and more, up
# to _ROUNDS_MAX, while they have taken under _ROUNDS_SECONDS in all. The
# direct operator's first calls in a process are sporadically 4-5 times
# slower than later ones: over 9 rounds the median FFT / direct ratio of
# fir64@16k in inference ranged 0.50-0.92 across 16 processes (two beyond the
# margin below), over 25 rounds 0.69-0.83.
_ROUNDS_MIN, _ROUNDS_MAX, _ROUNDS_SECONDS = 3, 25, 0.02
# The engine other than the favoured one (see _faster) must time this much
# faster to be picked. A forward pass alone favours direct: near a tie it is
# exact and holds less memory. A training call's forward pass favours its
# backward pass's engine (see _measured_choice). The rounds alternate the
# engines, a regime between back-to-back calls (warm caches) and a model's
# (each layer after others that evicted them, where every ATen call and
# line of Python costs several times more). fir64@16k in inference at two
# threads, since layers keep the FFT's forward plan (fc16bb9): back to back
# the FFT took 0.58 of torch.nn's time, direct 1.10 (run.py); right after a
# 64-channel 3x3 convolution (benchmarks/in_situ.py) 1.03-1.09 against
# 1.08-1.10; before the plans the FFT lost there (1.25-1.63 against
# 1.03-1.15), and the alternating rounds had put the two within the margin.
_FFT_TIMED_MARGIN = 1.1


def _faster(runs: dict, device: torch.device, first: str, favoured: str = "direct") -> str:
    """The name of the faster engine in ``runs`` (name -> call): the engine
    other than ``favoured`` only where the median over rounds of its time
    over the favoured one's, both timed in the same round, is under
    1 / _FFT_TIMED_MARGIN.

    Each engine is warmed up first (allocations, FFT plans, oneDNN
    primitives). The engine ``first`` (the one the cost model expects to
    win) goes first: its time bounds the other's warm-up, since a direct
    depthwise pass with a large kernel can take seconds. Rounds, not one
    engine's calls and then the other's: the first few milliseconds of
    direct calls in a process often take several times their later time
    (2 ms against 0.33 ms, this VM), which timing engines one after the
    other charged to direct alone. The order within a round is fixed, so
    each engine always follows the other, as between a model's layers: an
    engine called twice in a row would find its data still in cache."""
    second = "fft" if first == "direct" else "direct"
    other = "fft" if favoured == "direct" else "direct"
    _timed_call(runs[first], device)
    reference = _timed_call(runs[first], device)
    if _timed_call(runs[second], device) > _GIVE_UP * reference:
        return first
    ratios, spent = [], 0.0
    while len(ratios) < _ROUNDS_MIN or (len(ratios) < _ROUNDS_MAX and spent < _ROUNDS_SECONDS):
        seconds = {name: _timed_call(runs[name], device) for name in (first, second)}
        ratios.append(seconds[other] / max(seconds[favoured], 1e-9))
        spent += sum(seconds.values())
    return other if statistics.median(ratios) * _FFT_TIMED_MARGIN < 1 else favoured


def _measured_choice(input: Tensor, weight: Tensor, padding: Sequence[int],
                     dilation: Sequence[int], groups: int, keeps_spectra: bool) -> Engines:
    # A call whose gradient is wanted times each pass on its own, so that
    # each pass gets its faster engine. The bias is left out: its gradient
    # is a sum, which neither engine's backward pass computes.
    backward = _ops.needs_gradient(input, weight)
    key = (tuple(input.shape[1:]), tuple(weight.shape), input.dtype, input.device,
           tuple(padding), tuple(dilation), groups, backward, keeps_spectra)
    if key in _MEASURED:
        _MEASURED.move_to_end(key)
        return _MEASURED[key]
    x, w = input.detach(), weight.detach()
    stride = (1,) * (w.dim() - 2)
    expected = _static_choice(x, w, padding, dilation, groups).forward
    # A layer whose weight needs no gradient keeps the weight's spectra
    # between calls: the FFT is timed with them kept, as it will run (at one
    # thread, fir64@16k's inference took 0.94 of torch.nn's time so, against
    # direct's 1.11, where the FFT timed without them had lost).
    spectra = (functools.partial(FlippedWeightCache().spectrum, w) if keeps_spectra
               else None)
    # With its plan made once, as a layer keeps it.
    plan = forward_plan(x, w, padding, dilation, groups)
    with torch.no_grad():
        forwards = {
            "direct": lambda: torch.ops.torchflip._conv(x, w, None, stride, padding, dilation,
                                                        groups),
            "fft": lambda: fft_forward(x, w, None, padding, dilation, groups, spectra, plan),
        }
        if not backward:
            forward = _faster(forwards, x.device, expected)
            engines = Engines(forward, forward)
        else:
            # The backward pass first: near a tie the forward pass then takes
            # the backward's engine. Passes by different engines run through
            # the Python autograd.Function TwoEngineConv, where one engine for
            # both takes the operator's C++ autograd (direct) or loses only
            # its choice's margin: fir64@16k's training forward pass took 1.26
            # of torch.nn's time split (direct/fft), 0.78 by the FFT and 1.10
            # direct (run.py, two threads), its forward and backward 0.85
            # split and 0.70 by the FFT, after 'auto' had timed the forward
            # engines within the margin of each other.
            g = torch.ones_like(forwards["direct"]())
            mask = [True, not keeps_spectra, False]
            backwards = {
                "direct": lambda: torch.ops.torchflip._conv_backward(
                    g, x, w, stride, padding, dilation, groups, mask),
                "fft": lambda: fft_backward(g, x, w, padding, dilation, groups, mask, spectra),
            }
            backward_engine = _faster(backwards, x.device, expected)
            engines = Engines(_faster(forwards, x.device, expected, favoured=backward_engine),
                              backward_engine)
    _MEASURED[key] = engines
    if len(_MEASURED) > _MEASURED_MAX:
        _MEASURED.popitem(last=False)
    return engines


def fft_candidate(kernel_size: Sequence[int], stride: Sequence[int],
                  channels_per_group: int) -> bool:
    """Whether a layer's geometry lets 'auto' consider the FFT: stride 1 and
    a kernel of FFT_MIN_TAPS taps or more, or of FFT_MIN_TAPS_FEW_CHANNELS
    taps or more with at most FEW_CHANNELS input channels per group. Fixed
    for a layer's lifetime."""
    taps = math.prod([int(k) for k in kernel_size])  # kernel sizes are static
    if taps < FFT_MIN_TAPS and (taps < FFT_MIN_TAPS_FEW_CHANNELS
                                or int(channels_per_group) > FEW_CHANNELS):
        return False
    return all(s == 1 for s in stride)


def choose_engines(input: Tensor, weight: Tensor, stride: Sequence[int],
                   padding: Sequence[int], dilation: Sequence[int], groups: int,
                   keeps_spectra: bool = False) -> Engines:
    """The engines for method='auto'.

    Only stride-1 float32/float64 layers are candidates for the FFT, with
    kernels of 100 taps or more, or of 10 taps or more where a group has at
    most 4 input channels (see FFT_MIN_TAPS). In eager mode each engine's
    forward pass (and, when a gradient is wanted, its backward pass) is timed
    once per configuration (input shape without the batch, weight shape, dtype,
    device, padding, dilation, groups, gradient or not) and the faster engine
    of each pass is kept, like torch.backends.cudnn.benchmark. Under
    torch.compile, export, tracing or torch.func, where nothing can be
    timed, a static cost model picks one engine for both passes from one
    sample's shapes, so the choice does not depend on the batch size.
    ``keeps_spectra``: the caller (a layer whose weight needs no gradient)
    keeps the weight's spectra between calls, and the FFT is timed so."""
    if (not fft_candidate(weight.shape[2:], stride, weight.shape[1])
            or weight.dtype not in (torch.float32, torch.float64)):
        return DIRECT
    if input.dim() == weight.dim() - 1:  # unbatched (the layers accept it)
        input = input.unsqueeze(0)
    if input.dim() != weight.dim():
        return DIRECT  # a wrong rank: the operator reports it
    if not torch.compiler.is_compiling() and (input.numel() == 0 or weight.numel() == 0):
        return DIRECT  # nothing to compute; FFT libraries reject empty transforms
    if not timing_allowed() or input.device.type == "meta":
        return _static_choice(input, weight, padding, dilation, groups)
    return _measured_choice(input, weight, padding, dilation, groups, keeps_spectra)


def timing_allowed() -> bool:
    """Whether 'auto' may time engines: in eager mode, outside tracing and
    torch.func, and not in deterministic mode, where timings (which differ
    between runs and machines) must not pick the engine, and so the rounding,
    of a computation."""
    return _ops.plain_eager_mode() and not torch.are_deterministic_algorithms_enabled()
