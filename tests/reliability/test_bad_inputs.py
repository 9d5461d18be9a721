"""Acceptance list of bad inputs (tests/reliability/bad_inputs.py): every call
raises a Python exception whose message names the offending argument and says
what was expected or given.

The whole list first runs in a subprocess, so a crash (segfault, abort) fails
the calls it kills instead of the test session; then each call is repeated
here and judged. A summary (clear / unclear / returned / crashed) is printed by
test_summary (visible with ``pytest -s``) and by
``python -m tests.reliability.bad_inputs``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.reliability import bad_inputs as B

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def subprocess_records() -> dict:
    """Records of the subprocess run, by call id; a call that started but never
    reported is recorded as crashed, with the process's exit status."""
    run = subprocess.run([sys.executable, "-m", "tests.reliability.bad_inputs", "--jsonl"],
                         cwd=REPO, capture_output=True, text=True, check=False, timeout=300)
    records, started = {}, None
    for line in run.stdout.splitlines():
        record = json.loads(line)
        if "start" in record:
            started = record["start"]
        else:
            records[record["id"]] = record
            started = None
    if started is not None:
        records[started] = dict(id=started, outcome="crashed",
                                message=f"exit status {run.returncode}: {run.stderr[-2000:]}")
    return records


def _assert_clear(verdict: B.Verdict, records: dict) -> None:
    record = records.get(verdict.id)
    assert record is not None, f"{verdict.id}: never reported by the subprocess (it died earlier)"
    assert record["outcome"] != "crashed", f"{verdict.id}: crashed the process: {record['message']}"
    assert verdict.outcome == "raised", f"{verdict.id}: returned normally instead of raising"
    assert record["outcome"] == "raised" and record["error_type"] == verdict.error_type, (
        f"{verdict.id}: subprocess {record}, here {verdict.error_type}")
    first_line = verdict.message.splitlines()[0] if verdict.message else ""
    assert verdict.names_argument, (
        f"{verdict.id}: the message does not name any of {list(verdict.arguments)}: "
        f"{verdict.error_type}: {first_line}")
    assert verdict.says_expected_or_given, (
        f"{verdict.id}: the message says neither what was expected nor what was given "
        f"({list(verdict.details)}): {verdict.error_type}: {first_line}")


PROBLEM_CASES = list(B.problem_cases())


@pytest.mark.parametrize("bad,family,kind", [c[1:] for c in PROBLEM_CASES],
                         ids=[c[0] for c in PROBLEM_CASES])
def test_bad_input_is_rejected_clearly(bad, family, kind, subprocess_records):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero-element initialisation warnings
        verdicts = [B.judge_problem_case(bad, family, kind, dims) for dims in (1, 2, 3)]
    for verdict in verdicts:
        _assert_clear(verdict, subprocess_records)


OTHER_CALLS = B.other_calls()


@pytest.mark.parametrize("bad", OTHER_CALLS, ids=[f"{c.name} | {c.entry}" for c in OTHER_CALLS])
def test_bad_layer_or_conversion_call_is_rejected_clearly(bad, subprocess_records):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verdict = B.judge_call(bad)
    _assert_clear(verdict, subprocess_records)


def test_list_is_large_and_summary(subprocess_records):
    """At least 40 distinct bad inputs; prints the counts of the subprocess run.
    Crashes fail here as well as in the calls they killed."""
    summary = B.summarise(list(subprocess_records.values()), B.all_ids())
    print("\nbad inputs:", json.dumps(summary))
    assert summary["distinct_bad_inputs"] >= 40
    assert summary["calls"] >= 40 * 7
    assert summary["crashed_or_missing"] == 0, summary
