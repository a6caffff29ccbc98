"""Test-wide settings: offscreen Qt, deterministic hypothesis, a seeded rng fixture."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Deterministic: the same examples on every run, no deadline flakiness on a loaded 2-core machine.
settings.register_profile(
    "rbdm", derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("rbdm")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator; tests draw all randomness from it."""
    return np.random.default_rng(20200101)
