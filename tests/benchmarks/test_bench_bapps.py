"""Tests of the BAPPS adapter on generated official-format trees with a planted metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from benchmarks.datasets.bapps import (
    JND_SUBSETS,
    TWOAFC_SUBSETS,
    JNDDataset,
    TwoAFCDataset,
    collect_2afc_distances,
    collect_jnd_distances,
    load_bapps_2afc,
    load_bapps_jnd,
    make_bapps_loader,
)
from benchmarks.protocols.jnd import jnd_map
from benchmarks.protocols.two_afc import two_afc_score
from tests.fixtures.planted import BappsFixture, make_bapps_tree, planted_distance


def expected_2afc(d0: np.ndarray, d1: np.ndarray, judge: np.ndarray) -> float:
    """2AFC from its definition, one triplet at a time."""
    total = 0.0
    for a, b, h in zip(d0, d1, judge, strict=True):
        total += (1.0 - h) if a < b else h if b < a else 0.5
    return total / len(d0)


def expected_map(d: np.ndarray, same: np.ndarray) -> float:
    """VOC AP of retrieving 'same' pairs by increasing distance, explicit loops (distinct distances)."""
    order = sorted(range(len(d)), key=lambda i: d[i])
    tp = fp = 0.0
    points = []
    for i in order:
        tp += same[i]
        fp += 1.0 - same[i]
        points.append((tp / same.sum(), tp / (tp + fp)))
    ap, last_recall = 0.0, 0.0
    for k, (r, _) in enumerate(points):
        if r > last_recall:
            ap += (r - last_recall) * max(p for _, p in points[k:])
            last_recall = r
    return ap


def test_official_tree_is_found_completely(bapps_tree: BappsFixture) -> None:
    index = load_bapps_2afc(bapps_tree.root)
    assert index.found_subsets == TWOAFC_SUBSETS
    assert index.missing_subsets == ()
    assert len(index) == 8 * len(TWOAFC_SUBSETS)
    assert index.incomplete == dict.fromkeys(TWOAFC_SUBSETS, 2)
    summary = index.summary()
    assert "6/6 subsets found" in summary and "missing: none" in summary
    assert "2 incomplete skipped" in summary
    record = index.records["cnn"][0]
    root = Path(bapps_tree.root)
    assert record.ref_path == root / "dataset/2afc/val/cnn/ref/000000.png"
    assert record.p1_path == root / "dataset/2afc/val/cnn/p1/000000.png"
    assert record.judge == pytest.approx(float(np.load(root / "dataset/2afc/val/cnn/judge/000000.npy")[0]))

    jnd = load_bapps_jnd(bapps_tree.root)
    assert jnd.found_subsets == JND_SUBSETS
    assert len(jnd) == 8 * len(JND_SUBSETS)
    # the ``dataset`` folder itself is accepted as root (pyiqa's dataroot)
    assert len(load_bapps_jnd(root / "dataset")) == len(jnd)


@pytest.mark.parametrize("subset", ["traditional", "frameinterp"])
def test_planted_metric_2afc_score(bapps_tree: BappsFixture, subset: str) -> None:
    index = load_bapps_2afc(bapps_tree.root, subsets=[subset])
    loader = make_bapps_loader(TwoAFCDataset(index), batch_size=3)
    d0, d1, judge = collect_2afc_distances(loader, planted_distance)
    planted = bapps_tree.twoafc[subset]
    np.testing.assert_array_equal(d0, planted["d0"])
    np.testing.assert_array_equal(d1, planted["d1"])
    np.testing.assert_allclose(judge, planted["judge"])
    assert np.any(d0 == d1)  # the tie branch is exercised
    score = two_afc_score(d0, d1, judge)
    assert score == pytest.approx(expected_2afc(planted["d0"], planted["d1"], planted["judge"]))
    # a similarity (negated distance) gives the same score when declared as such
    neg_d0, neg_d1, _ = collect_2afc_distances(loader, lambda x, y: -planted_distance(x, y))
    assert two_afc_score(neg_d0, neg_d1, judge, lower_is_better=False) == pytest.approx(score)


@pytest.mark.parametrize("subset", JND_SUBSETS)
def test_planted_metric_jnd_map(bapps_tree: BappsFixture, subset: str) -> None:
    index = load_bapps_jnd(bapps_tree.root, subsets=[subset])
    loader = make_bapps_loader(JNDDataset(index), batch_size=5)
    d, same = collect_jnd_distances(loader, planted_distance)
    planted = bapps_tree.jnd[subset]
    np.testing.assert_array_equal(d, planted["d"])
    np.testing.assert_allclose(same, planted["same"])
    assert jnd_map(d, same) == pytest.approx(expected_map(planted["d"], planted["same"]))


def test_loader_with_workers_and_item_format(bapps_tree: BappsFixture) -> None:
    dataset = TwoAFCDataset(load_bapps_2afc(bapps_tree.root, subsets=["color", "deblur"]))
    assert len(dataset) == 16
    ref, p0, p1, judge, index = dataset[3]
    for image in (ref, p0, p1):
        assert image.shape == (3, 64, 64) and image.dtype == torch.float32
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert judge.ndim == 0 and index == 3
    batches = list(make_bapps_loader(dataset, batch_size=6, num_workers=2))
    assert [b[0].shape[0] for b in batches] == [6, 6, 4]
    assert torch.equal(torch.cat([b[4] for b in batches]), torch.arange(16))
    assert torch.equal(batches[0][0][3], ref)  # workers return the same data, in order
    signed = TwoAFCDataset(dataset.records, minus_one_one=True)[3][0]
    torch.testing.assert_close(signed, ref * 2 - 1)


def test_partial_tree_reports_missing_subsets(tmp_path: Path) -> None:
    fixture = make_bapps_tree(tmp_path, n_per_subset=3, twoafc_subsets=["cnn", "color"], jnd_subsets=["cnn"])
    index = load_bapps_2afc(fixture.root)
    assert index.found_subsets == ("cnn", "color")
    assert index.missing_subsets == ("traditional", "superres", "deblur", "frameinterp")
    assert "2/6 subsets found" in index.summary()
    assert "missing: traditional, superres, deblur, frameinterp" in index.summary()
    jnd = load_bapps_jnd(fixture.root)
    assert jnd.found_subsets == ("cnn",) and jnd.missing_subsets == ("traditional",)
    with pytest.raises(FileNotFoundError, match="none of the BAPPS 2afc/val subsets"):
        load_bapps_2afc(fixture.root, subsets=["traditional"])
    # a subset folder lacking its judge/ folder counts as missing
    (tmp_path / "dataset/2afc/val/color/judge").rename(tmp_path / "dataset/2afc/val/color/judge_old")
    index = load_bapps_2afc(fixture.root)
    assert index.found_subsets == ("cnn",) and "color" in index.missing_subsets


def test_larger_patches_are_resized_to_64(tmp_path: Path) -> None:
    fixture = make_bapps_tree(tmp_path, n_per_subset=4, twoafc_subsets=["superres"], jnd_subsets=[], size=96)
    dataset = TwoAFCDataset(load_bapps_2afc(fixture.root))
    assert dataset[0][0].shape == (3, 64, 64)
    d0, d1, _ = collect_2afc_distances(make_bapps_loader(dataset, batch_size=4), planted_distance)
    np.testing.assert_array_equal(d0, fixture.twoafc["superres"]["d0"])
    np.testing.assert_array_equal(d1, fixture.twoafc["superres"]["d1"])
    assert TwoAFCDataset(dataset.records, load_size=32)[0][1].shape == (3, 32, 32)


def test_bad_inputs(tmp_path: Path, bapps_tree: BappsFixture) -> None:
    with pytest.raises(ValueError, match="unknown 2afc/val subset"):
        load_bapps_2afc(bapps_tree.root, subsets=["mix"])
    with pytest.raises(ValueError, match="split"):
        load_bapps_2afc(bapps_tree.root, split="test")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no BAPPS data"):
        load_bapps_2afc(tmp_path)
    with pytest.raises(FileNotFoundError, match="BAPPS root not found"):
        load_bapps_jnd(tmp_path / "nope")
    with pytest.raises(ValueError, match="expected 2afc"):
        TwoAFCDataset(load_bapps_jnd(bapps_tree.root))
    with pytest.raises(ValueError, match="load_size"):
        TwoAFCDataset(load_bapps_2afc(bapps_tree.root, subsets=["cnn"]), load_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        make_bapps_loader(JNDDataset(load_bapps_jnd(bapps_tree.root)), batch_size=0)
    bad = make_bapps_tree(tmp_path / "bad", n_per_subset=1, twoafc_subsets=["cnn"], jnd_subsets=[])
    np.save(bad.root / "dataset/2afc/val/cnn/judge/000000.npy", np.array([1.5]))
    with pytest.raises(ValueError, match="one fraction in"):
        load_bapps_2afc(bad.root)
