"""The simulator behind both env classes: N worlds stepped together with batched dynamics.

The single env is the ``N = 1`` case: it hands its ``np_random`` to a ``Simulator`` of one world,
so the native vector env and N single envs agree step for step by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import raster, world
from .config import STEER_ACTIONS, WorldConfig
from .mechanisms import mechanism_id
from .streams import BlockStreams
from .world import AGENT, INIT_DRAWS, ZONE, WorldState

STEER_PROGRESS_SCALE = 10.0
STEER_STEP_COST = 0.01
STEER_COLLISION_COST = 0.5
STEER_SUCCESS_REWARD = 1.0


# The steer task's rules, in one place. Written with operators only (indexing, arithmetic,
# comparison), so the same formula runs on numpy arrays here and on torch tensors in planners
# that score decoded imagined states.


def goal_distance(positions):
    """Distance from the agent's centre to the goal zone's: ``(..., K, >= 2)`` positions (state
    features start with x, y) -> ``(...)``."""
    offset = positions[..., AGENT, :2] - positions[..., ZONE, :2]
    return (offset[..., 0] ** 2 + offset[..., 1] ** 2) ** 0.5


def steer_success(distance):
    """The episode is won when the agent's centre is within ``ZONE_SIZE`` of the goal's: bool ``(...)``."""
    return distance < world.ZONE_SIZE


def steer_reward(distance_before, distance_after, bumped=False):
    """``10 * (d_before - d_after) - 0.01 - 0.5 * bumped + 1[success after]`` -> ``(...)``.

    ``bumped``: the agent collided at this step and not at the previous one (the env knows it;
    planners on decoded states leave it False).
    """
    return (
        STEER_PROGRESS_SCALE * (distance_before - distance_after)
        - STEER_STEP_COST
        - STEER_COLLISION_COST * bumped
        + STEER_SUCCESS_REWARD * steer_success(distance_after)
    )


class Simulator:
    """N worlds with their own random streams.

    Args:
        config: the world's configuration.
        generators: one generator per world; world ``i`` draws only from ``generators[i]``.
    """

    def __init__(self, config: WorldConfig, generators: list[np.random.Generator]):
        self.config = config
        self.num_worlds = len(generators)
        self.generators = generators
        self.streams = BlockStreams(generators, config.total_objects)
        self.state: WorldState | None = None
        k = config.num_objects
        self._mech_ids = np.array([mechanism_id(m) for m in config.mechanisms])
        self._no_op = k  # passive task: intervention on object index K means "none"
        self._steer_ids = np.array([mechanism_id(m) for m in STEER_ACTIONS])

    # ------------------------------------------------------------------ reset and step

    def reset(self, worlds: np.ndarray) -> None:
        """Draw new initial states for ``worlds`` (bool ``(N,)``) from their generators."""
        idx = np.flatnonzero(worlds)
        k = self.config.total_objects
        u = np.stack([self.generators[i].random((k, INIT_DRAWS)) for i in idx])
        fresh = world.initial_state(self.config, u)
        if self.state is None:
            assert idx.size == self.num_worlds, "the first reset must reset every world"
            self.state = fresh
        else:
            self.state.put(idx, fresh)
        self.streams.restart(idx)

    def step(self, actions: np.ndarray, worlds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance ``worlds`` (bool ``(N,)``) by one step under ``actions``; the others keep
        their state.

        Args:
            actions: ``(N,)`` steer actions, or ``(N, 2)`` passive interventions (object, mechanism).
        Returns: rewards ``(N,)`` float64 and terminations ``(N,)`` bool.
        """
        assert self.state is not None
        before = self.state
        noise = self.streams.draw(worlds)
        after = world.step(self.config, before, noise, self._forcing(actions))
        keep = ~worlds
        if keep.any():
            after.put(keep, before.take(keep))
        self.state = after
        if self.config.task != "steer":
            return np.zeros(self.num_worlds), np.zeros(self.num_worlds, bool)
        reward, success = self._steer_reward(before, after)
        return np.where(worlds, reward, 0.0), success & worlds

    def _forcing(self, actions: np.ndarray) -> np.ndarray:
        k = self.config.total_objects
        forced = np.full((self.num_worlds, k), -1, np.int64)
        if self.config.task == "steer":
            forced[:, AGENT] = self._steer_ids[actions]
        else:
            target, mech = actions[:, 0], actions[:, 1]
            hit = target < self._no_op
            forced[np.flatnonzero(hit), target[hit]] = self._mech_ids[mech[hit]]
        return forced

    # ------------------------------------------------------------------ task

    def distance_to_goal(self, state: WorldState | None = None) -> np.ndarray:
        """``(N,)`` distance from the agent's centre to the goal zone's (steer task)."""
        return goal_distance((state or self.state).objects.pos)

    def _steer_reward(self, before: WorldState, after: WorldState) -> tuple[np.ndarray, np.ndarray]:
        d0, d1 = self.distance_to_goal(before), self.distance_to_goal(after)
        bumped = after.collision[:, AGENT] & ~before.collision[:, AGENT]
        return steer_reward(d0, d1, bumped), steer_success(d1)

    # ------------------------------------------------------------------ observation

    def frames(self, res: int) -> np.ndarray:
        """``(N, res, res, 3)`` uint8 frames of the current states."""
        o = self.state.objects
        return raster.render(o.pos, o.size, o.hue, self.state.kind, res)

    def observation(self) -> Any:
        """Batched observation in the configured mode: ``(N, H, W, 3)`` uint8, ``(N, K, S)``
        float32, or a dict of both."""
        mode = self.config.obs_mode
        if mode == "state":
            return world.state_features(self.state)
        pixels = self.frames(self.config.obs_size)
        if mode == "pixels":
            return pixels
        return {"pixels": pixels, "state": world.state_features(self.state)}

    def info(self) -> dict[str, np.ndarray]:
        """Batched ground truth: mechanism ids, kinds and state features ``(N, K, ...)``,
        visible masks ``(N, K, H, W)`` on request, and goal distance and success for steer."""
        s = self.state
        info: dict[str, np.ndarray] = {
            "mechanism": s.mechanism.copy(),
            "kind": s.kind.copy(),
            "state": world.state_features(s),
        }
        if self.config.masks:
            o = s.objects
            info["masks"] = raster.visible_masks(o.pos, o.size, s.kind, self.config.obs_size)
        if self.config.task == "steer":
            distance = self.distance_to_goal()
            info["distance"] = distance
            info["success"] = steer_success(distance)
        return info
