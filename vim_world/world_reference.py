"""The world's own dynamics as a predictor: a privileged reference beside the models.

:class:`WorldSampler` restarts the env's simulator from each window's true state and true
mechanisms at the last context step and samples futures with the world's own noise and
switching. No model sees the mechanisms or the exact laws, so it is a reference, not a
baseline: what the true process's own samples score. It is not a bound on best-of-N error (a
sampler that spreads its samples over the possible switches can beat it). Where the world
switches mechanisms at random, its own best-of-N error stays well above zero, and a target set
against another model can ask for about as little error as the world's own samples leave
(docs/model.md, "Interactions").

``vim-world eval --world-reference`` scores it beside the runs, as the model ``world``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from vim_world.batch import Batch
from vim_world.envs import NAMESPACE
from vim_world.envs.config import WorldConfig
from vim_world.envs.mechanisms import Noise
from vim_world.envs.world import state_features, state_from_features, step
from vim_world.model.outputs import Prediction

NAME = "world"
"""The model name under which the evaluation reports the world's own predictions."""


class WorldSampler:
    """Samples futures of state windows from the world that generated them.

    Args:
        config: the world's configuration (a passive or interaction world, not the steer task).
    """

    def __init__(self, config: WorldConfig) -> None:
        if config.task != "passive":
            raise ValueError(f"the world reference runs passive worlds only, got task={config.task!r}")
        self.config = config

    @classmethod
    def for_dataset(cls, meta: dict[str, Any]) -> WorldSampler:
        """The sampler of the world a data set was collected from (its ``meta.json``: ``env_id``
        and ``env_kwargs``). Raises ``ValueError`` for data that no VimWorld passive world wrote,
        or that was collected under interventions (their actions are not replayed)."""
        env_id = meta.get("env_id", "")
        if not str(env_id).startswith(f"{NAMESPACE}/"):
            raise ValueError(f"the world reference needs data of a {NAMESPACE} env, got env_id={env_id!r}")
        if meta.get("policy", "noop") != "noop":
            raise ValueError(f"the world reference replays no actions: data collected with policy={meta['policy']!r}")
        try:
            registered = gym.spec(env_id).kwargs
        except gym.error.Error as problem:
            raise ValueError(f"the world reference cannot find env_id={env_id!r}: {problem}") from problem
        options = {**registered, **meta.get("env_kwargs", {})}
        try:
            config = WorldConfig(**options)
        except TypeError as problem:  # options this version's worlds no longer take
            raise ValueError(f"the world reference cannot rebuild {env_id!r} from env_kwargs: {problem}") from problem
        return cls(config)

    def predict(
        self, batch: Batch, context: int, horizon: int, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> Prediction:
        """``n_samples`` futures ``(B, N, horizon, K, S)`` after ``context`` steps of the state
        windows ``batch.obs (B, T, K, S)``, from ``batch.mechanism (B, T, K)`` at step
        ``context - 1``. The draws come from ``generator`` (a fresh seed when None)."""
        if batch.obs.dim() != 4 or batch.mechanism is None:
            raise ValueError(
                f"the world reference needs state windows (B, T, K, S) with mechanisms, got obs "
                f"{tuple(batch.obs.shape)} and mechanism {'None' if batch.mechanism is None else 'present'}"
            )
        if batch.actions is not None:
            raise ValueError("the world reference replays no actions; score it on action-free (no-op) data")
        steps = batch.obs.shape[1]
        if not 1 <= context <= steps:
            raise ValueError(f"context must be in [1, {steps}] (the window's steps), got {context}")
        for name, value in (("horizon", horizon), ("n_samples", n_samples)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        seed = (
            int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
            if generator is not None
            else None
        )
        rng = np.random.default_rng(seed)
        features = batch.obs[:, context - 1].double().cpu().numpy()
        mechanism = batch.mechanism[:, context - 1].cpu().numpy()
        state = state_from_features(np.repeat(features, n_samples, 0), np.repeat(mechanism, n_samples, 0))
        shape = state.mechanism.shape + (2,)
        futures = []
        for _ in range(horizon):
            state = step(self.config, state, Noise(rng.standard_normal(shape), rng.random(shape)))
            futures.append(state_features(state))
        b, k = mechanism.shape
        obs = torch.from_numpy(np.stack(futures, 1)).reshape(b, n_samples, horizon, k, -1)
        return Prediction(obs=obs.to(device=batch.obs.device, dtype=batch.obs.dtype))
