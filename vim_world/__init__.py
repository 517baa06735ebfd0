"""vim_world: object-centric modular world models.

- environments: :mod:`vim_world.envs` (registered on import as ``VimWorld/<Name>-v0``);
- the model: :mod:`vim_world.model` (VIM; its ELBO in ``vim_world/model/elbo.py``);
- agents and planners: :mod:`vim_world.agents`.
"""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from vim_world.envs import register_envs

__version__ = "0.1.0"

register_envs()
