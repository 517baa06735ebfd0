"""A Dreamer-style actor-critic trained only on imagined rollouts of a VIM world model.

As in Dreamer (Hafner et al. 2020; DreamerV3, 2023, for discrete actions), every update starts a
batch of short imagined rollouts (``horizon`` steps: Dreamer's 15, 5 by default here) from the latent states of
*real* observations: the world model's own training data (the collected episodes) and the env's
reset states, encoded once. In each imagined state the actor samples an action; the reward comes
from VIM's reward head and the continuation ``1 - p`` from its termination head (``p`` the
probability that the action ended the episode), exactly the calls
:class:`~vim_world.imagined_env.ImaginedVectorEnv` makes. Then:

- the critic ``V`` is regressed on the lambda-returns (:func:`lambda_returns`) bootstrapped from
  a slow (exponential moving average) copy of itself;
- the actor is trained by REINFORCE with the critic as baseline, the advantages divided by
  ``max(1, S)`` where ``S`` is a moving average of the returns' 5-95 percentile range (DreamerV3's
  return normalisation), plus an entropy bonus;
- both losses weigh step ``t`` by the imagined probability that the episode is still running.

The actor and the critic read what the real env gives a policy: state observations ``(K, S)``,
here the decoded imagined states clipped into the real observation space
(:func:`~vim_world.imagined_env.decoded_states`), so the trained actor acts on real observations
directly, with no encoder in the loop (:class:`ActorCriticAgent`).

Shape letters: B imagined rollouts per update, T horizon, K objects, S state features.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from vim_world.actions import action_vectors
from vim_world.imagination import Imagination, LatentState, observations_to_tensor
from vim_world.imagined_env import decoded_states
from vim_world.model.distributions import sample_categorical


def lambda_returns(rewards: Tensor, continues: Tensor, values: Tensor, discount: float, lam: float) -> Tensor:
    """TD(lambda) returns of imagined trajectories, time on the last dim.

    ``R_t = r_t + discount * c_t * ((1 - lam) * V_{t+1} + lam * R_{t+1})`` with ``R_T = V_T``:
    ``rewards (..., T)`` of actions ``0..T-1``, ``continues (..., T)`` the probability that the
    episode goes on after each action (0 stops bootstrapping), ``values (..., T + 1)`` of states
    ``0..T``. Returns ``(..., T)``. ``lam = 0`` is one-step TD, ``lam = 1`` the discounted reward
    sum plus the discounted last value.
    """
    horizon = rewards.shape[-1]
    if continues.shape != rewards.shape or values.shape != (*rewards.shape[:-1], horizon + 1):
        raise ValueError(
            f"need rewards and continues (..., T) and values (..., T + 1), got {tuple(rewards.shape)}, "
            f"{tuple(continues.shape)} and {tuple(values.shape)}"
        )
    out, last = [], values[..., -1]
    for t in reversed(range(horizon)):
        last = rewards[..., t] + discount * continues[..., t] * ((1 - lam) * values[..., t + 1] + lam * last)
        out.append(last)
    return torch.stack(out[::-1], -1)


def _net(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Two hidden layers with LayerNorm and SiLU (as DreamerV3), a linear output."""
    return nn.Sequential(
        nn.Flatten(-2),
        nn.Linear(in_dim, hidden),
        nn.LayerNorm(hidden),
        nn.SiLU(),
        nn.Linear(hidden, hidden),
        nn.LayerNorm(hidden),
        nn.SiLU(),
        nn.Linear(hidden, out_dim),
    )


class ActorCriticAgent:
    """A policy trained in imagination, acting on real state observations ``(B, K', S)``.

    It reads the first ``num_objects`` objects (those it was trained on; the real env's further
    distractors, as in ``SteerHeldout-v0``, are not seen) and plays the most probable action
    (``deterministic``) or samples one.

    Attributes:
        actor: ``(B, K, S)`` -> ``(B, n)`` action logits.
        critic: ``(B, K, S)`` -> ``(B, 1)`` value.
        action_space: the real env's ``Discrete`` action space.
        observation_space: the ``(K, S)`` observation space it was trained on; what it reads is
            clipped into it.
        real_steps: real environment steps the world model's data cost (imagined steps cost none).
        imagined_steps: imagined steps its training took.
        history: per update: ``return`` (mean lambda-return), ``value``, ``entropy``,
            ``actor_loss``, ``critic_loss``, ``scale`` (the return normalisation).
        seconds: training wall-clock time.
    """

    def __init__(
        self,
        actor: nn.Module,
        critic: nn.Module,
        action_space: spaces.Discrete,
        observation_space: spaces.Box,
        *,
        deterministic: bool = True,
        seed: int = 0,
        real_steps: int = 0,
        imagined_steps: int = 0,
    ) -> None:
        self.actor, self.critic, self.action_space = actor, critic, action_space
        self.observation_space = observation_space
        self.deterministic, self.real_steps, self.imagined_steps = deterministic, real_steps, imagined_steps
        self.history: dict[str, list[float]] = {}
        self.seconds = 0.0
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def num_objects(self) -> int:
        """K, the objects of the observation space it was trained on."""
        return int(self.observation_space.shape[0])

    @property
    def device(self) -> torch.device:
        return next(self.actor.parameters()).device

    def reset(self) -> None:
        """Nothing to forget (the policy is feed-forward)."""

    def _inputs(self, states: Tensor | np.ndarray) -> Tensor:
        """State observations ``(..., K' >= K, S)`` -> the first K objects, clipped, ``(..., K, S)``."""
        x = torch.as_tensor(states, dtype=torch.float32, device=self.device)
        k, s = self.observation_space.shape
        if x.dim() < 2 or x.shape[-2] < k or x.shape[-1] != s:
            raise ValueError(f"observations must be (..., K >= {k}, {s}) states, got shape {tuple(x.shape)}")
        low = torch.as_tensor(self.observation_space.low, dtype=x.dtype, device=x.device)
        high = torch.as_tensor(self.observation_space.high, dtype=x.dtype, device=x.device)
        return torch.clamp(x[..., :k, :], low, high)

    @torch.no_grad()
    def act(self, observations: np.ndarray) -> np.ndarray:
        """Real state observations ``(B, K', S)``, ``K' >= K`` -> actions ``(B,)`` int64."""
        obs = np.asarray(observations)
        if obs.ndim != 3:
            raise ValueError(
                f"observations must be (B, K >= {self.num_objects}, S) states, got shape {tuple(obs.shape)}"
            )
        logits = self.actor(self._inputs(obs))
        if self.deterministic:
            index = logits.argmax(-1)
        else:
            index = sample_categorical(logits.softmax(-1).cpu(), self.generator)
        return (index.cpu().numpy() + int(self.action_space.start)).astype(np.int64)

    @torch.no_grad()
    def value(self, states: Tensor | np.ndarray) -> Tensor:
        """The critic's value of state observations ``(..., K' >= K, S)`` -> ``(...)``."""
        x = self._inputs(states)
        return self.critic(x.reshape(-1, *x.shape[-2:])).reshape(x.shape[:-2])

    def latent_value(self, imagination: Imagination) -> Callable[[Tensor], Tensor]:
        """The critic as a function of a state VIM's latents ``(..., K', D) -> (...)`` (decoded by
        ``imagination``): a terminal value for planning, e.g.
        ``ImaginationReturns(..., terminal_value=agent.latent_value(imagination))``."""
        if imagination.config.input_mode != "state":
            raise ValueError(
                f"the critic reads state observations; got a VIM with input_mode={imagination.config.input_mode!r}"
            )

        def value(z: Tensor) -> Tensor:
            return self.value(imagination.decode(z)[0])

        return value

    def proposer(self, imagination: Imagination, num: int = 32, sample_z: bool = True) -> Callable[..., Tensor]:
        """The actor as a source of candidate plans (TD-MPC's policy samples), for
        :class:`~vim_world.agents.mpc.MPCAgent` ``(proposer=...)``: from encoded states ``(B, K', D)``
        it imagines ``num`` rollouts each, sampling every action from the actor on the decoded
        state, and returns their actions ``(B, num, H)`` int64 (indices from 0)."""
        if imagination.config.input_mode != "state":
            raise ValueError(
                f"the actor reads state observations; got a VIM with input_mode={imagination.config.input_mode!r}"
            )
        if not _is_int(num) or num < 1:
            raise ValueError(f"num must be an int >= 1, got {num!r}")

        @torch.no_grad()
        def propose(states: LatentState, horizon: int, generator: torch.Generator) -> Tensor:
            state = states.index(torch.arange(states.batch_size, device=states.z.device).repeat_interleave(num))
            actions = []
            for _ in range(horizon):
                logits = self.actor(self._inputs(imagination.decode(state.z)[0]))
                a = sample_categorical(logits.softmax(-1), generator)
                state, _ = imagination.step(
                    state,
                    action_vectors(a + int(self.action_space.start), self.action_space),
                    generator=generator,
                    sample_z=sample_z,
                )
                actions.append(a)
            return torch.stack(actions, -1).reshape(states.batch_size, num, horizon)

        return propose


@dataclass
class _Scale:
    """DreamerV3's return scale: moving averages of the returns' 5th and 95th percentiles."""

    decay: float = 0.99
    low: float | None = None
    high: float | None = None

    def update(self, returns: Tensor) -> float:
        q = torch.quantile(returns.flatten().float(), torch.tensor([0.05, 0.95], device=returns.device)).tolist()
        if self.low is None:
            self.low, self.high = q
        else:
            self.low = self.decay * self.low + (1 - self.decay) * q[0]
            self.high = self.decay * self.high + (1 - self.decay) * q[1]
        return max(1.0, self.high - self.low)


def _check(name: str, value: Any, ok: bool, want: str) -> None:
    if isinstance(value, bool) or not ok:
        raise ValueError(f"{name} must be {want}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def data_states(data: str | Path, num_objects: int | None = None) -> np.ndarray:
    """Every valid state observation ``(E * T valid, K, S)`` float32 of a data set (all shards)."""
    from vim_world.data import open_dataset

    dataset = open_dataset(data)
    chunks = []
    for i in range(len(dataset.shard_dirs)):
        arrays = dataset.load_shard(i)
        if "states" not in arrays:
            raise ValueError(f"data set {data} holds no states.npy; the actor-critic needs state observations")
        states, valid = np.asarray(arrays["states"]), np.asarray(arrays["valid"], bool)
        chunks.append(states[valid])
    out = np.concatenate(chunks).astype(np.float32)
    if num_objects is not None and out.shape[1] != num_objects:
        raise ValueError(f"data set {data} has {out.shape[1]} objects per state, the env has {num_objects}")
    return out


def start_states(
    imagination: Imagination,
    env_id: str,
    *,
    data: str | Path | None = None,
    reset_states: int = 256,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[Imagination, LatentState, spaces.Box, spaces.Space]:
    """The pool imagined rollouts start from: ``reset_states`` real resets of ``env_id`` (env i
    seeded ``seed + i``) and every valid state of the data set ``data``, encoded by the model
    (one step of context each, as :class:`~vim_world.imagined_env.ImaginedVectorEnv` encodes).

    Returns the model on the env's number of objects, the encoded pool, and the env's single
    observation and action spaces.
    """
    kwargs = {**(env_kwargs or {}), "obs_mode": "state"}
    env = gym.make_vec(env_id, num_envs=max(1, reset_states), **kwargs)
    obs, _ = env.reset(seed=seed)
    env.close()
    num_objects = obs.shape[1]
    parts = [obs] if reset_states > 0 else []
    if data is not None:
        parts.append(data_states(data, num_objects))
    if not parts:
        raise ValueError("no start states: pass data=... or reset_states >= 1")
    if num_objects != imagination.config.num_slots:
        imagination = imagination.for_num_objects(num_objects)
    pool = np.concatenate(parts)
    with torch.no_grad():
        states = imagination.encode(observations_to_tensor(pool, imagination.config, imagination.device)[:, None])
    return imagination, states, env.single_observation_space, env.single_action_space


def train_actor_critic_imagined(
    imagination: Imagination,
    env_id: str = "VimWorld/Steer-v0",
    *,
    data: str | Path | None = None,
    steps: int = 480,
    horizon: int = 5,
    batch_size: int = 256,
    discount: float = 0.99,
    lam: float = 0.95,
    entropy: float = 3e-3,
    actor_lr: float = 3e-4,
    critic_lr: float = 1e-3,
    hidden: int = 128,
    target_decay: float = 0.98,
    reset_states: int = 256,
    sample_z: bool = True,
    real_steps: int = 0,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
) -> ActorCriticAgent:
    """Train a Dreamer-style actor-critic on imagined rollouts of ``imagination`` (module docstring).

    Args:
        imagination: a state VIM trained with actions and the reward and termination heads.
        env_id: the real task (its action space must be ``Discrete``): its spaces, and its resets
            among the start states.
        data: the world model's training data set (a directory from :func:`vim_world.data.collect`):
            its valid states join the start states. None: resets only.
        steps: updates; each imagines ``batch_size`` rollouts of ``horizon`` steps.
        horizon: imagined steps per rollout. Dreamer's is 15; on the tiny budget's Steer model 5
            did better (the model's errors compound over longer rollouts; docs/planning.md,
            "Actor-critic in imagination").
        batch_size: rollouts per update, each from a start state drawn uniformly from the pool.
        discount, lam: of the lambda-returns.
        entropy: weight of the actor's entropy bonus (on normalised advantages).
        actor_lr, critic_lr: Adam learning rates.
        hidden: width of the actor's and the critic's two hidden layers.
        target_decay: the slow critic (which the returns bootstrap from) moves
            ``1 - target_decay`` of the way to the critic after every update.
        reset_states: real resets in the pool of start states.
        sample_z: sample module noise in imagination (False: each module's mean).
        real_steps: what the model's training data cost, recorded on the agent.
        seed: seeds the networks, the resets, the start-state draws, the actions and the model's
            samples: the same seed gives the same agent (on the same device).
        env_kwargs: options of the real env (``obs_mode`` is ``"state"``).
        progress: a tqdm bar over the updates.

    Returns:
        an :class:`ActorCriticAgent` (``history`` holds the per-update statistics).
    """
    if not isinstance(imagination, Imagination):
        raise TypeError(f"imagination must be an Imagination, got {type(imagination).__name__}")
    cfg = imagination.config
    if cfg.input_mode != "state":
        raise ValueError(f"the actor-critic reads state observations; got a VIM with input_mode={cfg.input_mode!r}")
    if cfg.action_dim == 0 or not cfg.reward_head:
        raise ValueError(
            f"the actor-critic needs a VIM trained with actions and a reward head, got action_dim="
            f"{cfg.action_dim}, reward_head={cfg.reward_head}"
        )
    for name, value in (("steps", steps), ("horizon", horizon), ("batch_size", batch_size), ("hidden", hidden)):
        _check(name, value, _is_int(value) and value >= 1, "an int >= 1")
    _check("reset_states", reset_states, _is_int(reset_states) and reset_states >= 0, "an int >= 0")
    _check("discount", discount, _is_real(discount) and 0 < discount <= 1, "in (0, 1]")
    _check("lam", lam, _is_real(lam) and 0 <= lam <= 1, "in [0, 1]")
    _check("entropy", entropy, _is_real(entropy) and entropy >= 0, "a number >= 0")
    _check("target_decay", target_decay, _is_real(target_decay) and 0 <= target_decay < 1, "in [0, 1)")
    for name, value in (("actor_lr", actor_lr), ("critic_lr", critic_lr)):
        _check(name, value, _is_real(value) and value > 0, "a number > 0")

    clock = time.perf_counter()
    imagination, pool, obs_space, space = start_states(
        imagination, env_id, data=data, reset_states=reset_states, seed=seed, env_kwargs=env_kwargs
    )
    if not isinstance(space, spaces.Discrete):
        raise ValueError(f"the actor-critic needs a Discrete action space (REINFORCE); {env_id} has {space}")
    device = imagination.device
    k, s = obs_space.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        actor, critic = _net(k * s, hidden, int(space.n)).to(device), _net(k * s, hidden, 1).to(device)
    target = copy.deepcopy(critic).requires_grad_(False)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=actor_lr, eps=1e-5)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=critic_lr, eps=1e-5)
    generator = torch.Generator(device=device).manual_seed(seed)
    scale = _Scale()
    agent = ActorCriticAgent(
        actor, critic, space, obs_space, seed=seed, real_steps=real_steps, imagined_steps=steps * batch_size * horizon
    )
    history: dict[str, list[float]] = {
        key: [] for key in ("return", "value", "entropy", "actor_loss", "critic_loss", "scale")
    }

    from tqdm.auto import tqdm

    for _ in tqdm(range(steps), desc="actor-critic in imagination", disable=not progress, leave=False):
        obs, actions, rewards, continues = imagine(
            imagination, pool, actor, horizon, batch_size, space, obs_space, generator, sample_z
        )
        with torch.no_grad():
            values = target(obs).squeeze(-1)  # (B, T + 1)
            returns = lambda_returns(rewards, continues, values, discount, lam)  # (B, T)
            alive = torch.cumprod(torch.cat([torch.ones_like(continues[:, :1]), continues[:, :-1]], 1), 1)
            norm = scale.update(returns)
            advantages = (returns - values[:, :-1]) / norm
        logits = actor(obs[:, :-1])
        logp = logits.log_softmax(-1)
        chosen = logp.gather(-1, actions[..., None]).squeeze(-1)
        ent = -(logp.exp() * logp).sum(-1)
        actor_loss = -(alive * (chosen * advantages + entropy * ent)).mean()
        actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        nn.utils.clip_grad_norm_(actor.parameters(), 100.0)
        actor_opt.step()
        critic_loss = 0.5 * (alive * (critic(obs[:, :-1]).squeeze(-1) - returns) ** 2).mean()
        critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(critic.parameters(), 100.0)
        critic_opt.step()
        with torch.no_grad():
            for p_target, p in zip(target.parameters(), critic.parameters()):
                p_target.lerp_(p, 1.0 - target_decay)
        for key, value in (
            ("return", returns.mean()),
            ("value", values.mean()),
            ("entropy", ent.mean()),
            ("actor_loss", actor_loss),
            ("critic_loss", critic_loss),
            ("scale", norm),
        ):
            history[key].append(float(value.detach()) if torch.is_tensor(value) else float(value))
    agent.history, agent.seconds = history, time.perf_counter() - clock
    return agent


@torch.no_grad()
def imagine(
    imagination: Imagination,
    pool: LatentState,
    actor: nn.Module,
    horizon: int,
    batch_size: int,
    space: spaces.Discrete,
    obs_space: spaces.Box,
    generator: torch.Generator,
    sample_z: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``batch_size`` imagined rollouts of ``horizon`` steps from start states drawn from ``pool``,
    the actor sampling each action from the decoded state.

    Returns the decoded states ``(B, T + 1, K, S)`` of steps ``0..T``, the actions ``(B, T)``
    int64 (indices from 0), the predicted rewards ``(B, T)`` and continuation probabilities
    ``(B, T)`` of each action.
    """
    device = imagination.device
    rows = torch.randint(pool.batch_size, (batch_size,), generator=generator, device=device)
    state = pool.index(rows)
    obs, actions, rewards, continues = [], [], [], []
    for _ in range(horizon):
        x = decoded_states(imagination, state.z, obs_space)
        a = sample_categorical(actor(x).softmax(-1), generator)
        vec = action_vectors(a + int(space.start), space)
        reward, logit = imagination.model.task(state.z, vec)
        state, _ = imagination.step(state, vec, generator=generator, sample_z=sample_z)
        obs.append(x)
        actions.append(a)
        rewards.append(reward)
        continues.append(1.0 - logit.sigmoid())
    obs.append(decoded_states(imagination, state.z, obs_space))
    return torch.stack(obs, 1), torch.stack(actions, 1), torch.stack(rewards, 1), torch.stack(continues, 1)
