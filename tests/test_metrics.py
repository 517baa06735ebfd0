"""``vim_world.metrics`` against hand-computed cases.

The matching cases are built so that matching each label (or object) to its best partner
independently, by argmax, gives a different answer from the optimal one-to-one (Hungarian)
matching: an argmax implementation fails them.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vim_world.metrics import (
    discovery_scores,
    finite_row_means,
    hungarian_accuracy,
    match_slots,
    per_step_mse,
    psnr,
    ssim,
)


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
    # Objects A = {0, 1}, B = {2, 3}; the slots partition the pixels. IoU (slots x objects):
    #   slot 0 = {0, 1, 2}:       A 2/3, B 1/3   <- both objects' best slot
    #   slot 1 = {3, 4, 5, 6, 7}: A 0,   B 1/6
    # One-to-one: A -> 0, B -> 1 (2/3 + 1/6) beats A -> 1, B -> 0 (0 + 1/3).
    slots = _masks([[0, 1, 2], [3, 4, 5, 6, 7]], 8)
    true = _masks([[0, 1], [2, 3]], 8).bool()
    assert match_slots(slots, true).tolist() == [[0, 1]]


def test_match_slots_reads_hard_masks_so_a_background_share_does_not_swamp_an_object() -> None:
    # Object A = {0}. Slot 0 owns A (0.6) and the background (0.9 per pixel); slot 1 has the rest.
    # Soft IoU would pick slot 1 (0.4 / 1.7 against 0.6 / 7.3); each pixel's most likely slot is 0.
    soft = torch.zeros(1, 1, 2, 1, 8)
    soft[0, 0, 0, 0] = torch.tensor([0.6] + [0.9] * 7)
    soft[0, 0, 1, 0] = 1.0 - soft[0, 0, 0, 0]
    assert match_slots(soft, _masks([[0]], 8).bool()).tolist() == [[0]]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), num_slots=st.integers(2, 4), num_objects=st.integers(1, 2))
def test_match_slots_maximises_the_summed_iou_of_each_pixels_most_likely_slot(seed, num_slots, num_objects) -> None:
    """Against brute force over assignments, with IoU computed on Python sets."""
    g = torch.Generator().manual_seed(seed)
    pixels = 9
    soft = torch.rand(1, 2, num_slots, 1, pixels, generator=g).softmax(2)  # two steps
    owner = torch.randint(0, num_objects + 1, (1, 2, pixels), generator=g)  # num_objects = background
    true = torch.stack([owner == k for k in range(num_objects)], 2)[:, :, :, None]  # (1, 2, K, 1, P)
    argmax = soft.argmax(2)[0, :, 0]  # (2, P)
    slot_sets = [{(t, p) for t in range(2) for p in range(pixels) if argmax[t, p] == s} for s in range(num_slots)]
    object_sets = [{(t, p) for t in range(2) for p in range(pixels) if owner[0, t, p] == k} for k in range(num_objects)]

    def iou(a: set, b: set) -> float:
        return len(a & b) / max(len(a | b), 1)

    scores = {
        perm: sum(iou(slot_sets[s], object_sets[k]) for k, s in enumerate(perm))
        for perm in itertools.permutations(range(num_slots), num_objects)
    }
    got = tuple(match_slots(soft, true)[0].tolist())
    assert scores[got] == pytest.approx(max(scores.values()))


def test_match_slots_per_sequence_and_over_time() -> None:
    # Sequence 0 as in the first test; sequence 1 has the slots in another order. Over two steps,
    # the second step repeats the first, so the matching is unchanged.
    a = _masks([[0, 1, 2], [3, 4, 5, 6, 7], []], 8)
    b = a[:, :, [2, 0, 1]]
    slots = torch.cat([a, b]).repeat(1, 2, 1, 1, 1)  # (2, 2, 3, 1, 8)
    true = _masks([[0, 1], [2, 3]], 8).bool().expand(2, 2, -1, -1, -1)
    assert match_slots(slots, true).tolist() == [[0, 1], [1, 2]]
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


@pytest.mark.filterwarnings("error")
def test_finite_row_means_skip_nans_and_give_nan_for_an_empty_row_without_warning() -> None:
    values = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [np.inf, 2.0, 4.0]])
    means = finite_row_means(values)
    np.testing.assert_array_equal(means[[0, 2]], [2.0, 3.0])
    assert np.isnan(means[1])
