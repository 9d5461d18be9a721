"""benchmarks/run.py keeps the rows of a run that is cut short: the large-kernel
suites take minutes a step on a small machine, and a run stopped near its end
used to lose every figure."""

import pytest

from benchmarks import run, suites
from benchmarks.report import read_csv
from benchmarks.results import REFERENCE, TORCHFLIP, Row


def _rows(case, modes, settings, advance, warn):
    rows = []
    for mode in modes:
        rows += [Row(case.suite, case.name, mode, REFERENCE, 1e-3, "s"),
                 Row(case.suite, case.name, mode, TORCHFLIP, 1.1e-3, "s", REFERENCE, 1.1)]
        advance()
    return rows


def test_a_run_cut_short_leaves_its_rows_in_the_partial_csv(tmp_path, monkeypatch):
    measured = []

    def first_two_cases(case, modes, settings, advance, warn):
        if len(measured) == 2:
            raise KeyboardInterrupt
        measured.append(case.name)
        return _rows(case, modes, settings, advance, warn)

    monkeypatch.setattr(suites, "run_layer_case", first_two_cases)
    args = run.parse_arguments(["--quick", "--suite", "resnet50", "--mode", "fwd,eval",
                                "--output", str(tmp_path)])
    with pytest.raises(KeyboardInterrupt):
        run.run(args, {"machine": "test"})
    rows, info = read_csv(run.partial_csv(args))
    assert info == {"machine": "test"}
    assert [(r.case, r.mode, r.candidate) for r in rows] == [
        (case, mode, candidate) for case in measured for mode in ("fwd", "eval")
        for candidate in (REFERENCE, TORCHFLIP)]
    assert not (tmp_path / "benchmark.csv").exists()


def test_a_finished_run_removes_its_partial_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(suites, "run_layer_case", _rows)
    monkeypatch.setattr(run.report, "write_plot", lambda rows, info, path: path.touch())
    status = run.main(["--quick", "--system-malloc", "--suite", "conv1d", "--mode", "fwd",
                       "--output", str(tmp_path)])
    assert status == 0
    rows, _ = read_csv(tmp_path / "benchmark.csv")
    assert [r.mode for r in rows if r.candidate == REFERENCE] == ["fwd"] * len(rows[::2])
    assert not (tmp_path / "benchmark.partial.csv").exists()
