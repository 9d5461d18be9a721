"""benchmarks/in_situ.py times each large-kernel candidate right after a
neighbouring layer and reports its own share of the step."""

import math

import pytest

from benchmarks import in_situ
from benchmarks.cases import LAYER_SUITES


def test_own_times_subtract_the_neighbour_round_by_round():
    seconds = {"neighbour": [1.0, 2.0, 4.0], "layer": [1.5, 2.25, 7.0]}
    assert in_situ.own_times(seconds, "layer", "neighbour") == [0.5, 0.25, 3.0]


def test_every_step_runs_the_neighbour_then_the_candidate(monkeypatch):
    case = next(c for c in LAYER_SUITES["long1d"](False) if c.name == "fir64@16k")
    calls = []
    monkeypatch.setattr(in_situ, "neighbour_step", lambda mode: lambda: calls.append("n"))
    steps, auto = in_situ.in_situ_steps(case, "eval")
    assert set(steps) == {in_situ.NEIGHBOUR, "torch.nn", *in_situ.ENGINES, in_situ.AUTO}
    for name, step in steps.items():
        calls.clear()
        step()
        assert calls == ["n"]
    assert auto.method == "auto"


@pytest.mark.parametrize("mode", ["eval", "fwdbwd"])
def test_a_case_gives_finite_ratios_and_the_route_auto_took(mode):
    case = next(c for c in LAYER_SUITES["long1d"](False) if c.name == "fir64@16k")
    row = in_situ.measure_case(case, mode, rounds=3)
    for name in ("torch.nn", *in_situ.ENGINES, in_situ.AUTO, "auto/best"):
        assert math.isfinite(row[name]) and row[name] > 0
    assert row["torch.nn"] == pytest.approx(1.0)
    assert row["auto chose"] != "?"


def test_unknown_cases_are_named_in_the_error(capsys):
    with pytest.raises(SystemExit):
        in_situ.main(["--suite", "long1d", "--cases", "no-such-layer"])
    assert "no-such-layer" in capsys.readouterr().err
