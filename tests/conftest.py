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
