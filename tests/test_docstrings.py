"""The examples in torchflip's docstrings run and print what they claim."""

import doctest
import importlib
import pkgutil

import pytest

import torchflip

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(torchflip.__path__, prefix="torchflip.")
    if not info.name.rsplit(".", 1)[-1].startswith("_C"))


@pytest.mark.parametrize("name", ["torchflip", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
