"""The selection study: paired bootstrap, leave-one-group-out CV, and an end-to-end run on a generated LIVE tree.

The end-to-end run (random AlexNet weights, ``--quick``) is checked against :class:`pe_iqa.PEDistance` computed
here independently: the SROCCs of its tables and the held-out SROCCs of its fixed-default folds must be those
of the metric itself.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from benchmarks.cross_validation import leave_one_group_out
from benchmarks.datasets.live import load_live_index
from benchmarks.protocols.correlation import rowwise_srocc
from benchmarks.selection import COMPARISONS, PairedBootstrap, layer_windows, win_counts
from benchmarks.selection.__main__ import main
from scipy.stats import spearmanr
from tests.fixtures.planted import make_live_tree

from pe_iqa import PEDistance
from pe_iqa.image_io import read_image

LAYERS = ("relu1", "relu2", "relu3", "relu4", "relu5")


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def as_bool(text: str) -> bool:
    return {"True": True, "False": False}[text]


# ------------------------------------------------------------------------------------------- paired bootstrap


def test_bootstrap_sroccs_are_spearman_on_the_resampled_images():
    rng = np.random.default_rng(0)
    labels, values = rng.normal(size=30), rng.normal(size=30)
    boot = PairedBootstrap(labels, n_boot=20, seed=3)
    got = boot.sroccs(values)
    for b in range(5):
        idx = boot.indices[b]
        assert got[b] == pytest.approx(spearmanr(values[idx], labels[idx]).statistic, abs=1e-12)


def test_bootstrap_difference_of_a_config_with_itself_is_exactly_zero():
    rng = np.random.default_rng(1)
    labels, values = rng.normal(size=40), rng.normal(size=40)
    boot = PairedBootstrap(labels, n_boot=200)
    assert boot.interval(boot.sroccs(values) - boot.sroccs(values.copy())) == (0.0, 0.0)


def test_bootstrap_separates_a_good_score_from_noise_but_not_two_equal_ones():
    rng = np.random.default_rng(2)
    labels = rng.normal(size=80)
    good = labels + 0.3 * rng.normal(size=80)
    also_good = labels + 0.3 * rng.normal(size=80)
    noise = rng.normal(size=80)
    boot = PairedBootstrap(labels, n_boot=500)
    low, _ = boot.interval(boot.sroccs(good) - boot.sroccs(noise))
    assert low > 0.5
    low, high = boot.interval(boot.sroccs(good) - boot.sroccs(also_good))
    assert low < 0 < high


@pytest.mark.parametrize(("labels", "n_boot", "confidence"), [
    (np.zeros((3, 3)), 10, 0.95), ([1.0, 2.0], 10, 0.95), ([1.0, math.nan, 2.0], 10, 0.95),
    ([1.0, 2.0, 3.0], 0, 0.95), ([1.0, 2.0, 3.0], 10, 1.0),
])
def test_bootstrap_rejects_bad_arguments(labels, n_boot, confidence):
    with pytest.raises(ValueError):
        PairedBootstrap(labels, n_boot=n_boot, confidence=confidence)


def test_bootstrap_rejects_values_of_the_wrong_length():
    with pytest.raises(ValueError, match="values"):
        PairedBootstrap([1.0, 2.0, 3.0, 4.0], n_boot=5).sroccs([1.0, 2.0])


# ----------------------------------------------------------------------------------------- cross-validation


def test_rowwise_srocc_matches_scipy_and_gives_nan_for_constant_rows():
    rng = np.random.default_rng(3)
    values, labels = rng.normal(size=(3, 15)), rng.normal(size=15)
    values[2] = 1.0
    got = rowwise_srocc(values, labels)
    for k in range(2):
        assert got[k] == pytest.approx(spearmanr(values[k], labels).statistic, abs=1e-12)
    assert math.isnan(got[2])


def test_cv_picks_the_planted_candidate_in_every_fold():
    rng = np.random.default_rng(4)
    labels = rng.normal(size=40)
    groups = np.repeat(["a", "b", "c", "d"], 10)
    candidates = rng.normal(size=(6, 40))
    candidates[4] = labels ** 3  # monotone in the labels: SROCC 1 everywhere
    cv = leave_one_group_out(candidates, labels, groups, [f"c{k}" for k in range(6)])
    assert [f.held_out for f in cv.folds] == ["a", "b", "c", "d"]
    assert all(f.chosen == 4 and f.chosen_name == "c4" for f in cv.folds)
    assert all(f.train_srocc == pytest.approx(1.0) and f.test_srocc == pytest.approx(1.0) for f in cv.folds)
    assert all(f.n_train == 30 and f.n_test == 10 for f in cv.folds)
    assert cv.pooled_srocc == pytest.approx(1.0)
    assert cv.mean_test_srocc == pytest.approx(1.0)
    for fold in cv.folds:  # the logistic mapping is monotone: it keeps every fold's own order
        test = groups == fold.held_out
        assert spearmanr(cv.mapped_predictions[test], labels[test]).statistic == pytest.approx(1.0)
    assert cv.pooled_mapped_srocc > 0.9  # folds' mappings differ a little, so pooling is not exactly 1


def test_cv_chooses_on_training_groups_only():
    rng = np.random.default_rng(6)
    labels = rng.normal(size=30)
    groups = np.repeat(["a", "b", "c"], 10)
    candidates = labels + rng.normal(scale=0.8, size=(8, 30))
    base = {f.held_out: (f.chosen, f.train_srocc) for f in leave_one_group_out(candidates, labels, groups).folds}
    for group in ("a", "b", "c"):
        scrambled = candidates.copy()
        held = groups == group
        scrambled[:, held] = rng.normal(size=(8, int(held.sum())))  # anything at all in the held-out group
        fold = next(f for f in leave_one_group_out(scrambled, labels, groups).folds if f.held_out == group)
        assert (fold.chosen, fold.train_srocc) == base[group]


def test_cv_of_a_fixed_candidate_pools_to_its_full_sample_srocc_and_ties_go_to_the_first():
    rng = np.random.default_rng(5)
    labels, groups = rng.normal(size=24), np.repeat(["x", "y", "z"], 8)
    values = labels + rng.normal(size=24)
    cv = leave_one_group_out(values, labels, groups)
    assert cv.pooled_srocc == pytest.approx(spearmanr(values, labels).statistic)
    for fold in cv.folds:
        test = groups == fold.held_out
        assert fold.test_srocc == pytest.approx(spearmanr(values[test], labels[test]).statistic)
    twice = leave_one_group_out(np.stack([values, 2 * values]), labels, groups)
    assert all(f.chosen == 0 for f in twice.folds)


@pytest.mark.parametrize(("candidates", "labels", "groups", "match"), [
    (np.zeros((2, 4)), np.arange(4.0), ["a"] * 4, "2 distinct groups"),
    (np.zeros((2, 4)), np.arange(4.0), ["a", "a", "a", "b"], "at least 2 images"),
    (np.zeros((2, 5)), np.arange(4.0), ["a", "a", "b", "b"], "shape"),
    (np.full((1, 4), math.nan), np.arange(4.0), ["a", "a", "b", "b"], "finite"),
])
def test_cv_rejects_bad_input(candidates, labels, groups, match):
    with pytest.raises(ValueError, match=match):
        leave_one_group_out(candidates, labels, groups)


# -------------------------------------------------------------------------------------------- small helpers


def test_layer_windows_are_all_contiguous_runs():
    windows = layer_windows(LAYERS)
    assert len(windows) == 15 and len(set(windows)) == 15
    assert windows[:5] == [(layer,) for layer in LAYERS]
    assert windows[-1] == LAYERS
    assert ("relu2", "relu3", "relu4") in windows and ("relu1", "relu3") not in windows


def test_win_counts_count_point_and_significant_wins():
    rows = []
    for x, (diff, low, high) in zip((5, 10, 25, 50), [(0.1, 0.02, 0.2), (0.05, -0.01, 0.1), (-0.03, -0.06, -0.01),
                                                      (0.0, -0.02, 0.02)], strict=True):
        for comparison in COMPARISONS:
            rows.append({"backbone": "b", "layer": "l1", "selector": "pe", "channel_norm": True, "x": x,
                         "comparison": comparison, "diff": diff, "ci_low": low, "ci_high": high,
                         "point_win": diff > 0, "sig_win": low > 0, "sig_loss": high < 0})
    (entry,) = win_counts(rows, by_layer=True)
    for comparison in COMPARISONS:
        assert (entry[f"{comparison} n"], entry[f"{comparison} wins"], entry[f"{comparison} sig wins"],
                entry[f"{comparison} sig losses"]) == (4, 2, 1, 1)
        assert entry[comparison] == "2/4 (1+ / 1−)"


# --------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    tree = make_live_tree(tmp_path_factory.mktemp("live4"), n_refs=4, n_missing_refs=0, n_missing_dist=0, seed=7)
    out = tmp_path_factory.mktemp("selection")
    code = main(["--root", str(tree.root), "--backbones", "alexnet", "--weights", "random", "--quick",
                 "--no-lpips", "--chromatic-backbones", "--seeds", "3", "--boot", "50", "--out", str(out)])
    assert code == 0
    return tree, out


@pytest.fixture(scope="module")
def metric_values(study_run):
    """PEDistance (not the study's code) on every image of the tree, for a few configurations."""
    tree, _ = study_run
    records = load_live_index(tree.root).records
    configs = {("relu3", "high", 10.0, True): None, ("relu2", "all", 100.0, True): None,
               ("relu1", "low", 50.0, False): None}
    out = {}
    for layer, subset, x, norm in configs:
        metric = PEDistance(backbone="alexnet", layers=[layer], weights="random", subset=subset, top_percent=x,
                            channel_norm=norm, reduction="none")
        with torch.inference_mode():
            out[(layer, subset, x, norm)] = np.array(
                [float(metric(read_image(r.dist_path), read_image(r.ref_path))) for r in records])
    return records, out


@pytest.mark.slow  # 17.4 s measured (full run, 2 shared cores)
def test_run_writes_every_output(study_run):
    _, out = study_run
    for name in ("selection_srocc.csv", "selection_comparisons.csv", "selection_win_counts.csv",
                 "selection_cv_summary.csv", "selection_cv_folds.csv", "selection_report.md",
                 "selection_srocc_vs_x_alexnet.png", "selection_differences_alexnet.png"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "selection_report.md").read_text(encoding="utf-8")
    for heading in ("## Win counts per selector", "## Significant wins and losses per layer", "## Cross-validation",
                    "## alexnet: SROCC per layer"):
        assert heading in report


@pytest.mark.slow  # 5.6 s measured (full run, 2 shared cores)
def test_table_sroccs_are_those_of_pedistance(study_run, metric_values):
    _, out = study_run
    records, values = metric_values
    dmos = np.array([r.dmos for r in records])
    rows = read_csv(out / "selection_srocc.csv")
    wanted = {("relu3", "pe", "H", 10.0, True): ("relu3", "high", 10.0, True),
              ("relu2", "F", "F", 100.0, True): ("relu2", "all", 100.0, True),
              ("relu1", "pe", "L", 50.0, False): ("relu1", "low", 50.0, False)}
    for (layer, selector, subset, x, norm), key in wanted.items():
        (row,) = [r for r in rows if r["layer"] == layer and r["selector"] == selector and r["subset"] == subset
                  and float(r["x"]) == x and as_bool(r["channel_norm"]) == norm]
        expected = spearmanr(values[key], dmos).statistic
        assert float(row["srocc"]) == pytest.approx(expected, abs=1e-9)
        assert float(row["ci_low"]) <= float(row["ci_high"])


@pytest.mark.slow  # the study run (module fixture, ~25 s)
def test_random_rows_cover_every_seed_and_layer(study_run):
    _, out = study_run
    rows = [r for r in read_csv(out / "selection_srocc.csv") if r["selector"] == "random"]
    assert {(r["layer"], float(r["x"]), as_bool(r["channel_norm"])) for r in rows} == {
        (layer, x, norm) for layer in LAYERS for x in (10.0, 50.0) for norm in (True, False)}
    for r in rows:
        assert int(r["n_seeds"]) == 3
        assert float(r["random_min"]) <= float(r["srocc"]) <= float(r["random_max"])


@pytest.mark.slow  # the study run (module fixture, ~25 s)
def test_comparisons_and_win_counts_are_consistent(study_run):
    _, out = study_run
    comparisons = read_csv(out / "selection_comparisons.csv")
    assert {r["comparison"] for r in comparisons} == set(COMPARISONS)
    for r in comparisons:
        diff = float(r["diff"])
        assert diff == pytest.approx(float(r["h_srocc"]) - float(r["other_srocc"]), abs=1e-12)
        assert as_bool(r["point_win"]) == (diff > 0)
        # significance resamples references (images of one reference are not independent); images beside it
        assert r["sig_unit"] == "reference"
        assert as_bool(r["sig_win"]) == (float(r["ref_ci_low"]) > 0)
        assert as_bool(r["sig_loss"]) == (float(r["ref_ci_high"]) < 0)
        assert as_bool(r["image_sig_win"]) == (float(r["ci_low"]) > 0)
        assert as_bool(r["image_sig_loss"]) == (float(r["ci_high"]) < 0)
    totals = {r["selector"]: r for r in read_csv(out / "selection_win_counts.csv") if r["layer"] == "all"}
    assert "pe" in totals and "pe (raw)" in totals and "magnitude" in totals
    pe_rows = [r for r in comparisons if r["selector"] == "pe" and as_bool(r["channel_norm"])]
    for comparison in COMPARISONS:
        mine = [r for r in pe_rows if r["comparison"] == comparison]
        assert int(totals["pe"][f"{comparison} n"]) == len(mine) == len(LAYERS) * 2
        assert int(totals["pe"][f"{comparison} wins"]) == sum(as_bool(r["point_win"]) for r in mine)
        assert int(totals["pe"][f"{comparison} sig wins"]) == sum(as_bool(r["sig_win"]) for r in mine)


@pytest.mark.slow  # the study run (module fixture, ~25 s)
def test_cv_folds_hold_out_each_reference_and_fixed_default_is_pedistance(study_run, metric_values):
    _, out = study_run
    records, values = metric_values
    folds = read_csv(out / "selection_cv_folds.csv")
    refs = sorted({r.ref_name for r in records})
    by_method: dict[str, list[dict[str, str]]] = {}
    for row in folds:
        by_method.setdefault(row["method"], []).append(row)
    assert "CV: all candidates" in by_method and "fixed: pe_alex (package default)" in by_method
    for rows in by_method.values():
        assert sorted(r["held_out"] for r in rows) == refs
    names = np.array([r.ref_name for r in records])
    dmos = np.array([r.dmos for r in records])
    default = values[("relu3", "high", 10.0, True)]
    for row in by_method["fixed: pe_alex (package default)"]:
        test = names == row["held_out"]
        assert float(row["test_srocc"]) == pytest.approx(spearmanr(default[test], dmos[test]).statistic, abs=1e-9)
    for row in by_method["CV: all candidates"]:
        assert row["deepest_layer"] in LAYERS and int(row["total_channels"]) >= int(row["deepest_channels"]) > 0
    summary = {r["method"]: r for r in read_csv(out / "selection_cv_summary.csv")}
    assert float(summary["fixed: pe_alex (package default)"]["pooled"]) == pytest.approx(
        spearmanr(default, dmos).statistic, abs=1e-9)
    assert int(summary["CV: all candidates"]["candidates"]) == 15 * (1 + 10 * 2) * 2
