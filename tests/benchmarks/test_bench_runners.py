"""The LIVE and BAPPS runners, the comparison metrics and the report writer, end to end on generated trees."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmarks.comparison import BENCHMARK_METRICS, build_available, score_one_by_one, time_interleaved
from benchmarks.datasets.live import load_live_index, select_quick_records
from benchmarks.report import environment_info, markdown_table, write_report
from benchmarks.run_bapps import main as bapps_main
from benchmarks.run_bapps import run_bapps
from benchmarks.run_live import main as live_main
from benchmarks.run_live import run_live
from PIL import Image
from scipy import stats
from tests.fixtures.planted import LiveFixture, make_bapps_tree, planted_distance

from pe_iqa.image_io import read_image
from pe_iqa.scoring.metrics import MetricUnavailableError, ScoringMetric


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def expected_2afc(d0: np.ndarray, d1: np.ndarray, judge: np.ndarray) -> float:
    return float(np.mean([(1 - h) if a < b else h if b < a else 0.5 for a, b, h in zip(d0, d1, judge, strict=True)]))


def expected_map(d: np.ndarray, same: np.ndarray) -> float:
    """VOC average precision of retrieving 'same' pairs by increasing distance (distinct distances)."""
    order = np.argsort(d)
    tp = np.cumsum(same[order])
    fp = np.cumsum(1 - same[order])
    recall, precision = tp / same.sum(), tp / (tp + fp)
    ap, previous = 0.0, 0.0
    for k in range(len(order)):
        if recall[k] > previous:
            ap += (recall[k] - previous) * precision[k:].max()
            previous = recall[k]
    return ap


@pytest.mark.slow  # 11.3 s measured (full run, 2 shared cores)
def test_live_quick_writes_report_and_reproduces_the_default_preset(tmp_path: Path, live_tree: LiveFixture) -> None:
    out = tmp_path / "results"
    code = live_main(["--root", str(live_tree.root), "--backbones", "alexnet", "--out", str(out), "--quick",
                      "--metrics", "pe_alex", "l2", "psnr", "--no-progress"])
    assert code == 0
    grid = read_csv(out / "live_quick.csv")
    # 5 single layers + 4 prefixes, sets F/H-10/L-10/H-50/L-50, channel_norm on/off, uniform/pe
    assert len(grid) == 9 * 5 * 2 * 2
    assert {row["layer_set"] for row in grid} >= {"relu3", "relu1..relu5 (LPIPS set)"}
    records = select_quick_records(load_live_index(live_tree.root).records)
    assert all(int(row["n"]) == len(records) == 8 for row in grid)

    comparison = {row["metric"]: row for row in read_csv(out / "live_quick_comparison.csv")}
    assert set(comparison) == {"pe_alex", "l2", "psnr"}
    assert comparison["psnr"]["lower_better"] == "False" and comparison["l2"]["lower_better"] == "True"
    # the engine's default configuration is exactly the pe_alex preset
    default = next(r for r in grid if r["layer_set"] == "relu3" and r["set"] == "H-10" and r["channel_norm"] == "True"
                   and r["weighting"] == "uniform")
    for key in ("srocc", "krcc"):
        assert float(default[key]) == pytest.approx(float(comparison["pe_alex"][key]), abs=1e-9)
    for key in ("plcc", "plcc_logistic5"):  # float64 engine vs float32 preset values
        assert float(default[key]) == pytest.approx(float(comparison["pe_alex"][key]), abs=1e-5)
    # L2 against DMOS, computed here from the image files (oriented: positive = agrees with humans)
    mse = [np.mean((np.asarray(Image.open(r.dist_path), float) / 255 - np.asarray(Image.open(r.ref_path), float)
                    / 255) ** 2) for r in records]
    expected = stats.spearmanr(mse, [r.dmos for r in records])[0]
    assert float(comparison["l2"]["srocc"]) == pytest.approx(expected, abs=1e-9)
    assert float(comparison["pe_alex"]["sec_per_image"]) > 0

    markdown = (out / "live_quick.md").read_text()
    assert "LIVE: 10/18 labelled images found (8 missing)" in markdown
    assert "H>L" in markdown and "H>F" in markdown and "torch threads" in markdown and "pyiqa" in markdown
    for png in ("live_quick_alexnet_srocc_vs_x.png", "live_quick_alexnet_h_minus_l.png",
                "live_quick_default_scatter.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 0 < len(data) <= 200_000
        assert f"({png})" in markdown


@pytest.mark.slow  # 8.0 s measured (full run, 2 shared cores)
def test_live_counts_follow_the_grid(live_tree: LiveFixture) -> None:
    run = run_live(live_tree.root, ["alexnet"], None, compare=False, quick=True, weights="random",
                   percents=[10, 25], progress=False, verbose=False)
    assert run.comparison == [] and run.paths is None
    rows = [r for r in run.grid if r["channel_norm"] and r["weighting"] == "uniform" and r["n_layers"] == 1]
    srocc = {(r["layer_set"], r["set"]): r["srocc"] for r in rows}
    layers = sorted({r["layer_set"] for r in rows})
    h_l = sum(srocc[(k, f"H-{x}")] > srocc[(k, f"L-{x}")] for k in layers for x in (10, 25))
    h_f = sum(srocc[(k, f"H-{x}")] > srocc[(k, "F")] for k in layers for x in (10, 25))
    summary = next(s for s in run.summaries["counts"] if s["channel_norm"] and s["weighting"] == "uniform")
    assert summary["single: H>L"] == f"{h_l}/10" and summary["single: H>F"] == f"{h_f}/10"


def test_live_runner_reports_bad_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert live_main(["--root", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert "LIVE root not found" in capsys.readouterr().err


def test_bapps_runner_scores_the_planted_metric(tmp_path: Path) -> None:
    registry = BENCHMARK_METRICS.with_metrics(
        ScoringMetric("planted", True, score=planted_distance),
        ScoringMetric("planted_similarity", False, score=lambda x, y: -planted_distance(x, y)))
    fixture = make_bapps_tree(tmp_path / "bapps", n_per_subset=12, seed=7, twoafc_subsets=("cnn", "color"),
                              jnd_subsets=("traditional",), n_incomplete=1)
    out = tmp_path / "results"
    code = bapps_main(["--root", str(fixture.root), "--metrics", "planted", "planted_similarity", "--out", str(out),
                       "--name", "b", "--batch-size", "5", "--no-progress"], registry=registry)
    assert code == 0
    rows = read_csv(out / "b.csv")
    for metric in ("planted", "planted_similarity"):
        scores = {(r["task"], r["subset"]): float(r["score"]) for r in rows if r["metric"] == metric}
        expected = {("2afc", s): expected_2afc(v["d0"], v["d1"], v["judge"]) for s, v in fixture.twoafc.items()}
        expected[("jnd", "traditional")] = expected_map(fixture.jnd["traditional"]["d"],
                                                        fixture.jnd["traditional"]["same"])
        expected[("2afc", "mean")] = np.mean([expected[("2afc", s)] for s in ("cnn", "color")])
        expected[("jnd", "mean")] = expected[("jnd", "traditional")]
        assert scores == pytest.approx(expected, abs=1e-12)
    markdown = (out / "b.md").read_text()
    assert "traditional, superres, deblur, frameinterp" in markdown  # missing 2AFC subsets are reported
    assert "2/6 subsets found" in markdown and "1 incomplete skipped" in markdown


def test_bapps_run_api_with_metric_objects(tmp_path: Path) -> None:
    fixture = make_bapps_tree(tmp_path / "bapps", n_per_subset=6, seed=2, twoafc_subsets=("traditional",),
                              jnd_subsets=())
    broken = ScoringMetric("broken", True, score=lambda x, y: torch.zeros(1))
    run = run_bapps(fixture.root, [ScoringMetric("planted", True, score=planted_distance), broken, "l2"], out_dir=None,
                    progress=False, verbose=False)
    data = fixture.twoafc["traditional"]
    assert run.score("planted", "2afc", "traditional") == pytest.approx(
        expected_2afc(data["d0"], data["d1"], data["judge"]))
    assert 0 <= run.score("l2", "2afc", "traditional") <= 1
    assert "broken" in run.unavailable and "jnd" not in run.indexes
    with pytest.raises(KeyError):
        run.score("planted", "jnd", "traditional")
    with pytest.raises(FileNotFoundError, match="no BAPPS data"):
        run_bapps(tmp_path / "bapps", ["l2"], twoafc_subsets=["cnn"], jnd_subsets=[], out_dir=None,
                  progress=False, verbose=False)


@pytest.mark.slow  # 5.4 s measured (full run, 2 shared cores)
def test_comparison_metrics_directions_and_pyiqa_equivalence(live_tree: LiveFixture) -> None:
    pytest.importorskip("pyiqa")
    import pyiqa

    records = load_live_index(live_tree.root).records[:3]
    pairs = [(read_image(r.dist_path), read_image(r.ref_path)) for r in records]
    metrics, unavailable = build_available(["lpips", "psnr", "tm_psnr", "tm_ssim", "l2"])
    assert unavailable == {}
    by_name = {m.name: m for m in metrics}
    assert by_name["lpips"].lower_better and by_name["l2"].lower_better
    assert not by_name["psnr"].lower_better and not by_name["tm_psnr"].lower_better
    # our wrapper gives pyiqa's own numbers (pyiqa loading the files itself)
    reference = pyiqa.create_metric("lpips", device="cpu")
    ours, seconds = score_one_by_one(by_name["lpips"], pairs, progress=False)
    theirs = [float(reference(str(r.dist_path), str(r.ref_path))) for r in records]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert seconds > 0
    psnr_ours, _ = score_one_by_one(by_name["tm_psnr"], pairs, progress=False)
    psnr_pyiqa, _ = score_one_by_one(by_name["psnr"], pairs, progress=False)
    np.testing.assert_allclose(psnr_ours, psnr_pyiqa, rtol=1e-4)
    mse = [float(((d - r) ** 2).mean()) for d, r in pairs]
    np.testing.assert_allclose(score_one_by_one(by_name["l2"], pairs, progress=False)[0], mse, rtol=1e-6)
    seconds = time_interleaved([(by_name["l2"], pairs), (by_name["psnr"], pairs[:2])], n_pairs=5, progress=False)
    assert set(seconds) == {"l2", "psnr"} and all(v > 0 for v in seconds.values())
    with pytest.raises(ValueError, match="at least one pair"):
        time_interleaved([(by_name["l2"], [])], progress=False)
    assert by_name["lpips"].source == "pyiqa" and by_name["tm_psnr"].source == "torchmetrics"
    with pytest.raises(MetricUnavailableError, match="unknown metric 'nope'"):  # before anything is built
        build_available(["l2", "nope"])
    with pytest.raises(ValueError, match="already taken"):
        BENCHMARK_METRICS.with_metrics(ScoringMetric("l2", True, score=planted_distance))


def test_report_files(tmp_path: Path) -> None:
    rows = [{"metric": "a", "srocc": 0.91234, "ok": True}, {"metric": "b", "srocc": float("nan"), "ok": False}]
    table = markdown_table(rows, ["metric", "srocc", "ok"], digits=3)
    assert table.splitlines()[2] == "| a | 0.912 | on |" and table.splitlines()[3] == "| b | – | off |"
    env = environment_info("cpu", {"LIVE": "LIVE: 1/2 found"})
    assert env["dataset LIVE"] == "LIVE: 1/2 found" and env["torch"] == torch.__version__.split("+")[0]
    paths = write_report("demo", tmp_path, rows, "Demo", ["## Section\n\ntext"], env)
    assert read_csv(paths.csv)[0] == {"metric": "a", "srocc": "0.91234", "ok": "True"}
    assert read_csv(paths.csv)[1]["srocc"] == ""
    text = paths.markdown.read_text()
    assert text.startswith("# Demo") and "## Environment" in text and "## Section" in text
    with pytest.raises(ValueError, match="file stem"):
        write_report("a/b", tmp_path, rows, "x", [], env)
