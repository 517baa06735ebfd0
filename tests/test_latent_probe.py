"""``benchmarks/latent_probe.py``: the state read-out from each object's latent."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import latent_probe  # noqa: E402


def test_the_read_out_finds_features_a_latent_holds_linearly_and_not_others():
    """Latents hold x and y through a random linear map (slot 0 is a background slot) and nothing
    of the velocity, which is drawn apart: R^2 near 1 for x, y and near 0 for vx, vy."""
    g = torch.Generator().manual_seed(0)

    def data(n: int) -> dict[str, torch.Tensor]:
        states = torch.rand(n, 3, 4, generator=g)  # (N, K_obj, x y vx vy)
        mix = torch.randn(2, 6, generator=torch.Generator().manual_seed(1))
        objects = states[..., :2] @ mix + 0.01 * torch.randn(n, 3, 6, generator=g)
        return {"z": torch.cat([torch.zeros(n, 1, 6), objects], 1), "states": states}

    r2 = latent_probe.state_r2(data(2000), data(500), first_slot=1, columns=[0, 1, 2, 3])
    assert r2[0] > 0.99 and r2[1] > 0.99
    assert abs(r2[2]) < 0.02 and abs(r2[3]) < 0.02


def test_nearest_neighbours_find_a_feature_no_linear_map_reads():
    """A hue held on a spiral in the latent (two turns, the radius growing with the hue): least
    squares reads little of it, ten nearest neighbours read nearly all of it."""
    g = torch.Generator().manual_seed(0)

    def data(n: int) -> dict[str, torch.Tensor]:
        hue = torch.rand(n, 2, 1, generator=g)  # (N, K_obj, 1)
        angle, radius = 4 * torch.pi * hue, 1 + hue
        objects = radius * torch.cat([angle.cos(), angle.sin()], -1) + 0.01 * torch.randn(n, 2, 2, generator=g)
        return {"z": objects, "states": hue}

    train, heldout = data(3000), data(500)
    linear = latent_probe.state_r2(train, heldout, first_slot=0, columns=[0])[0]
    nearest = latent_probe.state_r2(train, heldout, first_slot=0, columns=[0], neighbours=10)[0]
    assert linear < 0.3 and nearest > 0.9


def test_unknown_features_are_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        latent_probe.main(["run", "train", "heldout", "--features", "x,speed"])
    assert re.search(r"--features: unknown \['speed'\]", capsys.readouterr().err)
    with pytest.raises(SystemExit):
        latent_probe.main(["run", "train", "heldout", "--neighbours", "-1"])
    assert "--neighbours must be >= 0 (0: off), got -1" in capsys.readouterr().err
