"""Running each kind of suite into :class:`~benchmarks.results.Row` s."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import torchflip
from benchmarks import build_import
from benchmarks.candidates import Layer, build_layers, make_step
from benchmarks.cases import LARGE_KERNEL_SUITES, LayerCase
from benchmarks.memory import peak_bytes
from benchmarks.models import ResNetStyle
from benchmarks.results import METHODS, NAIVE, REFERENCE, TORCHFLIP, Row, method_name
from benchmarks.timing import Measurement, Settings

# A float32 result further than this from float64 is a bug, not rounding.
WRONG_ERROR = 1e-3


def relative_error(result: torch.Tensor, exact: torch.Tensor) -> float:
    """max|result - exact| / max|exact|: error relative to the output's scale."""
    scale = exact.abs().max().item() or 1.0
    return (result.double() - exact.double()).abs().max().item() / scale


def _float64_output(layers: dict[str, Layer], x: torch.Tensor) -> torch.Tensor:
    exact = copy.deepcopy(layers[REFERENCE].module).double()
    with torch.no_grad():
        return exact(x.detach().double())


def _usable(steps: dict[str, Callable[[], object]]) -> tuple[dict, dict[str, str]]:
    """Calls each step once; those that raise are set aside with the error."""
    good, failed = {}, {}
    for name, step in steps.items():
        try:
            step()
            good[name] = step
        except Exception as error:  # noqa: BLE001  (reported in the table, not fatal)
            failed[name] = f"error: {type(error).__name__}: {error}"[:200]
    return good, failed


def _timed_rows(suite: str, case: str, shape: str, mode: str, measurement: Measurement,
                settings: Settings, errors: dict[str, float | None],
                notes: dict[str, str]) -> list[Row]:
    rows = []
    engines = [method_name(m) for m in METHODS[1:] if method_name(m) in measurement.seconds]
    for name in measurement.seconds:
        compared = name != REFERENCE
        versus_naive = (name.startswith(TORCHFLIP) and NAIVE in measurement.seconds)
        rows.append(Row(
            suite, case, mode, name, measurement.median(name), "s", REFERENCE,
            measurement.ratio(name, REFERENCE) if compared else 1.0,
            measurement.ratio_spread(name, REFERENCE) if compared else None,
            measurement.ratio(name, NAIVE) if versus_naive else None,
            len(measurement.seconds[name]), settings.threads, errors.get(name), shape,
            notes.get(name, ""),
            measurement.log_ratio_error(name, REFERENCE) if compared else None,
            measurement.log_ratio_error(name, NAIVE) if versus_naive else None,
            measurement.ratio_to_fastest(name, engines)
            if name == method_name("auto") and engines else None))
    return rows


def _failure_rows(suite: str, case: str, shape: str, mode: str,
                  failed: dict[str, str]) -> list[Row]:
    return [Row(suite, case, mode, name, float("nan"), shape=shape, note=note)
            for name, note in failed.items()]


def run_layer_case(case: LayerCase, modes: list[str], settings: Settings,
                   advance: Callable[[], None], warn: Callable[[str], None]) -> list[Row]:
    """Every candidate of one layer in every mode, timed side by side; each
    candidate's forward output checked against float64 first."""
    large = case.suite in LARGE_KERNEL_SUITES
    # The parity suites get the A/A control; on large kernels the ratios
    # judged are 10x apart or between torchflip's own engines.
    layers = build_layers(case, settings.device, large, control=not large)
    x = torch.randn(case.input_shape, device=settings.device, requires_grad=True)
    shape = case.describe()
    exact = _float64_output(layers, x)
    errors, notes = {}, {}
    for name, layer in layers.items():
        try:
            with torch.no_grad():
                errors[name] = relative_error(layer.forward(x), exact)
        except Exception as error:  # noqa: BLE001
            notes[name] = f"error: {type(error).__name__}: {error}"[:200]
            continue
        if errors[name] > WRONG_ERROR:
            notes[name] = f"WRONG: error {errors[name]:.1e}"
            warn(f"{case.suite} {case.name}: {name} differs from float64 by {errors[name]:.1e}")
    del exact
    grad_output = torch.randn_like(layers[REFERENCE].forward(x).detach())
    rows = []
    for mode in modes:
        steps = {name: make_step(layer, mode, x, grad_output) for name, layer in layers.items()
                 if not notes.get(name, "").startswith("error")}
        steps, failed = _usable(steps)
        failed.update({n: v for n, v in notes.items() if v.startswith("error")})
        if REFERENCE in steps:
            rows += _timed_rows(case.suite, case.name, shape, mode, settings.measure(steps),
                                settings, errors, notes)
        else:
            failed.setdefault(REFERENCE, "reference missing")
        rows += _failure_rows(case.suite, case.name, shape, mode, failed)
        for name, note in failed.items():
            warn(f"{case.suite} {case.name} {mode}: {name}: {note}")
        advance()
    return rows


def run_memory_case(case: LayerCase, settings: Settings) -> list[Row]:
    """Peak memory of one fwd+bwd call per candidate (see benchmarks.memory)."""
    layers = build_layers(case, settings.device, case.suite in LARGE_KERNEL_SUITES)
    x = torch.randn(case.input_shape, device=settings.device, requires_grad=True)
    grad_output = torch.randn_like(layers[REFERENCE].forward(x).detach())
    peaks, notes = {}, {}
    for name, layer in layers.items():
        try:
            peaks[name] = peak_bytes(make_step(layer, "fwdbwd", x, grad_output),
                                     settings.device)
        except Exception as error:  # noqa: BLE001
            notes[name] = f"error: {type(error).__name__}: {error}"[:200]
    rows = []
    for name, peak in peaks.items():
        reference, naive = peaks.get(REFERENCE), peaks.get(NAIVE)
        rows.append(Row("memory", f"{case.suite}:{case.name}", "memory", name, float(peak), "B",
                        REFERENCE, peak / reference if reference else None, None,
                        peak / naive if naive and name.startswith(TORCHFLIP) else None,
                        threads=settings.threads, shape=case.describe()))
    rows += _failure_rows("memory", f"{case.suite}:{case.name}", case.describe(), "memory", notes)
    return rows


def run_compiled(quick: bool, modes: list[str], settings: Settings,
                 advance: Callable[[], None], warn: Callable[[str], None]) -> list[Row]:
    """ResNet-18-style model with torchflip layers against the same model
    reverted to torch.nn layers (flipped weights), eager and under
    torch.compile: inference (eval, no_grad) and a training step (forward,
    cross-entropy, backward, SGD step)."""
    batch, size = (2, 64) if quick else (8, 224)
    true_model = ResNetStyle(torchflip.nn.Conv2d).to(settings.device)
    models = {REFERENCE: torchflip.revert(true_model), TORCHFLIP: true_model}
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
                  for name, m in models.items()}
    x = torch.randn(batch, 3, size, size, device=settings.device)
    labels = torch.randint(0, 10, (batch,), device=settings.device)
    shape = f"ResNet-18 n{batch} @{size}x{size}"
    rows = []
    for variant in ("eager", "compiled"):
        runners = {name: torch.compile(m) if variant == "compiled" else m
                   for name, m in models.items()}
        for mode in [m for m in ("eval", "fwdbwd") if m in modes]:
            steps = {}
            for name, model in models.items():
                model.train(mode == "fwdbwd")
                steps[name] = (_inference(runners[name], x) if mode == "eval" else
                               _training_step(runners[name], optimizers[name], x, labels))
            notes, errors = {}, {}
            for name, step in steps.items():  # the first call compiles
                start = time.perf_counter()
                try:
                    step()
                except Exception as error:  # noqa: BLE001
                    notes[name] = f"error: {type(error).__name__}: {error}"[:200]
                    warn(f"compiled {variant} {mode}: {name}: {notes[name]}")
                    continue
                notes[name] = f"first call {time.perf_counter() - start:.1f} s"
            if mode == "eval" and not any(n.startswith("error") for n in notes.values()):
                with torch.no_grad():
                    expected = runners[REFERENCE](x)
                    errors = {name: relative_error(runners[name](x), expected)
                              for name in runners}
            good = {n: s for n, s in steps.items() if not notes[n].startswith("error")}
            case = f"resnet18 {variant}"
            if REFERENCE in good:
                rows += _timed_rows("compiled", case, shape, mode, settings.measure(good),
                                    settings, errors, notes)
            rows += _failure_rows("compiled", case, shape, mode,
                                  {n: v for n, v in notes.items() if n not in good})
            advance()
    return rows


def _inference(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def step() -> torch.Tensor:
        with torch.no_grad():
            return model(x)

    return step


def _training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                   labels: torch.Tensor) -> Callable[[], object]:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), labels).backward()
        optimizer.step()

    return step


def run_import(quick: bool) -> list[Row]:
    """Import times in fresh interpreters (see benchmarks.build_import)."""
    torch_seconds, added_seconds = build_import.import_seconds(runs=3 if quick else 11)
    return [Row("import", "import torch", "import", "torch", torch_seconds),
            Row("import", "import torchflip after torch", "import", TORCHFLIP, added_seconds)]


def run_build() -> list[Row]:
    """Clean wheel build time (see benchmarks.build_import)."""
    seconds, cpu_seconds = build_import.build_seconds()
    return [Row("build", "pip wheel, clean tree", "build", TORCHFLIP, seconds,
                note=f"{cpu_seconds:.0f} s of CPU time ({os.cpu_count()} logical cores)")]
