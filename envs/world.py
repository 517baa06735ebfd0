"""Batched world dynamics: initial states, switching, one step, and state features.

Every function here is pure numpy over ``N`` worlds of ``K`` objects; the single env is the
``N = 1`` case of the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import KINDS, WorldConfig, kind_id
from .mechanisms import MECHANISMS, SIZE_MAX, SIZE_MIN, SPEED_MAX, Noise, Objects, mechanism_id

STATE_FEATURES: tuple[str, ...] = (
    "x", "y", "vx", "vy", "size", "dsize", "hue_cos", "hue_sin",
    *(f"is_{k}" for k in KINDS),
)  # fmt: skip
"""Columns of the ``(K, S)`` state observation."""

_MECHANISM_LIST = list(MECHANISMS.values())
ZONE, AGENT = 0, 1
"""Object indices of the goal zone and the agent in the steer task."""
ZONE_SIZE = 0.1
AGENT_SIZE = 0.06
INIT_DRAWS = 8
"""Uniform draws per object at reset."""


@dataclass
class WorldState:
    """State of N worlds of K objects (arrays ``(N, K, ...)``)."""

    objects: Objects
    kind: np.ndarray  # (N, K) int64 index into KINDS
    mechanism: np.ndarray  # (N, K) int64 index into MECHANISMS
    switchable: np.ndarray  # (N, K) bool: switched by the switching process
    wall: np.ndarray  # (N, K) bool: touched a wall in the last step
    collision: np.ndarray  # (N, K) bool: touched another solid object in the last step

    def take(self, worlds: np.ndarray) -> WorldState:
        """The worlds selected by index or mask."""
        return WorldState(
            Objects(*(a[worlds] for a in self.objects)),
            self.kind[worlds], self.mechanism[worlds], self.switchable[worlds],
            self.wall[worlds], self.collision[worlds],
        )  # fmt: skip

    def put(self, worlds: np.ndarray, other: WorldState) -> None:
        """Overwrite the selected worlds with ``other`` in place."""
        for dst, src in zip(self.objects, other.objects):
            dst[worlds] = src
        for name in ("kind", "mechanism", "switchable", "wall", "collision"):
            getattr(self, name)[worlds] = getattr(other, name)


def choose_allowed(allowed: np.ndarray, exclude: np.ndarray | None, u: np.ndarray) -> np.ndarray:
    """Pick a mechanism uniformly from each object's allowed set.

    Args:
        allowed: ``(..., M)`` bool allowed mechanisms per object.
        exclude: ``(...)`` mechanism to avoid when another is allowed, or None.
        u: ``(...)`` uniforms in [0, 1).
    Returns: ``(...)`` int64 mechanism ids.
    """
    cand = allowed.copy()
    if exclude is not None:
        others = cand & (np.arange(cand.shape[-1]) != exclude[..., None])
        cand = np.where(others.any(-1, keepdims=True), others, cand)
    count = cand.sum(-1)
    pick = np.minimum((u * count).astype(np.int64), count - 1)
    return np.argmax(np.cumsum(cand, -1) > pick[..., None], axis=-1)


def initial_state(config: WorldConfig, u: np.ndarray) -> WorldState:
    """Initial states from uniforms ``u: (N, K, INIT_DRAWS)`` (K = ``config.total_objects``)."""
    n, k, _ = u.shape
    kinds = config.kind_ids[np.minimum((u[..., 0] * len(config.kinds)).astype(int), len(config.kinds) - 1)]
    size = 0.05 + 0.04 * u[..., 1]
    pos = 0.15 + 0.7 * u[..., 2:4]
    angle = 2 * np.pi * u[..., 4]
    vel = 0.03 * np.stack([np.cos(angle), np.sin(angle)], -1)
    hue = u[..., 5]
    mech = choose_allowed(config.allowed_matrix[kinds], None, u[..., 6])
    solid = np.ones((n, k), dtype=bool)
    switchable = np.ones((n, k), dtype=bool)
    if config.task == "steer":
        kinds[:, ZONE], kinds[:, AGENT] = kind_id("zone"), kind_id("square")
        size[:, ZONE], size[:, AGENT] = ZONE_SIZE, AGENT_SIZE
        hue[:, ZONE], hue[:, AGENT] = 0.0, 0.0
        vel[:, :2] = 0.0
        mech[:, :2] = mechanism_id("still")
        solid[:, ZONE] = False
        switchable[:, :2] = False
        # The agent starts 0.4 from the zone, mirrored through it if that leaves the arena.
        offset = 0.4 * np.stack([np.cos(angle[:, AGENT]), np.sin(angle[:, AGENT])], -1)
        ahead = pos[:, ZONE] + offset
        inside = np.all((ahead > 0.1) & (ahead < 0.9), -1, keepdims=True)
        pos[:, AGENT] = np.clip(np.where(inside, ahead, pos[:, ZONE] - offset), 0.1, 0.9)
    objects = Objects(pos, vel, size, np.zeros((n, k)), hue, solid)
    false = np.zeros((n, k), dtype=bool)
    return WorldState(objects, kinds.astype(np.int64), mech.astype(np.int64), switchable, false, false.copy())


def switch(config: WorldConfig, state: WorldState, u: np.ndarray, forced: np.ndarray | None) -> np.ndarray:
    """The mechanism of each object for the coming step.

    Args:
        u: ``(N, K, 2)`` uniforms: switch test and choice.
        forced: ``(N, K)`` mechanism ids set by interventions, -1 where none.
    Returns: ``(N, K)`` int64 mechanism ids.
    """
    trigger = u[..., 0] < config.switch_prob
    if "wall" in config.switch_on:
        trigger |= state.wall
    if "collision" in config.switch_on:
        trigger |= state.collision
    trigger &= state.switchable
    mech = state.mechanism
    if trigger.any():
        new = choose_allowed(config.allowed_matrix[state.kind], mech, u[..., 1])
        mech = np.where(trigger, new, mech)
    if forced is not None:
        mech = np.where(forced >= 0, forced, mech)
    return mech


def touching(objects: Objects) -> np.ndarray:
    """``(N, K)`` bool: overlaps another solid object."""
    dist = np.linalg.norm(objects.pos[:, None] - objects.pos[:, :, None], axis=-1)
    pair = dist < objects.size[:, :, None] + objects.size[:, None, :]
    pair &= objects.solid[:, :, None] & objects.solid[:, None, :]
    pair &= ~np.eye(pair.shape[-1], dtype=bool)
    return pair.any(-1)


def step(config: WorldConfig, state: WorldState, noise: Noise, forced: np.ndarray | None = None) -> WorldState:
    """One step of N worlds: switch mechanisms, then apply each object's mechanism."""
    mech = switch(config, state, noise.uniform, forced)
    present = np.unique(mech)
    objects = state.objects
    pos, vel = objects.pos.copy(), objects.vel.copy()
    size, dsize, hue = objects.size.copy(), objects.dsize.copy(), objects.hue.copy()
    for m in present:  # mechanisms in use (at most M); each call is batched over all objects
        out = _MECHANISM_LIST[m](objects, noise)
        sel = mech == m
        pos[sel], vel[sel], size[sel], dsize[sel], hue[sel] = (
            out.pos[sel], out.vel[sel], out.size[sel], out.dsize[sel], out.hue[sel],
        )  # fmt: skip
    new = settle(Objects(pos, vel, size, dsize, hue, objects.solid))
    return replace(state, objects=new, mechanism=mech, wall=at_wall(new), collision=touching(new))


def at_wall(objects: Objects, tol: float = 1e-9) -> np.ndarray:
    """``(N, K)`` bool: touches a wall of the arena (within ``tol``)."""
    lo = objects.size[..., None]
    return np.any((objects.pos <= lo + tol) | (objects.pos >= 1.0 - lo - tol), -1)


def settle(objects: Objects) -> Objects:
    """The bounds every object keeps after a step, whatever drove it: radius in
    ``[SIZE_MIN, SIZE_MAX]``, centre inside the arena, ``|vx|, |vy| <= SPEED_MAX``. Arrays ``(N, K, ...)``."""
    size = np.clip(objects.size, SIZE_MIN, SIZE_MAX)
    lo = size[..., None]
    return objects._replace(
        pos=np.clip(objects.pos, lo, 1.0 - lo), vel=np.clip(objects.vel, -SPEED_MAX, SPEED_MAX), size=size
    )


def object_features(objects: Objects) -> np.ndarray:
    """``(N, K, 8)`` float64 dynamic features: the columns of :data:`STATE_FEATURES` before the kind."""
    angle = 2 * np.pi * objects.hue
    cols = [
        objects.pos,
        objects.vel,
        objects.size[..., None],
        objects.dsize[..., None],
        np.cos(angle)[..., None],
        np.sin(angle)[..., None],
    ]
    return np.concatenate(cols, -1)


def state_features(state: WorldState) -> np.ndarray:
    """``(N, K, S)`` float32 observation features, columns as in :data:`STATE_FEATURES`."""
    onehot = np.eye(len(KINDS))[state.kind]
    return np.concatenate([object_features(state.objects), onehot], -1).astype(np.float32)


FEATURE_TOL = 1e-6
"""How far float32 features (spacing up to 6e-8 in [0, 1]) may sit from the float64 state they came from."""


def state_from_features(features: np.ndarray, mechanism: np.ndarray) -> WorldState:
    """The world state behind observed features: the inverse of :func:`state_features` for
    ordinary (solid, switchable) objects.

    Args:
        features: ``(N, K, S)`` columns as in :data:`STATE_FEATURES`.
        mechanism: ``(N, K)`` the mechanism ids that drove the last step (``info["mechanism"]``).
    Returns: a state that :func:`step` advances as the world would, with the wall and collision
        flags recomputed from the objects.
    """
    if features.ndim != 3 or features.shape[-1] != len(STATE_FEATURES):
        raise ValueError(f"features must be (N, K, {len(STATE_FEATURES)}), got {features.shape}")
    if mechanism.shape != features.shape[:2]:
        raise ValueError(f"mechanism must be (N, K) = {features.shape[:2]}, got {mechanism.shape}")
    f = features.astype(np.float64)
    hue = (np.arctan2(f[..., 7], f[..., 6]) / (2 * np.pi)) % 1.0
    objects = Objects(f[..., 0:2], f[..., 2:4], f[..., 4], f[..., 5], hue, np.ones(f.shape[:2], bool))
    kind = f[..., 8:].argmax(-1).astype(np.int64)
    switchable = np.ones(f.shape[:2], bool)
    wall = at_wall(objects, tol=FEATURE_TOL)  # a float32 position next to a wall may miss it by a float32 step
    return WorldState(objects, kind, mechanism.astype(np.int64), switchable, wall, touching(objects))


def state_bounds(num_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """Low and high ``(K, S)`` bounds of :func:`state_features`."""
    low = np.array([0, 0, -SPEED_MAX, -SPEED_MAX, SIZE_MIN, -SIZE_MAX, -1, -1] + [0] * len(KINDS), np.float32)
    high = np.array([1, 1, SPEED_MAX, SPEED_MAX, SIZE_MAX, SIZE_MAX, 1, 1] + [1] * len(KINDS), np.float32)
    return np.tile(low, (num_objects, 1)), np.tile(high, (num_objects, 1))
