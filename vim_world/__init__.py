"""vim_world: object-centric modular world models.

- environments: :mod:`vim_world.envs` (registered on import as ``VimWorld/<Name>-v0``);
- the model: :mod:`vim_world.model` (VIM; its ELBO in ``vim_world/model/elbo.py``);
- agents and planners: :mod:`vim_world.agents`.

The main entry points are importable from here (``from vim_world import VIM, Imagination, CEM``);
they load on first use (PEP 562), so ``import vim_world`` imports neither torch nor the agents.
Training and evaluation are their modules' functions: ``from vim_world.train import train`` and
``from vim_world.evaluate import evaluate`` (a package attribute of the same name as a submodule
would be rebound to the module on its import).
"""

import importlib
import os
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from vim_world.envs import register_envs

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "VIM": "vim_world.model", "VIMConfig": "vim_world.model",
    "Imagination": "vim_world.imagination", "Intervention": "vim_world.imagination",
    "CEM": "vim_world.agents", "MPPI": "vim_world.agents", "RandomShooting": "vim_world.agents",
    "MPCAgent": "vim_world.agents",
    "collect": "vim_world.data", "open_dataset": "vim_world.data",
    "TrainConfig": "vim_world.train_config", "EvalConfig": "vim_world.evaluate",
}  # fmt: skip
"""Public name -> the module that defines it (imported when the name is first used)."""

__all__ = sorted([*_EXPORTS, "__version__", "envs", "register_envs"])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


register_envs()
