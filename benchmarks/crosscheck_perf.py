"""A second, independent measurement of the performance targets.

``benchmarks/run.py`` times candidates with its own interleaved harness and
measures memory with torch's profiler. This script checks a sample of the
same targets with different instruments, so that a flaw in either harness
shows as a disagreement:

* time: ``torch.utils.benchmark.Timer`` (its own warm-up, loop and clock), the
  candidates alternated in rounds (a fresh random order in each), the ratio
  taken within each round and the
  median over rounds reported with its interquartile range; in the steady
  heap that run.py also times in (``benchmarks/allocator.py``), unless
  ``--system-malloc``: under glibc's moving mmap threshold, the same
  depthwise layer took 2.2-3.1 ms or 4.4-6.7 ms a call by process;
* memory: the operating system's count, not torch's. Each candidate runs in a
  fresh process with glibc's mmap threshold pinned at 64 KiB, so that every
  tensor-sized block is mapped on allocation and unmapped on free; after a
  warm-up call, the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``)
  and the peak of one fwd+bwd call is ``VmHWM - VmRSS`` read before the call.
  This also counts memory allocated behind c10's back (oneDNN scratch space).

Candidates are built here from torch.nn layers (``from_torch``), not with
``benchmarks/candidates.py``.

    python benchmarks/crosscheck_perf.py                 # every check (about 30 min)
    python benchmarks/crosscheck_perf.py --only memory   # one kind: train, eval, auto, memory
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

import torchflip
from benchmarks import allocator

_TORCH = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
_TRUE = {1: torchflip.nn.Conv1d, 2: torchflip.nn.Conv2d, 3: torchflip.nn.Conv3d}
_FUNCTIONAL = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@dataclass(frozen=True)
class Layer:
    """torch.nn.ConvNd(cin, cout, kernel, stride, padding, groups=groups) on
    an input (batch, cin, *size)."""

    name: str
    cin: int
    cout: int
    kernel: tuple
    size: tuple
    batch: int
    stride: int = 1
    padding: int | str = 0
    groups: int = 1

    def build(self, method: str | None = None):
        torch.manual_seed(0)
        dims = len(self.kernel)
        reference = _TORCH[dims](self.cin, self.cout, self.kernel, self.stride, self.padding,
                                 groups=self.groups)
        kwargs = {} if method is None else {"method": method}
        true = _TRUE[dims].from_torch(reference, **kwargs)
        x = torch.randn(self.batch, self.cin, *self.size)
        return reference, true, x


# A sample of each suite's layers, written out again here.
TRAIN_LAYERS = [
    Layer("resnet50 conv1", 3, 64, (7, 7), (224, 224), 8, stride=2, padding=3),
    Layer("resnet50 layer1 3x3", 64, 64, (3, 3), (56, 56), 8, padding=1),
    Layer("resnet50 layer3.0 3x3/2", 256, 256, (3, 3), (28, 28), 8, stride=2, padding=1),
    Layer("resnet50 layer4 3x3", 512, 512, (3, 3), (7, 7), 8, padding=1),
    Layer("wav2vec2 conv5", 512, 512, (2,), (199,), 8, stride=2),
    Layer("conformer dw31", 256, 256, (31,), (512,), 8, padding=15, groups=256),
    Layer("r3d layer1", 64, 64, (3, 3, 3), (8, 28, 28), 4, padding=1),
    Layer("x3d channelwise", 96, 96, (3, 3, 3), (8, 28, 28), 4, padding=1, groups=96),
]
LARGE_LAYERS = [
    Layer("depthwise 13x13 @64", 64, 64, (13, 13), (64, 64), 2, padding=6, groups=64),
    Layer("depthwise 31x31 @128", 64, 64, (31, 31), (128, 128), 2, padding=15, groups=64),
    Layer("fir 1024 @64k", 1, 4, (1024,), (65536,), 1, padding=512),
    Layer("dense 16->16 31x31 @128", 16, 16, (31, 31), (128, 128), 2, padding=15),
]


def _ratios(functions: dict, rounds: int, seconds: float) -> dict[str, list[float]]:
    """Per-round ratios of every function's time to the first one's."""
    names = list(functions)
    timers = {n: Timer("f()", globals={"f": f}) for n, f in functions.items()}
    for f in functions.values():  # warm-up
        f()
        f()
    per_call = {n: max(timers[n].timeit(1).mean, 1e-6) for n in names}
    number = {n: max(1, int(seconds / per_call[n])) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    # A fresh order each round, so that no function always runs after the
    # same neighbour (what ran before changes the caches and the heap).
    shuffler = random.Random(1)
    for _ in range(rounds):
        for n in shuffler.sample(names, len(names)):
            times[n].append(timers[n].timeit(number[n]).mean)
    base = names[0]
    return {n: [a / b for a, b in zip(times[n], times[base])] for n in names[1:]}


def _summary(ratios: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return f"{median:.3f} [{q1:.3f}, {q3:.3f}]"


def _modes(module, x, params):
    x = x.detach().requires_grad_()

    def train():
        y = module(x)
        return torch.autograd.grad(y, [x, *params], torch.ones_like(y))

    def infer():
        with torch.no_grad():
            return module(x)

    return train, infer


def check_layers(layers: list[Layer], rounds: int, seconds: float, kinds: set[str]) -> None:
    for layer in layers:
        reference, true, x = layer.build()
        spatial = list(range(2, 2 + len(layer.kernel)))
        conv = _FUNCTIONAL[len(layer.kernel)]

        def naive(x):
            return conv(x, true.weight.flip(spatial), true.bias, reference.stride,
                        reference.padding, reference.dilation, reference.groups)

        for mode in ("train", "eval"):
            if mode not in kinds:
                continue
            reference.train(mode == "train")
            true.train(mode == "train")
            ref_train, ref_eval = _modes(reference, x, list(reference.parameters()))
            tf_train, tf_eval = _modes(true, x, list(true.parameters()))
            nv_train, nv_eval = _modes(naive, x, list(true.parameters()))
            functions = ({"torch.nn": ref_train, "torchflip": tf_train, "naive": nv_train}
                         if mode == "train" else
                         {"torch.nn": ref_eval, "torchflip": tf_eval, "naive": nv_eval})
            ratios = _ratios(functions, rounds, seconds)
            paired = [a / b for a, b in zip(ratios["torchflip"], ratios["naive"])]
            print(f"{mode:5s} {layer.name:26s} torchflip/torch.nn {_summary(ratios['torchflip'])}"
                  f"  naive/torch.nn {_summary(ratios['naive'])}"
                  f"  torchflip/naive {_summary(paired)}", flush=True)


def _chosen_engines(layer, x, train: bool) -> str:
    """The engines method='auto' took for ``layer`` on ``x``: one name, or
    forward/backward where the passes differ."""
    with torch.set_grad_enabled(train):
        engines = layer._engines(x.detach().requires_grad_(train), layer.weight)
    return engines.forward if engines.forward == engines.backward else "/".join(engines)


def check_auto(rounds: int, seconds: float) -> None:
    for layer in LARGE_LAYERS:
        reference, _, x = layer.build()
        for mode in ("train", "eval"):
            functions, layers = {}, {}
            # "auto again": a second layer with method='auto', which takes the
            # same engines (they are chosen once per configuration). Its
            # ratio to the best is what auto / best reads when the choice is
            # right, the row's noise floor: a median over 9 rounds of one
            # engine against itself moved by 10% on the AMD EPYC VM.
            for name, method in (("auto", "auto"), ("direct", "direct"), ("fft", "fft"),
                                 ("auto again", "auto")):
                _, layers[name], _ = layer.build(method)
                train, infer = _modes(layers[name].train(mode == "train"), x,
                                      list(layers[name].parameters()))
                functions[name] = train if mode == "train" else infer
            ref_train, ref_eval = _modes(reference.train(mode == "train"), x,
                                         list(reference.parameters()))
            functions = {"torch.nn": ref_train if mode == "train" else ref_eval, **functions}
            # As many rounds as the layer checks: with a third of them (3),
            # one run put dense31 eval's auto at 1.31 of the better engine,
            # and a rerun with 9 at 1.01 (same engines chosen, Xeon VM).
            ratios = _ratios(functions, rounds, seconds)
            best = [min(d, f) for d, f in zip(ratios["direct"], ratios["fft"])]
            auto_best = [a / b for a, b in zip(ratios["auto"], best)]
            again_best = [a / b for a, b in zip(ratios["auto again"], best)]
            speedup = [1 / a for a in ratios["auto"]]
            chosen = _chosen_engines(layers["auto"], x, mode == "train")
            print(f"{mode:5s} {layer.name:26s} auto ({chosen}) speed-up over torch.nn "
                  f"{_summary(speedup)}  auto/best {_summary(auto_best)}  "
                  f"auto again/best {_summary(again_best)}", flush=True)


# --- memory: one fresh process per (layer, candidate) ----------------------

def _peak_in_child(spec: dict) -> int:
    layer = Layer(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["layer"].items()})
    reference, true, x = layer.build(spec.get("method"))
    torch.set_num_threads(1)
    x.requires_grad_()
    if spec["candidate"] == "torch.nn":
        module = reference
    else:
        module = true
    params = [x, *module.parameters()]
    g = torch.randn_like(module(x))

    def step():
        return torch.autograd.grad(module(x), params, g)

    step()
    status = Path("/proc/self/status")

    def field(name: str) -> int:
        for line in status.read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"{name} not in /proc/self/status")

    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = field("VmRSS")
    result = step()
    peak = field("VmHWM") - before
    del result
    return peak


def _peak(layer: Layer, candidate: str, method: str | None) -> int:
    spec = {"layer": layer.__dict__, "candidate": candidate, "method": method}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0",
               MALLOC_TOP_PAD_="0")
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def check_memory() -> None:
    for layer in TRAIN_LAYERS + LARGE_LAYERS:
        methods = ("auto",) if layer in LARGE_LAYERS else (None,)
        reference = _peak(layer, "torch.nn", None)
        for method in methods:
            ours = _peak(layer, "torchflip", method)
            label = "torchflip" if method is None else f"torchflip[{method}]"
            print(f"memory {layer.name:26s} torch.nn {reference / 2**20:8.1f} MiB  "
                  f"{label} {ours / 2**20:8.1f} MiB  ratio {ours / reference:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="train,eval,auto,memory",
                        help="comma-separated: train, eval, auto, memory")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.2, help="length of one sample")
    parser.add_argument("--system-malloc", action="store_true",
                        help="time under glibc's moving mmap and trim thresholds instead of "
                             "a steady heap (see benchmarks/allocator.py)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(_peak_in_child(json.loads(args.child)))
        return
    if not args.system_malloc:
        # The memory check's children set their own thresholds (see _peak).
        allocator.ensure_steady_heap()
    torch.set_num_threads(1)
    kinds = set(args.only.split(","))
    print(f"torch {torch.__version__}, 1 thread, {allocator.describe()}; ratios: "
          f"median [quartiles] over {args.rounds} rounds")
    if kinds & {"train", "eval"}:
        check_layers(TRAIN_LAYERS, args.rounds, args.seconds, kinds)
    if "auto" in kinds:
        check_auto(args.rounds, args.seconds)
    if "memory" in kinds:
        check_memory()


if __name__ == "__main__":
    main()
