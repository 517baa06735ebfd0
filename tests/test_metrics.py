"""``vim_world.metrics`` against hand-computed cases.

The matching cases are built so that matching each label (or object) to its best partner
independently, by argmax, gives a different answer from the optimal one-to-one (Hungarian)
matching: an argmax implementation fails them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vim_world.metrics import discovery_scores, hungarian_accuracy, match_slots, per_step_mse, psnr, ssim


def labels(confusion: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true label arrays whose confusion matrix (pred rows, true columns) is given."""
    pred, true = [], []
    for p, row in enumerate(confusion):
        for t, count in enumerate(row):
            pred += [p] * count
            true += [t] * count
    return np.array(pred), np.array(true)


def test_hungarian_accuracy_is_one_to_one_where_argmax_is_many_to_one() -> None:
    # pred 0: 3 x true 0; pred 1: 2 x true 0, 1 x true 1. Argmax maps both to true 0 (5/6);
    # one-to-one, the best is 0 -> 0, 1 -> 1: (3 + 1) / 6.
    pred, true = labels([[3, 0], [2, 1]])
    acc, mapping = hungarian_accuracy(pred, true)
    assert acc == pytest.approx(4 / 6, abs=1e-12)
    assert mapping == {0: 0, 1: 1}


def test_hungarian_accuracy_beats_greedy_one_to_one() -> None:
    # Greedy takes the largest cell (pred 0 -> true 0, 3) and leaves pred 1 -> true 1 (0): 3/7.
    # The optimum crosses over: pred 0 -> true 1 (2) and pred 1 -> true 0 (2): 4/7.
    pred, true = labels([[3, 2], [2, 0]])
    acc, mapping = hungarian_accuracy(pred, true)
    assert acc == pytest.approx(4 / 7, abs=1e-12)
    assert mapping == {0: 1, 1: 0}


def test_hungarian_accuracy_with_more_predicted_than_true_labels_and_arbitrary_ids() -> None:
    # Predicted ids 7, 9, 4 against true ids 5, 2: one predicted label stays unmatched.
    pred = np.array([7, 7, 7, 9, 9, 4, 4, 4, 4])
    true = np.array([5, 5, 2, 2, 2, 2, 2, 2, 5])
    acc, mapping = hungarian_accuracy(pred.reshape(3, 3), true.reshape(3, 3))  # any shape, flattened
    assert acc == pytest.approx((2 + 3) / 9, abs=1e-12)  # 7 -> 5 (2 of 3), 4 -> 2 (3 of 4)
    assert mapping == {7: 5, 4: 2}


def test_hungarian_accuracy_of_a_relabelling_is_one() -> None:
    true = np.array([0, 0, 1, 2, 2, 2, 1])
    acc, mapping = hungarian_accuracy((true + 1) % 3 + 10, true)
    assert acc == 1.0 and mapping == {10: 2, 11: 0, 12: 1}
    assert hungarian_accuracy(np.array([4]), np.array([1])) == (1.0, {4: 1})
    assert hungarian_accuracy(np.array([], int), np.array([], int)) == (0.0, {})


def test_discovery_scores_hand_computed() -> None:
    perfect = discovery_scores(np.array([[1, 1], [0, 0]]), np.array([[0, 0], [1, 1]]))
    assert perfect == {"accuracy": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0), "object_steps": 4}
    # Independent labels: mutual information 0; ARI: sum C(n_ij, 2) = 0, expected index
    # 2 * 2 / C(4, 2) = 2/3, maximum (2 + 2) / 2 = 2, so ARI = (0 - 2/3) / (2 - 2/3) = -1/2.
    scores = discovery_scores(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    assert scores["accuracy"] == 0.5
    assert scores["nmi"] == pytest.approx(0.0, abs=1e-12)
    assert scores["ari"] == pytest.approx(-0.5, abs=1e-12)
    # The accuracy is the one-to-one one, not argmax's 5/6.
    pred, true = labels([[3, 0], [2, 1]])
    assert discovery_scores(pred, true)["accuracy"] == pytest.approx(4 / 6, abs=1e-12)


def _masks(rows: list[list[int]], width: int) -> torch.Tensor:
    """``(1, 1, len(rows), 1, width)``: mask r covers the pixels listed in ``rows[r]``."""
    m = torch.zeros(1, 1, len(rows), 1, width)
    for r, pixels in enumerate(rows):
        m[0, 0, r, 0, pixels] = 1.0
    return m


def test_match_slots_is_one_to_one_where_argmax_collides() -> None:
    # Objects A = {0, 1}, B = {2, 3}. IoU (slots x objects):
    #   slot 0 = {0, 1, 2, 3}: A 2/4, B 2/4   <- both objects' argmax
    #   slot 1 = {0, 5}:       A 1/3, B 0
    #   slot 2 = {2, 5, 6, 7}: A 0,   B 1/5
    # One-to-one: A -> 1, B -> 0 scores 1/3 + 1/2 > A -> 0, B -> 2 (1/2 + 1/5).
    slots = _masks([[0, 1, 2, 3], [0, 5], [2, 5, 6, 7]], 8)
    true = _masks([[0, 1], [2, 3]], 8).bool()
    assert match_slots(slots, true).tolist() == [[1, 0]]


@pytest.mark.parametrize(
    "slots, objects, expected",
    [
        # IoU (slot: A, B): 0: 1/5, 1/6; 1: 1/4, 0; 2: 1/2, 1/3. Best: A -> 2, B -> 0 (0.667).
        ([[0, 1, 2, 3, 4], [0, 1, 3, 4], [3, 5]], [[3], [2, 5]], [2, 0]),
        # IoU: 0: 1/2, 0; 1: 2/5, 1/6; 2: 2/3, 1/4. Best: A -> 2, B -> 1 (0.833).
        ([[0, 1, 3, 5], [0, 1, 3, 4, 5], [0, 2, 3]], [[0, 3], [2, 4]], [2, 1]),
    ],
)
def test_match_slots_scores_intersection_over_union(slots, objects, expected) -> None:
    """Cases where scoring by another normalisation (intersection over |s| + |t| + intersection,
    or over the union with every object's mask) picks another assignment."""
    assert match_slots(_masks(slots, 6), _masks(objects, 6).bool()).tolist() == [expected]


def test_match_slots_per_sequence_and_over_time() -> None:
    # Sequence 0 as above; sequence 1 has the slots in another order. Over two steps, the
    # second step repeats the first, so the matching is unchanged.
    a = _masks([[0, 1, 2, 3], [0, 5], [2, 5, 6, 7]], 8)
    b = a[:, :, [2, 0, 1]]
    slots = torch.cat([a, b]).repeat(1, 2, 1, 1, 1)  # (2, 2, 3, 1, 8)
    true = _masks([[0, 1], [2, 3]], 8).bool().expand(2, 2, -1, -1, -1)
    assert match_slots(slots, true).tolist() == [[1, 0], [2, 1]]
    # Soft masks: a slot that covers an object at half weight still wins when it is the only one.
    soft = torch.zeros(1, 1, 2, 1, 4)
    soft[0, 0, 0, 0, :2], soft[0, 0, 1, 0, 2:] = 0.5, 0.5
    assert match_slots(soft, _masks([[2, 3], [0, 1]], 4).bool()).tolist() == [[1, 0]]


def test_per_step_mse_hand_computed() -> None:
    target = torch.tensor([[[0.0, 1.0], [2.0, 2.0]]])  # (B=1, H=2, 2 pixels)
    pred = torch.stack([target, target + torch.tensor([[1.0, 3.0], [0.0, -2.0]])], 1)  # (1, N=2, 2, 2)
    mse = per_step_mse(pred, target)
    assert mse.shape == (1, 2, 2)
    assert mse.tolist() == [[[0.0, 0.0], [5.0, 2.0]]]
    frames = torch.zeros(2, 1, 3, 3, 4, 4)  # (B, N, H, C, H, W): the mean runs over all pixel dims
    frames[1, 0, 2, 0, 0, 0] = 4.0
    assert per_step_mse(frames, torch.zeros(2, 3, 3, 4, 4))[1, 0].tolist() == pytest.approx(
        [0.0, 0.0, 16 / 48], abs=1e-7
    )


def test_psnr_hand_computed() -> None:
    got = psnr(torch.tensor([0.01, 1e-4, 0.0]))
    expected = [20.0, 40.0, 100.0]  # 10 log10(1 / mse); mse is floored at 1e-10
    assert got.tolist() == pytest.approx(expected, abs=1e-4)
    assert psnr(torch.tensor(1e-4), peak=2.0).item() == pytest.approx(10 * math.log10(4e4), abs=1e-4)


def test_ssim_of_identical_images_is_one_and_of_a_negative_is_below_zero() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    assert (ssim(x, 1.0 - x) < 0).all()  # anti-correlated structure


def _ssim_reference(x: np.ndarray, y: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    """SSIM of two ``(H, W)`` images written out window by window (Wang et al. 2004): Gaussian
    weights (the standard 11x11, std 1.5), "valid" windows, C1 = 0.01^2, C2 = 0.03^2 (data range 1), mean over windows."""
    r = np.arange(window) - (window - 1) / 2
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    w /= w.sum()
    values = []
    for i in range(x.shape[0] - window + 1):
        for j in range(x.shape[1] - window + 1):
            a, b = x[i : i + window, j : j + window], y[i : i + window, j : j + window]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb, cov = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum(), (w * (a - ma) * (b - mb)).sum()
            values.append((2 * ma * mb + 1e-4) * (2 * cov + 9e-4) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)))
    return float(np.mean(values))


def test_ssim_matches_a_window_by_window_reference() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 11, 12, generator=g)
    y = (x + 0.3 * torch.rand(2, 1, 11, 12, generator=g)).clamp(0, 1)
    x[1], y[1] = 0.02 * x[1], 0.02 * y[1]  # dark images: the stabilising constants matter
    expected = [_ssim_reference(x[i, 0].double().numpy(), y[i, 0].double().numpy()) for i in range(2)]
    assert ssim(x, y).tolist() == pytest.approx(expected, abs=1e-5)
    # Channels are averaged like pixels: a second, identical-pair channel pulls the mean towards 1.
    two = ssim(torch.cat([x[:1], x[:1]], 1), torch.cat([y[:1], x[:1]], 1)).item()
    assert two == pytest.approx((expected[0] + 1.0) / 2, abs=1e-5)
