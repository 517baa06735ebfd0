"""The mechanism library: independently parametrized, batched transition rules.

A mechanism is a pure numpy function ``fn(objects, noise, **params) -> Objects`` that computes the
next state of *every* object as if that mechanism drove it. Arrays are batched ``(N, K, ...)``
over N worlds and K objects; the world then keeps, for each object, the output of the mechanism
that currently drives it. A mechanism writes only its own object's state; interaction mechanisms
also *read* the other objects of the same world (axis 1).

Adding a mechanism is adding one function and one entry to :data:`MECHANISMS`.

Units: the arena is the unit square, ``x`` grows to the right and ``y`` grows downwards (image
convention); one call is one environment step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

SIZE_MIN, SIZE_MAX = 0.03, 0.15
"""Bounds on an object's radius (arena units)."""
SPEED_MAX = 0.2
"""Bound on |vx|, |vy| per step."""


class Objects(NamedTuple):
    """Batched object states; every field is ``(N, K)`` or ``(N, K, 2)``.

    Attributes:
        pos: ``(N, K, 2)`` centre, in ``[size, 1 - size]``.
        vel: ``(N, K, 2)`` displacement during the last step.
        size: ``(N, K)`` radius.
        dsize: ``(N, K)`` change of radius during the last step (size pulsing direction).
        hue: ``(N, K)`` colour hue in ``[0, 1)``.
        solid: ``(N, K)`` bool: takes part in collisions and is seen by interaction mechanisms.
    """

    pos: np.ndarray
    vel: np.ndarray
    size: np.ndarray
    dsize: np.ndarray
    hue: np.ndarray
    solid: np.ndarray


class Noise(NamedTuple):
    """Per-step random draws, ``(N, K, 2)`` each; drawn whatever the mechanisms, so that one
    object's randomness never depends on the others'."""

    normal: np.ndarray
    uniform: np.ndarray


MechanismFn = Callable[..., Objects]


@dataclass(frozen=True)
class Mechanism:
    """A registry entry: a batched function and its parameters."""

    name: str
    fn: MechanismFn
    params: dict[str, Any] = field(default_factory=dict)
    category: str = "motion"  # "motion" | "appearance" | "interaction"
    interacts: bool = False  # reads other objects
    stochastic: bool = False

    def __call__(self, objects: Objects, noise: Noise) -> Objects:
        return self.fn(objects, noise, **self.params)


# --------------------------------------------------------------------------- helpers


def _reflect(pos: np.ndarray, vel: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elastic reflection off the walls of the unit square. ``pos, vel: (N, K, 2)``."""
    lo = size[..., None]
    hi = 1.0 - lo
    below, above = pos < lo, pos > hi
    pos = np.where(below, 2 * lo - pos, np.where(above, 2 * hi - pos, pos))
    vel = np.where(below | above, -vel, vel)
    return pos, vel


def _with_speed(vel: np.ndarray, speed: float) -> np.ndarray:
    """Rescale ``(N, K, 2)`` velocities to ``speed``; a zero velocity becomes the diagonal."""
    norm = np.linalg.norm(vel, axis=-1, keepdims=True)
    unit = np.where(norm > 1e-9, vel / np.maximum(norm, 1e-9), np.sqrt(0.5))
    return unit * speed


def _nearest_other(objects: Objects) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each object, the nearest *other solid* object.

    Returns: offset to it ``(N, K, 2)``, distance ``(N, K)``, and whether one exists ``(N, K)``.
    """
    diff = objects.pos[:, None, :, :] - objects.pos[:, :, None, :]  # (N, K, K, 2): j - i
    dist = np.linalg.norm(diff, axis=-1)
    k = dist.shape[-1]
    usable = objects.solid[:, None, :] & ~np.eye(k, dtype=bool)[None]
    dist_masked = np.where(usable, dist, np.inf)
    j = np.argmin(dist_masked, axis=-1)  # (N, K)
    best = np.take_along_axis(dist_masked, j[..., None], axis=-1)[..., 0]
    offset = np.take_along_axis(diff, j[..., None, None], axis=2)[:, :, 0]
    return offset, best, np.isfinite(best)


def _moved(objects: Objects, vel: np.ndarray) -> Objects:
    return objects._replace(pos=objects.pos + vel, vel=vel, dsize=np.zeros_like(objects.dsize))


# --------------------------------------------------------------------------- motion


def still(objects: Objects, noise: Noise) -> Objects:
    """Nothing moves or changes."""
    return _moved(objects, np.zeros_like(objects.vel))


def drift(objects: Objects, noise: Noise, direction: tuple[float, float], speed: float) -> Objects:
    """Constant velocity ``speed * direction``; stops against a wall."""
    d = np.asarray(direction, dtype=np.float64)
    vel = np.broadcast_to(d / np.linalg.norm(d) * speed, objects.vel.shape).copy()
    return _moved(objects, vel)


def bounce(objects: Objects, noise: Noise, speed: float) -> Objects:
    """Straight motion at ``speed`` with elastic reflection off the walls."""
    vel = _with_speed(objects.vel, speed)
    pos, vel = _reflect(objects.pos + vel, vel, objects.size)
    return objects._replace(pos=pos, vel=vel, dsize=np.zeros_like(objects.dsize))


def gravity(objects: Objects, noise: Noise, g: float, restitution: float) -> Objects:
    """Falls with acceleration ``g``; bounces off the floor losing ``1 - restitution`` of speed."""
    vel = objects.vel + np.array([0.0, g])
    new = objects.pos + vel
    pos, vel_reflected = _reflect(new, vel, objects.size)
    floor = new[..., 1] > 1.0 - objects.size
    vy = np.where(floor, vel_reflected[..., 1] * restitution, vel_reflected[..., 1])
    vel = np.stack([vel_reflected[..., 0], vy], axis=-1)
    return objects._replace(pos=pos, vel=vel, dsize=np.zeros_like(objects.dsize))


def orbit(objects: Objects, noise: Noise, center: tuple[float, float], angular_speed: float) -> Objects:
    """Rotates by ``angular_speed`` radians around ``center``."""
    c = np.asarray(center)
    rel = objects.pos - c
    cos, sin = np.cos(angular_speed), np.sin(angular_speed)
    rot = np.stack([cos * rel[..., 0] - sin * rel[..., 1], sin * rel[..., 0] + cos * rel[..., 1]], -1)
    return _moved(objects, rot + c - objects.pos)


def random_walk(objects: Objects, noise: Noise, sigma: float) -> Objects:
    """Gaussian steps of standard deviation ``sigma`` per axis, reflected at the walls."""
    vel = sigma * noise.normal
    pos, vel = _reflect(objects.pos + vel, vel, objects.size)
    return objects._replace(pos=pos, vel=vel, dsize=np.zeros_like(objects.dsize))


# --------------------------------------------------------------------------- appearance


def color_cycle(objects: Objects, noise: Noise, rate: float) -> Objects:
    """Hue advances by ``rate`` per step (cyclic); the object stays in place."""
    out = still(objects, noise)
    return out._replace(hue=np.mod(objects.hue + rate, 1.0))


def size_pulse(objects: Objects, noise: Noise, rate: float, low: float, high: float) -> Objects:
    """Radius grows and shrinks by ``rate`` per step between ``low`` and ``high``."""
    direction = np.where(objects.dsize < 0, -1.0, 1.0)
    size = objects.size + direction * rate
    flip = (size > high) | (size < low)
    direction = np.where(flip, -direction, direction)
    size = np.clip(np.where(flip, objects.size + direction * rate, size), low, high)
    out = still(objects, noise)
    return out._replace(size=size, dsize=size - objects.size)


def size_oscillate(objects: Objects, noise: Noise, omega: float, mid: float) -> Objects:
    """Radius oscillates harmonically around ``mid`` at angular frequency ``omega`` per step.

    The law reads the radius and its last change (``dsize``): ``dsize' = dsize - 4 sin^2(omega / 2)
    (size - mid)``, ``size' = size + dsize'``, the exact discretisation of a harmonic oscillator
    (the amplitude is kept). Unlike :func:`size_pulse`, which is inertia in ``(size, dsize)`` between
    its bounds, the change of ``dsize`` depends on the radius, so no other mechanism's law matches
    it (``envs/identifiability.py``)."""
    dsize = objects.dsize - 4.0 * np.sin(omega / 2) ** 2 * (objects.size - mid)
    out = still(objects, noise)
    return out._replace(size=objects.size + dsize, dsize=dsize)


# --------------------------------------------------------------------------- interaction


def follow(objects: Objects, noise: Noise, speed: float) -> Objects:
    """Moves towards the nearest other solid object at ``speed`` until touching it."""
    offset, dist, found = _nearest_other(objects)
    gap = np.maximum(dist - objects.size - 1e-3, 0.0)  # stop before overlapping
    step = np.where(found, np.minimum(speed, gap), 0.0)
    unit = offset / np.where(found & (dist > 1e-9), dist, 1.0)[..., None]
    return _moved(objects, unit * step[..., None])


def flee(objects: Objects, noise: Noise, speed: float) -> Objects:
    """Moves away from the nearest other solid object at ``speed`` (stops against walls)."""
    offset, dist, found = _nearest_other(objects)
    unit = offset / np.where(found & (dist > 1e-9), dist, 1.0)[..., None]
    return _moved(objects, -unit * np.where(found, speed, 0.0)[..., None])


def swap_on_collision(objects: Objects, noise: Noise, speed: float) -> Objects:
    """Bounces at ``speed``; on touching another solid object, takes that object's heading
    (two such objects that meet swap headings)."""
    diff = objects.pos[:, None, :, :] - objects.pos[:, :, None, :]
    dist = np.linalg.norm(diff, axis=-1)
    k = dist.shape[-1]
    touching = (
        (dist < objects.size[:, :, None] + objects.size[:, None, :])
        & objects.solid[:, None, :]
        & ~np.eye(k, dtype=bool)[None]
    )
    hit = touching.any(-1)
    j = np.argmax(touching, axis=-1)
    other_vel = np.take_along_axis(objects.vel, j[..., None].repeat(2, -1), axis=1)
    vel = _with_speed(np.where(hit[..., None], other_vel, objects.vel), speed)
    pos, vel = _reflect(objects.pos + vel, vel, objects.size)
    return objects._replace(pos=pos, vel=vel, dsize=np.zeros_like(objects.dsize))


def attract(objects: Objects, noise: Noise, stiffness: float, damping: float) -> Objects:
    """Pulled towards the nearest other solid object by a spring: ``v' = damping * v + stiffness
    * (x_other - x)``, ``x' = x + v'``, reflected at the walls (``|v|`` capped at ``SPEED_MAX``).

    The pull turns the heading every step by an amount set by where the other object is, which
    the object's own state does not tell: a module that reads only its object cannot predict it
    (the test of n-ary modules, docs/model.md), unlike :func:`follow`, which keeps its heading."""
    offset, _, found = _nearest_other(objects)
    vel = np.clip(damping * objects.vel + stiffness * np.where(found[..., None], offset, 0.0), -SPEED_MAX, SPEED_MAX)
    pos, vel = _reflect(objects.pos + vel, vel, objects.size)
    return objects._replace(pos=pos, vel=vel, dsize=np.zeros_like(objects.dsize))


# --------------------------------------------------------------------------- registry

_DRIFT = 0.03

MECHANISMS: dict[str, Mechanism] = {
    m.name: m
    for m in [
        Mechanism("still", still),
        Mechanism("drift_right", drift, {"direction": (1.0, 0.0), "speed": _DRIFT}),
        Mechanism("drift_left", drift, {"direction": (-1.0, 0.0), "speed": _DRIFT}),
        Mechanism("drift_up", drift, {"direction": (0.0, -1.0), "speed": _DRIFT}),
        Mechanism("drift_down", drift, {"direction": (0.0, 1.0), "speed": _DRIFT}),
        Mechanism("bounce", bounce, {"speed": 0.04}),
        Mechanism("gravity", gravity, {"g": 0.004, "restitution": 0.85}),
        Mechanism("orbit", orbit, {"center": (0.5, 0.5), "angular_speed": 0.12}),
        Mechanism("random_walk", random_walk, {"sigma": 0.02}, stochastic=True),
        Mechanism("color_cycle", color_cycle, {"rate": 0.06}, category="appearance"),
        Mechanism(
            "size_pulse",
            size_pulse,
            {"rate": 0.006, "low": 0.04, "high": 0.11},
            category="appearance",
        ),
        Mechanism("follow", follow, {"speed": 0.025}, category="interaction", interacts=True),
        Mechanism("flee", flee, {"speed": 0.025}, category="interaction", interacts=True),
        Mechanism(
            "swap_on_collision",
            swap_on_collision,
            {"speed": 0.04},
            category="interaction",
            interacts=True,
        ),
        # Added with the v1 worlds (ids above keep their values): laws that no other mechanism shares.
        Mechanism("size_oscillate", size_oscillate, {"omega": 0.6, "mid": 0.07}, category="appearance"),
        Mechanism("color_cycle_back", color_cycle, {"rate": -0.1}, category="appearance"),
        # Added with Interact-v1: an interaction that turns the heading every step.
        Mechanism("attract", attract, {"stiffness": 0.02, "damping": 0.99}, category="interaction", interacts=True),
    ]
}
"""Every mechanism by name. Mechanism ids in observations and ``info`` index this order."""

MECHANISM_NAMES: tuple[str, ...] = tuple(MECHANISMS)


def mechanism_id(name: str) -> int:
    """The id of mechanism ``name``; raises ``ValueError`` naming the known ones."""
    try:
        return MECHANISM_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown mechanism {name!r}; expected one of {list(MECHANISM_NAMES)}") from None
