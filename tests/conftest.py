"""Shared pytest setup: headless pygame, reproducible Hypothesis profiles, and a fixed global RNG
state at the start of every test.

The SDL variables must be set before anything imports pygame, so this file sets them at import
time (pytest imports ``conftest.py`` before the test modules).

Hypothesis profiles (``HYPOTHESIS_PROFILE`` picks one; without it, ``ci``):

- ``ci``: derandomized (the same examples on every run and machine, so a failure is never a
  coin toss), no deadline (2 shared cores), and the reproduction blob printed on failure. It is
  the default, so ``bash scripts/test.sh`` and CI (``CI`` set) both run it.
- ``explore``: the same, but random: use it locally to look for new failing inputs.
- ``thorough``: ``ci`` with 300 examples per test.
"""

from __future__ import annotations

import os
import random

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# CI runs on 2 cores: keep example counts small and never fail on timing.
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    print_blob=True,
)
settings.register_profile("explore", parent=settings.get_profile("ci"), derandomize=False)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _fixed_global_rng() -> None:
    """Every test starts from the same global RNG state (``random``, numpy, torch), whichever
    tests ran before it, so that a test selected alone with ``-k`` sees what it sees in the
    whole suite. Tests should still prefer local generators."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
