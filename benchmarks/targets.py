"""The performance targets of torchflip, judged from one run's rows.

Every target is a ratio (or a time) measured in this run, compared with its
threshold: PASS, FAIL, 'n/a' (the feature it measures does not exist yet) or
'not run' (its suite was not selected).

Two targets put their bound at parity itself: torchflip against the naive
flip (the same work, so the true ratio is 1.00) and inference against
torch.nn (1.01). On a shared 2-core machine a median of 15 paired ratios
strays from the truth by about 1%, so the largest of 37 such ratios exceeds
1.00 by chance alone. Those two targets therefore fail only where a ratio is
*measurably* above its bound: above it by more than Z standard errors
(a 99% confidence interval). Their figures give the point estimates and
intervals. Rows without errors (CSV files of older runs) are judged on the
point estimate alone.

A ratio's standard error is the larger of two:

* its bootstrap error over the run's repeats (benchmarks.timing), which
  sees the noise from round to round;
* the run's noise floor: the root mean square of log(ratio) of the A/A
  control (benchmarks.candidates: a copy of the torch.nn layer, the same
  work) over the suite's layers in that mode. This sees what the bootstrap
  cannot: a candidate's own buffers stay where they are for the whole
  measurement, and their placement alone moved a 1x1 layer, which runs
  torch's own convolution, from 1.157 of the naive flip in one run to 0.953
  in the next, while its 99% interval in the first was 1.098-1.219.

For a geometric mean over n layers the floor is divided by sqrt(n), the
layers' placements being independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from benchmarks.cases import LARGE_KERNEL_SUITES, LAYER_SUITES, is_large_kernel_target
from benchmarks.results import CONTROL, METHODS, TORCHFLIP, Row, method_name
from benchmarks.timing import geometric_mean

AUTO = method_name("auto")
# The candidate that stands for torchflip's layer in a suite: the plain layer,
# or the layer with method='auto' on large-kernel suites when methods exist.
_TORCHFLIP_LAYERS = (TORCHFLIP, AUTO)
# Standard errors of a 99% two-sided confidence interval.
Z = 2.576


@dataclass
class Target:
    name: str
    requirement: str
    figure: str
    status: str


def _where(row: Row) -> str:
    return f"{row.case}, {row.mode}"


def _not_run(name: str, requirement: str) -> Target:
    return Target(name, requirement, "-", "not run")


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _interval(ratio: float, log_error: float | None) -> tuple[float, float]:
    """The 99% confidence interval of a ratio with standard error
    ``log_error`` of its log (a point without one)."""
    margin = Z * (log_error or 0.0)
    return ratio * math.exp(-margin), ratio * math.exp(margin)


def _measurably_above(ratio: float, log_error: float | None, bound: float) -> bool:
    return _interval(ratio, log_error)[0] > bound


def _format_interval(ratio: float, log_error: float | None) -> str:
    if log_error is None:
        return f"{ratio:.3f}"
    low, high = _interval(ratio, log_error)
    return f"{ratio:.3f} (99% CI {low:.3f}-{high:.3f})"


def _control_rows(rows: list[Row], suite: str, mode: str) -> list[Row]:
    return [r for r in rows if r.candidate == CONTROL and r.suite == suite
            and r.mode == mode and r.ratio]


def noise_floor(rows: list[Row], suite: str, mode: str) -> float | None:
    """Root mean square of log(ratio) of the A/A control rows of ``suite``
    in ``mode``: the standard error of a log ratio between equal work in
    this run. None without control rows."""
    logs = [math.log(r.ratio) for r in _control_rows(rows, suite, mode)]
    if not logs:
        return None
    return math.sqrt(sum(v * v for v in logs) / len(logs))


def _with_floor(log_error: float | None, floor: float | None) -> float | None:
    if floor is None:
        return log_error
    return max(log_error or 0.0, floor)


def _geometric_mean_error(rows: list[Row]) -> float | None:
    """Standard error of the log of the rows' geometric mean ratio, the
    layers measured independently; None if any row lacks its error."""
    if any(r.log_error is None for r in rows):
        return None
    return math.sqrt(sum(r.log_error ** 2 for r in rows)) / len(rows)


def _layer_rows(rows: list[Row], suite: str, mode: str) -> list[Row]:
    return [r for r in rows if r.suite == suite and r.mode == mode
            and r.candidate in _TORCHFLIP_LAYERS and r.ratio is not None]


def _mean_and_max(rows: list[Row], name: str, requirement: str, mean_limit: float,
                  max_limit: float) -> Target:
    if not rows:
        return _not_run(name, requirement)
    mean = geometric_mean([r.ratio for r in rows])
    worst = max(rows, key=lambda r: r.ratio)
    figure = f"geomean {mean:.3f}, max {worst.ratio:.3f} ({worst.case}), {len(rows)} layers"
    passed = mean <= mean_limit and worst.ratio <= max_limit
    return Target(name, requirement, figure, _verdict(passed))


def training_targets(rows: list[Row]) -> list[Target]:
    """(1) fwd+bwd in training: torchflip / torch.nn per layer suite."""
    return [_mean_and_max(_layer_rows(rows, suite, "fwdbwd"),
                          f"train fwd+bwd, {suite}: torchflip / torch.nn",
                          "geomean <= 1.03, every layer <= 1.10", 1.03, 1.10)
            for suite in ("resnet50", "conv1d", "conv3d")]


def _naive_rows(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.candidate in _TORCHFLIP_LAYERS and r.unit == "s"
            and r.ratio_naive is not None]


def naive_targets(rows: list[Row]) -> list[Target]:
    """(1) In training (fwd+bwd rows of the resnet50, conv1d and conv3d
    suites, as the issue states it), torchflip never slower than flipping
    the weight on every call: no layer measurably above 1.00 (see the
    module's docstring). The same ratio over every row of every suite and
    mode follows as information (status 'info')."""
    name = "train fwd+bwd, torchflip / naive flip, every layer"
    requirement = "<= 1.00: none measurably above (99% CI)"
    training = _naive_rows([r for r in rows if r.mode == "fwdbwd"
                            and r.suite in ("resnet50", "conv1d", "conv3d")])
    if not training:
        targets = [_not_run(name, requirement)]
    else:
        floors = {(r.suite, r.mode): noise_floor(rows, r.suite, r.mode) for r in training}

        def error(r: Row) -> float | None:
            return _with_floor(r.log_error_naive, floors[(r.suite, r.mode)])

        worst = max(training, key=lambda r: r.ratio_naive)
        above = [r for r in training if _measurably_above(r.ratio_naive, error(r), 1.0)]
        above.sort(key=lambda r: r.ratio_naive, reverse=True)
        listed = ", ".join(f"{r.case} {_format_interval(r.ratio_naive, error(r))}"
                           for r in above[:3]) + (", ..." if len(above) > 3 else "")
        figure = (f"max {_format_interval(worst.ratio_naive, error(worst))} "
                  f"({worst.suite} {worst.case}); measurably above: {len(above)} of "
                  f"{len(training)} layers" + (f" ({listed})" if above else ""))
        targets = [Target(name, requirement, figure, _verdict(not above))]
    compared = _naive_rows(rows)
    if compared:
        worst = max(compared, key=lambda r: r.ratio_naive)
        targets.append(Target("torchflip / naive flip, every row of every suite and mode",
                              "(information)", f"max {worst.ratio_naive:.3f} ({worst.suite} "
                              f"{_where(worst)}), {len(compared)} rows", "info"))
    return targets


def inference_targets(rows: list[Row]) -> list[Target]:
    """(2) inference (eval, no_grad): torchflip / torch.nn per layer suite,
    the geometric mean not measurably above 1.01 (see the module's
    docstring)."""
    targets = []
    for suite in ("resnet50", "conv1d", "conv3d"):
        name = f"inference, {suite}: torchflip / torch.nn"
        requirement = "geomean <= 1.01: not measurably above (99% CI)"
        layers = _layer_rows(rows, suite, "eval")
        if not layers:
            targets.append(_not_run(name, requirement))
            continue
        mean = geometric_mean([r.ratio for r in layers])
        floor = noise_floor(rows, suite, "eval")
        error = _with_floor(_geometric_mean_error(layers),
                            None if floor is None else floor / math.sqrt(len(layers)))
        worst = max(layers, key=lambda r: r.ratio)
        figure = (f"geomean {_format_interval(mean, error)}, max {worst.ratio:.3f} "
                  f"({worst.case}), {len(layers)} layers")
        targets.append(Target(name, requirement, figure,
                              _verdict(not _measurably_above(mean, error, 1.01))))
    return targets


def control_targets(rows: list[Row]) -> list[Target]:
    """The A/A control per suite and mode, as information: how far a copy
    of torch.nn's layer strays from it in this run (its geometric mean, its
    worst layer, and the noise floor the parity targets use)."""
    targets = []
    keys = dict.fromkeys((r.suite, r.mode) for r in rows
                         if r.candidate == CONTROL and r.ratio)
    for suite, mode in keys:
        control = _control_rows(rows, suite, mode)
        worst = max(control, key=lambda r: abs(math.log(r.ratio)))
        figure = (f"geomean {geometric_mean([r.ratio for r in control]):.3f}, furthest "
                  f"{worst.ratio:.3f} ({worst.case}); noise floor "
                  f"{100 * noise_floor(rows, suite, mode):.1f}% ({len(control)} layers)")
        targets.append(Target(f"A/A control, {suite} {mode}: torch.nn (again) / torch.nn",
                              "(information)", figure, "info"))
    return targets


def compiled_targets(rows: list[Row]) -> list[Target]:
    """(3) torch.compile'd ResNet-18-style model, torchflip / torch.nn layers."""
    targets = []
    for mode, label in (("eval", "inference"), ("fwdbwd", "training step")):
        name = f"compiled ResNet-18, {label}: torchflip / torch.nn"
        found = [r for r in rows if r.suite == "compiled" and r.case == "resnet18 compiled"
                 and r.mode == mode and r.candidate == TORCHFLIP and r.ratio is not None]
        if not found:
            targets.append(_not_run(name, "<= 1.05"))
            continue
        ratio = found[0].ratio
        targets.append(Target(name, "<= 1.05", f"{ratio:.3f}", _verdict(ratio <= 1.05)))
    return targets


def _large_kernel_target_names() -> set[str]:
    return {case.name for suite in LARGE_KERNEL_SUITES for quick in (False, True)
            for case in LAYER_SUITES[suite](quick) if is_large_kernel_target(case)}


def large_kernel_targets(rows: list[Row]) -> list[Target]:
    """(4) method='auto' on large kernels: speed against torch.nn, choice
    between direct and FFT, FFT accuracy. The method candidates run only where
    torchflip's layers take ``method``; large-kernel rows without them mean
    the feature is absent (n/a)."""
    speed = "method='auto' speed-up over torch.nn, stride-1 large kernels"
    choice = "method='auto' / best of direct and fft"
    accuracy = "method='fft' float32 error vs float64"
    requirements = (">= 10x on each", "<= 1.10 on each", "max|y - y64| / max|y64| <= 1e-4")
    large = [r for r in rows if r.suite in LARGE_KERNEL_SUITES]
    if not large:
        return [_not_run(n, q) for n, q in zip((speed, choice, accuracy), requirements)]
    if not any(r.candidate.startswith(f"{TORCHFLIP}[") for r in large):
        return [Target(n, q, "torchflip layers take no 'method' argument", "n/a")
                for n, q in zip((speed, choice, accuracy), requirements)]
    targets = []
    autos = [r for r in large if r.candidate == AUTO and r.ratio is not None]
    targeted = [r for r in autos if r.case in _large_kernel_target_names()]
    if targeted:
        slowest = max(targeted, key=lambda r: r.ratio)
        targets.append(Target(speed, requirements[0],
                              f"min {1 / slowest.ratio:.1f}x ({_where(slowest)})",
                              _verdict(1 / slowest.ratio >= 10)))
    else:
        targets.append(_not_run(speed, requirements[0]))

    by_key = {(r.suite, r.case, r.mode, r.candidate): r for r in large}
    choices = []
    for r in autos:
        if r.ratio_best is not None:
            choices.append((r.ratio_best, r))
            continue
        # CSV files of older runs: the quotient of the ratios to torch.nn.
        others = [by_key.get((r.suite, r.case, r.mode, method_name(m))) for m in METHODS[1:]]
        others = [o.ratio for o in others if o is not None and o.ratio is not None]
        if others:
            choices.append((r.ratio / min(others), r))
    if choices:
        worst, row = max(choices, key=lambda item: item[0])
        targets.append(Target(choice, requirements[1], f"max {worst:.3f} ({_where(row)})",
                              _verdict(worst <= 1.10)))
    else:
        targets.append(_not_run(choice, requirements[1]))

    ffts = [r for r in large if r.candidate == method_name("fft") and r.error is not None]
    if ffts:
        worst_row = max(ffts, key=lambda r: r.error)
        targets.append(Target(accuracy, requirements[2],
                              f"max {worst_row.error:.1e} ({worst_row.case})",
                              _verdict(worst_row.error <= 1e-4)))
    else:
        targets.append(_not_run(accuracy, requirements[2]))
    return targets


def memory_target(rows: list[Row]) -> Target:
    """(5) peak memory of fwd+bwd, torchflip / torch.nn."""
    name, requirement = "peak memory of fwd+bwd: torchflip / torch.nn", "<= 1.05 on each"
    found = [r for r in rows if r.suite == "memory" and r.candidate in _TORCHFLIP_LAYERS
             and r.ratio is not None]
    if not found:
        return _not_run(name, requirement)
    worst = max(found, key=lambda r: r.ratio)
    return Target(name, requirement, f"max {worst.ratio:.3f} ({worst.case}), {len(found)} layers",
                  _verdict(worst.ratio <= 1.05))


def build_import_targets(rows: list[Row]) -> list[Target]:
    """(6) clean wheel build time and the import time torchflip adds."""
    values = {r.case: r.value for r in rows if r.suite in ("build", "import")}
    build = values.get("pip wheel, clean tree")
    added = values.get("import torchflip after torch")
    targets = [Target("build from a clean tree", "<= 90 s", f"{build:.1f} s",
                      _verdict(build <= 90.0)) if build is not None
               else _not_run("build from a clean tree", "<= 90 s")]
    if added is None:
        targets.append(_not_run("import torchflip adds", "<= 0.3 s"))
    else:
        figure = f"{added:.3f} s (import torch: {values.get('import torch', float('nan')):.2f} s)"
        targets.append(Target("import torchflip adds", "<= 0.3 s", figure,
                              _verdict(added <= 0.3)))
    return targets


def evaluate(rows: list[Row]) -> list[Target]:
    """Every target, in the order of the issue."""
    return [*training_targets(rows), *naive_targets(rows), *inference_targets(rows),
            *control_targets(rows), *compiled_targets(rows), *large_kernel_targets(rows),
            memory_target(rows), *build_import_targets(rows)]
