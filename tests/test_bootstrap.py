"""The bootstrap behind every interval of the evaluation: coverage, pairing, clusters, discovery."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from vim_world.metrics import (
    _contingency_scores,
    bootstrap_ci,
    discovery_intervals,
    discovery_scores,
    mean_ci,
    nested_mean_ci,
    ratio_ci,
    resample_weights,
    t_interval,
    weighted_mean,
)


def test_resample_weights_are_counts_of_a_resample_and_seeded():
    w = resample_weights(50, 200, seed=3)
    assert w.shape == (200, 50) and np.all(w.sum(1) == 50) and np.all(w == np.round(w))
    np.testing.assert_array_equal(w, resample_weights(50, 200, seed=3))
    assert not np.array_equal(w, resample_weights(50, 200, seed=4))


def test_group_resampling_keeps_clusters_whole():
    groups = np.repeat(np.arange(10), 3)  # 10 episodes of 3 windows
    w = resample_weights(30, 100, seed=0, groups=groups)
    np.testing.assert_array_equal(w[:, 0::3], w[:, 1::3])
    np.testing.assert_array_equal(w[:, 0::3], w[:, 2::3])
    assert np.all(w.sum(1) == 30)


def test_mean_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    trials, hits = 200, 0
    for i in range(trials):
        x = rng.exponential(2.0, 200)  # skewed, true mean 2
        low, high = mean_ci(x, seed=i, n_boot=500)
        hits += low <= 2.0 <= high
    # Binomial(200, 0.95) lies in [182, 197] with probability > 0.99; percentile intervals of a
    # skewed mean undercover slightly at n = 200.
    assert 180 <= hits <= 198, hits


def test_interval_narrows_with_more_data_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    small, large = rng.normal(1.0, 1.0, 100), rng.normal(1.0, 1.0, 10_000)
    ls, hs = mean_ci(small)
    ll, hl = mean_ci(large)
    assert ls < small.mean() < hs and ll < large.mean() < hl
    assert (hl - ll) < 0.2 * (hs - ls)
    # normal theory: half-width 1.96 / sqrt(n)
    assert (hl - ll) / 2 == pytest.approx(1.96 / 100, rel=0.15)


def test_nested_interval_carries_the_spread_between_groups():
    """Three groups of 400 successes: groups that differ (seed to seed) give a far wider interval
    than alike groups, and than pooling every item would say. With alike groups it errs wide, by
    less than 2.5x the pooled one: the group means drawn already carry the noise within groups."""
    rng = np.random.default_rng(0)
    alike = [(rng.random(400) < 0.9).astype(float) for _ in range(3)]
    apart = [(rng.random(400) < p).astype(float) for p in (0.75, 0.9, 1.0)]
    mean, low, high = nested_mean_ci(alike, n_boot=4000)
    assert low < mean < high and mean == pytest.approx(np.mean([g.mean() for g in alike]))
    _, low_apart, high_apart = nested_mean_ci(apart, n_boot=4000)
    pooled_low, pooled_high = mean_ci(np.concatenate(apart), n_boot=4000)
    assert high_apart - low_apart > 3 * (high - low)
    assert high_apart - low_apart > 3 * (pooled_high - pooled_low)
    alike_low, alike_high = mean_ci(np.concatenate(alike), n_boot=4000)
    assert high - low < 2.5 * (alike_high - alike_low)
    assert nested_mean_ci(alike, n_boot=500, seed=1) == nested_mean_ci(alike, n_boot=500, seed=1)
    with pytest.raises(ValueError, match="non-empty"):
        nested_mean_ci([np.ones(3), np.ones(0)])


def test_paired_ratio_is_much_tighter_than_unpaired_when_numerator_tracks_denominator():
    rng = np.random.default_rng(2)
    difficulty = rng.exponential(1.0, 500)  # windows differ a lot in difficulty
    den = difficulty * rng.uniform(0.95, 1.05, 500)
    num = 1.5 * difficulty * rng.uniform(0.95, 1.05, 500)
    lp, hp = ratio_ci(num, den, paired=True)
    lu, hu = ratio_ci(num, den, paired=False)
    assert lp < 1.5 < hp and lu < 1.5 < hu
    assert (hp - lp) < 0.2 * (hu - lu)


def test_paired_ratio_covers_the_true_ratio():
    rng = np.random.default_rng(3)
    hits = 0
    for i in range(100):
        den = rng.exponential(1.0, 300)
        num = 2.0 * den + rng.normal(0, 0.3, 300)
        low, high = ratio_ci(num, den, paired=True, seed=i, n_boot=400)
        hits += low <= 2.0 <= high
    assert hits >= 88, hits


def test_bootstrap_rejects_unpaired_lengths_and_bad_level():
    with pytest.raises(ValueError, match="equal lengths"):
        bootstrap_ci(lambda w, a, b: weighted_mean(w, a), np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(weighted_mean, np.ones(3), level=95)
    with pytest.raises(ValueError, match="groups"):
        resample_weights(4, 10, groups=np.zeros(3))


def test_contingency_scores_match_scikit_learn():
    rng = np.random.default_rng(4)
    true = rng.integers(0, 4, 3000)
    pred = np.where(rng.random(3000) < 0.7, (true + 1) % 4, rng.integers(0, 5, 3000))
    conf = np.zeros((5, 4))
    np.add.at(conf, (pred, true), 1)
    scores = _contingency_scores(conf[None])
    ref = discovery_scores(pred, true)
    assert scores["accuracy"][0] == pytest.approx(ref["accuracy"], abs=1e-12)
    assert scores["nmi"][0] == pytest.approx(normalized_mutual_info_score(true, pred), abs=1e-10)
    assert scores["ari"][0] == pytest.approx(adjusted_rand_score(true, pred), abs=1e-10)


def test_discovery_intervals_bracket_the_scores_and_shrink_with_windows():
    rng = np.random.default_rng(5)

    def windows(n):
        true = rng.integers(0, 3, (n, 9, 4))
        pred = np.where(rng.random((n, 9, 4)) < 0.8, true, rng.integers(0, 3, (n, 9, 4)))
        return pred, true

    pred, true = windows(2000)
    ci = discovery_intervals(pred, true)
    point = discovery_scores(pred, true)
    for key in ("accuracy", "nmi", "ari"):
        low, high = ci[f"{key}_ci"]
        assert low <= point[key] <= high
    few = discovery_intervals(*windows(50))
    width = lambda c: c["accuracy_ci"][1] - c["accuracy_ci"][0]  # noqa: E731
    assert width(ci) < 0.4 * width(few)


def test_t_interval_is_students_interval_over_seeds():
    from scipy import stats

    seeds = [0.91, 0.93, 0.88, 0.95, 0.90]
    expected = stats.t.interval(0.95, 4, loc=np.mean(seeds), scale=stats.sem(seeds))
    np.testing.assert_allclose(t_interval(seeds), expected, rtol=1e-12)
    assert t_interval([0.7]) == (0.7, 0.7)  # one seed: no spread to read
    low, high = t_interval(seeds, level=0.5)
    assert expected[0] < low < high < expected[1]
    with pytest.raises(ValueError, match=r"non-empty 1-D array .* got shape \(0,\)"):
        t_interval([])
