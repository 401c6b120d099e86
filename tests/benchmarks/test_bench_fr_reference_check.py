"""run_fr --reference-table: a disagreement is a non-zero exit status, and the image scale is part of the key."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from benchmarks.fr_table import reference_table_check
from benchmarks.run_fr import MetricScores
from tests.fixtures.planted import planted_distance
from tests.fixtures.pyiqa_trees import make_pyiqa_fr_tree

from benchmarks import run_fr as run_fr_module
from pe_iqa.image_io import read_image


def planted_scorer(records, metrics, options, **engine_options) -> MetricScores:
    """The planted distance of every pair (stands in for the engine's scorer)."""
    d = np.array([float(planted_distance(read_image(r.dist_path), read_image(r.ref_path))[0]) for r in records])
    return MetricScores({"planted": d}, {"planted": True})


ROW = {"dataset": "live", "metric": "dists", "plcc": 0.9, "srcc": 0.9332, "krcc": 0.7, "plcc_logistic5": 0.91}


def _committed(path: Path, srocc: float, scale: str | None) -> Path:
    columns = ["metric", "srocc", "krcc", "plcc", "plcc_logistic5"] + (["scale"] if scale is not None else [])
    values = ["dists", str(srocc), "0.7", "0.9", "0.91"] + ([scale] if scale is not None else [])
    path.write_text(",".join(columns) + "\n" + ",".join(values) + "\n", encoding="utf-8")
    return path


def test_a_row_committed_at_another_scale_is_not_compared(tmp_path: Path) -> None:
    text, ok = reference_table_check([ROW], _committed(tmp_path / "c.csv", 0.9371, "0.5"), "live")
    assert not ok  # nothing comparable: not a pass
    assert "Not compared (different image scale): dists (committed at ×0.5, ours at ×1)" in text
    text, ok = reference_table_check([ROW], _committed(tmp_path / "c.csv", 0.9332, "1.0"), "live")
    assert ok and "all within" in text


def test_disagreement_beyond_tolerance_is_reported(tmp_path: Path) -> None:
    text, ok = reference_table_check([ROW], _committed(tmp_path / "c.csv", 0.9371, None), "live")
    assert not ok and "NOT all within" in text


@pytest.fixture(scope="module")
def live_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    make_pyiqa_fr_tree(root, "live", seed=3)
    return root


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_cli_exits_non_zero_when_the_reference_table_disagrees(tmp_path: Path, live_tree: Path, monkeypatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(run_fr_module, "score_with_engine", planted_scorer)
    argv = ["--dataset", "live", "--root", str(live_tree), "--metrics", "planted", "--out", str(tmp_path / "o"),
            "--boot", "20", "--no-progress"]
    assert run_fr_module.main(argv) == 0
    with open(tmp_path / "o" / "fr.csv", newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    agreeing = tmp_path / "agree.csv"
    agreeing.write_text("metric,srocc,krcc,plcc,plcc_logistic5\n"
                        f"planted,{row['srcc']},{row['krcc']},{row['plcc']},{row['plcc_logistic5']}\n")
    assert run_fr_module.main([*argv, "--reference-table", str(agreeing)]) == 0
    disagreeing = tmp_path / "disagree.csv"
    off = float(row["srcc"]) - 0.004
    disagreeing.write_text("metric,srocc,krcc,plcc,plcc_logistic5\n"
                           f"planted,{off},{row['krcc']},{row['plcc']},{row['plcc_logistic5']}\n")
    capsys.readouterr()
    assert run_fr_module.main([*argv, "--reference-table", str(disagreeing)]) == 1  # printed NOT all within, exit 0
    assert "disagree with" in capsys.readouterr().err
    assert (tmp_path / "o" / "fr.md").exists()  # the report is still written
