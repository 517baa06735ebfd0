"""Agents that plan by imagining with a world model, and baselines.

Planners (:class:`RandomShooting`, :class:`CEM`, :class:`MPPI`) search action sequences for a
:class:`ReturnModel` (any model that maps start states and candidate sequences ``(B, C, H, ...)``
to sampled returns ``(B, C, N)``); :class:`ImaginationReturns` adapts a VIM, :class:`EnsembleReturns`
several (PETS); :class:`MPCAgent`
re-plans as it acts; :class:`RandomAgent` and PPO (:mod:`.baselines`) are the baselines;
:func:`train_actor_critic_imagined` (:mod:`.actor_critic`) trains a Dreamer-style policy in
imagination;
:mod:`.evaluation` compares them on the control task.
"""

from .actor_critic import ActorCriticAgent, lambda_returns, train_actor_critic_imagined
from .baselines import PPOAgent, RandomAgent, train_ppo_imagined, train_ppo_real
from .distributions import CategoricalSequence, GaussianSequence, initial_distribution
from .ensemble import EnsembleReturns
from .imagination_model import ImaginationReturns
from .interface import ReturnModel, aggregate_returns
from .mpc import MPCAgent
from .planners import CEM, MPPI, Plan, Planner, RandomShooting
from .toy import PointGoal

__all__ = [
    "ActorCriticAgent", "CEM", "MPPI", "CategoricalSequence", "EnsembleReturns", "GaussianSequence",
    "ImaginationReturns", "MPCAgent",
    "PPOAgent", "Plan", "Planner", "PointGoal", "RandomAgent", "RandomShooting", "ReturnModel",
    "aggregate_returns", "initial_distribution", "lambda_returns", "train_actor_critic_imagined",
    "train_ppo_imagined", "train_ppo_real",
]  # fmt: skip
