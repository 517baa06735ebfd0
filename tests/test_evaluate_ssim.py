"""SSIM with the standard settings (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vim_world.metrics import ssim


def _blobs(seed: int) -> np.ndarray:
    """A smooth (3, 32, 32) picture in [0, 1]: four coloured Gaussian blobs and a little noise."""
    r = np.random.default_rng(seed)
    x = np.zeros((3, 32, 32))
    yy, xx = np.mgrid[:32, :32]
    for _ in range(4):
        c, s = r.uniform(0, 32, 2), r.uniform(2, 6)
        x += r.uniform(0, 1, (3, 1, 1)) * np.exp(-((yy - c[0]) ** 2 + (xx - c[1]) ** 2) / (2 * s * s))
    return np.clip(x + r.normal(0, 0.05, x.shape), 0, 1)


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    noisy = np.clip(_blobs(3) + np.random.default_rng(0).normal(0, 0.1, (3, 32, 32)), 0, 1)
    return [(_blobs(1), _blobs(2)), (_blobs(3), noisy), (_blobs(4), _blobs(4) * 0.8)]


# scikit-image 0.26.0: structural_similarity(a, b, channel_axis=0, gaussian_weights=True, sigma=1.5,
# use_sample_covariance=False, data_range=1.0) on _pairs() (the 7x7 valid-window SSIM this package
# used before gave 0.151, 0.555 and 0.954).
SKIMAGE_REFERENCE = (0.11677949989164134, 0.6097673493057669, 0.9540094495453095)


def test_ssim_matches_recorded_scikit_image_values():
    for (a, b), ref in zip(_pairs(), SKIMAGE_REFERENCE):
        assert float(ssim(torch.tensor(a).float(), torch.tensor(b).float())) == pytest.approx(ref, abs=1e-6)


def test_ssim_matches_scikit_image_when_installed():
    metrics = pytest.importorskip("skimage.metrics")
    for a, b in _pairs():
        ref = metrics.structural_similarity(
            a, b, channel_axis=0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
        )
        assert float(ssim(torch.tensor(a), torch.tensor(b))) == pytest.approx(ref, abs=1e-6)


def test_ssim_hand_checked_cases():
    x = torch.rand(2, 5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x), torch.ones(2, 5))
    # constant images: no variance, only the luminance term (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.6, 0.01**2
    got = ssim(torch.full((3, 12, 12), a), torch.full((3, 12, 12), b))
    assert float(got) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)


def test_ssim_rejects_images_smaller_than_the_window_and_shape_mismatch():
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.rand(3, 8, 8), torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="one shape"):
        ssim(torch.rand(3, 16, 16), torch.rand(3, 16, 17))


def test_ssim_in_chunks_of_images_scores_as_in_one_pass(monkeypatch):
    """SSIM is per image: chunks bound its memory and change no score (to float rounding)."""
    import vim_world.metrics as metrics

    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 5, 3, 32, 32, generator=g), torch.rand(2, 5, 3, 32, 32, generator=g)
    whole = ssim(pred, target)
    monkeypatch.setattr(metrics, "SSIM_CHUNK_FLOATS", 3 * 3 * 32 * 32)  # 10 images in chunks of 3
    chunked = ssim(pred, target)
    assert chunked.shape == (2, 5)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
    assert ssim(pred[:0], target[:0]).shape == (0, 5)
