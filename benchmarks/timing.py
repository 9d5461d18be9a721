"""Side-by-side timing: several callables measured in one interleaved run.

Machine noise on a shared computer (frequency scaling, other processes, cache
state) drifts over seconds. Timing the candidate and the reference in
alternation, repeat after repeat, exposes both to the same drift; the ratio
taken within each repeat cancels most of it, and the median over repeats
discards the repeats that an interruption spoiled. Every reported ratio is
therefore ``median_r(t_candidate[r] / t_reference[r])``, never a ratio of
numbers measured at different times.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

SLOW_CALL_SECONDS = 1.0


@dataclass
class Measurement:
    """Per-call times in seconds, one per repeat, for each named callable.

    Sample ``r`` of every callable was taken in the same round, so samples with
    the same index are paired.
    """

    seconds: dict[str, list[float]] = field(default_factory=dict)
    calls_per_sample: dict[str, int] = field(default_factory=dict)

    @property
    def repeats(self) -> int:
        return min(len(samples) for samples in self.seconds.values())

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def ratios(self, name: str, reference: str) -> list[float]:
        """t_name[r] / t_reference[r] for every repeat r."""
        return [a / b for a, b in zip(self.seconds[name], self.seconds[reference])]

    def ratio(self, name: str, reference: str) -> float:
        """Median over repeats of the paired ratio t_name / t_reference."""
        return statistics.median(self.ratios(name, reference))

    def ratio_to_fastest(self, name: str, others: list[str]) -> float:
        """Median over repeats of t_name[r] / min(t_other[r] for others): the
        candidate against whichever of the others was faster in each round.
        Paired within rounds, unlike a quotient of two ratios to a third
        candidate, which keeps that candidate's noise."""
        fastest = [min(times) for times in zip(*(self.seconds[o] for o in others))]
        return statistics.median(a / b for a, b in zip(self.seconds[name], fastest))

    def ratio_spread(self, name: str, reference: str) -> float:
        """Half the interquartile range of the paired ratios: how far a single
        repeat typically strays from the median (0 with fewer than 4 repeats'
        worth of quartiles, which statistics.quantiles still gives)."""
        ratios = self.ratios(name, reference)
        if len(ratios) < 2:
            return 0.0
        low, _, high = statistics.quantiles(ratios, n=4, method="inclusive")
        return (high - low) / 2

    def log_ratio_error(self, name: str, reference: str, resamples: int = 1000) -> float:
        """Standard error of log(ratio(name, reference)), by the bootstrap:
        the standard deviation of the median log paired ratio over
        ``resamples`` resamplings of the repeats (seeded, so a run's figures
        are reproducible). A ratio r with error e is known to within a factor
        exp(z e); ratios of equal work differ from 1 by about that much."""
        logs = [math.log(r) for r in self.ratios(name, reference)]
        if len(logs) < 2:
            return 0.0
        rng = random.Random(0)
        medians = [statistics.median(rng.choices(logs, k=len(logs))) for _ in range(resamples)]
        return statistics.stdev(medians)


def _time_calls(fn: Callable[[], object], calls: int, sync: Callable[[], None],
                settle: bool = False) -> float:
    """Seconds per call over ``calls`` back-to-back calls, garbage collection
    off so that a collection triggered by one callable is not billed to it;
    with ``settle``, after one untimed call."""
    sync()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if settle:
            fn()
            sync()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        return (time.perf_counter() - start) / calls
    finally:
        if gc_was_enabled:
            gc.enable()


def measure_interleaved(functions: dict[str, Callable[[], object]], repeats: int,
                        min_sample_seconds: float = 0.05, max_seconds: float = 60.0,
                        warmup: int = 2, min_repeats: int = 3,
                        sync: Callable[[], None] = lambda: None) -> Measurement:
    """Times every callable in ``functions`` in interleaved rounds.

    Each callable is first called ``warmup`` times (allocator, caches, lazy
    initialisation, oneDNN primitive creation), or once if that call takes
    over ``SLOW_CALL_SECONDS``; the last warm-up call gives a per-call
    estimate. A sample then runs enough back-to-back calls to last at
    least ``min_sample_seconds`` (timer resolution and per-call jitter average
    out). ``repeats`` rounds are run, each sampling every callable once, in an
    order shuffled afresh for each round (seeded): a callable's time depends
    on what ran just before it (the caches and the heap it left), so each
    must follow every other equally often. Rotating one order does not do
    that: it keeps the cyclic order, so each callable follows the same
    neighbour every round, and two copies of the same callable measured
    1-2% apart. A sample of several calls starts with one more, untimed:
    the first call after a much slower neighbour pays for the state it left
    (after torch.nn's 2.4 s fir4096@64k call, which maps and frees a 1 GB
    im2col buffer, the FFT layer's next 3 ms call took 15-20 ms), which
    shuffling only spreads at random over the candidates that share an
    engine (the 'auto' and 'fft' layers there read 1.275 apart over 15
    rounds). Samples of one call (calls of min_sample_seconds or longer)
    have no such call. When the rounds would take longer than
    ``max_seconds``, the number of rounds is cut, but never below
    ``min_repeats``.
    """
    estimates = {}
    for name, fn in functions.items():
        estimate = _time_calls(fn, 1, sync)
        # A call of seconds is its own warm-up: one-off costs are small beside it.
        for _ in range(warmup - 1):
            if estimate > SLOW_CALL_SECONDS:
                break
            estimate = _time_calls(fn, 1, sync)
        estimates[name] = max(estimate, 1e-7)
    calls = {name: max(1, math.ceil(min_sample_seconds / estimate))
             for name, estimate in estimates.items()}
    round_seconds = sum((calls[name] + (calls[name] > 1)) * estimates[name]
                        for name in functions)
    rounds = max(min_repeats, min(repeats, int(max_seconds / round_seconds)))

    names = list(functions)
    result = Measurement({name: [] for name in names}, calls)
    order = random.Random(0)
    gc.collect()
    for _ in range(rounds):
        for name in order.sample(names, len(names)):
            result.seconds[name].append(_time_calls(functions[name], calls[name], sync,
                                                    settle=calls[name] > 1))
    return result


@dataclass
class Settings:
    """How hard to measure: rounds, the shortest sample, the time one
    measurement may take, warm-up calls, the device and the thread count."""

    repeats: int
    min_sample_seconds: float
    max_seconds: float
    warmup: int
    device: str
    threads: int

    def sync(self) -> Callable[[], None]:
        return torch.cuda.synchronize if self.device == "cuda" else (lambda: None)

    def measure(self, steps: dict[str, Callable[[], object]]) -> Measurement:
        return measure_interleaved(steps, self.repeats, self.min_sample_seconds,
                                   self.max_seconds, self.warmup, sync=self.sync())


def geometric_mean(values: list[float]) -> float:
    """exp(mean(log v)): the mean that treats a 2x speed-up and a 2x slow-down
    symmetrically, as ratios require."""
    return math.exp(sum(math.log(v) for v in values) / len(values))
