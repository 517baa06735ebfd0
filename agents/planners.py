"""Sampling-based planners over a :class:`~vim_world.agents.interface.ReturnModel`.

Each planner scores candidate action sequences for B start states at once: candidates are drawn
as one ``(B, C, H, ...)`` tensor, the model returns ``(B, C, N)`` sampled returns, and
:func:`~vim_world.agents.interface.aggregate_returns` turns them into one score per candidate
(mean, or a risk quantile over the N futures). Every planner returns the best candidate it has
scored, as a :class:`Plan`. ``proposals`` (e.g. a policy's imagined action sequences, as TD-MPC
mixes them in) join the sampled candidates of every round.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .distributions import GaussianSequence, SequenceDistribution, initial_distribution
from .interface import ReturnModel, aggregate_returns


@dataclass(frozen=True)
class Plan:
    """The best action sequence found for each start state.

    Attributes:
        actions: ``(B, H, ...)`` actions in the space's format.
        score: ``(B,)`` its aggregated return.
        distribution: the search distribution after the last refit (the start distribution for
            random shooting); a warm start for the next decision.
    """

    actions: Tensor
    score: Tensor
    distribution: SequenceDistribution


class _Best:
    """Keeps, per start state, the best-scoring candidate seen so far."""

    def __init__(self) -> None:
        self.actions: Tensor | None = None
        self.score: Tensor | None = None

    def update(self, actions: Tensor, scores: Tensor) -> None:
        """``actions (B, C, H, ...)``, ``scores (B, C)``."""
        idx = scores.argmax(1)
        rows = torch.arange(scores.shape[0], device=scores.device)
        top_actions, top_score = actions[rows, idx], scores[rows, idx]
        if self.score is None:
            self.actions, self.score = top_actions, top_score
            return
        better = top_score > self.score
        mask = better.reshape(-1, *[1] * (top_actions.dim() - 1))
        self.actions = torch.where(mask, top_actions, self.actions)
        self.score = torch.where(better, top_score, self.score)

    def plan(self, distribution: SequenceDistribution) -> Plan:
        assert self.actions is not None and self.score is not None
        return Plan(self.actions, self.score, distribution)


class Planner(ABC):
    """Base of the sampling planners.

    Args:
        horizon: H, steps per candidate sequence.
        num_candidates: C, candidates scored per iteration and start state.
        risk: None to score by the mean return over sampled futures, or a quantile in (0, 1).
    """

    def __init__(self, horizon: int, num_candidates: int, risk: float | None = None) -> None:
        if horizon < 1 or num_candidates < 1:
            raise ValueError(f"horizon={horizon} and num_candidates={num_candidates} must be >= 1")
        aggregate_returns(torch.zeros(1, 1, 2), risk)  # validates risk
        self.horizon, self.num_candidates, self.risk = horizon, num_candidates, risk

    def score(self, model: ReturnModel, states: Any, actions: Tensor, generator: torch.Generator) -> Tensor:
        """Aggregated returns ``(B, C)`` of candidates ``(B, C, H, ...)``."""
        return aggregate_returns(model.returns(states, actions, generator), self.risk)

    def start(self, model: ReturnModel, batch: int) -> SequenceDistribution:
        """The broad distribution a search without a warm start begins from."""
        return initial_distribution(model.action_space, batch, self.horizon, model.device)

    @abstractmethod
    def plan(
        self,
        model: ReturnModel,
        states: Any,
        batch: int,
        generator: torch.Generator,
        init: SequenceDistribution | None = None,
        proposals: Tensor | None = None,
    ) -> Plan:
        """The best sequence for each of ``batch`` start states ``states``; the search begins
        from ``init`` (a warm start, e.g. the previous plan's distribution shifted by one step)
        or, when None, from :meth:`start`. ``proposals (B, P, H, ...)``: candidates scored (and
        refit to) beside the C sampled ones in every round."""

    def candidates(self, dist: SequenceDistribution, generator: torch.Generator, proposals: Tensor | None) -> Tensor:
        """C samples of ``dist`` and the proposals: ``(B, C + P, H, ...)``."""
        actions = dist.sample(self.num_candidates, generator)
        if proposals is None:
            return actions
        if proposals.shape[0] != actions.shape[0] or proposals.shape[2:] != actions.shape[2:]:
            raise ValueError(
                f"proposals must be (B, P, {', '.join(map(str, actions.shape[2:]))}) with B = {actions.shape[0]}, "
                f"got {tuple(proposals.shape)}"
            )
        return torch.cat([actions, proposals.to(actions.dtype)], 1)


class RandomShooting(Planner):
    """Score C sequences drawn from the broad initial distribution; keep the best."""

    def plan(
        self,
        model: ReturnModel,
        states: Any,
        batch: int,
        generator: torch.Generator,
        init: SequenceDistribution | None = None,
        proposals: Tensor | None = None,
    ) -> Plan:
        dist = self.start(model, batch) if init is None else init
        actions = self.candidates(dist, generator, proposals)
        best = _Best()
        best.update(actions, self.score(model, states, actions, generator))
        return best.plan(dist)


class _IterativePlanner(Planner):
    """Rounds of sample, score, refit; subclasses say how to refit (:meth:`refit`)."""

    iterations: int

    def plan(
        self,
        model: ReturnModel,
        states: Any,
        batch: int,
        generator: torch.Generator,
        init: SequenceDistribution | None = None,
        proposals: Tensor | None = None,
    ) -> Plan:
        dist = self.start(model, batch) if init is None else init
        best = _Best()
        for _ in range(self.iterations):
            actions = self.candidates(dist, generator, proposals)
            scores = self.score(model, states, actions, generator)
            best.update(actions, scores)
            dist = self.refit(dist, actions, scores)
        return best.plan(dist)

    @abstractmethod
    def refit(self, dist: SequenceDistribution, actions: Tensor, scores: Tensor) -> SequenceDistribution:
        """The next sampling distribution from candidates ``(B, C, H, ...)`` and scores ``(B, C)``."""


class CEM(_IterativePlanner):
    """Cross-entropy method: refit the distribution to the top ``elite_frac`` candidates.

    Categorical distributions for discrete spaces, Gaussians for boxes.

    Args:
        iterations: rounds of sample, score, refit.
        elite_frac: fraction of candidates the distribution is refit to.
        keep: weight of the previous distribution in each refit (smoothing).
    """

    def __init__(
        self,
        horizon: int,
        num_candidates: int,
        iterations: int = 3,
        elite_frac: float = 0.1,
        keep: float = 0.1,
        risk: float | None = None,
    ) -> None:
        super().__init__(horizon, num_candidates, risk)
        if iterations < 1 or not 0.0 < elite_frac <= 1.0 or not 0.0 <= keep < 1.0:
            raise ValueError(
                f"need iterations >= 1, elite_frac in (0, 1], keep in [0, 1); got {iterations}, {elite_frac}, {keep}"
            )
        self.iterations, self.keep = iterations, keep
        self.num_elites = max(1, round(elite_frac * num_candidates))

    def refit(self, dist: SequenceDistribution, actions: Tensor, scores: Tensor) -> SequenceDistribution:
        elite = scores.topk(self.num_elites, dim=1).indices
        elites = actions[torch.arange(scores.shape[0], device=elite.device)[:, None], elite]
        weights = scores.new_full(elite.shape, 1.0 / self.num_elites)
        return dist.fit(elites, weights, keep=self.keep)


class MPPI(_IterativePlanner):
    """Model-predictive path integral: refit to all candidates weighted by ``softmax(score / T)``.

    Scores are standardised per start state before the softmax, so ``temperature`` does not
    depend on the reward scale. For boxes the Gaussian's std stays fixed (classic MPPI noise);
    for discrete spaces the categorical probabilities are the weighted action frequencies.

    Args:
        iterations: rounds of sample, score, refit.
        temperature: softmax temperature on standardised scores (lower: greedier).
        keep: weight of the previous distribution in each refit.
    """

    def __init__(
        self,
        horizon: int,
        num_candidates: int,
        iterations: int = 3,
        temperature: float = 0.5,
        keep: float = 0.1,
        risk: float | None = None,
    ) -> None:
        super().__init__(horizon, num_candidates, risk)
        if iterations < 1 or temperature <= 0 or not 0.0 <= keep < 1.0:
            raise ValueError(
                f"need iterations >= 1, temperature > 0, keep in [0, 1); got {iterations}, {temperature}, {keep}"
            )
        self.iterations, self.temperature, self.keep = iterations, temperature, keep

    def refit(self, dist: SequenceDistribution, actions: Tensor, scores: Tensor) -> SequenceDistribution:
        z = (scores - scores.mean(1, keepdim=True)) / (scores.std(1, keepdim=True, correction=0) + 1e-6)
        weights = (z / self.temperature).softmax(1)
        if isinstance(dist, GaussianSequence):
            return dist.fit(actions, weights, keep=self.keep, fit_std=False)
        return dist.fit(actions, weights, keep=self.keep)
