"""Cost of installing and importing torchflip.

* Build: the repository's tracked files (``git ls-files``, so no build
  directory, no compiled library and no compiler cache of the working tree)
  are copied to a temporary directory, and ``pip wheel --no-build-isolation
  --no-deps --no-index`` builds there: the compile and packaging work of
  ``pip install --no-build-isolation .`` from a clean checkout, without
  installing into the running environment.
* Import: in fresh interpreters, the time ``import torchflip`` takes once
  ``import torch`` has completed, i.e. what torchflip adds to a program that
  already uses torch (loading the extension, registering operators).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_IMPORT_TORCH = ("import time; start = time.perf_counter(); import torch; "
                 "print(time.perf_counter() - start)")
_IMPORT_TORCHFLIP = ("import time, torch; start = time.perf_counter(); import torchflip; "
                     "print(time.perf_counter() - start)")


def _copy_tracked_files(destination: Path) -> None:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def build_seconds() -> tuple[float, float]:
    """(wall-clock, CPU) seconds of a wheel build from a clean copy of the
    tracked files; CPU time over wall time shows how parallel the compile was."""
    with tempfile.TemporaryDirectory(prefix="torchflip-build-") as tmp:
        source, wheels = Path(tmp) / "src", Path(tmp) / "wheels"
        _copy_tracked_files(source)
        command = [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                   "--no-index", "--wheel-dir", str(wheels), str(source)]
        cpu_before = _children_cpu_seconds()
        start = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        cpu_seconds = _children_cpu_seconds() - cpu_before
        if completed.returncode != 0:
            raise RuntimeError("wheel build failed:\n" + completed.stdout[-3000:]
                               + completed.stderr[-3000:])
        return seconds, cpu_seconds


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_python(code: str) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{completed.stderr[-3000:]}")
    return float(completed.stdout.strip().splitlines()[-1])


def import_seconds(runs: int = 7) -> tuple[float, float]:
    """Medians over ``runs`` fresh interpreters, alternated, of (seconds of
    ``import torch``, seconds ``import torchflip`` adds after it)."""
    torch_times, added_times = [], []
    _run_python(_IMPORT_TORCHFLIP)  # warm the file system cache for both
    for _ in range(runs):
        torch_times.append(_run_python(_IMPORT_TORCH))
        added_times.append(_run_python(_IMPORT_TORCHFLIP))
    return statistics.median(torch_times), statistics.median(added_times)
