"""World models: VIM (``vim.py``; its ELBO in ``elbo.py``) and the baselines (``baselines.py``)."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from .baselines import CopyLastFrame, MonolithicVRNN
from .config import PRESETS, VIMConfig, discovery_recipe, preset, single_module_config
from .outputs import Posterior, Prediction
from .vim import VIM


def parameter_matched_vrnn(config: VIMConfig) -> MonolithicVRNN:
    """The monolithic baseline with its width chosen so that its parameter count is closest to
    VIM's under the same ``config`` (a fair comparison; deterministic, so checkpoints reload)."""
    target = count_parameters(VIM(config))
    widths = range(8, 4 * config.hidden + 1, 4)
    best = min(widths, key=lambda h: abs(count_parameters(MonolithicVRNN(replace(config, hidden=h))) - target))
    return MonolithicVRNN(replace(config, hidden=best))


MODELS = {
    "vim": VIM,
    "vim_m1": lambda config: VIM(single_module_config(config)),
    "vrnn": parameter_matched_vrnn,
    "copy_last": CopyLastFrame,
}
"""Model name -> constructor from a :class:`VIMConfig`."""


def build_model(name: str, config: VIMConfig) -> nn.Module:
    """``MODELS[name](config)``; a ValueError names the choices for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "discovery_recipe",
    "MODELS", "PRESETS", "CopyLastFrame", "MonolithicVRNN", "Posterior", "Prediction", "VIM", "VIMConfig",
    "build_model", "count_parameters", "preset", "single_module_config",
]  # fmt: skip
