"""One measured figure per row: the common currency of the runner, the
targets, the tables, the CSV and the plot."""

from __future__ import annotations

from dataclasses import dataclass, fields

# Names of the candidates (see benchmarks.candidates for what each runs).
REFERENCE = "torch.nn"
TORCHFLIP = "torchflip"
NAIVE = "naive flip"
# A second torch.nn layer, a deep copy of the reference: the same work in
# other buffers. Its ratio to the reference is the run's noise floor (an
# A/A test), which benchmarks.targets uses to judge parity.
CONTROL = "torch.nn (again)"
FFT_CONV_PYTORCH = "fft-conv-pytorch"
METHODS = ("auto", "direct", "fft")


def method_name(method: str) -> str:
    """'torchflip[auto]': torchflip's layer built with method=..."""
    return f"{TORCHFLIP}[{method}]"


@dataclass
class Row:
    """One candidate on one case in one mode.

    ``value`` is a median time per call in seconds (unit 's') or a peak memory
    in bytes (unit 'B'). ``ratio`` is value / the reference's value measured in
    the same run: for times, the median over repeats of the paired per-repeat
    ratios (see :mod:`benchmarks.timing`), with ``spread`` half their
    interquartile range, and ``log_error`` the standard error of
    log(ratio) (see :meth:`benchmarks.timing.Measurement.log_ratio_error`).
    ``ratio_naive`` and ``log_error_naive`` are the same against the naive
    flip. ``ratio_best``, for ``torchflip[auto]`` only: the median over
    repeats of t_auto / min(t_direct, t_fft), each round's times paired.
    ``error`` is max|y - y64| / max|y64| against a float64 computation of the
    same convolution (or, for whole models, against the reference model).
    """

    suite: str
    case: str
    mode: str
    candidate: str
    value: float
    unit: str = "s"
    reference: str = ""
    ratio: float | None = None
    spread: float | None = None
    ratio_naive: float | None = None
    repeats: int | None = None
    threads: int | None = None
    error: float | None = None
    shape: str = ""
    note: str = ""
    log_error: float | None = None
    log_error_naive: float | None = None
    ratio_best: float | None = None


ROW_FIELDS = [f.name for f in fields(Row)]
