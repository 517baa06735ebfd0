"""The batched rasteriser against a slow, obviously-correct reference renderer.

``raster.render`` writes every covered pixel of every object in one scatter and relies on numpy
applying fancy assignment in order (a later object wins a pixel). The reference below loops over
worlds and objects and paints each object's full-frame boolean mask on top of the previous ones.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from vim_world.envs import KINDS, raster
from vim_world.envs.mechanisms import SIZE_MAX, SIZE_MIN


def shape_mask(u: np.ndarray, v: np.ndarray, kind: str) -> np.ndarray:
    """The shapes, in units of the radius (the spec the rasteriser implements)."""
    if kind == "square":
        return (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    if kind == "triangle":  # apex up, base at v = 0.85
        return (v <= 0.85) & (2.0 * np.abs(u) <= v + 1.0)
    if kind == "diamond":
        return np.abs(u) + np.abs(v) <= 1.1
    return u * u + v * v <= 1.0  # circle, zone


def reference_mask(pos: np.ndarray, size: float, kind: int, res: int) -> np.ndarray:
    """``(res, res)`` bool: pixels whose centre lies in the object (same float32 arithmetic)."""
    centres = np.arange(res) + 0.5
    scale = np.float32(1.0 / (size * res))
    u = (centres - pos[0] * res).astype(np.float32) * scale  # across (x)
    v = (centres - pos[1] * res).astype(np.float32) * scale  # down (y)
    return shape_mask(u[None, :], v[:, None], KINDS[kind])


def reference_render(pos, size, hue, kind, res) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(N, res, res, 3)`` and the owner of each pixel ``(N, res, res)`` (-1: none)."""
    n, k = size.shape
    colours = raster.object_colors(hue, kind)
    frames = np.zeros((n, res, res, 3), np.uint8)
    owner = np.full((n, res, res), -1)
    for w in range(n):
        for i in range(k):  # later objects on top
            mask = reference_mask(pos[w, i], size[w, i], kind[w, i], res)
            frames[w][mask] = colours[w, i]
            owner[w][mask] = i
    return frames, owner


@st.composite
def scenes(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Random scenes with many overlaps: objects clustered or spread, some reaching past the
    frame's edge, every kind, all radii."""
    n = draw(st.integers(1, 3))
    k = draw(st.integers(1, 8))
    res = draw(st.sampled_from([32, 33, 64, 100, 256]))
    unit = st.floats(0.0, 1.0, allow_subnormal=False)

    def arrays(dtype: type, shape: tuple[int, ...], elements: st.SearchStrategy) -> np.ndarray:
        return draw(hnp.arrays(dtype, shape, elements=elements, fill=st.nothing()))  # no constant fill

    lo, hi = draw(st.sampled_from([(0.4, 0.6), (0.2, 0.8), (0.0, 1.0)]))
    pos = lo + (hi - lo) * arrays(np.float64, (n, k, 2), unit)
    size = arrays(np.float64, (n, k), st.one_of(st.floats(SIZE_MIN, SIZE_MAX), st.just(SIZE_MAX)))
    hue = arrays(np.float64, (n, k), st.floats(0.0, 1.0, exclude_max=True))
    kind = arrays(np.int64, (n, k), st.integers(0, len(KINDS) - 1))
    return pos, size, hue, kind, res


@settings(max_examples=60)
@given(scenes())
def test_render_matches_reference(scene: tuple[np.ndarray, ...]) -> None:
    pos, size, hue, kind, res = scene
    expected, _ = reference_render(pos, size, hue, kind, res)
    np.testing.assert_array_equal(raster.render(pos, size, hue, kind, res), expected)


@settings(max_examples=40)
@given(scenes())
def test_visible_masks_match_reference(scene: tuple[np.ndarray, ...]) -> None:
    pos, size, hue, kind, res = scene
    frames, owner = reference_render(pos, size, hue, kind, res)
    masks = raster.visible_masks(pos, size, kind, res)
    k = size.shape[1]
    assert masks.shape == (size.shape[0], k, res, res) and masks.dtype == bool
    np.testing.assert_array_equal(masks, owner[:, None] == np.arange(k)[None, :, None, None])
    # Colours are never black (value 1 or the grey zone), so drawn pixels are exactly the union.
    np.testing.assert_array_equal(masks.any(1), frames.any(-1))


def test_later_object_on_top() -> None:
    """Two objects on the same spot: the higher index owns every shared pixel."""
    pos = np.full((1, 2, 2), 0.5)
    size = np.array([[0.1, 0.05]])
    hue = np.array([[0.0, 0.5]])
    kind = np.zeros((1, 2), np.int64)
    frame = raster.render(pos, size, hue, kind, 64)[0]
    colours = raster.object_colors(hue, kind)[0]
    np.testing.assert_array_equal(frame[32, 32], colours[1])
    np.testing.assert_array_equal(frame[32, 32 - 5], colours[0])
    # Reversed order: the big object is drawn last and hides the small one entirely.
    swapped = raster.render(pos, size[:, ::-1], hue[:, ::-1], kind, 64)[0]
    np.testing.assert_array_equal(swapped[32, 32], colours[0])
    assert not (swapped == colours[1]).all(-1).any()


def test_diamond_tips_are_drawn() -> None:
    """The diamond reaches 1.1 radii from its centre; the largest one at 256 px keeps its tips."""
    pos, size, kind = np.full((1, 1, 2), 0.5), np.array([[SIZE_MAX]]), np.array([[KINDS.index("diamond")]])
    frame = raster.render(pos, size, np.zeros((1, 1)), kind, 256)[0]
    cols = np.flatnonzero(frame.any(-1).any(0))
    reach = 1.1 * SIZE_MAX * 256
    assert cols.min() <= 128 - reach + 1 and cols.max() >= 128 + reach - 2


def test_hue_to_rgb_primaries() -> None:
    rgb = raster.hue_to_rgb(np.array([0.0, 1 / 3, 2 / 3]), saturation=1.0)
    np.testing.assert_array_equal(rgb, [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
