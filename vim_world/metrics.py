"""Metrics: prediction error over a horizon, mechanism discovery after optimal matching, and
bootstrap confidence intervals for both."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import stats
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def per_step_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``pred (B, N, H, ...)``, ``target (B, H, ...)`` -> ``(B, N, H)`` mean squared error."""
    diff = (pred - target[:, None]) ** 2
    return diff.flatten(3).mean(-1)


def psnr(mse: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR in dB from MSE (same shape)."""
    return 10.0 * torch.log10(peak**2 / mse.clamp(min=1e-10))


Statistic = Callable[..., np.ndarray]
"""``statistic(weights (R, n), *samples (n, ...)) -> (R,)``: a figure of each of R resamples."""


def resample_weights(n: int, n_boot: int = 1000, seed: int = 0, groups: np.ndarray | None = None) -> np.ndarray:
    """How often each of ``n`` items appears in each of ``n_boot`` bootstrap resamples.

    Args:
        groups: optional ``(n,)`` cluster label of each item (e.g. the episode a window comes
            from): whole clusters are resampled, so correlated items (overlapping windows of one
            episode) do not narrow the interval.
    Returns: ``(n_boot, n)`` float64 counts; every row sums to ``n`` without groups.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (items to resample), got {n!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    if groups is None:
        labels, m = np.arange(n), n
    else:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape ({n},) (one label per item), got {groups.shape}")
        _, labels = np.unique(groups, return_inverse=True)
        m = int(labels.max()) + 1
    draws = rng.integers(0, m, (n_boot, m))
    counts = np.bincount((draws + m * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * m)
    return counts.reshape(n_boot, m)[:, labels].astype(np.float64)


def finite_row_means(values: np.ndarray) -> np.ndarray:
    """Mean of each row's finite entries, ``(N, M) -> (N,)``; NaN for a row with none (where
    ``np.nanmean`` would warn "mean of empty slice"). Infinities are dropped like NaNs."""
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    sums = np.where(finite, values, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def bootstrap_ci(
    statistic: Statistic,
    *samples: np.ndarray,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the items (rows) of ``samples``.

    Every sample is resampled with the same items (a paired bootstrap): pass a numerator and
    a denominator measured on the same windows to get the interval of their ratio.

    Args:
        statistic: ``(weights (R, n), *samples) -> (R,)``, e.g. :func:`weighted_mean`.
        samples: arrays with ``n`` rows each (the items: windows, episodes or seeds).
        level: coverage of the interval (0.95 for 95%).
        groups: optional ``(n,)`` cluster labels, see :func:`resample_weights`.
    Returns: ``(low, high)``; resamples where the statistic is undefined (NaN) are left out.
    """
    if not samples:
        raise ValueError("bootstrap_ci needs at least one sample")
    n = len(samples[0])
    if any(len(s) != n for s in samples):
        raise ValueError(f"paired samples must have equal lengths, got {[len(s) for s in samples]}")
    return percentile_interval(statistic(resample_weights(n, n_boot, seed, groups), *samples), level)


def weighted_mean(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Resampled means: ``weights (R, n)``, ``x (n,)`` -> ``(R,)``."""
    return weights @ np.asarray(x, np.float64) / weights.sum(1)


def ratio_of_sums(weights: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Resampled ``sum(num) / sum(den)`` over the same items: ``(R, n)``, ``(n,)``, ``(n,)`` -> ``(R,)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (weights @ np.asarray(num, np.float64)) / (weights @ np.asarray(den, np.float64))


def mean_ci(x: np.ndarray, groups: np.ndarray | None = None, seed: int = 0, n_boot: int = 1000) -> tuple[float, float]:
    """95% interval of the mean of ``x (n,)`` over its items (clusters ``groups`` if given)."""
    return bootstrap_ci(weighted_mean, np.asarray(x, np.float64), groups=groups, seed=seed, n_boot=n_boot)


def ratio_ci(
    num: np.ndarray,
    den: np.ndarray,
    *,
    paired: bool,
    num_groups: np.ndarray | None = None,
    den_groups: np.ndarray | None = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> tuple[float, float]:
    """95% interval of ``mean(num) / mean(den)``.

    ``paired``: ``num`` and ``den`` are measured on the same items (two models on the same
    windows), which are resampled together (``num_groups`` clusters both); otherwise each is
    resampled on its own (two data sets).
    """
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if paired:
        return bootstrap_ci(ratio_of_sums, num, den, groups=num_groups, seed=seed, n_boot=n_boot)
    top = weighted_mean(resample_weights(len(num), n_boot, seed, num_groups), num)
    bottom = weighted_mean(resample_weights(len(den), n_boot, seed + 1, den_groups), den)
    with np.errstate(divide="ignore", invalid="ignore"):
        return percentile_interval(top / bottom)


def t_interval(values: np.ndarray | list[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values (n,)`` (one figure per training seed); for one
    value, the value itself at both ends."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size < 1:
        raise ValueError(f"values must be a non-empty 1-D array (one figure per seed), got shape {x.shape}")
    if x.size < 2:
        return float(x[0]), float(x[0])
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def nested_mean_ci(
    groups: list[np.ndarray], n_boot: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """The mean over groups of each group's mean, and its two-level bootstrap interval.

    For figures measured on items nested in groups (evaluation worlds of several training seeds):
    each resample draws the groups with replacement, then the items within each drawn group, so
    the interval carries both the spread between groups and the noise within each. It errs wide:
    the group means drawn already carry the noise within groups, which the items redrawn add again
    (with alike groups, about twice the interval of every item pooled).

    Args:
        groups: ``G`` arrays ``(n_g,)`` of item values (e.g. 0/1 successes), ``G >= 1``, ``n_g >= 1``.
    Returns: ``(mean of the group means, low, high)``.
    """
    if not groups or any(np.asarray(g).ndim != 1 or len(g) == 0 for g in groups):
        raise ValueError(
            f"groups must be a non-empty list of non-empty 1-D arrays, got shapes {[np.shape(g) for g in groups]}"
        )
    rng = np.random.default_rng(seed)
    values = [np.asarray(g, np.float64) for g in groups]
    picked = rng.integers(0, len(values), (n_boot, len(values)))  # (R, G) the groups of each resample
    means = np.empty(picked.shape)
    for slot in range(picked.shape[1]):  # each drawn group gets its own draw of items
        for g, v in enumerate(values):
            rows = np.flatnonzero(picked[:, slot] == g)
            means[rows, slot] = v[rng.integers(0, v.size, (rows.size, v.size))].mean(1)
    replicates = means.mean(1)
    low, high = percentile_interval(replicates, level)
    return float(np.mean([v.mean() for v in values])), low, high


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap replicates ``(R,)`` (non-finite ones left out)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


SSIM_CHUNK_FLOATS = 2**22
"""Image values :func:`ssim` filters at once (its intermediates hold about 15 times that many
doubles): per image, so the scores do not depend on it."""


def ssim(
    pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) of images ``(..., C, H, W)``; returns ``(...)``.

    The standard settings, as torchmetrics' ``structural_similarity_index_measure`` and
    scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)``: an 11x11 Gaussian window of std 1.5, K1 = 0.01, K2 = 0.03,
    local statistics averaged over the positions where the window fits inside the image (both
    libraries crop the border they pad), and over channels.
    """
    if pred.shape != target.shape or pred.dim() < 3:
        raise ValueError(
            f"pred and target must be (..., C, H, W) of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    lead = pred.shape[:-3]
    c, h, w = pred.shape[-3:]
    if min(h, w) < window:
        raise ValueError(f"images must be at least {window}x{window} for the SSIM window, got {h}x{w}")
    coords = torch.arange(window, dtype=torch.float64, device=pred.device) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    rows, cols = _band(g, h), _band(g, w).T
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    scores = []
    # Per image, in chunks of images (SSIM_CHUNK_FLOATS values each), so that memory stays bounded.
    chunk = max(1, SSIM_CHUNK_FLOATS // (c * h * w))
    for p, t in zip(pred.reshape(-1, c, h, w).split(chunk), target.reshape(-1, c, h, w).split(chunk)):
        x, y = p.double(), t.double()
        # The 2D Gaussian is separable, and filtering at the valid positions is a product with banded
        # matrices, B_rows @ image @ B_cols^T: on a CPU much faster than a grouped convolution.
        mx, my, xx, yy, xy = (rows @ torch.cat([x, y, x * x, y * y, x * y]) @ cols).chunk(5)
        vx, vy, cov = xx - mx**2, yy - my**2, xy - mx * my
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        scores.append(s.flatten(1).mean(-1).float())
    return torch.cat(scores).reshape(lead)  # split always yields a chunk, empty for no images


def _band(kernel: torch.Tensor, n: int) -> torch.Tensor:
    """``(n - k + 1, n)`` matrix whose row i holds the 1D ``kernel`` (length k) at columns i..i+k-1."""
    k = kernel.numel()
    rows = n - k + 1
    cols = torch.arange(rows, device=kernel.device)[:, None] + torch.arange(k, device=kernel.device)
    return kernel.new_zeros(rows, n).scatter_(1, cols, kernel.expand(rows, k))


def hungarian_accuracy(pred: np.ndarray, true: np.ndarray) -> tuple[float, dict[int, int]]:
    """Accuracy of ``pred`` labels against ``true`` after the best one-to-one relabelling.

    Returns: accuracy and the mapping predicted label -> true label.
    """
    pred, true = np.asarray(pred).ravel(), np.asarray(true).ravel()
    p_labels, t_labels = np.unique(pred), np.unique(true)
    confusion = np.zeros((p_labels.size, t_labels.size), np.int64)
    np.add.at(confusion, (np.searchsorted(p_labels, pred), np.searchsorted(t_labels, true)), 1)
    rows, cols = linear_sum_assignment(-confusion)
    mapping = {int(p_labels[r]): int(t_labels[c]) for r, c in zip(rows, cols)}
    return float(confusion[rows, cols].sum() / max(pred.size, 1)), mapping


def discovery_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Hungarian accuracy, NMI and ARI of inferred module ids against true mechanism ids."""
    pred, true = np.asarray(pred).ravel(), np.asarray(true).ravel()
    acc, _ = hungarian_accuracy(pred, true)
    return {
        "accuracy": acc,
        "nmi": float(normalized_mutual_info_score(true, pred)),
        "ari": float(adjusted_rand_score(true, pred)),
        "object_steps": int(pred.size),
    }


def _contingency_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Hungarian accuracy, NMI (arithmetic mean normalisation, as scikit-learn) and ARI of
    contingency tables ``(R, P, T)`` (predicted x true label counts) -> ``(R,)`` each."""
    c = np.asarray(confusion, np.float64)
    n = c.sum((1, 2))
    acc = np.array([c[r][linear_sum_assignment(-c[r])].sum() for r in range(c.shape[0])]) / n
    pij = c / n[:, None, None]
    pi, pj = pij.sum(2), pij.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mi = np.nansum(np.where(pij > 0, pij * np.log(pij / (pi[:, :, None] * pj[:, None, :])), 0.0), (1, 2))
        h_pred = -np.sum(np.where(pi > 0, pi * np.log(pi), 0.0), 1)
        h_true = -np.sum(np.where(pj > 0, pj * np.log(pj), 0.0), 1)
        denom = (h_pred + h_true) / 2
        nmi = np.where(denom > 0, mi / denom, 1.0)
        pairs = lambda x: x * (x - 1) / 2  # noqa: E731
        index = pairs(c).sum((1, 2))
        rows, cols = pairs(c.sum(2)).sum(1), pairs(c.sum(1)).sum(1)
        expected = rows * cols / pairs(n)
        top = (rows + cols) / 2
        ari = np.where(top > expected, (index - expected) / (top - expected), 1.0)
    return {"accuracy": acc, "nmi": nmi, "ari": ari}


def discovery_intervals(
    pred: np.ndarray, true: np.ndarray, groups: np.ndarray | None = None, seed: int = 0, n_boot: int = 1000
) -> dict[str, list[float]]:
    """95% bootstrap intervals of :func:`discovery_scores`, resampling windows.

    Args:
        pred, true: ``(n, ...)`` inferred module and true mechanism ids, one row per window.
        groups: optional ``(n,)`` cluster (episode) of each window.
    Returns: ``{"accuracy_ci": [low, high], "nmi_ci": ..., "ari_ci": ...}``; the Hungarian
    matching is redone on every resample.
    """
    pred = np.asarray(pred)
    if pred.ndim < 1:
        raise ValueError(f"pred must be (n, ...) with one row per window, got shape {pred.shape}")
    weights = resample_weights(pred.shape[0], n_boot, seed, groups)
    return {f"{k}_ci": list(percentile_interval(v)) for k, v in discovery_replicates(pred, true, weights).items()}


def discovery_replicates(pred: np.ndarray, true: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`discovery_scores` of every resample: ``pred, true (n, ...)`` per window,
    ``weights (R, n)`` (:func:`resample_weights`) -> ``accuracy``, ``nmi``, ``ari`` ``(R,)`` each."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape or pred.ndim < 1:
        raise ValueError(f"pred and true must have one shape (n, ...), got {pred.shape} and {true.shape}")
    n = pred.shape[0]
    if weights.ndim != 2 or weights.shape[1] != n:
        raise ValueError(f"weights must be (R, n={n}), got {weights.shape}")
    p_labels, t_labels = np.unique(pred), np.unique(true)
    p_idx = np.searchsorted(p_labels, pred.reshape(n, -1))
    t_idx = np.searchsorted(t_labels, true.reshape(n, -1))
    cells = p_labels.size * t_labels.size
    flat = (np.arange(n)[:, None] * cells + p_idx * t_labels.size + t_idx).ravel()
    per_window = np.bincount(flat, minlength=n * cells).reshape(n, cells).astype(np.float64)
    return _contingency_scores((weights @ per_window).reshape(-1, p_labels.size, t_labels.size))


def hard_masks(slot_masks: torch.Tensor) -> torch.Tensor:
    """One-hot ``(..., Ks, H, W)`` float masks of each pixel's most likely slot (ties: the lowest)."""
    owner = slot_masks.argmax(-3)
    return torch.nn.functional.one_hot(owner, slot_masks.shape[-3]).movedim(-1, -3).float()


def match_slots(slot_masks: torch.Tensor, true_masks: torch.Tensor) -> torch.Tensor:
    """For each sequence, the slot that best matches each true object (Hungarian on mask IoU).

    Slot masks are made hard first (each pixel goes to its most likely slot, as in FG-ARI): slots
    share the background at will, and a soft mask's background share would otherwise swamp its
    union with a small object.

    Args:
        slot_masks: ``(B, T, Ks, H, W)`` soft slot masks; true_masks: ``(B, T, K, H, W)`` bool.
    Returns: ``(B, K)`` int64 slot index per true object (Ks >= K).
    """
    s = hard_masks(slot_masks).flatten(3)  # (B, T, Ks, P)
    t = true_masks.float().flatten(3)  # (B, T, K, P)
    inter = torch.einsum("btsp,btkp->bsk", s, t)
    union = s.sum((1, 3))[:, :, None] + t.sum((1, 3))[:, None, :] - inter
    iou = (inter / union.clamp(min=1e-6)).cpu().numpy()
    out = np.zeros((iou.shape[0], iou.shape[2]), np.int64)
    for b in range(iou.shape[0]):  # scipy's assignment is per problem
        rows, cols = linear_sum_assignment(-iou[b])
        out[b, cols] = rows
    return torch.from_numpy(out)


def fg_ari(slot_masks: torch.Tensor, true_masks: torch.Tensor) -> np.ndarray:
    """Foreground adjusted Rand index per frame (as in MONet and Slot Attention).

    Each pixel gets the label of its most likely slot and of the object that covers it; the ARI
    (scikit-learn's ``adjusted_rand_score``) is taken over the pixels that some object covers, so
    the background, however the model splits it, does not count.

    Args:
        slot_masks: ``(N, Ks, H, W)`` slot masks (soft or hard).
        true_masks: ``(N, K, H, W)`` bool visible-object masks.
    Returns: ``(N,)`` float64 scores in [-1, 1]; NaN for frames without any foreground pixel.
    """
    if (
        slot_masks.dim() != 4
        or true_masks.dim() != 4
        or slot_masks.shape[0] != true_masks.shape[0]
        or slot_masks.shape[2:] != true_masks.shape[2:]
    ):
        raise ValueError(
            f"slot_masks (N, Ks, H, W) and true_masks (N, K, H, W) must agree on N, H, W; "
            f"got {tuple(slot_masks.shape)} and {tuple(true_masks.shape)}"
        )
    pred = slot_masks.float().argmax(1).flatten(1).cpu().numpy()  # (N, P)
    true_masks = true_masks.bool()
    truth = true_masks.float().argmax(1).flatten(1).cpu().numpy()
    foreground = true_masks.any(1).flatten(1).cpu().numpy()
    scores = np.full(pred.shape[0], np.nan)
    for i in np.flatnonzero(foreground.any(1)):
        fg = foreground[i]
        scores[i] = adjusted_rand_score(truth[i, fg], pred[i, fg])
    return scores


def video_fg_ari(slot_masks: torch.Tensor, true_masks: torch.Tensor) -> np.ndarray:
    """FG-ARI over each window's pixels of all frames at once (SAVi's video FG-ARI).

    As :func:`fg_ari`, but a window's pixels from every frame form one clustering, so a slot that
    moves from one object to another within the window costs as a segmentation error would.

    Args:
        slot_masks: ``(B, T, Ks, H, W)`` slot masks; true_masks: ``(B, T, K, H, W)`` bool.
    Returns: ``(B,)`` float64 scores; NaN for windows without any foreground pixel.
    """
    if slot_masks.dim() != 5 or true_masks.dim() != 5 or slot_masks.shape[:2] != true_masks.shape[:2]:
        raise ValueError(
            f"slot_masks (B, T, Ks, H, W) and true_masks (B, T, K, H, W) must agree on B, T; "
            f"got {tuple(slot_masks.shape)} and {tuple(true_masks.shape)}"
        )

    def frames_stacked(masks: torch.Tensor) -> torch.Tensor:  # (B, T, K, H, W) -> (B, K, T * H, W)
        return masks.transpose(1, 2).flatten(2, 3)

    return fg_ari(frames_stacked(slot_masks), frames_stacked(true_masks))


def binding_unchanged(slot_masks: torch.Tensor, true_masks: torch.Tensor) -> np.ndarray:
    """Whether each window keeps every object in one slot throughout.

    Frame by frame, the visible objects are matched to slots (Hungarian on the IoU of hard slot
    masks, as in :func:`match_slots`); a window's binding is unchanged when each object gets the
    same slot at every step where it is visible.

    Args:
        slot_masks: ``(B, T, Ks, H, W)`` slot masks; true_masks: ``(B, T, K, H, W)`` bool, Ks >= K.
    Returns: ``(B,)`` bool.
    """
    if (
        slot_masks.dim() != 5
        or true_masks.dim() != 5
        or slot_masks.shape[:2] != true_masks.shape[:2]
        or slot_masks.shape[3:] != true_masks.shape[3:]
        or slot_masks.shape[2] < true_masks.shape[2]
    ):
        raise ValueError(
            f"slot_masks (B, T, Ks, H, W) and true_masks (B, T, K <= Ks, H, W) must agree on "
            f"B, T, H, W; got {tuple(slot_masks.shape)} and {tuple(true_masks.shape)}"
        )
    s = hard_masks(slot_masks).flatten(3)
    t = true_masks.float().flatten(3)
    inter = torch.einsum("btsp,btkp->btsk", s, t)
    union = s.sum(-1)[..., :, None] + t.sum(-1)[..., None, :] - inter
    iou = (inter / union.clamp(min=1e-6)).cpu().numpy()
    visible = (t.sum(-1) > 0).cpu().numpy()  # (B, T, K)
    out = np.ones(iou.shape[0], bool)
    for b in range(iou.shape[0]):
        first = np.full(iou.shape[3], -1)
        for step in range(iou.shape[1]):
            objects = np.flatnonzero(visible[b, step])
            rows, cols = linear_sum_assignment(-iou[b, step][:, objects])
            slots = np.full(iou.shape[3], -1)
            slots[objects[cols]] = rows
            seen = (first >= 0) & (slots >= 0)
            if (first[seen] != slots[seen]).any():
                out[b] = False
                break
            first = np.where(first >= 0, first, slots)
    return out


def object_colours(frames: torch.Tensor, true_masks: torch.Tensor, min_pixels: int = 3) -> torch.Tensor:
    """Each object's mean colour in each frame: ``frames (N, C, H, W)`` averaged over the pixels of
    ``true_masks (N, K, H, W)`` (bool) -> ``(N, K, C)``, NaN where an object covers fewer than
    ``min_pixels`` pixels (too few to say what colour it is drawn in). Applied to the true frames
    and to a model's reconstruction of them, it tells whether objects are drawn in their colours."""
    if (
        frames.dim() != 4
        or true_masks.dim() != 4
        or frames.shape[0] != true_masks.shape[0]
        or (frames.shape[2:] != true_masks.shape[2:])
    ):
        raise ValueError(
            f"frames (N, C, H, W) and true_masks (N, K, H, W) must agree on N, H, W; "
            f"got {tuple(frames.shape)} and {tuple(true_masks.shape)}"
        )
    weights = true_masks.float().flatten(2)  # (N, K, P); float32 even for low-precision frames
    counts = weights.sum(-1, keepdim=True)
    colours = torch.einsum("nkp,ncp->nkc", weights, frames.float().flatten(2)) / counts.clamp(min=1)
    return colours.masked_fill(counts < min_pixels, float("nan"))
