"""The registered env ids and their compositional splits.

``-v1`` passive worlds replace ``-v0`` ones whose mechanisms were not identifiable (three of six
followed one law, inertia; docs/environments.md, "Identifiability"). The ``-v0`` ids keep their
dynamics bit for bit; Gymnasium's ``make`` warns that they are out of date.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

NAMESPACE = "VimWorld"

PASSIVE_MECHANISMS = ("still", "bounce", "gravity", "orbit", "color_cycle", "size_pulse")
HELDOUT_PAIRS: dict[str, tuple[str, ...]] = {
    "circle": ("still", "orbit"),
    "square": ("bounce", "color_cycle"),
    "triangle": ("gravity", "size_pulse"),
    "diamond": ("orbit", "still"),
}
"""(kind, mechanism) pairs never seen in training: two per kind; every mechanism is still seen
with at least two other kinds."""
TRAIN_PAIRS: dict[str, tuple[str, ...]] = {
    kind: tuple(m for m in PASSIVE_MECHANISMS if m not in held) for kind, held in HELDOUT_PAIRS.items()
}

PASSIVE_MECHANISMS_V1 = ("still", "gravity", "random_walk", "color_cycle", "size_oscillate", "color_cycle_back")
"""Six mechanisms whose laws differ on the states each visits (``envs/identifiability.py``)."""
HELDOUT_PAIRS_V1: dict[str, tuple[str, ...]] = {
    "circle": ("still", "random_walk"),
    "square": ("color_cycle_back", "color_cycle"),
    "triangle": ("gravity", "size_oscillate"),
    "diamond": ("random_walk", "still"),
}
"""The v0 split with bounce, orbit and size pulse replaced by backward colour cycling, random walk
and size oscillation (orbit rotates the velocity, a law that leaves an object at rest, so it
shares one law with ``still``)."""
TRAIN_PAIRS_V1: dict[str, tuple[str, ...]] = {
    kind: tuple(m for m in PASSIVE_MECHANISMS_V1 if m not in held) for kind, held in HELDOUT_PAIRS_V1.items()
}
INTERACT_MECHANISMS = ("still", "random_walk", "follow", "flee", "swap_on_collision")
INTERACT_MECHANISMS_V1 = ("still", "random_walk", "attract", "flee", "color_cycle")
"""Identifiable (``envs/identifiability.py``), and with ``attract``, whose pull towards the nearest
object turns the heading every step, so its objects' next states depend on the other objects."""


def _passive_family(version: int, mechanisms: tuple[str, ...], train: dict, heldout: dict, note: str = "") -> dict:
    """The three passive ids of one version (training pairs, held-out pairs, twice the objects);
    ``note`` qualifies the mechanisms in the docs."""

    def spec(num_objects: int, allowed: dict, doc: str) -> dict[str, Any]:
        kwargs = dict(num_objects=num_objects, mechanisms=mechanisms, allowed=allowed, switch_prob=0.05)
        return dict(max_episode_steps=100, kwargs=kwargs, doc=doc)

    name = f"Passive-v{version}"
    return {
        name: spec(4, train, f"World-model training videos: 4 objects, 6 {note}mechanisms on the training pairs, sticky switching."),
        f"PassiveHeldout-v{version}": spec(4, heldout, f"Out of distribution: only the held-out (kind, mechanism) pairs of {name}."),
        f"PassiveMany-v{version}": spec(8, train, f"Out of distribution: 8 objects (twice as many as in training), {name}'s training pairs."),
    }  # fmt: skip


ENV_SPECS: dict[str, dict[str, Any]] = {
    **_passive_family(0, PASSIVE_MECHANISMS, TRAIN_PAIRS, HELDOUT_PAIRS),
    **_passive_family(1, PASSIVE_MECHANISMS_V1, TRAIN_PAIRS_V1, HELDOUT_PAIRS_V1, note="identifiable "),
    "Interact-v0": dict(
        max_episode_steps=100,
        kwargs=dict(num_objects=4, mechanisms=INTERACT_MECHANISMS, switch_prob=0.02, switch_on=("wall", "collision")),
        doc="Interaction mechanisms (follow, flee, swap on collision, random walk); event-triggered switching.",
    ),
    "Interact-v1": dict(
        max_episode_steps=100,
        kwargs=dict(num_objects=4, mechanisms=INTERACT_MECHANISMS_V1, switch_prob=0.05),
        doc="Interactions that turn the heading (a spring towards the nearest object) and flee, beside still, random walk and colour cycling; sticky switching.",
    ),
    "Steer-v0": dict(
        max_episode_steps=60,
        kwargs=dict(num_objects=2, mechanisms=PASSIVE_MECHANISMS, allowed=TRAIN_PAIRS, switch_prob=0.1, task="steer"),
        doc="Control: drive the agent (white-red square) into the grey goal zone; 2 distractors switch on their own.",
    ),
    "SteerHeldout-v0": dict(
        max_episode_steps=60,
        kwargs=dict(num_objects=3, mechanisms=PASSIVE_MECHANISMS, allowed=HELDOUT_PAIRS, switch_prob=0.1, task="steer"),
        doc="Control, out of distribution: 3 distractors on the held-out pairs.",
    ),
}


SUPERSEDED: dict[str, str] = {
    "Passive-v0": "Passive-v1",
    "PassiveHeldout-v0": "PassiveHeldout-v1",
    "PassiveMany-v0": "PassiveMany-v1",
}
"""Ids kept for published figures and the ids that replace them: Gymnasium's ``make`` warns
(``DeprecationWarning``, "out of date ... upgrading to version `v1`") on an id of which a newer
version is registered."""


def register_envs() -> None:
    """Register every id of :data:`ENV_SPECS` (idempotent)."""
    for name, spec in ENV_SPECS.items():
        env_id = f"{NAMESPACE}/{name}"
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="vim_world.envs.env:MechanismWorldEnv",
            vector_entry_point="vim_world.envs.env:MechanismWorldVectorEnv",
            max_episode_steps=spec["max_episode_steps"],
            kwargs=dict(spec["kwargs"]),
        )


def env_ids() -> list[str]:
    """All registered ids."""
    return [f"{NAMESPACE}/{name}" for name in ENV_SPECS]
