"""Model-predictive control: plan from the current observation, act, re-plan every k steps."""

from __future__ import annotations

import numpy as np
import torch

from .interface import ReturnModel
from .planners import Planner


class MPCAgent:
    """Acts in B environments at once by planning with ``model`` from their observations.

    Every ``replan_every`` calls of :meth:`act` it encodes the observations, plans H steps for
    all B states in one batched search, and then plays the plan's first ``replan_every`` actions.

    Args:
        planner: a :class:`~vim_world.agents.planners.Planner`.
        model: the model the planner imagines with.
        replan_every: k; 1 re-plans at every step.
        seed: seeds the planner's ``torch.Generator``.
    """

    def __init__(self, planner: Planner, model: ReturnModel, replan_every: int = 1, seed: int = 0) -> None:
        if not 1 <= replan_every <= planner.horizon:
            raise ValueError(f"replan_every must be in [1, horizon={planner.horizon}], got {replan_every}")
        self.planner, self.model, self.replan_every = planner, model, replan_every
        self.generator = torch.Generator(device=model.device).manual_seed(seed)
        self._plan: torch.Tensor | None = None
        self._step = 0

    def reset(self) -> None:
        """Forget the current plan (call when the environments reset)."""
        self._plan, self._step = None, 0

    @torch.inference_mode()
    def act(self, observations: np.ndarray) -> np.ndarray:
        """Actions ``(B, ...)`` for observations ``(B, ...)``."""
        if self._plan is None or self._step % self.replan_every == 0:
            states = self.model.encode(observations)
            self._plan = self.planner.plan(self.model, states, len(observations), self.generator).actions
            self._step = 0
        action = self._plan[:, self._step]
        self._step += 1
        return action.cpu().numpy()
