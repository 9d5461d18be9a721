"""Loads the compiled library that registers ``torch.ops.torchflip.*``.

A missing build, a build for another torch, or (in a source checkout) a build
older than the C++ sources all raise an ImportError that says how to rebuild,
rather than failing later with a confusing operator error.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

_BUILD_HINT = (
    "Build it from the repository root with\n"
    "    pip install --no-build-isolation -e .\n"
    "(or `python setup.py build_ext --inplace` for an in-place build)."
)


def source_files(root: Path) -> list[Path]:
    """The C++ sources under ``root/csrc`` (setup.py builds these)."""
    return sorted(p for p in (root / "csrc").rglob("*")
                  if p.suffix in {".cpp", ".h"} and p.is_file())


def source_hash(root: Path) -> str:
    """Hash of the C++ sources' paths and contents. setup.py compiles it into
    the library; in a source checkout, load() compares it with the sources."""
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load() -> None:
    try:
        from torchflip import _C
    except ImportError as error:
        raise ImportError(
            f"torchflip's compiled operators (torchflip._C) could not be loaded: {error}\n"
            + _BUILD_HINT
        ) from error

    if _C.torch_version != torch.__version__:
        raise ImportError(
            f"torchflip._C was built against torch {_C.torch_version}, but torch "
            f"{torch.__version__} is installed; the C++ ABI differs, so rebuild.\n" + _BUILD_HINT
        )

    # In a source checkout (editable or in-place build), compare the sources the
    # library was built from with the sources on disk.
    root = Path(__file__).resolve().parent.parent
    if (root / "csrc").is_dir() and (root / "setup.py").is_file():
        if source_hash(root) != _C.source_hash:
            raise ImportError(
                "torchflip._C is stale: the C++ sources in "
                f"{root / 'csrc'} changed since it was built.\n" + _BUILD_HINT
            )
