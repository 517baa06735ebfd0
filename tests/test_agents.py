"""Planners find the known optimum of a tiny hand-written model; MPC, risk and baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from vim_world.agents import CEM, MPPI, MPCAgent, PointGoal, RandomAgent, RandomShooting, aggregate_returns
from vim_world.agents.distributions import CategoricalSequence, GaussianSequence, initial_distribution

STATES = np.array([[0.0, 5.0], [0.0, -5.0], [0.0, 0.0]])  # goal right, goal left, at the goal
SPACES = {
    "discrete": spaces.Discrete(3),
    "multidiscrete": spaces.MultiDiscrete([3, 2]),
    "box": spaces.Box(-1.0, 1.0, (1,)),
}
PLANNERS = {
    "random_shooting": lambda: RandomShooting(horizon=5, num_candidates=1000),
    "cem": lambda: CEM(horizon=5, num_candidates=200, iterations=4),
    "mppi": lambda: MPPI(horizon=5, num_candidates=200, iterations=4),
}


def first_displacement(model: PointGoal, planner_name: str) -> torch.Tensor:
    plan = PLANNERS[planner_name]().plan(model, model.encode(STATES), len(STATES), torch.Generator().manual_seed(0))
    return model.displacement(plan.actions.unsqueeze(1))[:, 0, 0]


@pytest.mark.parametrize("space_name", list(SPACES))
@pytest.mark.parametrize("planner_name", list(PLANNERS))
def test_planner_finds_the_known_best_first_action(space_name, planner_name):
    model = PointGoal(SPACES[space_name], n_samples=4, noise=0.1)
    u = first_displacement(model, planner_name)
    top = 2.0 if space_name == "multidiscrete" else 1.0  # full speed towards the goal
    tol = 0.35 if (space_name, planner_name) == ("box", "random_shooting") else 0.15
    assert u[0] == pytest.approx(top, abs=tol)
    assert u[1] == pytest.approx(-top, abs=tol)
    assert abs(float(u[2])) <= tol


@pytest.mark.parametrize("planner_name", ["cem", "mppi"])
def test_iterative_planners_find_the_whole_optimal_sequence(planner_name):
    model = PointGoal(spaces.Discrete(3), n_samples=1)
    plan = PLANNERS[planner_name]().plan(model, model.encode(STATES), 3, torch.Generator().manual_seed(0))
    assert plan.actions.tolist() == [[2] * 5, [0] * 5, [1] * 5]
    torch.testing.assert_close(plan.score, torch.tensor([-10.0, -10.0, 0.0]))


def test_plans_are_deterministic_under_a_seed():
    model = PointGoal(spaces.Box(-1.0, 1.0, (1,)), noise=0.3)
    plans = [CEM(4, 50).plan(model, model.encode(STATES), 3, torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(plans[0].actions, plans[1].actions)
    assert not torch.equal(plans[0].actions, plans[2].actions)


def test_aggregate_returns_mean_and_quantile():
    returns = torch.tensor([[[0.0, 10.0], [4.0, 4.0]]])  # candidate 0: risky, higher mean
    assert aggregate_returns(returns).argmax().item() == 0
    assert aggregate_returns(returns, risk=0.1).argmax().item() == 1
    with pytest.raises(ValueError, match="quantile"):
        aggregate_returns(returns, risk=1.5)


def test_risk_averse_planner_avoids_the_noisy_action():
    class Gamble(PointGoal):
        """Action 0: +3 or -3 (mean 0); action 1: +1 surely; action 2: +5 or -1 (mean 2, risky)."""

        def returns(self, states, actions, generator):
            coin = torch.tensor([1.0, -1.0, 1.0, -1.0])  # N = 4 futures, half good, half bad
            payoff = torch.stack([3 * coin, torch.ones(4), 2 + 3 * coin], 0)[actions[..., 0]]  # (B, C, N)
            return payoff

    model = Gamble(spaces.Discrete(3))
    planner_mean = RandomShooting(1, 60)
    planner_safe = RandomShooting(1, 60, risk=0.25)
    g = torch.Generator().manual_seed(0)
    assert planner_mean.plan(model, None, 1, g).actions.item() == 2
    assert planner_safe.plan(model, None, 1, g).actions.item() == 1


def test_mpc_agent_replans_every_k_steps():
    model = PointGoal(spaces.Discrete(3))
    calls = []
    encode = model.encode
    model.encode = lambda obs: calls.append(1) or encode(obs)
    agent = MPCAgent(CEM(4, 50), model, replan_every=2)
    obs = STATES.copy()
    for _ in range(5):
        action = agent.act(obs)
        obs[:, 0] += action - 1
    assert len(calls) == 3
    np.testing.assert_allclose(obs[:, 0], [5.0, -5.0, 0.0])
    with pytest.raises(ValueError, match="replan_every"):
        MPCAgent(CEM(4, 50), model, replan_every=5)


@pytest.mark.parametrize("planner_name", list(PLANNERS))
def test_a_proposed_sequence_is_scored_beside_the_samples(planner_name):
    # one sampled candidate per round cannot find the optimum over 3^5 sequences; the proposal is it
    model = PointGoal(spaces.Discrete(3), n_samples=1)
    planner = {"random_shooting": RandomShooting(5, 1), "cem": CEM(5, 1, iterations=2), "mppi": MPPI(5, 1)}
    best = torch.tensor([[2] * 5, [0] * 5, [1] * 5])[:, None]  # (B, P = 1, H)
    plan = planner[planner_name].plan(model, model.encode(STATES), 3, torch.Generator().manual_seed(0), None, best)
    assert plan.actions.tolist() == best[:, 0].tolist()
    with pytest.raises(ValueError, match="proposals"):
        planner[planner_name].plan(model, model.encode(STATES), 3, torch.Generator(), None, best[:, :, :4])


def test_mpc_agent_asks_its_proposer_at_every_search():
    model = PointGoal(spaces.Discrete(3), n_samples=1)
    asked = []

    def proposer(states: torch.Tensor, horizon: int, generator: torch.Generator) -> torch.Tensor:
        asked.append(horizon)
        steps = torch.arange(horizon)
        gap = (states[:, 1:] - states[:, :1]).long()  # (B, 1): the optimum walks there and stays
        return torch.where(steps < gap.abs(), gap.sign() + 1, 1)[:, None]

    agent = MPCAgent(RandomShooting(4, 1), model, replan_every=2, proposer=proposer)
    obs = STATES[:2].copy()
    for _ in range(5):
        obs[:, 0] += agent.act(obs) - 1
    assert asked == [4, 4, 4]
    np.testing.assert_allclose(obs[:, 0], [5.0, -5.0])


def test_shifted_distribution_drops_played_steps_and_keeps_exploring():
    broad = initial_distribution(spaces.Discrete(3), 2, 4, "cpu")
    sure = CategoricalSequence(torch.eye(3)[torch.tensor([[0, 1, 2, 0], [2, 2, 1, 1]])][:, :, None], True)
    warm = sure.shifted(1, broad, explore=0.25)
    expected = 0.75 * torch.cat([sure.probs[:, 1:], broad.probs[:, :1]], 1) + 0.25 * broad.probs
    torch.testing.assert_close(warm.probs, expected)
    assert warm.mode().tolist() == [[1, 2, 0, 0], [2, 1, 1, 0]]
    box = initial_distribution(spaces.Box(-1.0, 1.0, (1,)), 1, 3, "cpu")
    moved = GaussianSequence(torch.tensor([[[0.5], [0.7], [0.9]]]), box.std * 0.1, box.low, box.high)
    warm_box = moved.shifted(2, box, explore=0.2)
    torch.testing.assert_close(warm_box.mean, torch.tensor([[[0.9], [0.0], [0.0]]]))
    torch.testing.assert_close(warm_box.std, box.std)


def test_warm_started_mpc_plans_from_the_shifted_previous_search():
    model = PointGoal(spaces.Discrete(3))
    agent = MPCAgent(CEM(4, 50, iterations=1), model, warm_start=True, explore=0.1)
    starts = []
    plan = agent.planner.plan
    agent.planner.plan = lambda *args: starts.append(args[4]) or plan(*args)
    obs = STATES.copy()
    for _ in range(6):
        action = agent.act(obs)
        obs[:, 0] += action - 1
    assert starts[0] is None and all(isinstance(s, CategoricalSequence) for s in starts[1:])
    np.testing.assert_allclose(obs[:, 0], [5.0, -5.0, 0.0])  # one iteration per step suffices when warm
    agent.reset()
    agent.act(STATES)
    assert starts[-1] is None
    with pytest.raises(ValueError, match="explore"):
        MPCAgent(CEM(4, 50), model, explore=1.5)


@pytest.mark.parametrize("space", list(SPACES.values()), ids=list(SPACES))
def test_random_agent_samples_the_space(space):
    actions = RandomAgent(space, seed=0).act(np.zeros((16, 2)))
    assert len(actions) == 16 and all(space.contains(a) for a in actions)


def test_distributions_sample_fit_and_mode_shapes():
    g = torch.Generator().manual_seed(0)
    cat = initial_distribution(spaces.MultiDiscrete([3, 2]), 2, 4, "cpu")
    assert isinstance(cat, CategoricalSequence)
    a = cat.sample(10, g)
    assert a.shape == (2, 10, 4, 2) and (a[..., 1] < 2).all()
    fitted = cat.fit(a[:, :1], torch.ones(2, 1))
    assert torch.equal(fitted.mode(), a[:, 0])
    box = initial_distribution(spaces.Box(-2.0, 1.0, (3,)), 2, 4, "cpu")
    assert isinstance(box, GaussianSequence)
    x = box.sample(10, g)
    assert x.shape == (2, 10, 4, 3) and x.min() >= -2 and x.max() <= 1
    with pytest.raises(ValueError, match="finite bounds"):
        initial_distribution(spaces.Box(-np.inf, np.inf, (1,)), 1, 1, "cpu")


def test_planner_options_are_validated_at_their_bounds():
    with pytest.raises(ValueError, match=r"^horizon=0 and num_candidates=4 must be >= 1$"):
        RandomShooting(0, 4)
    with pytest.raises(ValueError, match=r"^horizon=3 and num_candidates=0 must be >= 1$"):
        CEM(3, 0)
    cem_message = r"^need iterations >= 1, elite_frac in \(0, 1\], keep in \[0, 1\); got "
    for bad in ({"iterations": 0}, {"elite_frac": 0.0}, {"elite_frac": 1.5}, {"keep": 1.0}, {"keep": -0.1}):
        with pytest.raises(ValueError, match=cem_message):
            CEM(3, 10, **bad)
    for bad in ({"iterations": 0}, {"temperature": 0.0}, {"keep": 1.0}):
        with pytest.raises(ValueError, match=r"^need iterations >= 1, temperature > 0, keep in \[0, 1\); got "):
            MPPI(3, 10, **bad)
    # the bounds themselves are valid
    assert CEM(3, 10, iterations=1, elite_frac=1.0, keep=0.0).iterations == 1
    assert MPPI(3, 10, iterations=1, keep=0.0).iterations == 1
    assert CEM(3, 10, elite_frac=0.1).num_elites == 1 and CEM(3, 10, elite_frac=0.26).num_elites == 3


def test_mppi_weights_are_a_softmax_of_population_standardised_scores():
    # Scores 0, 1, 2: mean 1, population std sqrt(2/3); at temperature 0.5 the weights are
    # softmax(2 * (s - 1) / sqrt(2/3)). Candidate 0 plays action 0, the others action 1.
    dist = initial_distribution(spaces.Discrete(2), 1, 1, "cpu")
    actions = torch.tensor([[[0], [1], [1]]])  # (B, C, H)
    refit = MPPI(1, 3, temperature=0.5, keep=0.0).refit(dist, actions, torch.tensor([[0.0, 1.0, 2.0]]))
    z = [2 * (s - 1) / (2 / 3) ** 0.5 for s in (0.0, 1.0, 2.0)]
    p0 = np.exp(z[0]) / sum(np.exp(v) for v in z)
    assert refit.probs[0, 0, 0].tolist() == pytest.approx([p0, 1 - p0], abs=1e-5)
