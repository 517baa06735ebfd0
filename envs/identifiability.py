"""Whether a world's mechanisms can be told apart: checks on rollouts (numpy; scikit-learn for the state cues).

A model discovers mechanisms only through the transitions they explain (docs/model.md, "When
discovery is possible at all"). For every ordered pair of mechanisms ``(A, B)`` of a world, on the
object-steps that ``A`` drives in rollouts of that world, this module measures two fractions:

- ``law_differs[A, B]``: the share of ``A``'s steps on which ``B``'s law, applied to the same state
  with the same noise draw, gives a next state that differs from ``A``'s by more than the tolerance
  plus the noise (the per-feature std of either law's output over noise draws) in some feature;
- ``affine_differs[A, B]``: one minus the largest share of *both* ``A``'s and ``B``'s steps that
  a single affine law of (state, noise) explains within the tolerance (fitted by trimmed least
  squares to their steps together; symmetric in ``A`` and ``B``). Two mechanisms whose laws coincide on the states each visits (``still`` at
  ``v = 0`` and ``bounce`` at ``|v| = 0.04`` are both inertia, ``x' = x + v, v' = v``) differ in
  the first sense, since ``still`` stops a moving object, but not in this one: a single module that
  learns inertia explains both, and no likelihood rewards splitting them.

A pair is *distinguishable* on ``A``'s steps as the smaller of the two. A third measure is per
mechanism:

- ``single_law[A]``: the share of ``A``'s steps that ``A``'s own best affine law explains. A
  mechanism may follow several laws by turns (a drift moves, ``x' = x + v``, until a wall holds it,
  ``x' = x`` with the velocity kept); its module, which learns one affine law, is then a
  compromise exact on neither, and the steps of the other regime go to whichever module explains
  them better: ``still``'s (an object at rest follows both of a drift's laws), another drift's
  (their walls follow one law), a spare one, or a random walk's broad Gaussian, which explains
  standing still. A mechanism has *regimes* when this is below ``1 - MIN_FRACTION``.

A world is identifiable when every pair is distinguishable on at least :data:`MIN_FRACTION` of the
first one's steps (docs/environments.md justifies the figure) and no mechanism has regimes. The
regime rule is for mechanisms that read only their own object, which the discovery recipe learns
with affine modules; mechanisms that read other objects (``Mechanism.interacts``) are learnt by
n-ary modules, whose law is not affine, and get NaN. The affine test is a necessary condition: a nonlinear
module could still merge two mechanisms whose visited states give each away (an orbiting object
always moves); it does catch every law shared under several names in the library.
:func:`state_giveaway` measures that second condition (MODEL.md): how well the state before a
step alone tells each pair of mechanisms apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import WorldConfig
from .mechanisms import MECHANISMS, Noise, mechanism_id
from .world import INIT_DRAWS, initial_state, object_features, settle, step, switch

TOLERANCE = 1e-3
"""Smallest difference of a feature that counts (arena units): far above float32 rounding of the
features (about 1e-7) and below every per-step effect of the library (the smallest: gravity's 0.004)."""
MIN_FRACTION = 0.25
"""A pair must be told apart on at least this share of the first mechanism's steps, and a unary
mechanism's own best affine law must explain at least ``1 - MIN_FRACTION`` of its steps."""
MIN_STEPS = 50
"""Mechanisms driving fewer object-steps than this in the rollouts are not scored (NaN)."""
GIVEAWAY = 0.9
"""Balanced accuracy from which the state alone is said to give a pair of mechanisms away."""
_KEPT = (0.8, 0.6, 0.4, 0.25)
"""Shares of a mechanism's steps kept by the trimmed fits that search for its largest regime; the
smaller ones let a fit settle on a regime that covers only part of the steps."""


@dataclass(frozen=True)
class IdentifiabilityReport:
    """Per ordered pair (row ``A``, column ``B``) of ``mechanisms``: fractions of ``A``'s steps.

    Attributes:
        mechanisms: the world's mechanism names, ``M`` of them.
        steps: ``(M,)`` object-steps driven by each mechanism in the rollouts.
        law_differs: ``(M, M)`` share of ``A``'s steps where ``B``'s law differs beyond tolerance and noise.
        affine_differs: ``(M, M)`` one minus the share of both ``A``'s and ``B``'s steps that one affine law explains.
        single_law: ``(M,)`` share of ``A``'s steps that its own best affine law explains (NaN where ``A`` interacts).
    """

    mechanisms: tuple[str, ...]
    steps: np.ndarray
    law_differs: np.ndarray
    affine_differs: np.ndarray
    single_law: np.ndarray

    @property
    def distinguishable(self) -> np.ndarray:
        """``(M, M)`` the smaller of the two fractions; 1 on the diagonal, NaN for unscored mechanisms."""
        out = np.minimum(self.law_differs, self.affine_differs)
        np.fill_diagonal(out, 1.0)
        unscored = self.steps < MIN_STEPS
        out[unscored, :] = np.nan
        out[:, unscored] = np.nan
        return out

    def failing(self, min_fraction: float = MIN_FRACTION) -> list[tuple[str, str]]:
        """Ordered pairs ``(A, B)`` told apart on fewer than ``min_fraction`` of ``A``'s steps."""
        d = self.distinguishable
        return [
            (a, b)
            for i, a in enumerate(self.mechanisms)
            for j, b in enumerate(self.mechanisms)
            if d[i, j] < min_fraction
        ]

    def regimes(self, min_fraction: float = MIN_FRACTION) -> list[str]:
        """Scored mechanisms whose own best affine law explains fewer than ``1 - min_fraction`` of their steps."""
        return [
            a
            for a, share, n in zip(self.mechanisms, self.single_law, self.steps)
            if n >= MIN_STEPS and share < 1.0 - min_fraction
        ]

    def identifiable(self, min_fraction: float = MIN_FRACTION) -> bool:
        """No failing pair and no mechanism with regimes."""
        return not self.failing(min_fraction) and not self.regimes(min_fraction)

    def worst(self) -> tuple[float, tuple[str, str]]:
        """The smallest distinguishable fraction among scored pairs and its pair."""
        d = self.distinguishable
        i, j = np.unravel_index(np.nanargmin(d), d.shape)
        return float(d[i, j]), (self.mechanisms[i], self.mechanisms[j])


def identifiability_report(
    config: WorldConfig, worlds: int = 64, steps: int = 50, seed: int = 0, tolerance: float = TOLERANCE
) -> IdentifiabilityReport:
    """Roll out ``worlds`` worlds of ``config`` for ``steps`` steps (seeded) and score every pair of its
    mechanisms on the object-steps the switching process gives each (objects it does not switch,
    such as the steer task's agent, are left out)."""
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance!r}")
    laws = [MECHANISMS[m] for m in config.mechanisms]
    own, inputs, outputs, spread = _rollout(config, worlds, steps, seed)
    m = len(laws)
    counts = np.bincount(own, minlength=m)
    law_differs = np.full((m, m), np.nan)
    affine_differs = np.full((m, m), np.nan)
    single_law = np.full(m, np.nan)
    design = np.concatenate([inputs, np.ones((len(inputs), 1))], -1)
    for a in np.flatnonzero(counts > 0):
        if not laws[a].interacts:
            single_law[a] = _largest_regime(design[own == a], outputs[a, own == a], tolerance)
    for a in range(m):
        on_a = own == a
        if not on_a.any():
            continue
        for b in range(m):
            gap = np.abs(outputs[b, on_a] - outputs[a, on_a]) - spread[a, on_a] - spread[b, on_a]
            law_differs[a, b] = np.mean((gap > tolerance).any(-1))
            pooled = on_a | (own == b)
            target = outputs[own[pooled], np.flatnonzero(pooled)]  # each step's own next state
            explained = _shared_affine_miss(design[pooled], target, on_a[pooled]) <= tolerance
            shared = min(explained[on_a[pooled]].mean(), explained[~on_a[pooled]].mean() if b != a else 1.0)
            affine_differs[a, b] = 1.0 - shared
    return IdentifiabilityReport(tuple(config.mechanisms), counts, law_differs, affine_differs, single_law)


@dataclass(frozen=True)
class GiveawayReport:
    """Whether the state gives away which mechanism acts (MODEL.md, "When discovery is possible at
    all", the second condition), per pair of ``mechanisms``.

    Attributes:
        mechanisms: the world's mechanism names, ``M`` of them.
        steps: ``(M,)`` object-steps driven by each mechanism in the rollouts.
        state_tells: ``(M, M)`` symmetric: the balanced accuracy with which a classifier of the state
            before a step (3-fold cross-validated gradient-boosted trees on the 8 dynamic features)
            tells ``A``'s steps from ``B``'s; 0.5 is chance. NaN on the diagonal and for mechanisms
            with fewer than :data:`MIN_STEPS` steps.
    """

    mechanisms: tuple[str, ...]
    steps: np.ndarray
    state_tells: np.ndarray

    def given_away(self, threshold: float = GIVEAWAY) -> list[tuple[str, str]]:
        """Pairs ``(A, B)``, in the world's order, whose states tell them apart with at least ``threshold``."""
        m = len(self.mechanisms)
        return [
            (self.mechanisms[i], self.mechanisms[j])
            for i in range(m)
            for j in range(i + 1, m)
            if self.state_tells[i, j] >= threshold
        ]


def state_giveaway(config: WorldConfig, worlds: int = 64, steps: int = 50, seed: int = 0) -> GiveawayReport:
    """Roll out ``config`` as :func:`identifiability_report` does and, for every pair of its
    mechanisms, measure how well the state before a step alone tells which of the two drives it.

    Where it does (an orbiting object always moves, a colour-cycling one never does), one module
    that can gate on the state learns both laws as one function and the ELBO does not reward
    splitting them; affine modules cannot gate, and switching mid-episode (a new mechanism starts
    from the state the last one left) blurs the cue.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    own, inputs, _, _ = _rollout(config, worlds, steps, seed)
    features = inputs[:, :-2]  # the state before the step, without the noise draw (its last 2 columns)
    m = len(config.mechanisms)
    counts = np.bincount(own, minlength=m)
    tells = np.full((m, m), np.nan)
    folds = StratifiedKFold(3, shuffle=True, random_state=seed)
    for a in range(m):
        for b in range(a + 1, m):
            if min(counts[a], counts[b]) < MIN_STEPS:
                continue
            rows = (own == a) | (own == b)
            label = own[rows] == a
            classifier = HistGradientBoostingClassifier(max_iter=50, random_state=seed)
            predicted = cross_val_predict(classifier, features[rows], label, cv=folds)
            tells[a, b] = tells[b, a] = balanced_accuracy_score(label, predicted)
    return GiveawayReport(tuple(config.mechanisms), counts, tells)


def _rollout(
    config: WorldConfig, worlds: int, steps: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Roll out ``worlds`` worlds of ``config`` for ``steps`` steps (seeded); on the R object-steps of
    switchable objects: the index of the driving mechanism in ``config.mechanisms`` ``(R,)``, the
    state features and noise draw ``(R, 10)``, every mechanism's next state from them ``(M, R, 8)``
    and the per-feature std of those next states over noise draws ``(M, R, 8)`` (0 for
    deterministic worlds)."""
    if worlds < 1 or steps < 1:
        raise ValueError(f"worlds and steps must be >= 1, got worlds={worlds!r}, steps={steps!r}")
    rng = np.random.default_rng(seed)
    ids = np.array([mechanism_id(m) for m in config.mechanisms])
    laws = [MECHANISMS[m] for m in config.mechanisms]
    stochastic = any(law.stochastic for law in laws)
    k = config.total_objects
    state = initial_state(config, rng.random((worlds, k, INIT_DRAWS)))
    rows: list[tuple[np.ndarray, ...]] = []
    for _ in range(steps):
        noise = Noise(rng.standard_normal((worlds, k, 2)), rng.random((worlds, k, 2)))
        driving = switch(config, state, noise.uniform, None)
        outputs = np.stack([object_features(settle(law(state.objects, noise))) for law in laws])  # (M, N, K, 8)
        if stochastic:
            other = Noise(rng.standard_normal((worlds, k, 2)), noise.uniform)
            again = np.stack([object_features(settle(law(state.objects, other))) for law in laws])
            spread = np.abs(outputs - again) / np.sqrt(2.0)
        else:
            spread = np.zeros_like(outputs)
        keep = state.switchable
        inputs = np.concatenate([object_features(state.objects), noise.normal], -1)
        rows.append((driving[keep], inputs[keep], outputs[:, keep], spread[:, keep]))
        state = step(config, state, noise)
    index_of = np.zeros(ids.max() + 1, dtype=np.int64)
    index_of[ids] = np.arange(len(ids))  # mechanism id -> its index in config.mechanisms
    own = index_of[np.concatenate([r[0] for r in rows])]
    inputs = np.concatenate([r[1] for r in rows])
    return own, inputs, np.concatenate([r[2] for r in rows], 1), np.concatenate([r[3] for r in rows], 1)


def _largest_regime(design: np.ndarray, target: np.ndarray, tolerance: float) -> float:
    """The largest share of the steps that one affine law explains within ``tolerance``.

    Searches by trimmed fits keeping each share of :data:`_KEPT` of the steps, each refitted once on
    the steps it explains. ``design (R, P)``, ``target (R, F)``.
    """
    group = np.ones(len(design), dtype=bool)
    best = 0.0
    for kept in _KEPT:
        explained = _shared_affine_miss(design, target, group, kept=kept) <= tolerance
        if explained.any():
            explained = _shared_affine_miss(design, target, group, iterations=1, keep=explained) <= tolerance
        best = max(best, float(explained.mean()))
    return best


def _shared_affine_miss(
    design: np.ndarray,
    target: np.ndarray,
    first: np.ndarray,
    iterations: int = 8,
    kept: float = 0.8,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """How far the affine law that best explains most steps of *both* groups misses each step.

    Trimmed least squares: each round fits ``target (R, F)`` on ``design (R, P)`` with the two groups
    (``first`` and its complement) weighted equally, over the rows of ``keep`` (all at first), then
    keeps the better-explained ``kept`` of the first group and 80% of the other for the next round,
    so that the few steps no affine law follows (a wall, a floor) do not bend the fit. Returns the
    largest absolute error over features ``(R,)`` of the last fit.
    """
    keep = np.ones(len(design), dtype=bool) if keep is None else keep.copy()
    miss = np.zeros(len(design))
    for _ in range(iterations):
        count_first, count_rest = keep[first].sum(), keep[~first].sum()
        weight = np.where(first, 1.0 / max(count_first, 1), 1.0 / max(count_rest, 1)) * keep
        root = np.sqrt(weight)[:, None]
        coef, *_ = np.linalg.lstsq(design * root, target * root, rcond=None)
        miss = np.abs(design @ coef - target).max(-1)
        keep = np.zeros_like(keep)
        for group, share in ((first, kept), (~first, 0.8)):
            if group.any():
                keep |= group & (miss <= np.quantile(miss[group], share))
    return miss
