"""The main job's pixel part: GIFs of true against predicted frames and of VIM's slots."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from vim_world.data import collect
from vim_world.pixel_demo import MODELS, films, side_by_side
from vim_world.train import TrainConfig, train


def test_side_by_side_puts_panels_in_a_row_with_gaps_and_enlarges():
    a = np.zeros((3, 4, 5, 3), np.uint8)
    b = np.full((3, 4, 5, 3), 7, np.uint8)
    frames = side_by_side({"a": a, "b": b}, scale=2)
    assert len(frames) == 3 and frames[0].shape == (8, 2 * (5 + 2 + 5), 3)
    assert (frames[1][:, :10] == 0).all() and (frames[1][:, 10:14] == 255).all() and (frames[1][:, 14:] == 7).all()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pix")
    data = collect("VimWorld/Passive-v1", root / "d", episodes=8, episode_len=16, seed=0, num_envs=8, masks=True,
                   env_kwargs={"obs_size": 32})  # fmt: skip
    out = {}
    for name in MODELS:
        cfg = TrainConfig(data=str(data), out=str(root / name), model=name, mode="pixels", steps=2, batch_size=2,
                          seq_len=4, progress=False, device="cpu", holdout=0.0)  # fmt: skip
        out[name] = str(train(cfg).out)
    return out, data


def test_films_show_truth_beside_every_model_and_each_vim_slot(runs):
    paths, data = runs
    html = films(paths, data, "cpu")
    assert html.count("data:image/gif;base64,") == 2
    assert "left to right: truth, vim, vrnn, copy_last" in html
    assert "composite, slot 0" in html and "mask 0" in html
    first = base64.b64decode(html.split("data:image/gif;base64,")[1].split('"')[0])
    gif = Image.open(io.BytesIO(first))
    assert gif.n_frames == 15  # 5 context + 10 imagined steps
    assert gif.size == (3 * (4 * 32 + 3 * 2), 3 * 32)  # four panels, 2-pixel gaps, enlarged 3x
