"""Builds the C++ library with CMake against the installed libtorch and runs
its ctest suite: the C++ API test, the C++ training example, and loading the
CMake-built library into Python with torch.ops.load_library."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_build_and_ctest():
    build = ROOT / "build" / "cmake"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(["cmake", "-S", str(ROOT), "-B", str(build), *generator,
          f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
          f"-DPython3_EXECUTABLE={sys.executable}"])
    _run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2)])
    out = _run(["ctest", "--test-dir", str(build), "--output-on-failure"])
    assert "100% tests passed" in out.stdout, out.stdout
    for name in ("cpp_api", "cpp_example_train", "python_load_library"):
        assert name in out.stdout, f"ctest did not run {name}:\n{out.stdout}"
