"""Shared pytest setup: headless pygame and a small, deterministic Hypothesis profile.

The SDL variables must be set before anything imports pygame, so this file sets them at import
time (pytest imports ``conftest.py`` before the test modules).
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from hypothesis import HealthCheck, settings  # noqa: E402

# CI runs on 2 cores: keep example counts small and never fail on timing.
settings.register_profile(
    "vim_world",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
settings.register_profile("thorough", parent=settings.get_profile("vim_world"), max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "vim_world"))
