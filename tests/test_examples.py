"""Smoke tests of examples/ and of the README's doctests.

Each example runs as a user would run it, as a subprocess with small
settings, writing into a temporary folder; the test then checks the numbers
it reports against the thresholds its claims rest on (so a regression in
torchflip makes the example, and this test, fail), and that its figure is a
real PNG file.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_example(name: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs examples/<name> with ``--out tmp_path``; returns the finished process."""
    env = dict(os.environ, MPLBACKEND="Agg")
    # The repository root first, so that the checkout's torchflip is imported
    # whether or not it is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--out", str(tmp_path), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, (
        f"{name} exited with {result.returncode}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr[-5000:]}")
    return result


def number_after(label: str, text: str) -> float:
    match = re.search(re.escape(label) + r"\s*([-+0-9.e]+)", text)
    assert match, f"{label!r} not found in:\n{text}"
    return float(match.group(1))


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, f"{path} is not a real PNG"


def test_flip_equivalence(tmp_path: Path) -> None:
    result = run_example("flip_equivalence.py", tmp_path, "--epochs", "1")
    out = result.stdout
    assert number_after("max |loss difference| over all steps:", out) <= 1e-5
    assert number_after("max |test logit difference|:", out) <= 1e-4
    flip_errors = re.findall(r"max \|w_true - flip\(w_cross\)\| = ([-+0-9.e]+)", out)
    plain_differences = re.findall(r"max \|w_true - w_cross\| = ([-+0-9.e]+)", out)
    assert len(flip_errors) == len(plain_differences) == 2, out
    # The kernels are flips of each other, and not merely equal (symmetric).
    assert all(float(e) <= 1e-5 for e in flip_errors), out
    assert all(float(d) > 1e-2 for d in plain_differences), out
    assert "training both CNNs" in result.stderr  # tqdm's progress bar
    assert_png(tmp_path / "flip_equivalence.png")


def test_port_true_conv_weights(tmp_path: Path) -> None:
    out = run_example("port_true_conv_weights.py", tmp_path, "--batch", "2", "--size", "20").stdout
    scale = number_after("largest reference output:", out)
    assert number_after("torch.nn.Conv2d, weights as saved", out) > 1e-3 * scale
    assert number_after("torchflip.convert(model, flip_weights=False)", out) <= 1e-12 * scale
    assert number_after("torchflip.revert(ported): torch.nn, flipped weights", out) <= (
        1e-12 * scale)
    assert (tmp_path / "true_conv_weights.npz").is_file()


def test_deblur(tmp_path: Path) -> None:
    out = run_example("deblur.py", tmp_path, "--size", "48", "--psf-size", "9",
                      "--fit-steps", "150", "--iterations", "30").stdout
    assert abs(number_after("adjoint check: <A u, r> - <u, A^T r> =", out)) <= 1e-9
    assert number_after("torchflip blur vs scipy.signal.convolve2d: max |difference| =",
                        out) <= 1e-12
    to_true = number_after("relative error vs the true PSF", out)
    to_mirror = number_after("vs the mirrored PSF", out)
    assert to_true < 0.2 < to_mirror, out
    true_psnr = number_after("PSNR RL, torchflip (true convolution)", out)
    mirrored_psnr = number_after("PSNR RL, torch.nn.functional (mirrored)", out)
    assert true_psnr > number_after("PSNR blurred photo", out)
    assert true_psnr > mirrored_psnr, out
    assert_png(tmp_path / "deblur.png")


def test_compile_and_export(tmp_path: Path) -> None:
    out = run_example("compile_and_export.py", tmp_path).stdout
    assert "MISMATCH" not in out
    assert out.count(" ok") >= 15, out  # eager ref, forward, 8 gradients, 3 exported, 2 loaded
    assert "torchflip.conv_transpose.default" in out
    assert (tmp_path / "torchflip_model.pt2").is_file()


def test_readme_doctests() -> None:
    """The README's ``>>>`` examples (also collected by ``pytest README.md``)."""
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, "README.md has no doctests"
    assert result.failed == 0, f"{result.failed} README doctest(s) failed; see the output above"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
