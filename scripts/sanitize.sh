#!/usr/bin/env bash
# Builds torchflip's extension with AddressSanitizer and UndefinedBehaviorSanitizer
# in a scratch copy of the tracked tree, then runs the operator and layer tests
# under them. Any sanitizer report aborts the run with a non-zero exit.
#
#   scripts/sanitize.sh [pytest args...]
#       (default: tests/ops tests/nn and the signal tests, which cover the
#       hand-written multiply-add kernel csrc/fir_window.cpp)
#
# Python itself is not instrumented, so libasan is preloaded; leak detection is
# off because the interpreter and torch keep allocations alive at exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$WORK")
cd "$WORK"
echo "== building with -fsanitize=address,undefined in $WORK"
TORCHFLIP_SANITIZE="${TORCHFLIP_SANITIZE:-address,undefined}" python setup.py build_ext --inplace > build.log 2>&1 || { tail -50 build.log; exit 1; }

# libstdc++ too: ASan's __cxa_throw interceptor must find it at start-up, or the
# first C++ exception (every validation error) aborts.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_odr_violation=0:alloc_dealloc_mismatch=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONPATH="$WORK"
python -c "import torchflip._C as C, sys; print('sanitized build loaded:', C.__file__)"
if [ "$#" -eq 0 ]; then
  set -- tests/ops tests/nn tests/test_signal.py tests/test_signal_fir.py tests/test_signal_integer.py
fi
echo "== pytest $* under ASan+UBSan"
python -m pytest -q -p no:cacheprovider -x "$@"
