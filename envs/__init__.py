"""Mechanism-world Gymnasium environments: 2D objects driven by switchable mechanisms.

Start here: :data:`MECHANISMS` (the mechanism library), :class:`WorldConfig` (every option),
:class:`MechanismWorldEnv` and :class:`MechanismWorldVectorEnv` (the envs), :data:`ENV_SPECS`
(the registered ids). This package needs numpy and pygame only; it knows nothing of torch.
"""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from .config import KINDS, OBJECT_KINDS, STEER_ACTIONS, WorldConfig
from .env import MechanismWorldEnv, MechanismWorldVectorEnv
from .mechanisms import MECHANISM_NAMES, MECHANISMS, Mechanism, Noise, Objects, mechanism_id
from .registration import ENV_SPECS, HELDOUT_PAIRS, NAMESPACE, TRAIN_PAIRS, env_ids, register_envs
from .world import STATE_FEATURES

__all__ = [
    "ENV_SPECS", "HELDOUT_PAIRS", "KINDS", "MECHANISMS", "MECHANISM_NAMES", "NAMESPACE", "OBJECT_KINDS",
    "STATE_FEATURES", "STEER_ACTIONS", "TRAIN_PAIRS", "Mechanism", "MechanismWorldEnv",
    "MechanismWorldVectorEnv", "Noise", "Objects", "WorldConfig", "env_ids", "mechanism_id", "register_envs",
]  # fmt: skip
