"""Known task rewards on decoded imagined states, for planning with learnt dynamics.

A planner may score imagined futures with the reward head ``R(z_t, a_t)`` or, when the task's
reward is known (as PETS-style model-based RL assumes), with that reward computed on the decoded
states of the imagined future. Functions here take decoded states before and after each step.
"""

from __future__ import annotations

from torch import Tensor

from vim_world.envs.simulator import STEER_PROGRESS_SCALE, STEER_STEP_COST, STEER_SUCCESS_REWARD
from vim_world.envs.world import AGENT, ZONE, ZONE_SIZE


def steer_reward(before: Tensor, after: Tensor) -> Tensor:
    """The steer task's reward without its collision term, on state features ``(..., K, S)``.

    ``10 * (d_before - d_after) - 0.01 + 1[d_after < ZONE_SIZE]`` with ``d`` the distance from the
    agent's centre to the goal zone's -> ``(...)``.
    """

    def distance(states: Tensor) -> Tensor:
        return (states[..., AGENT, :2] - states[..., ZONE, :2]).norm(dim=-1)

    d0, d1 = distance(before), distance(after)
    return STEER_PROGRESS_SCALE * (d0 - d1) - STEER_STEP_COST + STEER_SUCCESS_REWARD * (d1 < ZONE_SIZE).to(d1.dtype)
