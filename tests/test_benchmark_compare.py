"""benchmarks/compare_fft_engine.py loads two revisions of the FFT engine as
separate modules and times them against each other on the benchmark's
layers."""

import math
import shutil
import subprocess

import pytest
import torch

from benchmarks import compare_fft_engine as compare_script


def _in_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    probe = subprocess.run(["git", "rev-parse", "HEAD"], cwd=compare_script.ROOT,
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _in_git_checkout(), reason="needs a git checkout")
def test_two_revisions_load_as_separate_engines_and_are_timed_pairwise(tmp_path):
    base = compare_script.load_engine("HEAD", "engine_base", tmp_path)
    head = compare_script.load_engine(compare_script.WORKING_TREE, "engine_head", tmp_path)
    assert base is not head and base.__file__ != head.__file__
    case = compare_script.engine_cases()["fir64@16k"]
    found = compare_script.compare(base, head, case, rounds=2)
    assert set(found) == {"fwd", "bwd"}
    for base_seconds, head_seconds, ratio in found.values():
        assert base_seconds > 0 and head_seconds > 0
        assert math.isfinite(ratio) and ratio > 0
    # Both engines compute the benchmark layer's true convolution.
    x = torch.randn(case.input_shape, dtype=torch.float64)
    w = torch.randn((case.out_channels, case.in_channels) + case.kernel, dtype=torch.float64)
    expected = torch.nn.functional.conv1d(x, w.flip(-1), padding=case.padding)
    for engine in (base, head):
        torch.testing.assert_close(engine.fft_forward(x, w, None, list(case.padding), [1], 1),
                                   expected)


def test_unknown_cases_are_named_in_the_error(capsys):
    with pytest.raises(SystemExit):
        compare_script.main(["--base", "HEAD", "--cases", "no-such-layer"])
    assert "no-such-layer" in capsys.readouterr().err
