"""FR tables and the run_fr runner end to end on generated pyiqa trees (planted metric as the scorer)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from benchmarks.comparison import BENCHMARK_METRICS
from benchmarks.fr_table import (
    fr_row,
    load_published,
    published_source,
    pyiqa_shaped_rows,
    reference_table_check,
)
from benchmarks.protocols.bootstrap import bootstrap_srocc_ci
from benchmarks.protocols.correlation import evaluate_scores
from benchmarks.run_fr import MetricScores, ScoringOptions, run_fr
from tests.fixtures.planted import planted_distance
from tests.fixtures.pyiqa_trees import make_pyiqa_fr_tree

from benchmarks import run_fr as run_fr_module
from pe_iqa.image_io import read_image
from pe_iqa.scoring.metrics import ScoringMetric


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def planted_scorer(records, metrics, options: ScoringOptions, **engine_options) -> MetricScores:
    """The planted distance and its 'similarity' (255 - d): a distance and a higher-is-better metric (also stands
    in for the engine's scorer, whose extra keyword arguments it ignores)."""
    d = np.array([float(planted_distance(read_image(r.dist_path), read_image(r.ref_path))[0]) for r in records])
    d[-1] = math.nan  # one failed pair
    return MetricScores({"planted": d, "planted_sim": 255.0 - d, "reversed": -d},
                        {"planted": True, "planted_sim": False, "reversed": True}, [f"{records[-1].dist_path}: boom"])


# --------------------------------------------------------------------------------------------------- fr_table


def test_published_figures_are_pyiqas_cited_numbers() -> None:
    published = load_published()
    expected_srcc = {("live", "topiq_fr"): 0.9759, ("tid2013", "lpips"): 0.7445, ("tid2013", "dists"): 0.7077,
                     ("tid2013", "topiq_fr"): 0.9165, ("csiq", "lpips"): 0.9233, ("csiq", "dists"): 0.9296,
                     ("live", "lpips"): 0.869, ("tid2013", "ms_ssim"): 0.7852, ("live", "vif"): 0.9526}
    for key, srcc in expected_srcc.items():
        assert published[key].srcc == srcc
    assert (published[("csiq", "psnr")].plcc, published[("csiq", "psnr")].krcc) == (0.7857, 0.5989)
    assert len(published) == 44 and {d for d, _ in published} == {"csiq", "live", "tid2008", "tid2013"}
    source = published_source()
    assert "chaofengc/IQA-PyTorch" in source and "tests/FR_benchmark_results.csv" in source
    assert "0d0007338caacc9bf208207d93dc09ea59a32883" in source


@pytest.mark.slow  # 1.1 s measured (full run, 2 shared cores)
def test_fr_row_is_the_correlation_protocol_with_failures_left_out() -> None:
    rng = np.random.default_rng(0)
    labels = rng.uniform(1, 9, 40)
    scores = -labels + rng.normal(0, 1.5, 40)  # a distance on a MOS dataset
    scores[[3, 7]] = [math.nan, math.inf]
    row = fr_row("tid2013", "m", scores, labels, lower_better_score=True, lower_better_label=False, n_boot=200)
    ok = np.isfinite(scores)
    reference = evaluate_scores(scores[ok], labels[ok], False, True, maxfev=5000)
    interval = bootstrap_srocc_ci(scores[ok], labels[ok], False, True, n_boot=200)
    assert (row["n"], row["n_failed"]) == (38, 2)
    assert row["srcc"] == reference.srocc > 0.7
    assert (row["plcc"], row["krcc"], row["plcc_logistic5"]) == (reference.plcc, reference.krcc,
                                                                  reference.plcc_logistic5)
    assert (row["srcc_ci_low"], row["srcc_ci_high"]) == (interval.low, interval.high)
    flipped = fr_row("x", "m", scores, labels, lower_better_score=False, lower_better_label=False, n_boot=10)
    assert flipped["srcc"] == -row["srcc"]
    few = fr_row("x", "m", [1, 2, math.nan], [1, 2, 3], lower_better_score=True, lower_better_label=True)
    assert few["n"] == 2 and math.isnan(few["srcc"])


def test_pyiqa_shape_and_reference_check(tmp_path: Path) -> None:
    rows = [{"dataset": "live", "metric": "psnr", "plcc": 0.8, "srcc": 0.81234, "krcc": 0.6,
             "plcc_logistic5": 0.85},
            {"dataset": "csiq", "metric": "psnr", "plcc": 0.7, "srcc": 0.7, "krcc": 0.5, "plcc_logistic5": 0.8},
            {"dataset": "live", "metric": "lpips", "plcc": 0.9, "srcc": 0.9, "krcc": 0.7, "plcc_logistic5": 0.9}]
    shaped = pyiqa_shaped_rows(rows, ["csiq", "live"])
    assert list(shaped[0]) == ["Metric name", "csiq(PLCC/SRCC/KRCC)", "live(PLCC/SRCC/KRCC)"]
    assert shaped[0]["live(PLCC/SRCC/KRCC)"] == "0.8000/0.8123/0.6000"
    assert shaped[1] == {"Metric name": "lpips", "csiq(PLCC/SRCC/KRCC)": "",
                         "live(PLCC/SRCC/KRCC)": "0.9000/0.9000/0.7000"}
    committed = tmp_path / "committed.csv"
    committed.write_text("metric,srocc,krcc,plcc,plcc_logistic5\npsnr,0.81234,0.6,0.8,0.85\nssim,1,1,1,1\n")
    text, ok = reference_table_check(rows, committed, "live")
    assert ok and "psnr" in text and "ssim" not in text and "lpips" not in text
    committed.write_text("metric,srocc,krcc,plcc,plcc_logistic5\npsnr,0.80,0.6,0.8,0.85\n")
    assert not reference_table_check(rows, committed, "live")[1]


# ----------------------------------------------------------------------------------------------------- run_fr


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    for i, name in enumerate(("tid2013", "csiq", "live", "pieapp")):  # MOS and DMOS datasets
        make_pyiqa_fr_tree(root, name, seed=10 + i)
    return root


@pytest.mark.slow  # 4.7 s measured (full run, 2 shared cores)
def test_run_fr_end_to_end(tmp_path: Path, datasets_root: Path, capsys: pytest.CaptureFixture) -> None:
    run = run_fr(["tid2013", "csiq", "live", "pieapp", "kadid10k"], datasets_root,
                 ["planted", "planted_sim", "reversed"], out_dir=tmp_path, scorer=planted_scorer, n_boot=100)
    captured = capsys.readouterr()
    assert list(run.missing) == ["kadid10k"]
    assert captured.err.count("skipped: kadid10k: no meta-info file at") == 1
    rows = {(r["dataset"], r["metric"]): r for r in run.rows}
    for dataset in ("tid2013", "csiq", "live", "pieapp"):
        assert rows[(dataset, "planted")]["srcc"] == pytest.approx(1)  # distance vs MOS or DMOS: +1 both ways
        assert rows[(dataset, "planted_sim")]["srcc"] == pytest.approx(1)  # similarity: +1 too
        assert rows[(dataset, "reversed")]["srcc"] == pytest.approx(-1)  # disagreeing metric: negative
        assert rows[(dataset, "planted")]["n"] == 10 and rows[(dataset, "planted")]["n_failed"] == 1
    shaped = read_csv(tmp_path / "fr_pyiqa_table.csv")
    assert [r["Metric name"] for r in shaped] == ["planted", "planted_sim", "reversed"]
    assert shaped[0]["tid2013(PLCC/SRCC/KRCC)"].split("/")[1] == "1.0000"
    assert shaped[2]["csiq(PLCC/SRCC/KRCC)"].split("/")[1] == "-1.0000"
    markdown = (tmp_path / "fr.md").read_text(encoding="utf-8")
    assert "## tid2013" in markdown and "MOS (higher = better)" in markdown and "DMOS (lower = better)" in markdown
    assert "kadid10k: no meta-info file" in markdown and "1 failed, e.g." in markdown
    assert len(read_csv(tmp_path / "fr.csv")) == 12


@pytest.mark.slow  # 1.6 s measured (full run, 2 shared cores)
def test_published_figures_printed_beside_ours(tmp_path: Path, datasets_root: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    def named_scorer(records, metrics, options):
        scores = planted_scorer(records, ["planted"], options)
        return MetricScores({"lpips": scores.values["planted"], "dists": scores.values["planted"]},
                            {"lpips": True, "dists": True})

    run_fr(["tid2013", "csiq"], datasets_root, ["lpips", "dists"], out_dir=None, scorer=named_scorer, n_boot=10)
    out = capsys.readouterr().out
    assert "0.7529/0.7445/0.5477" in out and "0.7538/0.7077/0.5212" in out  # TID2013 lpips, dists
    assert "0.9005/0.9233/0.7499" in out and "0.9324/0.9296/0.7644" in out  # CSIQ lpips, dists
    assert "+0.2555" in out  # our (planted) SRCC 1.0 minus pyiqa's TID2013 lpips .7445


@pytest.mark.slow  # 1.6 s measured (full run, 2 shared cores)
def test_cli_exit_statuses_and_one_line_errors(tmp_path: Path, datasets_root: Path, monkeypatch,
                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(run_fr_module, "score_with_engine", planted_scorer)
    argv = ["--dataset", "tid2013", "--root", str(datasets_root), "--metrics", "planted", "--out", str(tmp_path),
            "--boot", "20", "--no-progress"]
    assert run_fr_module.main(argv) == 0
    assert run_fr_module.main([*argv[:2], "tid2008", *argv[2:]]) == 2
    capsys.readouterr()
    assert run_fr_module.main([*argv, "--limit", "0"]) == 2  # a wrong value: the exit table (issue 25.15)
    err = capsys.readouterr().err
    assert err.strip() == "error: limit must be >= 1, got 0"


def test_a_dataset_that_cannot_be_scored_does_not_lose_the_others(tmp_path: Path, datasets_root: Path, monkeypatch,
                                                                  capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / "datasets"
    meta = make_pyiqa_fr_tree(broken, "tid2013", seed=10).meta_info
    make_pyiqa_fr_tree(broken, "csiq", seed=11)
    meta.write_text("this is not,a meta-info\nfile\n", encoding="utf-8")  # malformed: the first dataset fails
    monkeypatch.setattr(run_fr_module, "score_with_engine", planted_scorer)
    out = tmp_path / "out"
    argv = ["--dataset", "tid2013", "csiq", "--root", str(broken), "--metrics", "planted", "--out", str(out),
            "--boot", "20", "--no-progress"]
    assert run_fr_module.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("failed: tid2013:") == 1
    rows = read_csv(out / "fr.csv")
    assert [(r["dataset"], r["metric"]) for r in rows] == [("csiq", "planted")]
    assert "## Not scored (errors)" in (out / "fr.md").read_text(encoding="utf-8")


@pytest.mark.slow  # 4.4 s measured (full run, 2 shared cores)
def test_engine_scores_presets_and_registry_metrics(tmp_path: Path, datasets_root: Path, monkeypatch) -> None:
    """The real engine of `pe-iqa score`: a preset and a planted metric from one registry, per-image CSV."""
    registry = BENCHMARK_METRICS.with_metrics(ScoringMetric("planted_engine", True, score=planted_distance))
    builds = []
    build_metrics = run_fr_module._build_metrics
    monkeypatch.setattr(run_fr_module, "_build_metrics", lambda *a: builds.append(a) or build_metrics(*a))
    options = ScoringOptions(progress=False)
    run = run_fr(["tid2013", "live"], datasets_root, ["planted_engine", "pe_alex"], out_dir=tmp_path,
                 registry=registry, options=options, n_boot=20, verbose=False)
    again = run_fr(["tid2013"], datasets_root, ["planted_engine", "pe_alex"], out_dir=tmp_path, n_boot=20,
                   registry=registry, options=ScoringOptions(progress=False, resume=True), verbose=False)
    assert len(builds) == 2  # the metrics are built once per run, not once per dataset (2 datasets, then 1)
    rows = {(r["dataset"], r["metric"]): r for r in run.rows}
    assert rows[("tid2013", "planted_engine")]["srcc"] == pytest.approx(1)
    assert rows[("live", "planted_engine")]["srcc"] == pytest.approx(1)
    assert rows[("live", "pe_alex")]["lower_better"] is True and rows[("live", "pe_alex")]["n"] == 11
    scores = read_csv(tmp_path / "fr_scores_tid2013.csv")
    assert list(scores[0]) == ["distorted", "reference", "dataset", "ref_name", "label", "planted_engine", "pe_alex",
                               "error"]
    assert all(row["error"] == "" for row in scores) and len(scores) == 11
    assert again.rows[:2] == [r for r in run.rows if r["dataset"] == "tid2013"]  # resumed from the CSV
    from pe_iqa.provenance import ProvenanceError, read_sidecar, sidecar_path

    records, _ = read_sidecar(sidecar_path(tmp_path / "fr.csv"))
    assert records["pe_alex"].kind == "pe" and records["planted_engine"].kind == "unrecorded"
    assert read_sidecar(sidecar_path(tmp_path / "fr_pyiqa_table.csv"))[0] == records
    # a table never combines datasets scored under different configurations
    live = sidecar_path(tmp_path / "fr_scores_live.csv")
    live.write_text(live.read_text(encoding="utf-8").replace('"alpha": "error"', '"alpha": "white"'),
                    encoding="utf-8")
    with pytest.raises(ProvenanceError, match=r"fr_scores_live\.csv holds pe_alex scores made under another "
                                              r"configuration \(options\.alpha: white ≠ error"):
        run_fr_module._table_provenance(tmp_path, "fr", ["tid2013", "live"])
    # a dataset whose record of a metric is missing makes that metric's table record unknown: not claimed
    import json

    data = json.loads(live.read_text(encoding="utf-8").replace('"alpha": "white"', '"alpha": "error"'))
    del data["metrics"]["planted_engine"]
    live.write_text(json.dumps(data), encoding="utf-8")
    assert set(run_fr_module._table_provenance(tmp_path, "fr", ["tid2013", "live"])) == {"pe_alex"}


def test_one_error_type_for_a_metric_the_registry_cannot_give(datasets_root: Path) -> None:
    """Unknown, or known but not buildable here: the core's MetricUnavailableError, and the run stops."""
    import benchmarks.comparison

    from pe_iqa.scoring import MetricUnavailableError

    class Offline:
        def knows(self, name: str) -> bool:
            return name == "offline_xyz"

        def build(self, name: str, device) -> ScoringMetric:
            raise FileNotFoundError("weights not cached")

    registry = BENCHMARK_METRICS.with_providers(Offline())
    for names, match in ((["pe_alex", "nope_xyz"], "unknown metric 'nope_xyz'"),
                         (["offline_xyz"], "'offline_xyz' cannot be built here: FileNotFoundError: weights not")):
        with pytest.raises(MetricUnavailableError, match=match):
            run_fr(["tid2013"], datasets_root, names, registry=registry, options=ScoringOptions(progress=False),
                   n_boot=20, verbose=False)
    assert not hasattr(benchmarks.comparison, "MetricUnavailableError")  # one type, the core's


@pytest.mark.parametrize("name", ["../../escaped", "..", "", "a/b", "x" * 300])
def test_a_name_that_leaves_the_output_folder_is_refused_before_writing(tmp_path: Path, datasets_root: Path,
                                                                        monkeypatch, name: str) -> None:
    """Issue 19.9: ``--name ../../escaped`` wrote ``escaped_scores_*.csv`` outside ``--out`` before refusing."""
    monkeypatch.setattr(run_fr_module, "score_with_engine", planted_scorer)
    out = tmp_path / "a" / "b"
    argv = ["--dataset", "tid2013", "--root", str(datasets_root), "--metrics", "planted", "--out", str(out),
            "--boot", "20", "--no-progress", "--name", name]
    with pytest.raises(SystemExit) as exit_info:
        run_fr_module.main(argv)
    assert exit_info.value.code == 2
    with pytest.raises(ValueError, match="plain file stem"):
        run_fr(["tid2013"], datasets_root, ["planted"], out_dir=out, name=name, scorer=planted_scorer)
    assert not out.exists() and not list(tmp_path.rglob("*escaped*"))


def test_a_limited_smoke_run_writes_to_a_temporary_folder_unless_out_is_given(
        tmp_path: Path, datasets_root: Path, monkeypatch, capsys: pytest.CaptureFixture) -> None:
    """Issue 28 item 7: ``--limit`` without ``--out`` never writes into benchmarks/results."""
    import tempfile

    work, temp = tmp_path / "work", tmp_path / "temp"
    (work / "benchmarks" / "results").mkdir(parents=True)
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(run_fr_module, "score_with_engine", planted_scorer)
    argv = ["--dataset", "tid2013", "--root", str(datasets_root), "--metrics", "planted", "--boot", "20",
            "--no-progress", "--limit", "4"]
    assert run_fr_module.main(argv) == 0
    assert not any((work / "benchmarks" / "results").iterdir())
    (smoke,) = temp.glob("pe_run_fr_*")
    assert (smoke / "fr.md").exists() and str(smoke) in capsys.readouterr().out
    assert run_fr_module.main([*argv, "--out", str(tmp_path / "chosen")]) == 0
    assert (tmp_path / "chosen" / "fr.md").exists() and len(list(temp.glob("pe_run_fr_*"))) == 1
