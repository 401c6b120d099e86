"""Tests of the BAPPS 2AFC score and JND mAP on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from benchmarks.protocols.jnd import jnd_map, jnd_precision_recall, voc_ap
from benchmarks.protocols.two_afc import two_afc_score, two_afc_scores


def reference_ap(distances: list[float], same: list[float]) -> float:
    """Straight-from-the-definition AP with explicit loops (distinct distances only)."""
    order = sorted(range(len(distances)), key=lambda i: distances[i])
    total = sum(same)
    recalls, precisions = [], []
    tp = fp = 0.0
    for i in order:
        tp += same[i]
        fp += 1.0 - same[i]
        recalls.append(tp / total)
        precisions.append(tp / (tp + fp))
    ap, previous_recall = 0.0, 0.0
    for k, r in enumerate(recalls):
        if r != previous_recall:
            ap += (r - previous_recall) * max(precisions[k:])
            previous_recall = r
    return ap


def test_two_afc_hand_example() -> None:
    d0 = [1.0, 2.0, 3.0, 0.5]
    d1 = [2.0, 1.0, 3.0, 0.1]
    h = [0.2, 0.7, 0.4, 1.0]
    # prefers p0 -> 1-h = 0.8; prefers p1 -> h = 0.7; tie -> 0.5; prefers p1 -> 1.0
    np.testing.assert_allclose(two_afc_scores(d0, d1, h), [0.8, 0.7, 0.5, 1.0])
    assert two_afc_score(d0, d1, h) == pytest.approx(3.0 / 4.0)


def test_two_afc_similarity_direction_and_tensors() -> None:
    rng = np.random.default_rng(0)
    d0, d1, h = rng.uniform(size=50), rng.uniform(size=50), rng.uniform(size=50)
    as_distance = two_afc_score(d0, d1, h)
    assert two_afc_score(-d0, -d1, h, lower_is_better=False) == pytest.approx(as_distance)
    assert two_afc_score(d0, d1, h, lower_is_better=False) == pytest.approx(1.0 - as_distance)
    # LPIPS-style (N, 1, 1, 1) tensors are flattened.
    t = [torch.as_tensor(a).reshape(-1, 1, 1, 1) for a in (d0, d1, h)]
    assert two_afc_score(*t) == pytest.approx(as_distance)


def test_two_afc_validation() -> None:
    with pytest.raises(ValueError, match="judge must lie in"):
        two_afc_score([1.0], [2.0], [1.5])
    with pytest.raises(ValueError, match="same size"):
        two_afc_score([1.0, 2.0], [2.0], [0.5])
    with pytest.raises(TypeError, match="lower_is_better"):
        two_afc_score([1.0], [2.0], [0.5], lower_is_better="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="d1 contains NaN"):
        two_afc_score([1.0], [np.nan], [0.5])


def test_jnd_hand_example() -> None:
    d = [0.1, 0.4, 0.2, 0.3]
    same = [1.0, 0.0, 0.5, 0.5]
    # ranked: same 1, .5, .5, 0 -> precision 1, .75, 2/3, .5; recall .5, .75, 1, 1
    recall, precision = jnd_precision_recall(d, same)
    np.testing.assert_allclose(recall, [0.5, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(precision, [1.0, 0.75, 2.0 / 3.0, 0.5])
    # AP = .5*1 + .25*.75 + .25*(2/3)
    assert jnd_map(d, same) == pytest.approx(0.5 + 0.1875 + 0.25 * 2.0 / 3.0)


def test_jnd_extremes_and_direction() -> None:
    assert jnd_map([1, 2, 3, 4], [1, 1, 0, 0]) == pytest.approx(1.0)
    # worst order: precision 0, 0, 1/3, 1/2 at recall 0, 0, .5, 1 -> envelope .5 over the whole recall range
    assert jnd_map([1, 2, 3, 4], [0, 0, 1, 1]) == pytest.approx(0.5)
    rng = np.random.default_rng(3)
    d, same = rng.permutation(40).astype(float), rng.uniform(size=40)
    assert jnd_map(-d, same, lower_is_better=False) == pytest.approx(jnd_map(d, same))
    assert jnd_map(d, same) == pytest.approx(reference_ap(d.tolist(), same.tolist()))


def test_jnd_ties_keep_input_order() -> None:
    assert jnd_map([1.0, 1.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert jnd_map([1.0, 1.0], [0.0, 1.0]) == pytest.approx(0.5)


def test_voc_ap_sentinels() -> None:
    # a single point at recall .5 with precision 1: area .5 (the (1, 0) sentinel closes the curve)
    assert voc_ap([0.5], [1.0]) == pytest.approx(0.5)
    # precision envelope: the later, higher precision lifts the earlier point
    assert voc_ap([0.5, 1.0], [0.2, 0.8]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="same size"):
        voc_ap([0.5], [1.0, 0.5])


def test_jnd_validation() -> None:
    with pytest.raises(ValueError, match="same sums to 0"):
        jnd_map([1.0, 2.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="same must lie in"):
        jnd_map([1.0, 2.0], [0.0, 2.0])
    with pytest.raises(ValueError, match="distances and same must have the same size"):
        jnd_map([1.0, 2.0], [1.0])
    with pytest.raises(TypeError, match="lower_is_better"):
        jnd_map([1.0], [1.0], lower_is_better=0)  # type: ignore[arg-type]


class _FakeLoader:
    """Stands in for LPIPS' CustomDatasetDataLoader: ``load_data()`` yields batches of dicts."""

    def __init__(self, batches: list[dict[str, torch.Tensor]]) -> None:
        self.batches = batches

    def load_data(self) -> list[dict[str, torch.Tensor]]:
        return self.batches


def test_agrees_with_upstream_lpips_scoring() -> None:
    lpips = pytest.importorskip("lpips")
    rng = np.random.default_rng(11)
    n = 120
    d0 = rng.uniform(size=n)
    d1 = np.where(rng.uniform(size=n) < 0.1, d0, rng.uniform(size=n))  # some ties
    h = rng.integers(0, 6, size=n) / 5.0
    batches = [
        {"ref": torch.zeros(k.size), "p0": torch.as_tensor(a), "p1": torch.as_tensor(b), "judge": torch.as_tensor(k)}
        for a, b, k in zip(np.split(d0, 4), np.split(d1, 4), np.split(h, 4), strict=True)
    ]
    upstream_2afc, _ = lpips.score_2afc_dataset(_FakeLoader(batches), lambda ref, p: p)
    assert two_afc_score(d0, d1, h) == pytest.approx(upstream_2afc, abs=1e-12)

    d = rng.permutation(n) / n + rng.uniform(0, 1e-3, n)  # distinct distances
    same = rng.uniform(size=n)
    batches = [
        {"p0": torch.as_tensor(a), "p1": torch.zeros(a.size), "same": torch.as_tensor(s)}
        for a, s in zip(np.split(d, 4), np.split(same, 4), strict=True)
    ]
    upstream_map, _ = lpips.score_jnd_dataset(_FakeLoader(batches), lambda p0, p1: p0)
    assert jnd_map(d, same) == pytest.approx(upstream_map, abs=1e-12)
    assert voc_ap([0.2, 0.5, 0.9], [0.9, 0.4, 0.6]) == pytest.approx(
        lpips.voc_ap(np.array([0.2, 0.5, 0.9]), np.array([0.9, 0.4, 0.6]))
    )
