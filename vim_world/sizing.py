"""Fitting a model to a data set: its configuration read off the data, its state standardiser,
and the batches it takes (passive data drops its constant no-op actions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vim_world.batch import Batch
from vim_world.data_format import require_frames
from vim_world.envs import STATE_FEATURES
from vim_world.loading import Dataset
from vim_world.model import VIMConfig, preset
from vim_world.train_config import TrainConfig


def constant_features(states: np.ndarray) -> tuple[int, ...]:
    """Indices of the features of ``states (E, T, K, S)`` that never change within an episode."""
    changes = np.abs(np.diff(states, axis=1)).reshape(-1, states.shape[-1]).max(0)
    return tuple(int(i) for i in np.flatnonzero(changes == 0))


def model_config(cfg: TrainConfig, dataset: Dataset) -> VIMConfig:
    """The model configuration that fits ``dataset``: preset + sizes read off the data + overrides.

    Raises: :class:`~vim_world.data.DatasetError` when ``cfg.mode == "pixels"`` and the data
    set has no frames.
    """
    first = dataset.load_shard(0)
    sizes: dict[str, Any] = {
        "state_dim": len(STATE_FEATURES),
        "action_dim": dataset.meta["action_dim"] if dataset.uses_actions else 0,
        "reward_head": dataset.uses_actions,
    }
    if cfg.mode == "state":
        sizes["num_slots"] = first["states"].shape[2]
        static = set(constant_features(np.asarray(first["states"]))) if cfg.static_attributes else set()
        static |= {STATE_FEATURES.index(name) for name in cfg.hidden_features}
        if static:
            sizes["static_features"] = tuple(sorted(static))
    else:
        require_frames(dataset.meta, dataset.path)
        sizes["image_size"] = first["pixels"].shape[2]
        sizes["num_slots"] = first["states"].shape[2] + 1  # + background
    if cfg.overrides.get("state_encoder") == "identity":  # observed latents: one per dynamic feature
        sizes["latent_dim"] = sizes["state_dim"] - len(sizes.get("static_features", ()))
    return preset(f"{cfg.preset}-{cfg.mode}", **{**sizes, **cfg.overrides})


def fit_standardizer(model: torch.nn.Module, dataset: Dataset, shards: list[int], max_episodes: int = 2048) -> None:
    """Fit the model's state standardiser (if it has one) to the states of the first
    ``max_episodes`` training episodes: deterministic, and the same on every rank."""
    standardizer = getattr(model, "standardizer", None)
    if standardizer is None:
        return
    states, total = [], 0
    for i in shards:
        s = dataset.load_shard(i)["states"][: max_episodes - total]
        states.append(torch.from_numpy(np.array(s)))
        total += s.shape[0]
        if total >= max_episodes:
            break
    standardizer.fit(torch.cat(states))


def prepare(batch: Batch, with_actions: bool) -> Batch:
    """Drop the constant no-op actions of passive data (``with_actions=False``)."""
    if with_actions:
        return batch
    return Batch(obs=batch.obs, mechanism=batch.mechanism, states=batch.states, masks=batch.masks)
