"""Figures for evaluation reports: predicted futures as pictures, and module-selection timelines."""

from __future__ import annotations

import io

import numpy as np
import torch

from vim_world.envs import STATE_FEATURES
from vim_world.envs.mechanisms import SIZE_MAX, SIZE_MIN
from vim_world.envs.raster import render

_COL = {name: i for i, name in enumerate(STATE_FEATURES)}


HIGHLIGHT = np.array([255, 255, 0], np.uint8)
"""Colour of the box drawn around a marked object (e.g. the one a counterfactual intervenes on)."""


def states_to_frames(states: np.ndarray, res: int = 64, highlight: int | None = None) -> np.ndarray:
    """Draw state features ``(..., K, S)`` with the env's rasteriser -> ``(..., res, res, 3)`` uint8.

    ``highlight``: index of an object to mark with a yellow box in every frame.
    """
    lead, (k, s) = states.shape[:-2], states.shape[-2:]
    if highlight is not None and not 0 <= highlight < k:
        raise ValueError(f"highlight must be an object index in [0, {k}), got {highlight!r}")
    x = states.reshape(-1, k, s).astype(np.float64)
    pos = np.clip(x[..., [_COL["x"], _COL["y"]]], 0.0, 1.0)
    size = np.clip(x[..., _COL["size"]], SIZE_MIN, SIZE_MAX)
    hue = np.mod(np.arctan2(x[..., _COL["hue_sin"]], x[..., _COL["hue_cos"]]) / (2 * np.pi), 1.0)
    kind = np.argmax(x[..., _COL["is_circle"] :], axis=-1)
    frames = render(pos, size, hue, kind, res)
    if highlight is not None:
        for frame, p, r in zip(frames, pos[:, highlight], size[:, highlight]):
            _box(frame, p * res, int(np.ceil(r * res * 1.3)) + 1)
    return frames.reshape(*lead, res, res, 3)


def _box(frame: np.ndarray, centre: np.ndarray, half: int) -> None:
    """Draw a one-pixel square outline of half-side ``half`` around ``centre`` (x, y), in place."""
    res = frame.shape[0]
    cx, cy = int(centre[0]), int(centre[1])
    x0, x1 = max(cx - half, 0), min(cx + half, res - 1)
    y0, y1 = max(cy - half, 0), min(cy + half, res - 1)
    frame[y0 : y1 + 1, [x0, x1]] = HIGHLIGHT
    frame[[y0, y1], x0 : x1 + 1] = HIGHLIGHT


def to_frames(obs: torch.Tensor, res: int = 64, highlight: int | None = None) -> np.ndarray:
    """Model observations -> uint8 pictures: pixels ``(..., C, H, W)`` in [0, 1] or states
    ``(..., K, S)`` (``highlight``: an object to mark with a box, states only)."""
    x = obs.detach().float().cpu()
    if x.shape[-1] == len(STATE_FEATURES):
        return states_to_frames(x.numpy(), res, highlight)
    if highlight is not None:
        raise ValueError("highlight needs state observations (..., K, S); pixel frames have no object index")
    return (x.clamp(0, 1).movedim(-3, -1).numpy() * 255).round().astype(np.uint8)


def decomposition_rows(decoded, with_masks: bool = False) -> dict[str, np.ndarray]:
    """Frames of a decoding ``(T, ...)`` by part: the composite, then each slot's alpha-masked
    rendering (pixels; with ``with_masks`` each slot's mask too) or each object drawn alone
    (states); ``(T, H, W, 3)`` uint8 per row."""
    rows = {"composite": to_frames(decoded.obs)}
    if decoded.masks is None:
        return rows | {f"object {k}": to_frames(decoded.obs[:, k : k + 1]) for k in range(decoded.obs.shape[1])}
    slots = range(decoded.masks.shape[1])
    rows |= {f"slot {k}": to_frames(decoded.rgb[:, k] * decoded.masks[:, k, None]) for k in slots}
    if with_masks:
        rows |= {f"mask {k}": to_frames(decoded.masks[:, k, None].expand_as(decoded.rgb[:, k])) for k in slots}
    return rows


def strip(rows: dict[str, np.ndarray], scale: int = 2) -> bytes:
    """A PNG with one labelled row of frames ``(T, H, W, 3)`` per entry."""
    from PIL import Image, ImageDraw

    label_w = 90
    t, h, w, _ = next(iter(rows.values())).shape
    canvas = Image.new("RGB", (label_w + t * (w + 2), len(rows) * (h + 2)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (name, frames) in enumerate(rows.items()):
        draw.text((4, r * (h + 2) + h // 2 - 5), name, fill="black")
        for i, f in enumerate(frames):
            canvas.paste(Image.fromarray(f), (label_w + i * (w + 2), r * (h + 2)))
    canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def timeline(inferred: np.ndarray, true: np.ndarray, mapping: dict[int, int], names: list[str]) -> bytes:
    """Which module drives which object over time, against the true mechanism: for each object a
    "true" row above a "VIM" row, one coloured cell per step (grey: a module matched to nothing).

    Args:
        inferred: ``(T, K)`` module ids; true: ``(T, K)`` mechanism ids; mapping: module -> mechanism
            (Hungarian); names: mechanism names by id.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lookup = np.vectorize(lambda m: mapping.get(int(m), -1), otypes=[np.int64])
    mapped = lookup(inferred) if inferred.size else inferred.astype(np.int64)
    ids = sorted((set(np.unique(true)) | set(np.unique(mapped))) - {-1})
    cmap = plt.get_cmap("tab10")
    palette = np.array([cmap(i % 10)[:3] for i in range(len(ids))] + [(0.8, 0.8, 0.8)])  # last: unmatched
    index = {v: i for i, v in enumerate(ids)}
    k = true.shape[1]
    rows = np.stack([np.stack([true[:, o], mapped[:, o]]) for o in range(k)]).reshape(2 * k, -1)  # (2K, T)
    picture = palette[np.vectorize(lambda v: index.get(int(v), len(ids)), otypes=[np.int64])(rows)]
    height = 0.4 * k + 1.0
    fig, ax = plt.subplots(figsize=(7, height), dpi=90)
    ax.imshow(picture, aspect="auto", interpolation="nearest")
    ax.set_yticks(np.arange(2 * k), [f"obj {o} {who}" for o in range(k) for who in ("true", "VIM")], fontsize=6)
    ax.hlines(np.arange(1.5, 2 * k - 1, 2), -0.5, rows.shape[1] - 0.5, color="white", lw=2)
    ax.set_xlabel("step")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[i]) for i in range(len(ids))]
    fig.legend(handles, [names[i] for i in ids], loc="upper center", ncol=min(len(ids), 6), fontsize=7)
    fig.subplots_adjust(left=0.14, right=0.98, top=1 - 0.4 / height, bottom=0.45 / height)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
