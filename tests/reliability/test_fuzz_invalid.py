"""Random invalid calls (tests/reliability/invalid_calls.py) run in a
subprocess: none may crash the process, return where torch rejects the same
call, or return a result different from torch's.

Seeded and bounded for CI (TORCHFLIP_FUZZ_EXAMPLES calls, default 400, a few
seconds); for a long run::

    TORCHFLIP_FUZZ_EXAMPLES=5000 TORCHFLIP_FUZZ_SEED=1 pytest tests/reliability/test_fuzz_invalid.py -s
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("TORCHFLIP_FUZZ_EXAMPLES", "400"))
SEED = int(os.environ.get("TORCHFLIP_FUZZ_SEED", "0"))


def test_random_invalid_calls_raise_or_match_torch():
    run = subprocess.run(
        [sys.executable, "-m", "tests.reliability.invalid_calls", "--seed", str(SEED),
         "--examples", str(EXAMPLES)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=max(120, EXAMPLES // 5))
    records, started = [], None
    for line in run.stdout.splitlines():
        record = json.loads(line)
        if "start" in record:
            started = record
        else:
            records.append(record)
            started = None
    assert run.returncode == 0 and started is None, (
        f"the process died (exit status {run.returncode}) during call {started}:\n"
        f"{run.stderr[-3000:]}")
    assert len(records) == EXAMPLES

    verdicts = collections.Counter(r["verdict"] for r in records)
    print(f"\n{EXAMPLES} invalid calls (seed {SEED}): {dict(verdicts)}")
    for record in [r for r in records if r["verdict"] == "stricter"][:5]:
        print("  stricter than torch:", record["call"], "->", record["error"])
    bad = [r for r in records if r["verdict"] in ("accepted_invalid", "wrong_result")]
    assert not bad, "\n".join(f"{r['verdict']}: {r['call']} {r.get('torch_error', '')}"
                              for r in bad[:20])
    # The mutations must mostly produce invalid calls, or this test tests little.
    assert verdicts["raised"] + verdicts["stricter"] > 0.7 * EXAMPLES
