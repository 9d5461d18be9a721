#!/usr/bin/env bash
# Builds the HTML API reference into docs/_build/html; warnings are errors.
#   pip install sphinx && docs/build.sh
set -euo pipefail
cd "$(dirname "$0")"
python -m sphinx -W --keep-going -b html . _build/html
