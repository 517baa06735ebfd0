"""Batched rasteriser: object states -> uint8 frames and per-object masks, in numpy.

Each object is tested against a square patch of pixels around its centre (the patch side follows
the largest object's reach, :data:`EXTENT` radii), then the covered pixels of all worlds are written into the frames in one
scatter, in object order (painter's algorithm: a higher object index is drawn on top). No Python
loop over worlds or objects; one over the few object kinds present.
"""

from __future__ import annotations

import numpy as np

from .config import KINDS

_SQUARE, _TRIANGLE, _DIAMOND, _ZONE = (KINDS.index(k) for k in ("square", "triangle", "diamond", "zone"))
ZONE_RGB = np.array([70, 70, 70], np.uint8)
EXTENT = 1.1
"""Largest reach of any shape from its centre, in units of the radius (the diamond's tips)."""
"""Colour of the goal zone."""


def hue_to_rgb(hue: np.ndarray, saturation: float = 0.85, value: float = 1.0) -> np.ndarray:
    """HSV -> RGB for ``(...)`` hues in [0, 1); returns ``(..., 3)`` uint8."""
    h6 = (hue % 1.0) * 6.0
    k = (np.array([5.0, 3.0, 1.0]) + h6[..., None]) % 6.0
    rgb = value - value * saturation * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return np.round(rgb * 255).astype(np.uint8)


def object_colors(hue: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """``(N, K)`` hues and kinds -> ``(N, K, 3)`` uint8 colours (the goal zone is grey)."""
    return np.where((kind == _ZONE)[..., None], ZONE_RGB, hue_to_rgb(hue))


def _shape(u: np.ndarray, v: np.ndarray, kind: int) -> np.ndarray:
    """Shape test in units of the radius, ``u: (B, 1, P)`` across, ``v: (B, P, 1)`` down."""
    if kind == _SQUARE:
        return (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    if kind == _TRIANGLE:
        return (v <= 0.85) & (2.0 * np.abs(u) <= v + 1.0)
    if kind == _DIAMOND:
        return np.abs(u) + np.abs(v) <= 1.1
    return u * u + v * v <= 1.0  # circle and zone


def covered_pixels(pos: np.ndarray, size: np.ndarray, kind: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray]:
    """The pixels each object covers.

    Args:
        pos: ``(N, K, 2)`` centres in the unit square; size, kind: ``(N, K)``; res: frame side.
    Returns:
        ``flat``: ``(C,)`` index into ``(N * res * res)`` of every covered pixel, ordered by
        world, then object, then row; ``counts``: ``(N * K,)`` pixels covered by each object.
    """
    n, k = size.shape
    half = int(np.ceil(EXTENT * float(size.max(initial=0.0)) * res)) + 1
    side = 2 * half + 1
    offsets = np.arange(-half, half + 1)
    centre = np.floor(pos * res).astype(np.int64)
    px = centre[..., 0, None] + offsets  # (N, K, P)
    py = centre[..., 1, None] + offsets
    scale = (1.0 / (size * res)).astype(np.float32)[..., None]
    u = ((px + 0.5) - pos[..., 0, None] * res).astype(np.float32) * scale
    v = ((py + 0.5) - pos[..., 1, None] * res).astype(np.float32) * scale
    u[(px < 0) | (px >= res)] = np.inf  # outside the frame: never covered
    v[(py < 0) | (py >= res)] = np.inf
    mask = np.empty((n, k, side, side), bool)
    for kind_id in np.unique(kind):
        sel = kind == kind_id
        mask[sel] = _shape(u[sel][:, None, :], v[sel][:, :, None], int(kind_id))
    index = np.int32 if n * res * res < 2**31 else np.int64  # int32 halves the memory traffic
    row_start = ((np.arange(n)[:, None, None] * res + py) * res).astype(index)
    grid = row_start[..., None] + px.astype(index)[:, :, None, :]  # (N, K, P, P) pixel index
    flat = grid.reshape(-1)[np.flatnonzero(mask)]
    return flat, mask.reshape(n * k, -1).sum(1)


def render(pos: np.ndarray, size: np.ndarray, hue: np.ndarray, kind: np.ndarray, res: int) -> np.ndarray:
    """Draw N worlds: arrays as in :func:`covered_pixels`, hue ``(N, K)``.

    Returns: ``(N, res, res, 3)`` uint8 frames on a black background.
    """
    n = size.shape[0]
    frames = np.zeros((n * res * res, 3), np.uint8)
    flat, counts = covered_pixels(pos, size, kind, res)
    colors = np.ascontiguousarray(object_colors(hue, kind).reshape(-1, 3))
    # One 3-byte item per pixel makes the scatter a 1-D copy. It runs in order, so for a pixel
    # covered twice the later (higher-index) object wins.
    frames.view("V3")[:, 0][flat] = np.repeat(colors.view("V3")[:, 0], counts)
    return frames.reshape(n, res, res, 3)


def visible_masks(pos: np.ndarray, size: np.ndarray, kind: np.ndarray, res: int) -> np.ndarray:
    """``(N, K, res, res)`` bool: the pixels where each object is visible (after occlusion)."""
    n, k = size.shape
    visible = np.full(n * res * res, -1, np.int64)
    flat, counts = covered_pixels(pos, size, kind, res)
    visible[flat] = np.repeat(np.tile(np.arange(k), n), counts)
    return visible.reshape(n, 1, res, res) == np.arange(k)[None, :, None, None]
