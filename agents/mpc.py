"""Model-predictive control: plan from the current observation, act, re-plan every k steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .interface import ReturnModel
from .planners import Plan, Planner


class MPCAgent:
    """Acts in B environments at once by planning with ``model`` from their observations.

    Every ``replan_every`` calls of :meth:`act` it encodes the observations, plans H steps for
    all B states in one batched search, and then plays the plan's first ``replan_every`` actions.
    With ``warm_start`` each search begins from the previous search's final distribution shifted
    by the steps played since (PlaNet, mbrl-lib), with ``explore`` of the broad distribution
    mixed in, so that few iterations (often one) suffice per decision. A ``proposer`` adds its
    own candidate sequences to every search (TD-MPC's policy samples, e.g.
    :meth:`~vim_world.agents.actor_critic.ActorCriticAgent.proposer`).

    Args:
        planner: a :class:`~vim_world.agents.planners.Planner`.
        model: the model the planner imagines with.
        replan_every: k; 1 re-plans at every step.
        seed: seeds the planner's ``torch.Generator``.
        warm_start: start each search from the previous one, shifted.
        explore: weight of the broad distribution in a warm start, in [0, 1].
        proposer: ``(states, horizon, generator) -> (B, P, H, ...)`` candidate sequences from the
            encoded states, scored beside the planner's own; None: the planner's alone.
    """

    def __init__(
        self,
        planner: Planner,
        model: ReturnModel,
        replan_every: int = 1,
        seed: int = 0,
        warm_start: bool = True,
        explore: float = 0.2,
        proposer: Callable[[Any, int, torch.Generator], Tensor] | None = None,
    ) -> None:
        if not 1 <= replan_every <= planner.horizon:
            raise ValueError(f"replan_every must be in [1, horizon={planner.horizon}], got {replan_every}")
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"explore must be in [0, 1], got {explore}")
        self.planner, self.model, self.replan_every = planner, model, replan_every
        self.warm_start, self.explore, self.proposer = warm_start, explore, proposer
        self.generator = torch.Generator(device=model.device).manual_seed(seed)
        self._plan: Plan | None = None
        self._step = 0

    def reset(self) -> None:
        """Forget the current plan (call when the environments reset)."""
        self._plan, self._step = None, 0

    @torch.inference_mode()
    def act(self, observations: np.ndarray) -> np.ndarray:
        """Actions ``(B, ...)`` for observations ``(B, ...)``."""
        if self._plan is None or self._step % self.replan_every == 0:
            states = self.model.encode(observations)
            batch = len(observations)
            init = None
            if self.warm_start and self._plan is not None:
                broad = self.planner.start(self.model, batch)
                init = self._plan.distribution.shifted(self._step, broad, self.explore)
            proposals = None if self.proposer is None else self.proposer(states, self.planner.horizon, self.generator)
            self._plan = self.planner.plan(self.model, states, batch, self.generator, init, proposals)
            self._step = 0
        action = self._plan.actions[:, self._step]
        self._step += 1
        return action.cpu().numpy()
