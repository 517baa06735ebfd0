"""EnsembleReturns: members' futures side by side, and what a planner makes of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from vim_world.agents import CEM, EnsembleReturns, MPCAgent, PointGoal


class GoalShifted(PointGoal):
    """A PointGoal member that believes the goal lies ``shift`` further right."""

    def __init__(self, shift: float, **kwargs) -> None:
        super().__init__(spaces.Discrete(3), **kwargs)
        self.shift = shift

    def encode(self, observations: np.ndarray) -> torch.Tensor:
        return super().encode(observations) + torch.tensor([0.0, self.shift])


def test_returns_lay_the_members_futures_side_by_side() -> None:
    members = [GoalShifted(0.0, n_samples=2, noise=0.3), GoalShifted(1.0, n_samples=3, noise=0.3)]
    ensemble = EnsembleReturns(members)
    obs = np.array([[0.0, 2.0], [1.0, -1.0]])
    actions = torch.randint(0, 3, (2, 5, 4), generator=torch.Generator().manual_seed(1))
    out = ensemble.returns(ensemble.encode(obs), actions, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)  # the same draws, member by member
    expected = torch.cat([m.returns(m.encode(obs), actions, g) for m in members], -1)
    assert out.shape == (2, 5, 5)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)  # a repeat of the identical computation


@pytest.mark.parametrize(("futures", "direction"), [((3, 1), 2), ((1, 3), 0)])
def test_the_plan_follows_the_members_weighted_by_their_futures(futures, direction) -> None:
    """Two members disagree (goal at +4 or -4); the one with more futures carries the mean score."""
    members = [GoalShifted(+4.0, n_samples=futures[0]), GoalShifted(-4.0, n_samples=futures[1])]
    agent = MPCAgent(CEM(horizon=4, num_candidates=200), EnsembleReturns(members), seed=0)
    assert agent.act(np.array([[0.0, 0.0]]))[0] == direction  # 2: right, 0: left


def test_members_must_share_the_action_space_and_device() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleReturns([])
    with pytest.raises(ValueError, match=r"member 1 has action space Discrete\(5\)"):
        EnsembleReturns([PointGoal(spaces.Discrete(3)), PointGoal(spaces.Discrete(5))])
    ensemble = EnsembleReturns([PointGoal(spaces.Discrete(3)), PointGoal(spaces.Discrete(3))])
    assert ensemble.action_space == spaces.Discrete(3) and ensemble.device == torch.device("cpu")
