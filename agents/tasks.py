"""Known task rewards on decoded imagined states, for planning with learnt dynamics.

A planner may score imagined futures with the reward head ``R(z_t, a_t)`` or, when the task's
reward is known (as PETS-style model-based RL assumes), with that reward computed on the decoded
states of the imagined future. The rules themselves live in :mod:`vim_world.envs.simulator`;
functions here apply them to decoded states before and after each step.
"""

from __future__ import annotations

from torch import Tensor
from vim_world.envs.simulator import goal_distance
from vim_world.envs.simulator import steer_reward as _steer_rule


def steer_reward(before: Tensor, after: Tensor) -> Tensor:
    """The steer task's reward without its collision term, on state features ``(..., K, S)`` -> ``(...)``."""
    return _steer_rule(goal_distance(before), goal_distance(after))
