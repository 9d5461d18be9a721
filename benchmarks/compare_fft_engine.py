"""Two revisions of the eager FFT engine, timed against each other.

``torchflip/nn/_fft_conv.py`` is pure Python over torch.fft, so two of its
revisions can be loaded side by side in one process (each as its own module,
from ``git show REV:torchflip/nn/_fft_conv.py`` or from the working tree) and
timed in alternating rounds on the same operands. The ratio is taken within
each round and the median over rounds is reported, which cancels the drift
of a shared machine (see benchmarks/timing.py); comparing the engine of two
benchmark runs would not.

    python benchmarks/compare_fft_engine.py --base 228d044            # against the working tree
    python benchmarks/compare_fft_engine.py --base HEAD --head HEAD   # an A/A control
    python benchmarks/compare_fft_engine.py --base HEAD~3 --cases psf31@256 --threads 2

A ratio head/base below 1 means the head revision is faster. Both revisions
import the rest of torchflip from the working tree.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENGINE = "torchflip/nn/_fft_conv.py"
WORKING_TREE = "working-tree"


def engine_source(revision: str) -> str:
    if revision == WORKING_TREE:
        return (ROOT / ENGINE).read_text()
    return subprocess.run(["git", "show", f"{revision}:{ENGINE}"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def load_engine(revision: str, name: str, directory: Path):
    path = directory / f"{name}.py"
    path.write_text(engine_source(revision))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def engine_cases() -> dict:
    """The large-kernel benchmark layers the FFT engine runs (stride 1)."""
    from benchmarks.cases import LARGE_KERNEL_SUITES, LAYER_SUITES

    return {case.name: case for suite in sorted(LARGE_KERNEL_SUITES)
            for case in LAYER_SUITES[suite](False) if case.unit_stride}


def passes(engine, case, x, w, grad):
    dims = case.dims
    padding = list(case.padding or (0,) * dims)
    dilation = list(case.dilation or (1,) * dims)
    return {
        "fwd": lambda: engine.fft_forward(x, w, None, padding, dilation, case.groups),
        "bwd": lambda: engine.fft_backward(grad, x, w, padding, dilation, case.groups,
                                           [True, True, False]),
    }


def compare(base, head, case, rounds: int) -> dict[str, tuple[float, float, float]]:
    """{pass: (base seconds, head seconds, median of head / base)}."""
    import torch

    torch.manual_seed(0)
    x = torch.randn(case.input_shape)
    w = torch.randn((case.out_channels, case.in_channels // case.groups) + case.kernel)
    grad = base.fft_forward(x, w, None, list(case.padding or (0,) * case.dims),
                            list(case.dilation or (1,) * case.dims), case.groups)
    grad = torch.randn_like(grad)
    found = {}
    head_calls = passes(head, case, x, w, grad)
    for name, base_call in passes(base, case, x, w, grad).items():
        head_call = head_calls[name]
        for call in (base_call, head_call, base_call, head_call):
            call()
        seconds: list[list[float]] = [[], []]
        for r in range(rounds):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for i in order:
                start = time.perf_counter()
                (base_call, head_call)[i]()
                seconds[i].append(time.perf_counter() - start)
        ratios = [h / b for b, h in zip(*seconds)]
        found[name] = (statistics.median(seconds[0]), statistics.median(seconds[1]),
                       statistics.median(ratios))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision of the baseline")
    parser.add_argument("--head", default=WORKING_TREE,
                        help="git revision to compare (default: the working tree)")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    cases = engine_cases()
    names = args.cases.split(",") if args.cases else list(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        parser.error(f"--cases: unknown {unknown}; expected some of {sorted(cases)}")

    from benchmarks import allocator

    # Re-executes this script with a steady heap (see benchmarks/allocator.py).
    allocator.ensure_steady_heap()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as directory:
        base = load_engine(args.base, "fft_engine_base", Path(directory))
        head = load_engine(args.head, "fft_engine_head", Path(directory))
        print(f"head {args.head} / base {args.base}, {torch.get_num_threads()} threads, "
              f"{args.rounds} rounds ({allocator.describe()})")
        for name in names:
            for pass_name, (b, h, ratio) in compare(base, head, cases[name], args.rounds).items():
                print(f"{name:14s} {pass_name}: base {b * 1e3:8.2f} ms  head {h * 1e3:8.2f} ms"
                      f"  head/base {ratio:.3f}", flush=True)


if __name__ == "__main__":
    main()
