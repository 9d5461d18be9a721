"""Helpers shared by the deployment tests: running code in a fresh Python
process, the CI environment switch of Inductor, and the ONNX round trip."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import torchflip

ROOT = Path(__file__).resolve().parent.parent


def run_fresh_process(code: str) -> str:
    """Runs ``code`` in a new interpreter (nothing registered or cached from
    this one) and returns its stdout; fails the test if it fails."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.fixture(params=["", "true"], ids=["no-CI-env", "CI-env"])
def ci_env(request, monkeypatch):
    """Inductor is stricter about fallbacks when CI is set: both must work."""
    if request.param:
        monkeypatch.setenv("CI", request.param)
    else:
        monkeypatch.delenv("CI", raising=False)


def export_onnx(exported: torch.export.ExportedProgram, path: Path):
    """The documented ONNX recipe: lower the torchflip operators with
    torchflip.decompositions() only (the exporter lowers the rest itself,
    keeping the operators it translates whole), export with dynamo=True.
    Checks that the graph uses the standard ONNX domain only and returns an
    onnxruntime session on it."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    lowered = exported.run_decompositions(torchflip.decompositions())
    torch.onnx.export(lowered, dynamo=True).save(str(path))
    graph = onnx.load(str(path)).graph
    domains = {n.domain for n in graph.node}
    assert domains <= {"", "ai.onnx"}, f"custom ONNX domains used: {domains}"
    return ort.InferenceSession(str(path)), {n.op_type for n in graph.node}
