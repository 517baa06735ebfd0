"""The registered env ids and their compositional splits."""

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
INTERACT_MECHANISMS = ("still", "random_walk", "follow", "flee", "swap_on_collision")

ENV_SPECS: dict[str, dict[str, Any]] = {
    "Passive-v0": dict(
        max_episode_steps=100,
        kwargs=dict(num_objects=4, mechanisms=PASSIVE_MECHANISMS, allowed=TRAIN_PAIRS, switch_prob=0.05),
        doc="World-model training videos: 4 objects, 6 mechanisms on the training pairs, sticky switching.",
    ),
    "PassiveHeldout-v0": dict(
        max_episode_steps=100,
        kwargs=dict(num_objects=4, mechanisms=PASSIVE_MECHANISMS, allowed=HELDOUT_PAIRS, switch_prob=0.05),
        doc="Out of distribution: only the held-out (kind, mechanism) pairs.",
    ),
    "PassiveMany-v0": dict(
        max_episode_steps=100,
        kwargs=dict(num_objects=8, mechanisms=PASSIVE_MECHANISMS, allowed=TRAIN_PAIRS, switch_prob=0.05),
        doc="Out of distribution: 8 objects (twice as many as in training), training pairs.",
    ),
    "Interact-v0": dict(
        max_episode_steps=100,
        kwargs=dict(num_objects=4, mechanisms=INTERACT_MECHANISMS, switch_prob=0.02, switch_on=("wall", "collision")),
        doc="Interaction mechanisms (follow, flee, swap on collision, random walk); event-triggered switching.",
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
