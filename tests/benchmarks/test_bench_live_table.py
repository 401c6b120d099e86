"""The LIVE table: per-image engine scores read back in record order, every row at a stated resolution, differences
to pe_alex with image- and reference-resampled intervals."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from benchmarks.datasets.live import load_live_index
from benchmarks.live_table import load_engine_scores, main, table_rows
from tests.fixtures.planted import make_live_tree


@pytest.fixture()
def scored_tree(tmp_path: Path):
    tree = make_live_tree(tmp_path / "live", n_refs=3, n_per_type=3, n_missing_dist=0, n_missing_refs=0, seed=5)
    records = list(load_live_index(tree.root).records)
    rng = np.random.default_rng(0)
    dmos = np.array([r.dmos for r in records])
    scores = {"pe_alex": dmos + 5 * rng.normal(size=dmos.size),  # a distance: lower = better
              "good": -dmos + 0.1 * rng.normal(size=dmos.size)}  # a quality score: higher = better
    out = tmp_path / "scores"
    out.mkdir()
    with open(out / "run.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "metric", "lower_better"])
        writer.writerows([["live", "pe_alex", True], ["live", "good", False]])
    order = list(reversed(range(len(records))))  # the engine's CSV order need not be the records' order
    with open(out / "run_scores_live.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["distorted", "reference", "pe_alex", "good", "error"])
        for i in order:
            writer.writerow([records[i].dist_path, records[i].ref_path, scores["pe_alex"][i], scores["good"][i], ""])
    return tree, records, scores, out


def test_scores_are_read_in_record_order_with_their_direction(scored_tree) -> None:
    _, records, scores, out = scored_tree
    loaded = load_engine_scores(out / "run_scores_live.csv", records)
    np.testing.assert_array_equal(loaded[("pe_alex", 1.0)][0], scores["pe_alex"])
    assert loaded[("pe_alex", 1.0)][1] is True and loaded[("good", 1.0)][1] is False


def test_rows_state_resolution_and_compare_with_both_units(scored_tree) -> None:
    _, records, _, out = scored_tree
    loaded = load_engine_scores(out / "run_scores_live.csv", records)
    rows = {r["metric"]: r for r in table_rows(loaded, records, {1.0: "native 96×64"}, n_boot=200)}
    good, base = rows["good"], rows["pe_alex"]
    assert good["srocc"] > 0.95 and good["resolution"] == "native 96×64"
    assert good["diff to baseline"] == pytest.approx(good["srocc"] - base["srocc"])
    assert good["diff ref low"] > 0 and good["within-ref diff"] > 0
    assert good["within-ref t low"] < good["within-ref diff"] < good["within-ref t high"]
    # 3 references: the t-interval (2 degrees of freedom) is wider than the reference bootstrap, and it is the one
    # that decides significance
    assert good["within-ref t high"] - good["within-ref t low"] > good["diff ref high"] - good["diff ref low"]
    assert good["significant (references)"] == (good["within-ref t low"] > 0 or good["within-ref t high"] < 0)
    assert good["sign-flip p"] == 2 / 2 ** 3  # 3 references, all higher: the two-sided floor .25
    assert good["sign-flip p higher"] == 1 / 2 ** 3 and good["sign-flip p lower"] == 1.0  # one-sided: 1/8
    assert "diff to baseline" not in base
    for row in rows.values():
        assert row["srocc reference low"] <= row["srocc reference high"]
        assert row["srocc image low"] <= row["srocc image high"]


def test_cli_writes_the_table_and_refuses_unknown_metrics(scored_tree, tmp_path: Path, capsys) -> None:
    tree, _, _, out = scored_tree
    argv = ["--root", str(tree.root), "--scores", str(out / "run_scores_live.csv"), "--out", str(tmp_path / "o"),
            "--boot", "50", "--no-progress"]
    assert main(argv) == 0
    text = (tmp_path / "o" / "live_table.md").read_text(encoding="utf-8")
    assert "| good | native" in text and "baseline" in text
    assert "− pe_alex by reference [t 95 %] | sign-flip p (2-sided) | p (1-sided, higher)" in text
    assert main([*argv, "--metrics", "vif"]) == 2  # a metric not scored: the exit table (issue 25.15)
    assert capsys.readouterr().err.startswith("error: ValueError: no scores for ['vif']")


def test_two_score_files_with_one_metric_scored_differently_are_refused(scored_tree, tmp_path: Path, capsys) -> None:
    """Issue 25, item 4: two files carrying ``pe_alex`` under different configurations → the last silently won."""
    import shutil

    from pe_iqa.provenance import Provenance, sidecar_path, write_sidecar

    tree, _, _, out = scored_tree
    shutil.copy(out / "run.csv", out / "other.csv")
    shutil.copy(out / "run_scores_live.csv", out / "other_scores_live.csv")
    record = Provenance("pe_alex", spec="1f", weights_id="ab", options={"alpha": "error"})
    write_sidecar(out / "run_scores_live.csv", {"pe_alex": record, "good": Provenance("good", kind="pyiqa")})
    argv = ["--root", str(tree.root), "--scores", str(out / "run_scores_live.csv"),
            str(out / "other_scores_live.csv"), "--out", str(tmp_path / "o"), "--boot", "20", "--no-progress"]
    assert main(argv) == 2  # no record: unknown, never trusted; 2 from the exit table (25.15)
    assert "other_scores_live.csv has no record for pe_alex" in capsys.readouterr().err
    write_sidecar(out / "other_scores_live.csv", {"pe_alex": record.with_options(alpha="white"),
                                                  "good": Provenance("good", kind="pyiqa")})
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ProvenanceError" in err
    assert "other_scores_live.csv holds pe_alex scores made under another configuration (options.alpha: white ≠ " \
           "error" in err
    write_sidecar(out / "other_scores_live.csv", {"pe_alex": record, "good": Provenance("good", kind="pyiqa")})
    assert main(argv) == 0
    assert sidecar_path(out / "other_scores_live.csv").is_file()


def test_downscaled_metrics_are_scored_and_then_reused(scored_tree, tmp_path: Path) -> None:
    """``--downscaled`` scored nothing: it imported names ``benchmarks.comparison`` no longer has (ImportError)."""
    from benchmarks.live_table import score_downscaled

    _, records, _, _ = scored_tree
    out_csv = tmp_path / "x" / "live_scores_x0.5.csv"
    out_csv.parent.mkdir()
    first = score_downscaled(["l2"], records, 0.5, out_csv, progress=False)
    values, lower_better = first[("l2", 0.5)]
    assert values.shape == (len(records),) and np.isfinite(values).all() and (values > 0).all() and lower_better
    again = score_downscaled(["l2"], records, 0.5, out_csv, progress=False)  # read back from the CSV it wrote
    np.testing.assert_allclose(again[("l2", 0.5)][0], values, rtol=1e-12)


def test_a_downscaled_csv_without_its_record_or_changed_since_is_scored_again(scored_tree, tmp_path: Path) -> None:
    """Issue 25 (combining unchecked): the x0.5 CSV was reused on its column names alone."""
    from benchmarks.live_table import score_downscaled

    from pe_iqa.provenance import sidecar_path

    _, records, _, _ = scored_tree
    out_csv = tmp_path / "live_scores_x0.5.csv"
    values = score_downscaled(["l2"], records, 0.5, out_csv, progress=False)[("l2", 0.5)][0]
    text = out_csv.read_text(encoding="utf-8")
    forged = text.replace(repr(float(values[0])), "0.123456789", 1)
    assert forged != text
    for damage in ("edit the CSV", "drop the sidecar"):
        out_csv.write_text(forged, encoding="utf-8")
        if damage == "drop the sidecar":
            sidecar_path(out_csv).unlink()
        again = score_downscaled(["l2"], records, 0.5, out_csv, progress=False)[("l2", 0.5)][0]
        np.testing.assert_allclose(again, values, rtol=1e-12)  # scored again, not the forged 0.123456789
        assert sidecar_path(out_csv).is_file()
