"""SR benchmark: image-level inference, matched-PSNR offsets flagged without runs, --quick never into results."""

from __future__ import annotations

import csv
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("skimage", reason="the SR benchmark needs the [sr] extra (scikit-image)")

from benchmarks.sr import run as sr_run
from benchmarks.sr.data import EXTENDED_HELD_OUT, HELD_OUT, TRAIN, check_held_out
from benchmarks.sr.inference import image_level_rows, matched_offset_rows

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "sr"


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_quick_without_out_writes_to_a_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_run_sr(out, config, variants, alphas, seeds, progress=True, debug=False):
        seen.update(out=Path(out), alphas=list(alphas))
        return [], {}

    monkeypatch.setattr(sr_run, "run_sr", fake_run_sr)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert sr_run.main(["--quick", "--no-progress"]) == 0
    assert seen["out"].parent == tmp_path and seen["out"].name.startswith("pe_sr_quick_")  # old code: results/sr
    assert sr_run.main(["--no-progress", "--alphas", "0.1,0.2,0.3", "0.9"]) == 0
    assert seen["out"] == Path("benchmarks/results/sr") and seen["alphas"] == [0.1, 0.2, 0.3, 0.9]


def test_held_out_images_are_never_training_images() -> None:
    check_held_out(TRAIN, HELD_OUT)
    check_held_out(TRAIN, EXTENDED_HELD_OUT)
    assert len(EXTENDED_HELD_OUT) == len(set(EXTENDED_HELD_OUT)) > len(HELD_OUT)
    with pytest.raises(ValueError, match="also used for training"):
        check_held_out(TRAIN, ("skimage:camera",))
    with pytest.raises(ValueError, match="also used for training"):
        check_held_out(("skimage:chelsea",), ("skimage:cat",))  # one photograph under two names


def _result(variant: str, alpha: float, seed: int, points: dict[str, tuple[float, float]]) -> dict:
    return {"variant": variant, "alpha": alpha, "seed": seed,
            "images": {im: {"psnr": p, "lpips": q} for im, (p, q) in points.items()}}


def test_matched_offsets_are_flagged_where_no_run_supports_them() -> None:
    images = ["a", "b", "c"]
    results = []
    for seed in (0, 1):
        results.append(_result("l2", 1.0, seed, {im: (30.0, 0.30) for im in images}))
        # dense curve: runs every 0.1 dB; sparse curve: nothing between -0.05 and -0.85 dB
        for k, alpha in enumerate((0.9, 0.7, 0.5, 0.3, 0.1)):
            results.append(_result("cx_pe", alpha, seed, {im: (29.9 - 0.1 * k, 0.28 - 0.02 * k) for im in images}))
        results.append(_result("cx_f", 0.9, seed, {im: (29.95, 0.29) for im in images}))
        results.append(_result("cx_f", 0.5, seed, {im: (29.15, 0.21) for im in images}))
    rows = {(r["psnr offset (dB)"], r["metric"]): r
            for r in matched_offset_rows(results, images, pairs=[("cx_pe", "cx_f")], perceptions=["lpips"])}
    near = rows[(-0.1, "lpips")]
    assert near["verdict"] == "" and near["supported"] == 1.0
    assert near["loss value"] == pytest.approx(0.28) and near["against value"] == pytest.approx(0.285)
    far = rows[(-0.5, "lpips")]
    assert far["verdict"] == "not supported by runs" and far["supported"] < 1.0  # cx_f crosses a 0.8 dB gap


def test_image_level_inference_is_a_t_test_over_images_of_seed_means() -> None:
    if not (RESULTS / "runs").is_dir():
        pytest.skip("committed SR runs not found")
    import json

    results = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((RESULTS / "runs").glob("*.json"))]
    rows = image_level_rows(results, ["lpips"], list(HELD_OUT), [("cx_pe", "cx_f")])
    row = next(r for r in rows if r["alpha"] == 0.5)
    per_image = _read(RESULTS / "sr_images.csv")

    def value(variant: str, seed: int, image: str) -> float:
        return next(float(r["lpips"]) for r in per_image
                    if (r["variant"], float(r["alpha"]), int(r["seed"]), r["image"]) == (variant, 0.5, seed, image))

    diffs = np.array([np.mean([value("cx_pe", s, im) - value("cx_f", s, im) for s in (0, 1, 2)]) for im in HELD_OUT])
    ref = stats.ttest_1samp(diffs, 0.0)
    assert row["diff"] == pytest.approx(diffs.mean())
    assert (row["t low"], row["t high"]) == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert row["t p"] == pytest.approx(ref.pvalue)
    assert row["images higher"] == int(np.sum(diffs > 0)) and row["images"] == 5
    assert row["sign-flip p"] >= 2 / 32


@pytest.mark.slow
def test_report_only_rebuilds_the_committed_tables(tmp_path: Path) -> None:
    if not (RESULTS / "runs").is_dir():
        pytest.skip("committed SR runs not found")
    shutil.copytree(RESULTS / "runs", tmp_path / "runs")
    assert sr_run.main(["--report-only", "--out", str(tmp_path), "--no-progress"]) == 0
    for name in ("sr_images.csv", "sr_runs.csv"):
        assert (tmp_path / name).read_bytes() == (RESULTS / name).read_bytes()
    rows = _read(tmp_path / "sr_matched_offsets.csv")
    assert {float(r["psnr offset (dB)"]) for r in rows} == {-0.1, -0.25, -0.5}
    assert all(r["verdict"] in ("", "not supported by runs", "not reached by every curve") for r in rows)
    assert not any(math.isnan(float(r["supported"])) for r in rows)


@pytest.mark.parametrize("metric", ["lpips", "no_such_metric"])
def test_the_offsets_plot_warns_nothing_even_with_nothing_to_show(tmp_path: Path, metric: str) -> None:
    """Issue 27: a test warned "No artists with labels found" from this plot (no row for the metric)."""
    import warnings

    from benchmarks.sr.inference import plot_matched_offsets

    rows = [{"metric": "lpips", "comparison": "pe vs l2", "psnr offset (dB)": 0.5, "diff": -0.01, "t low": -0.02,
             "t high": 0.0, "verdict": ""}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plot_matched_offsets(rows, tmp_path / "offsets.png", metric=metric)
    assert path.stat().st_size > 0
