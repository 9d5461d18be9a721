"""The large-kernel layers timed in a model's regime: each call right after a
neighbouring layer, as between a network's layers.

run.py times a candidate by samples of many back-to-back calls, so each call
finds the caches as its own previous call left them. In a model the layer
before has just evicted them, and an engine with a larger working set (the
FFT: spectra, plans, more ATen calls) pays more for that than the direct
engine does. 'auto' chooses in that regime (torchflip.nn._method times the
engines alternately, each after the other), so the two regimes can disagree
on the best engine of a layer where the engines are close. This script gives
the model's regime its own measurement: every step runs the neighbour (the
3x3 convolution of ResNet-50's first stage, 64 channels at 56x56, batch 1,
forward, in the same grad mode) and then the candidate; the neighbour alone
is a step too, and each candidate's time in situ is its step's time minus
the neighbour's, paired within each round (median over rounds).

    python benchmarks/in_situ.py --threads 2 --cases fir64@16k,fir1024@16k
    python benchmarks/in_situ.py --threads 1 --suite long1d --mode eval

Ratios are to torch.nn in situ; ``auto/best`` is 'auto' against the faster of
'direct' and 'fft' in each round. Not a target of its own: it is the evidence
for reading run.py's ``auto / best`` row where the two regimes disagree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NEIGHBOUR = "neighbour"
ENGINES = ("torchflip[direct]", "torchflip[fft]")
AUTO = "torchflip[auto]"


def neighbour_step(mode: str):
    """The neighbouring layer's forward pass in ``mode``'s grad mode."""
    import torch

    layer = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(1, 64, 56, 56)

    def step() -> None:
        with torch.set_grad_enabled(mode != "eval"):
            layer(x)

    return step


def in_situ_steps(case, mode: str) -> tuple[dict, object]:
    """The steps by name (the neighbour alone, and the neighbour then each
    of torch.nn, 'direct', 'fft' and 'auto'), and the 'auto' layer."""
    import torch

    from benchmarks.candidates import REFERENCE, build_layers, make_step

    layers = build_layers(case, "cpu", large_kernel=True)
    x = torch.randn(case.input_shape, requires_grad=mode != "eval")
    grad_output = torch.randn_like(layers[REFERENCE].forward(x).detach())
    before = neighbour_step(mode)
    steps = {NEIGHBOUR: before}
    for name in (REFERENCE, *ENGINES, AUTO):
        layer_step = make_step(layers[name], mode, x, grad_output)

        def step(layer_step=layer_step) -> None:
            before()
            layer_step()

        steps[name] = step
    return steps, layers[AUTO].module


def own_times(seconds: dict, name: str, alone: str) -> list[float]:
    """Per round: the step's time less the neighbour's alone."""
    return [a - b for a, b in zip(seconds[name], seconds[alone])]


def measure_case(case, mode: str, rounds: int) -> dict:
    from benchmarks.candidates import REFERENCE
    from benchmarks.timing import measure_interleaved

    steps, auto = in_situ_steps(case, mode)
    # One call per sample: back-to-back calls would warm the caches again.
    measurement = measure_interleaved(steps, rounds, min_sample_seconds=0.0)
    own = {name: own_times(measurement.seconds, name, NEIGHBOUR)
           for name in steps if name != NEIGHBOUR}
    reference = statistics.median(own[REFERENCE])
    best = [min(pair) for pair in zip(*(own[name] for name in ENGINES))]
    row = {name: statistics.median(times) / reference for name, times in own.items()}
    row["reference_us"] = reference * 1e6
    row["auto/best"] = statistics.median(a / b for a, b in zip(own[AUTO], best) if b > 0)
    row["auto chose"] = _route(auto)
    return row


def _route(layer) -> str:
    """The route the 'auto' layer remembers from its last call: its engines
    as forward/backward, or the direct route's name (see torchflip.nn.conv)."""
    remembered = getattr(layer, "_last_call", None)
    if not remembered:
        return "?"
    route = remembered[1]
    return "/".join(route) if isinstance(route, tuple) else str(route)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="long1d,depthwise,dense")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--mode", default="eval,fwd,fwdbwd")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args(argv)

    from benchmarks.cases import LAYER_SUITES

    wanted = set(filter(None, args.cases.split(",")))
    cases = [case for suite in args.suite.split(",") for case in LAYER_SUITES[suite](False)
             if case.unit_stride and (not wanted or case.name in wanted)]
    unknown = wanted - {case.name for case in cases}
    if unknown:
        parser.error(f"unknown cases for --suite {args.suite}: {', '.join(sorted(unknown))}")

    from benchmarks.allocator import ensure_steady_heap

    ensure_steady_heap()  # as run.py does (see benchmarks/allocator.py)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"threads {torch.get_num_threads()}; ratios to torch.nn in situ "
          f"(after a 64-channel 3x3 convolution at 56x56), {args.rounds} rounds")
    print(f"{'case':14s} {'mode':7s} {'torch.nn':>10s} {'direct':>7s} {'fft':>7s} "
          f"{'auto':>7s} {'auto/best':>9s}  auto chose")
    for case in cases:
        for mode in args.mode.split(","):
            row = measure_case(case, mode, args.rounds)
            print(f"{case.name:14s} {mode:7s} {row['reference_us']:8.0f}us "
                  f"{row[ENGINES[0]]:7.3f} {row[ENGINES[1]]:7.3f} {row[AUTO]:7.3f} "
                  f"{row['auto/best']:9.3f}  {row['auto chose']}", flush=True)


if __name__ == "__main__":
    main()
