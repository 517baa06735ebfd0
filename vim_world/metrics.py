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
