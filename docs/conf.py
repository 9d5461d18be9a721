"""Sphinx configuration for torchflip's API reference (docs/build.sh)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "torchflip"
author = "torchflip contributors"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax",
              "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
