"""The super-resolution benchmark (:mod:`benchmarks.sr`): the quick run end to end, resuming, and its parts."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("skimage", reason="the SR benchmark needs the [sr] extra (scikit-image)")
pytest.importorskip("pyiqa", reason="the SR benchmark needs the [sr] extra (pyiqa)")

from benchmarks.sr.data import PatchSampler, SRImage, degrade
from benchmarks.sr.losses import VARIANTS, BalancedLoss
from benchmarks.sr.report import bootstrap_mean, matched_distortion_rows
from benchmarks.sr.run import main

FULL_REFERENCE = ("psnr", "ssim", "lpips", "dists")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sr")
    assert main(["--quick", "--threads", "1", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.slow  # 7.8 s measured (full run, 2 shared cores)
def test_quick_run_writes_complete_finite_outputs(quick_run: Path) -> None:
    for name in ("sr.md", "sr_runs.csv", "sr_images.csv", "sr_perception_distortion.png"):
        assert (quick_run / name).stat().st_size > 0, name
    runs = read_csv(quick_run / "sr_runs.csv")
    expected = {("bicubic", "1.0"), ("pretrained", "1.0"), ("l2", "1.0")} | {(v, "0.5") for v in VARIANTS if v != "l2"}
    assert {(r["variant"], r["alpha"]) for r in runs} == expected
    for row in runs:
        assert all(math.isfinite(float(row[m])) for m in FULL_REFERENCE), row
    images = read_csv(quick_run / "sr_images.csv")
    assert len(images) == len(runs) * 2  # two held-out images in quick mode
    assert all(math.isfinite(float(r[m])) for r in images for m in FULL_REFERENCE)
    for row in runs:
        if row["variant"] not in ("bicubic", "pretrained", "l2"):
            assert float(row["x_0"]) > 0 and float(row["l2_0"]) > 0
    runs_by_variant = {r["variant"]: json.loads((quick_run / "runs" / f"{r['variant']}_a{float(r['alpha']):g}_s0.json")
                                                .read_text()) for r in runs if r["variant"] in VARIANTS}
    for name, run in runs_by_variant.items():
        if name == "l2":
            continue
        training = run["training"]
        # uniform channels count fully; PE weights concentrate on fewer (but at least one) effective channels
        if VARIANTS[name].weighting == "uniform":
            assert training["effective_channels"] == pytest.approx(training["channels"]), name
        else:
            assert 1.0 <= training["effective_channels"] < training["channels"], name
    report = (quick_run / "sr.md").read_text()
    assert "Paired differences" in report and "L2 + CX (PE-weighted)" in report
    assert "niqe" not in report.split("## Held-out")[1].split("\n")[2]  # not a table column when unavailable


@pytest.mark.slow  # 3.1 s measured (full run, 2 shared cores)
def test_rerun_skips_finished_runs_and_redoes_missing_ones(quick_run: Path) -> None:
    runs = sorted((quick_run / "runs").glob("*.json"))
    assert len(runs) == 8
    before = {p.name: p.stat().st_mtime_ns for p in runs}
    redo = quick_run / "runs" / "cx_pe_a0.5_s0.json"
    saved = json.loads(redo.read_text())
    redo.unlink()
    assert main(["--quick", "--threads", "1", "--out", str(quick_run), "--no-progress"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (quick_run / "runs").glob("*.json")}
    assert after.keys() == before.keys()
    assert all(after[name] == before[name] for name in before if name != redo.name)
    again = json.loads(redo.read_text())
    for image, scores in saved["images"].items():  # deterministic given the seed (one thread)
        assert again["images"][image] == pytest.approx(scores, rel=1e-5)


def test_bootstrap_interval_of_a_constant_and_of_spread_values() -> None:
    assert bootstrap_mean(np.full((3, 5), 2.0)) == (2.0, 2.0, 2.0)
    values = np.arange(15, dtype=float).reshape(3, 5)
    mean, low, high = bootstrap_mean(values)
    assert mean == 7.0 and low < mean < high and low >= 0 and high <= 14
    assert all(math.isnan(v) for v in bootstrap_mean(np.array([[1.0, np.nan]])))


def test_balanced_loss_is_one_at_the_first_batch_and_scale_invariant() -> None:
    preds, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)

    class Scaled(torch.nn.Module):
        def __init__(self, factor: float) -> None:
            super().__init__()
            self.factor = factor

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.factor * (a - b).abs().mean()

    small, large = BalancedLoss(Scaled(1.0), 0.3), BalancedLoss(Scaled(1000.0), 0.3)
    assert float(small(preds, target)[0]) == pytest.approx(1.0)
    assert float(large(preds, target)[0]) == pytest.approx(1.0)
    later = preds * 0.5
    assert float(small(later, target)[0]) == pytest.approx(float(large(later, target)[0]), rel=1e-5)
    with pytest.raises(ValueError):
        BalancedLoss(None, 0.5)


def test_degradation_and_patches_are_aligned_and_seeded() -> None:
    hr = torch.rand(1, 3, 70, 83)
    cropped, ilr = degrade(hr, 4)
    assert cropped.shape == ilr.shape == (1, 3, 68, 80)
    image = SRImage("x", cropped, ilr)
    a, b = PatchSampler([image], 16, seed=3), PatchSampler([image], 16, seed=3)
    batch_a, batch_b = a.batch(4), b.batch(4)
    assert all(torch.equal(x, y) for x, y in zip(batch_a, batch_b, strict=True))
    assert batch_a[0].shape == batch_a[1].shape == (4, 3, 16, 16)
    # an identity "degradation" would make input equal target: check the patches come from the same place
    same = PatchSampler([SRImage("y", cropped, cropped.clone())], 16, seed=5).batch(3)
    assert torch.equal(same[0], same[1])


def test_matched_distortion_interpolates_along_each_loss_curve() -> None:
    def result(variant: str, alpha: float, seed: int, psnr: float, lpips: float) -> dict:
        return {"variant": variant, "alpha": alpha, "seed": seed,
                "images": {"a": {"psnr": psnr - 1, "lpips": lpips}, "b": {"psnr": psnr + 1, "lpips": lpips}}}

    results = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        results += [result("l2", 1.0, seed, 30.0, 0.30 + shift),
                    result("cx_f", 0.9, seed, 29.8, 0.26 + shift), result("cx_f", 0.5, seed, 29.4, 0.20 + shift),
                    result("cx_pe", 0.9, seed, 29.9, 0.25 + shift)]  # never reaches −0.25 dB
    rows = {(r["loss"], r["psnr"]): r for r in matched_distortion_rows(results, ["a", "b"], perceptions=["lpips"])}
    # −0.25 dB lies 1/8 of the way from α = 0.9 (−0.2 dB) to α = 0.5 (−0.6 dB): 0.26 − 0.06/8 = 0.2525 (seed 0)
    cx_f = rows[("L2 + CX (F)", "L2 -0.25")]
    assert cx_f["lpips"] == pytest.approx((0.2525 + 0.2725) / 2) and cx_f["lpips n"] == 2
    assert cx_f["lpips sd"] == pytest.approx(np.std([0.2525, 0.2725], ddof=1))
    missing = rows[("L2 + CX (PE-weighted)", "L2 -0.25")]
    assert missing["lpips n"] == 0 and math.isnan(missing["lpips"])
