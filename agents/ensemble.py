"""An ensemble of return models as one (PETS's probabilistic ensembles, Chua et al. 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .interface import ReturnModel


class EnsembleReturns:
    """Returns of candidate action sequences under every member of an ensemble of models.

    Each member (e.g. VIMs trained on the same data from other initial seeds, each an
    :class:`~vim_world.agents.ImaginationReturns`) encodes the observations itself and scores every
    candidate with its own sampled futures; the futures of all members are laid side by side, so a
    planner's score (the mean over futures, or a quantile with ``risk``) takes in the models'
    disagreement as well as each model's noise. Split the futures among the members (``n_samples``
    of each) to keep the imagined steps of one decision those of a single model.

    Args:
        members: ``M >= 1`` models with the same action space and device.
    """

    def __init__(self, members: Sequence[ReturnModel]) -> None:
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member, got none")
        first = members[0]
        for i, m in enumerate(members[1:], 1):
            if m.action_space != first.action_space or torch.device(m.device) != torch.device(first.device):
                raise ValueError(
                    f"member {i} has action space {m.action_space} on {m.device}; "
                    f"expected member 0's {first.action_space} on {first.device}"
                )
        self.members = members
        self.action_space = first.action_space
        self.device = first.device

    def encode(self, observations: np.ndarray) -> list[Any]:
        """Real observations ``(B, ...)`` -> each member's B start states."""
        return [m.encode(observations) for m in self.members]

    def returns(self, states: list[Any], actions: Tensor, generator: torch.Generator) -> Tensor:
        """Returns ``(B, C, sum of the members' N)`` of candidates ``(B, C, H, ...)``: member 0's
        futures first."""
        return torch.cat([m.returns(s, actions, generator) for m, s in zip(self.members, states)], -1)
