"""The model interface planners use, and how sampled returns become one score per candidate.

Shape letters: B start states, C candidate action sequences, H planning horizon, N sampled
futures per candidate.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor


@runtime_checkable
class ReturnModel(Protocol):
    """What a planner needs from a model: start states and the returns of action sequences.

    Attributes:
        action_space: the single-step action space candidates are drawn from.
        device: where candidate actions must live.
    """

    action_space: spaces.Space
    device: torch.device

    def encode(self, observations: np.ndarray) -> Any:
        """Real observations ``(B, ...)`` -> B start states (any type the model understands)."""
        ...

    def returns(self, states: Any, actions: Tensor, generator: torch.Generator) -> Tensor:
        """Returns ``(B, C, N)`` of candidate sequences ``(B, C, H, ...)`` from B start states.

        Actions follow the space: int64 ``(B, C, H)`` for ``Discrete``, ``(B, C, H, P)`` for
        ``MultiDiscrete`` with P parts, float ``(B, C, H, *shape)`` for ``Box``.
        """
        ...


def aggregate_returns(returns: Tensor, risk: float | None = None) -> Tensor:
    """Score each candidate from its sampled returns ``(B, C, N)`` -> ``(B, C)``.

    ``risk=None``: the mean over futures. ``risk=q`` in (0, 1): the q-quantile (q < 0.5 is
    risk-averse, e.g. 0.1 scores a candidate by its bad futures; q > 0.5 risk-seeking).
    """
    if risk is None:
        return returns.mean(-1)
    if not 0.0 < risk < 1.0:
        raise ValueError(f"risk must be a quantile in (0, 1) or None, got {risk}")
    return returns.quantile(risk, dim=-1)
