"""Adapter: an :class:`~vim_world.imagination.Imagination` as a planners' ReturnModel."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from vim_world.actions import action_vectors
from vim_world.imagination import Imagination, LatentState, observations_to_tensor


class ImaginationReturns:
    """Returns of candidate action sequences under a VIM's sampled futures and reward head.

    A candidate's return in one future is ``sum_t discount^t * alive_t * r_t`` over the horizon,
    with ``r_t = R(z_t, a_t)`` from the reward head and ``alive_t = prod_{s<t} (1 - p_s)`` the
    probability, from the termination head's ``p_s``, that the episode has not ended before step
    t (the learned heads alone); or ``r_t = reward_fn(x_t, x_{t+1})`` on decoded states when a
    known task reward is given (e.g. :func:`~vim_world.agents.tasks.steer_reward`; then
    ``alive_t = 1``). With a ``terminal_value`` V (e.g. the critic of an actor-critic trained in
    imagination, :meth:`~vim_world.agents.actor_critic.ActorCriticAgent.latent_value`) the return
    adds ``discount^H * alive_H * V(z_H)`` for the final imagined state, as TD-MPC and LOOP
    bootstrap beyond the planning horizon.

    Args:
        imagination: the world model (with ``action_dim > 0`` and a reward head).
        action_space: the real env's single-step action space.
        n_samples: N sampled futures per candidate.
        discount: per-step discount of imagined rewards.
        sample_z: sample module noise in the futures (False: each module's mean).
        reward_fn: ``(before (..., K, S), after (..., K, S)) -> (...)`` known reward on decoded
            states; None uses the reward head.
        terminal_value: ``z (..., K, D) -> (...)`` value of the final imagined latents; None adds
            nothing beyond the horizon.
    """

    def __init__(
        self,
        imagination: Imagination,
        action_space: spaces.Space,
        n_samples: int = 8,
        discount: float = 1.0,
        sample_z: bool = True,
        reward_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        terminal_value: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        cfg = imagination.config
        if cfg.action_dim == 0 or (reward_fn is None and not cfg.reward_head):
            raise ValueError("planning needs a VIM trained with actions, and a reward head or a reward_fn")
        if cfg.transition_order != 1:
            raise ValueError(
                f"planning encodes one observation per step, and a model with transition_order="
                f"{cfg.transition_order} reads the change since the step before: expected transition_order=1"
            )
        self.imagination, self.action_space = imagination, action_space
        self.n_samples, self.discount, self.sample_z, self.reward_fn = n_samples, discount, sample_z, reward_fn
        self.terminal_value = terminal_value
        self.device = imagination.device

    def encode(self, observations: np.ndarray) -> LatentState:
        """Real observations ``(B, ...)`` -> latent start states ``(B, K, D)``."""
        with torch.inference_mode():
            obs = observations_to_tensor(observations, self.imagination.config, self.device)
            return self.imagination.encode(obs[:, None])

    def returns(self, states: LatentState, actions: Tensor, generator: torch.Generator) -> Tensor:
        """Discounted imagined returns ``(B, C, N)`` of candidates ``(B, C, H, ...)``."""
        vectors = action_vectors(actions, self.action_space)
        with torch.inference_mode():
            rollout = self.imagination.rollout(
                states,
                vectors,
                n_samples=self.n_samples,
                generator=generator,
                sample_z=self.sample_z,
                decode=self.reward_fn is not None,
            )
            alive_at_end: Tensor | float = 1.0
            if self.reward_fn is None:
                alive = torch.cumprod(1.0 - rollout.terminations, -1)  # (..., H): alive after step t
                rewards = rollout.rewards * torch.cat([torch.ones_like(alive[..., :1]), alive[..., :-1]], -1)
                alive_at_end = alive[..., -1]
            else:
                first, _ = self.imagination.decode(states.z)  # (B, K, S)
                first = first[:, None, None, None].expand(*rollout.obs.shape[:3], 1, *first.shape[1:])
                rewards = self.reward_fn(torch.cat([first, rollout.obs[..., :-1, :, :]], 3), rollout.obs)
            horizon = rewards.shape[-1]
            weights = self.discount ** torch.arange(horizon, device=rewards.device, dtype=rewards.dtype)
            returns = (rewards * weights).sum(-1)
            if self.terminal_value is not None:
                final = self.terminal_value(rollout.z[..., -1, :, :])
                returns = returns + self.discount**horizon * alive_at_end * final
        return returns
