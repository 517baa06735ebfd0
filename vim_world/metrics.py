"""Metrics: prediction error over a horizon, and mechanism discovery after optimal matching."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def per_step_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``pred (B, N, H, ...)``, ``target (B, H, ...)`` -> ``(B, N, H)`` mean squared error."""
    diff = (pred - target[:, None]) ** 2
    return diff.flatten(3).mean(-1)


def psnr(mse: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR in dB from MSE (same shape)."""
    return 10.0 * torch.log10(peak**2 / mse.clamp(min=1e-10))


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity of images ``(..., C, H, W)`` in [0, 1], Gaussian window; returns ``(...)``."""
    lead = pred.shape[:-3]
    c, h, w = pred.shape[-3:]
    x, y = pred.reshape(-1, c, h, w).float(), target.reshape(-1, c, h, w).float()
    coords = torch.arange(window, dtype=torch.float32, device=x.device) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum())[:, None] * (g / g.sum())[None, :]
    kernel = g.expand(c, 1, window, window).contiguous()
    blur = lambda t: F.conv2d(t, kernel, groups=c)  # noqa: E731  (valid padding)
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(-1).reshape(lead)


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


def match_slots(slot_masks: torch.Tensor, true_masks: torch.Tensor) -> torch.Tensor:
    """For each sequence, the slot that best matches each true object (Hungarian on mask IoU).

    Args:
        slot_masks: ``(B, T, Ks, H, W)`` soft slot masks; true_masks: ``(B, T, K, H, W)`` bool.
    Returns: ``(B, K)`` int64 slot index per true object (Ks >= K).
    """
    s = slot_masks.float().flatten(3)  # (B, T, Ks, P)
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
    if slot_masks.dim() != 4 or true_masks.dim() != 4 or slot_masks.shape[0] != true_masks.shape[0] \
            or slot_masks.shape[2:] != true_masks.shape[2:]:
        raise ValueError(f"slot_masks (N, Ks, H, W) and true_masks (N, K, H, W) must agree on N, H, W; "
                         f"got {tuple(slot_masks.shape)} and {tuple(true_masks.shape)}")
    pred = slot_masks.float().argmax(1).flatten(1).cpu().numpy()  # (N, P)
    true_masks = true_masks.bool()
    truth = true_masks.float().argmax(1).flatten(1).cpu().numpy()
    foreground = true_masks.any(1).flatten(1).cpu().numpy()
    scores = np.full(pred.shape[0], np.nan)
    for i in np.flatnonzero(foreground.any(1)):
        fg = foreground[i]
        scores[i] = adjusted_rand_score(truth[i, fg], pred[i, fg])
    return scores


def binding_unchanged(slot_masks: torch.Tensor, true_masks: torch.Tensor) -> np.ndarray:
    """Whether each window keeps every object in one slot throughout.

    Frame by frame, the visible objects are matched to slots (Hungarian on mask IoU); a window's
    binding is unchanged when each object gets the same slot at every step where it is visible.

    Args:
        slot_masks: ``(B, T, Ks, H, W)`` slot masks; true_masks: ``(B, T, K, H, W)`` bool, Ks >= K.
    Returns: ``(B,)`` bool.
    """
    if slot_masks.dim() != 5 or true_masks.dim() != 5 or slot_masks.shape[:2] != true_masks.shape[:2] \
            or slot_masks.shape[3:] != true_masks.shape[3:] or slot_masks.shape[2] < true_masks.shape[2]:
        raise ValueError(f"slot_masks (B, T, Ks, H, W) and true_masks (B, T, K <= Ks, H, W) must agree on "
                         f"B, T, H, W; got {tuple(slot_masks.shape)} and {tuple(true_masks.shape)}")
    s = slot_masks.float().flatten(3)
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
