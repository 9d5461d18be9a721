"""Shared test configuration: deterministic random tensors and hypothesis
profiles.

Profiles (select with HYPOTHESIS_PROFILE=<name>): ``default`` keeps the suite
quick on a small shared CPU; ``thorough`` draws many more cases.
"""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)

# tests/cpp holds scripts run by tests/test_cmake_build.py with arguments;
# importing them (as --doctest-modules would) runs them without any.
collect_ignore_glob = ["cpp/*.py"]

settings.register_profile(
    "default", max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile(
    "thorough", max_examples=500, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _seed_torch():
    # Every test draws its tensors from the same seed, so a failure reproduces.
    torch.manual_seed(0)


@pytest.fixture(params=[1, 3], ids=lambda n: f"threads{n}")
def threads(request):
    """torch's intra-op thread count for the test, 1 and then 3: with 3 the
    parallel loops of torchflip's kernels split their work between threads
    (more threads than cores is fine for the results)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(previous)
