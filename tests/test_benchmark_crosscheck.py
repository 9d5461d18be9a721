"""benchmarks/crosscheck_perf.py, the independent measurement: it times in
run.py's steady heap, names the engines 'auto' took, and gives each auto /
best row its A/A control."""

import re

import pytest
import torch

from benchmarks import crosscheck_perf
from torchflip.nn import conv
from torchflip.nn._method import Engines

TINY = crosscheck_perf.Layer("tiny depthwise", 2, 2, (11,), (64,), 1, padding=5, groups=2)


@pytest.mark.parametrize("train", [True, False])
def test_chosen_engines_asks_as_the_timed_mode_calls(monkeypatch, train):
    asked = []

    def fake_choice(input, weight, *args, **kwargs):
        asked.append((torch.is_grad_enabled(), input.requires_grad))
        return Engines("direct", "fft")

    monkeypatch.setattr(conv, "choose_engines", fake_choice)
    _, layer, x = TINY.build("auto")
    assert crosscheck_perf._chosen_engines(layer, x, train) == "direct/fft"
    assert asked == [(train, train)]


def test_one_engine_for_both_passes_is_named_once(monkeypatch):
    monkeypatch.setattr(conv, "choose_engines", lambda *a, **k: Engines("fft", "fft"))
    _, layer, x = TINY.build("auto")
    assert crosscheck_perf._chosen_engines(layer, x, True) == "fft"


def test_the_auto_check_reports_the_choice_and_the_a_a_control(monkeypatch, capsys):
    monkeypatch.setattr(crosscheck_perf, "LARGE_LAYERS", [TINY])
    crosscheck_perf.check_auto(rounds=3, seconds=0.001)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["train", "eval"]
    number = r"(\d+\.\d+) \[(\d+\.\d+), (\d+\.\d+)\]"
    for line in lines:
        assert re.search(r"auto \((direct|fft|direct/fft|fft/direct)\) speed-up", line)
        for label in ("auto/best", "auto again/best"):
            median, low, high = map(float, re.search(label + " " + number, line).groups())
            assert 0 < low <= median <= high


@pytest.mark.parametrize("argv, steady", [([], True), (["--system-malloc"], False)])
def test_timing_runs_in_the_steady_heap_unless_asked_not_to(monkeypatch, capsys, argv,
                                                            steady):
    calls = []
    monkeypatch.setattr(crosscheck_perf.allocator, "ensure_steady_heap",
                        lambda: calls.append(True))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    monkeypatch.setattr("sys.argv", ["crosscheck_perf.py", "--only", "none", *argv])
    crosscheck_perf.main()
    assert calls == ([True] if steady else [])
    assert capsys.readouterr().out.startswith("torch ")
