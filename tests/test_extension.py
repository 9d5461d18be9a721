"""torchflip._extension.load(): a build that does not match the installed
torch, or (in a source checkout) the C++ sources, is refused at import with
an ImportError that says how to rebuild."""

import pytest
import torch

import torchflip
from torchflip import _C, _extension


def test_loaded_build_matches_sources_and_torch():
    assert _C.torch_version == torch.__version__
    assert len(_C.source_hash) == 64


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
