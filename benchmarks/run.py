"""torchflip's benchmark suite: torchflip's layers against torch.nn's.

    python benchmarks/run.py                 # everything but the build (long)
    python benchmarks/run.py --quick         # a few minutes on a laptop
    python benchmarks/run.py --suite resnet50 --mode fwdbwd --threads 4
    python benchmarks/run.py --quick --build --markdown results.md

Prints a table per suite (ratios to torch.nn's layer holding the flipped
weight, each measured side by side in one run) and PASS/FAIL for every target,
and writes benchmark.csv and benchmark.png to the output directory. While it
runs, benchmark.partial.csv holds every row measured so far, so that a run
cut short still reports them:

    python benchmarks/run.py --from-csv benchmarks/results/benchmark.partial.csv

See benchmarks/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

# Kineto (the profiler behind the memory suite) logs every start and stop otherwise.
os.environ.setdefault("KINETO_LOG_LEVEL", "5")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: use this checkout's torchflip
    sys.path.insert(0, str(ROOT))

import torch
from tqdm import tqdm

from benchmarks import allocator, report
from benchmarks.cases import LAYER_SUITES
from benchmarks.machine import machine_info
from benchmarks.results import Row
from benchmarks.targets import evaluate
from benchmarks.timing import Settings

ALL_SUITES = [*LAYER_SUITES, "compiled", "memory", "import"]
ALL_MODES = ["fwd", "fwdbwd", "eval"]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small batches, fewer cases and repeats (a few minutes)")
    parser.add_argument("--suite", default=",".join(ALL_SUITES),
                        help=f"comma-separated suites (default: all of {','.join(ALL_SUITES)})")
    parser.add_argument("--mode", default=",".join(ALL_MODES),
                        help="comma-separated modes: fwd (train forward), fwdbwd (train "
                             "forward+backward), eval (eval mode under no_grad)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's current setting)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved rounds per measurement (default 15, quick 5)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results",
                        help="directory for benchmark.csv and benchmark.png")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the targets and a summary as a markdown table here")
    parser.add_argument("--build", action="store_true",
                        help="also time a wheel build from a clean copy of the tracked files "
                             "(minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--system-malloc", action="store_true",
                        help="keep glibc's moving mmap and trim thresholds instead of a steady "
                             "heap (see benchmarks/allocator.py)")
    parser.add_argument("--from-csv", type=Path, default=None,
                        help="measure nothing: report (tables, targets, plot, markdown) the "
                             "rows of a benchmark.csv written by an earlier run")
    args = parser.parse_args(argv)
    args.suites = _choices(parser, args.suite, ALL_SUITES, "--suite")
    args.modes = _choices(parser, args.mode, ALL_MODES, "--mode")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    return args


def _choices(parser: argparse.ArgumentParser, text: str, allowed: list[str],
             option: str) -> list[str]:
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        parser.error(f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


def settings_for(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(repeats=args.repeats or 5, min_sample_seconds=0.02,
                               max_seconds=6.0, warmup=2, device=args.device,
                               threads=torch.get_num_threads())
    return Settings(repeats=args.repeats or 15, min_sample_seconds=0.1,
                           max_seconds=60.0, warmup=3, device=args.device,
                           threads=torch.get_num_threads())


def memory_cases(quick: bool) -> list:
    # Every layer, long 1-D signals of 64k samples included: there torch.nn
    # leaves im2col for oneDNN, whose peak is 20 times smaller (fir1024: 64
    # MiB at 16k, 3.2 MiB at 64k), so the ratio depends on the length.
    return [case for cases in LAYER_SUITES.values() for case in cases(quick)]


def partial_csv(args: argparse.Namespace) -> Path:
    return args.output / "benchmark.partial.csv"


def run(args: argparse.Namespace, info: dict[str, str]) -> tuple[list[Row], list[str]]:
    """Every selected suite, in order, under one progress bar; the rows so far
    are rewritten to :func:`partial_csv` after every step (the large-kernel
    suites take minutes a step on a small machine)."""
    from benchmarks import suites  # imports torchflip: not needed by --from-csv

    settings = settings_for(args)
    layer_cases = [case for suite in args.suites if suite in LAYER_SUITES
                   for case in LAYER_SUITES[suite](args.quick)]
    memory = memory_cases(args.quick) if "memory" in args.suites else []
    compiled_modes = [m for m in ("eval", "fwdbwd") if m in args.modes]
    total = (len(layer_cases) * len(args.modes) + len(memory)
             + (2 * len(compiled_modes) if "compiled" in args.suites else 0)
             + ("import" in args.suites) + args.build)
    rows: list[Row] = []
    problems: list[str] = []
    args.output.mkdir(parents=True, exist_ok=True)
    with tqdm(total=total, unit="step", dynamic_ncols=True) as progress:
        def warn(message: str) -> None:
            problems.append(message)
            progress.write("warning: " + message)

        def advance() -> None:
            progress.update(1)

        def keep(new_rows: list[Row]) -> None:
            rows.extend(new_rows)
            report.write_csv(rows, info, partial_csv(args))

        for case in layer_cases:
            progress.set_description(f"{case.suite} {case.name}")
            keep(suites.run_layer_case(case, args.modes, settings, advance, warn))
        if "compiled" in args.suites and compiled_modes:
            progress.set_description("compiled ResNet-18")
            keep(suites.run_compiled(args.quick, compiled_modes, settings, advance, warn))
        for case in memory:
            progress.set_description(f"memory {case.suite} {case.name}")
            keep(suites.run_memory_case(case, settings))
            advance()
        if "import" in args.suites:
            progress.set_description("import")
            keep(_guarded(suites.run_import, args.quick, warn=warn))
            advance()
        if args.build:
            progress.set_description("build")
            keep(_guarded(suites.run_build, warn=warn))
            advance()
    return rows, problems


def _guarded(fn, *args, warn) -> list[Row]:
    try:
        return fn(*args)
    except Exception as error:  # noqa: BLE001  (one failed suite must not lose the others)
        warn(f"{fn.__name__}: {type(error).__name__}: {error}")
        return []


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.from_csv:
        rows, info = report.read_csv(args.from_csv)
        return write_reports(args, rows, info, problems=[])
    if not args.system_malloc:
        allocator.ensure_steady_heap()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.set_num_threads(torch.get_num_threads())  # explicit, and recorded below
    torch.manual_seed(args.seed)
    info = machine_info(args.device)
    command = "python benchmarks/run.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    info["command"] = command.strip()

    rows, problems = run(args, info)
    status = write_reports(args, rows, info, problems)
    partial_csv(args).unlink(missing_ok=True)  # benchmark.csv has every row now
    return status


def write_reports(args: argparse.Namespace, rows: list[Row], info: dict[str, str],
                  problems: list[str]) -> int:
    """Prints the tables and targets, writes CSV, PNG and optional markdown;
    the exit status is 1 when something failed to run."""
    targets = evaluate(rows)
    print(report.console_report(rows, targets, info))

    args.output.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = args.output / "benchmark.csv", args.output / "benchmark.png"
    written = [png_path]
    if args.from_csv is None or args.from_csv.resolve() != csv_path.resolve():
        report.write_csv(rows, info, csv_path)
        written.insert(0, csv_path)
    report.write_plot(rows, info, png_path)
    if args.markdown:
        report.write_markdown(rows, targets, info, info.get("command", "?"), args.markdown)
        written.append(args.markdown)
    print("\nWrote " + ", ".join(str(p) for p in written))
    if problems:
        print(f"\n{len(problems)} problem(s):\n" + "\n".join("  " + p for p in problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
