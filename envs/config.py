"""World configuration: objects, mechanisms, switching, observation and task options."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .mechanisms import MECHANISM_NAMES, mechanism_id

KINDS: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "zone")
"""Object kinds (shapes). ``zone`` is the flat, non-solid goal region of control tasks."""
OBJECT_KINDS: tuple[str, ...] = KINDS[:4]
"""The kinds that ordinary objects are drawn from."""

OBS_MODES = ("pixels", "state", "both")
TASKS = ("passive", "steer")
SWITCH_EVENTS = ("wall", "collision")
STEER_ACTIONS: tuple[str, ...] = ("still", "drift_up", "drift_down", "drift_left", "drift_right")
"""Discrete action ``a`` of the steer task sets the agent's mechanism to ``STEER_ACTIONS[a]``."""


def kind_id(name: str) -> int:
    """The id of object kind ``name``; raises ``ValueError`` naming the known ones."""
    if name not in KINDS:
        raise ValueError(f"unknown object kind {name!r}; expected one of {list(KINDS)}")
    return KINDS.index(name)


@dataclass(frozen=True)
class WorldConfig:
    """Everything that defines a world; validated on construction.

    Args:
        num_objects: K, the number of ordinary objects (1 to 16). The steer task adds two more
            objects in front of them: the goal zone (index 0) and the agent (index 1).
        mechanisms: names (see ``MECHANISMS``) that may drive ordinary objects.
        kinds: object kinds ordinary objects are drawn from.
        allowed: optional map kind -> mechanisms allowed for it (the compositional split); kinds
            not named allow every mechanism in ``mechanisms``.
        switch_prob: sticky Markov switching: each step each object switches with this
            probability to another allowed mechanism (0 means fixed per episode).
        switch_on: events that trigger a switch: ``"wall"`` contact and/or ``"collision"``.
        obs_mode: ``"pixels"`` (uint8 H×W×3), ``"state"`` (float32 K×S features) or ``"both"``.
        obs_size: side of the pixel observation, 32 to 256.
        render_size: side of frames from ``render()``, 32 to 1024.
        masks: add per-object visible masks ``(K, H, W)`` to ``info``.
        task: ``"passive"`` (reward 0, never terminates) or ``"steer"`` (bring the agent into the
            goal zone with drift actions; other objects switch on their own).
    """

    num_objects: int = 4
    mechanisms: tuple[str, ...] = ("still", "bounce", "gravity", "orbit", "color_cycle", "size_pulse")
    kinds: tuple[str, ...] = OBJECT_KINDS
    allowed: Mapping[str, Sequence[str]] | None = None
    switch_prob: float = 0.05
    switch_on: tuple[str, ...] = ()
    obs_mode: str = "pixels"
    obs_size: int = 64
    render_size: int = 256
    masks: bool = False
    task: str = "passive"
    _allowed_matrix: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mechanisms", tuple(self.mechanisms))
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "switch_on", tuple(self.switch_on))
        if isinstance(self.num_objects, bool) or not isinstance(self.num_objects, (int, np.integer)):
            raise TypeError(f"num_objects must be an int, got {self.num_objects!r}")
        if not 1 <= self.num_objects <= 16:
            raise ValueError(f"num_objects must be in [1, 16], got {self.num_objects}")
        if not self.mechanisms:
            raise ValueError("mechanisms must name at least one mechanism, got ()")
        for name in self.mechanisms:
            mechanism_id(name)
        if not self.kinds:
            raise ValueError("kinds must name at least one kind, got ()")
        for name in self.kinds:
            if name not in OBJECT_KINDS:
                raise ValueError(f"unknown object kind {name!r}; expected one of {list(OBJECT_KINDS)}")
        if not 0.0 <= float(self.switch_prob) <= 1.0:
            raise ValueError(f"switch_prob must be in [0, 1], got {self.switch_prob}")
        for event in self.switch_on:
            if event not in SWITCH_EVENTS:
                raise ValueError(f"unknown switch event {event!r}; expected a subset of {list(SWITCH_EVENTS)}")
        if self.obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {list(OBS_MODES)}, got {self.obs_mode!r}")
        for name, lo, hi in (("obs_size", 32, 256), ("render_size", 32, 1024)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {value!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        object.__setattr__(self, "_allowed_matrix", self._build_allowed())

    def _build_allowed(self) -> np.ndarray:
        if self.allowed is not None and not isinstance(self.allowed, Mapping):
            raise TypeError(f"allowed must be a mapping kind -> mechanisms or None, got {self.allowed!r}")
        matrix = np.zeros((len(KINDS), len(MECHANISM_NAMES)), dtype=bool)
        default = [mechanism_id(m) for m in self.mechanisms]
        matrix[:, default] = True
        for kind, mechs in (self.allowed or {}).items():
            if kind not in self.kinds:
                raise ValueError(f"allowed names kind {kind!r}, which is not in kinds={list(self.kinds)}")
            if isinstance(mechs, str) or not mechs:
                raise ValueError(f"allowed[{kind!r}] must be a non-empty list of mechanisms, got {mechs!r}")
            for m in mechs:
                if m not in self.mechanisms:
                    raise ValueError(
                        f"allowed[{kind!r}] names {m!r}, which is not in mechanisms={list(self.mechanisms)}"
                    )
            row = np.zeros(len(MECHANISM_NAMES), dtype=bool)
            row[[mechanism_id(m) for m in mechs]] = True
            matrix[kind_id(kind)] = row
        return matrix

    @property
    def allowed_matrix(self) -> np.ndarray:
        """``(len(KINDS), len(MECHANISMS))`` bool: which mechanism may drive which kind."""
        return self._allowed_matrix

    @property
    def total_objects(self) -> int:
        """Objects in the scene: ``num_objects`` plus the goal zone and agent of the steer task."""
        return self.num_objects + (2 if self.task == "steer" else 0)

    @property
    def kind_ids(self) -> np.ndarray:
        return np.array([kind_id(k) for k in self.kinds])


def check_options(options: Mapping[str, Any], extra: Sequence[str] = ("render_mode",)) -> None:
    """TypeError for keyword arguments that are no :class:`WorldConfig` field (nor in ``extra``):
    names the unknown key, a close match if there is one, and every valid key."""
    valid = sorted({f.name for f in fields(WorldConfig) if f.init} | set(extra))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        hints = [f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(key, valid, 1)) else repr(key)
                 for key in unknown]  # fmt: skip
        raise TypeError(f"unknown env option(s) {', '.join(hints)}; valid options: {valid}")
