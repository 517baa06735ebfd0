"""vim_world.tensorboard: prediction images and evaluation metrics, read back from the event files."""

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vim_world.tensorboard import LOG_DIR, flatten_metrics, log_metrics, log_predictions, prediction_grid


def _events(run_dir):
    acc = EventAccumulator(str(run_dir / LOG_DIR), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_prediction_grid_of_frames_places_truth_above_prediction():
    truth = torch.zeros(3, 4, 3, 8, 8)
    pred = torch.ones(3, 4, 3, 8, 8)
    grid = prediction_grid(truth, pred, max_sequences=2)
    assert grid.shape == (4 * 10 - 2, 4 * 10 - 2, 3) and grid.dtype == np.uint8
    assert (grid[:8, :8] == 0).all() and (grid[10:18, :8] == 255).all() and (grid[20:28, 10:18] == 0).all()


def test_prediction_grid_draws_states():
    states = np.zeros((1, 2, 2, 13), np.float32)
    states[..., :2] = 0.5
    states[..., 4] = 0.1  # size
    states[..., 6] = 1.0  # hue_cos
    states[..., 8] = 1.0  # first kind
    grid = prediction_grid(states, states, size=32)
    assert grid.shape == (2 * 34 - 2, 2 * 34 - 2, 3)
    assert grid[16, 16].any()  # an object at the centre


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="differ in shape"):
        prediction_grid(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 3, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        prediction_grid(torch.zeros(2, 8, 8), torch.zeros(2, 8, 8))


def test_images_and_metrics_land_in_the_run_directory(tmp_path):
    truth, pred = torch.rand(2, 3, 3, 8, 8), torch.rand(2, 3, 3, 8, 8)
    image = log_predictions(tmp_path, 5, truth, pred)
    written = log_metrics(tmp_path, 5, {"prediction": {"vim": 0.12, "vrnn": 1.0}, "note": "text", "n": 3})
    assert written == {"eval/prediction/vim": 0.12, "eval/prediction/vrnn": 1.0, "eval/n": 3.0}
    acc = _events(tmp_path)
    assert acc.Tags()["images"] == ["predictions"]
    event = acc.Images("predictions")[0]
    assert event.step == 5 and (event.height, event.width) == image.shape[:2]
    assert sorted(acc.Tags()["scalars"]) == sorted(written)
    assert acc.Scalars("eval/prediction/vim")[0].value == pytest.approx(0.12)


def test_flatten_metrics_and_bad_input():
    assert flatten_metrics({"a": {"b": np.float32(1.5)}, "ok": True}, prefix="") == {"a/b": 1.5}
    with pytest.raises(TypeError, match="mapping"):
        log_metrics("unused", 0, [1, 2])
