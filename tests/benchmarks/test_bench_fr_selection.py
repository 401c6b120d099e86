"""The selection sweep on a pyiqa-layout MOS dataset: orientation, agreement with PEDistance, outputs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmarks.run_fr_selection import main, run_fr_selection, select_per_reference
from benchmarks.selection import COMPARISONS
from scipy.stats import spearmanr
from tests.fixtures.pyiqa_trees import make_pyiqa_fr_tree

from pe_iqa import PEDistance
from pe_iqa.image_io import read_image


def pe_distance_values(records, layer: str, subset: str, percent: float) -> np.ndarray:
    """The same configuration through PEDistance (random AlexNet weights), one pair at a time."""
    metric = PEDistance(backbone="alexnet", layers=[layer], weights="random", subset=subset, top_percent=percent,
                        channel_norm=True, reduction="none")
    with torch.inference_mode():
        return np.array([float(metric(read_image(r.dist_path), read_image(r.ref_path))) for r in records])


@pytest.fixture(scope="module")
def mos_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("datasets")
    make_pyiqa_fr_tree(root, "tid2013", n_refs=3, n_types=2, n_levels=3, seed=5)  # MOS: higher = better
    run = run_fr_selection("tid2013", root, ["alexnet"], weights="random", selectors=["pe", "mu2"],
                           percents=(10, 50), seeds=2, n_boot=60)
    return root, run


@pytest.mark.slow  # 2.8 s measured (full run, 2 shared cores)
def test_labels_are_oriented_and_sroccs_are_the_metrics_own(mos_run) -> None:
    _, run = mos_run
    mos = np.array([r.label for r in run.records])
    np.testing.assert_array_equal(run.labels, -mos)
    rows = {(r["layer"], r["selector"], r["subset"], r["x"], r["channel_norm"]): r for r in run.srocc}
    for layer, subset, x in (("relu3", "H", 10.0), ("relu1", "L", 50.0), ("relu2", "F", 100.0)):
        values = pe_distance_values(run.records, layer, {"H": "high", "L": "low", "F": "all"}[subset], x)
        key = (layer, "F" if subset == "F" else "pe", subset, x, True)
        # a distance against a MOS: the metric agrees with humans when it anti-correlates with the MOS
        assert rows[key]["srocc"] == pytest.approx(-spearmanr(values, mos)[0], abs=1e-9)


@pytest.mark.slow  # the selection run (module fixture, ~15 s)
def test_comparisons_win_counts_and_cv(mos_run) -> None:
    _, run = mos_run
    assert {r["comparison"] for r in run.comparisons} == set(COMPARISONS)
    assert all(r["ci_low"] <= r["diff"] + 1e-12 or np.isnan(r["ci_low"]) for r in run.comparisons)
    assert {r["selector"] for r in run.wins_total} == {"pe", "mu2", "pe (raw)"}
    assert sum(r["H-L n"] for r in run.wins_total) == 5 * 2 * 3  # layers × x × (pe, mu2, pe raw)
    methods = [r["method"] for r in run.cv]
    assert "CV: all candidates" in methods and "fixed: pe_alex (package default)" in methods
    assert all(-1 <= r["fold mean"] <= 1 for r in run.cv)


@pytest.mark.slow  # the selection run (module fixture, ~15 s)
def test_per_reference_subset_takes_types_in_turn(mos_run) -> None:
    _, run = mos_run
    chosen = select_per_reference(run.records, 2)
    assert len(chosen) == 6
    for ref in {r.ref_name for r in run.records}:
        assert sorted(r.dist_type for r in chosen if r.ref_name == ref) == ["01", "02"]


@pytest.mark.slow  # 1.4 s measured (full run, 2 shared cores)
def test_cli_writes_outputs_and_reports_missing_data(mos_run, tmp_path: Path, capsys) -> None:
    root, _ = mos_run
    argv = ["--dataset", "tid2013", "--root", str(root), "--weights", "random", "--selectors", "pe",
            "--percents", "50", "--seeds", "1", "--boot", "20", "--per-ref", "4", "--out", str(tmp_path)]
    assert main(argv) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["selection_tid2013.md", "selection_tid2013_comparisons.csv", "selection_tid2013_cv.csv",
                     "selection_tid2013_srocc.csv", "selection_tid2013_win_counts.csv"]
    with open(tmp_path / "selection_tid2013_srocc.csv", newline="", encoding="utf-8") as handle:
        assert {row["selector"] for row in csv.DictReader(handle)} == {"F", "pe", "random"}
    assert "## alexnet: PE selection, unit-normalised" in (tmp_path / "selection_tid2013.md").read_text()
    capsys.readouterr()
    assert main(["--dataset", "csiq", "--root", str(root), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: csiq: no meta-info file at") and "\n" not in err
