"""torchflip._extension.load(): a build that does not match the installed
torch, or (in a source checkout) the C++ sources, is refused at import with
an ImportError that says how to rebuild. On Linux the build parallelises its
own CPU kernels on torch's OpenMP runtime, not a second one."""

import sys
from pathlib import Path

import pytest
import torch

import torchflip
from torchflip import _C, _extension


def test_loaded_build_matches_sources_and_torch():
    assert _C.torch_version == torch.__version__
    assert len(_C.source_hash) == 64


LINUX_OPENMP = sys.platform.startswith("linux") and torch.backends.openmp.is_available()


@pytest.mark.skipif(not LINUX_OPENMP, reason="torch parallelises with OpenMP on Linux builds")
def test_kernels_are_built_to_run_on_torchs_openmp_threads():
    # Without -fopenmp, at::parallel_for compiles to a serial loop and the
    # reversal of every true convolution ignores torch.set_num_threads.
    assert _C.openmp == 1
    libraries = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                 if "libgomp" in line.rsplit("/", 1)[-1]}
    assert len(libraries) == 1, f"more than one OpenMP runtime loaded: {sorted(libraries)}"


def test_stale_build_is_refused(monkeypatch):
    monkeypatch.setattr(_C, "source_hash", "0" * 64)
    with pytest.raises(ImportError, match="stale") as error:
        _extension.load()
    assert "build_ext --inplace" in str(error.value) or "pip install" in str(error.value)


def test_build_for_another_torch_is_refused(monkeypatch):
    monkeypatch.setattr(_C, "torch_version", "0.0.0")
    with pytest.raises(ImportError, match="0.0.0"):
        _extension.load()


def test_operators_are_registered():
    for name in ["conv", "conv_backward", "conv_transpose", "conv_transpose_backward",
                 "_conv", "_conv_backward", "_conv_transpose", "_conv_transpose_backward"]:
        assert hasattr(torch.ops.torchflip, name), name
    assert torchflip.__version__
