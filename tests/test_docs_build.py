"""The API reference (Sphinx, docs/) builds without a single warning."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_sphinx_api_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
         str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    api = (tmp_path / "html" / "api.html").read_text()
    for name in ("conv2d", "conv_transpose3d", "ConvTranspose2d", "fftconvolve", "convert"):
        assert name in api, name
