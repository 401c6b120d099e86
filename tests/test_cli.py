"""The ``pe-iqa`` command line: score, rank, plot, pyiqa pass-through, version/help and error handling.

Scores printed and written by the CLI are checked against the core (:class:`pe_iqa.PEDistance`) on
the same tensors; rankings against :func:`pe_iqa.get_ranking`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pe_iqa import AnalysisConfig, PEDistance, __version__, get_ranking
from pe_iqa.cli import SAMPLE_DIR, main
from pe_iqa.image_io import pair_images, read_pair

TOL = 1e-6


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """Two pairs with names that differ between the folders (paired by sorted name): a↔a_ref, b↔b_ref."""
    root = tmp_path_factory.mktemp("pairs")
    for new, sample in (("a", "blur_1"), ("b", "noise_2")):
        (root / "dist").mkdir(exist_ok=True)
        (root / "ref").mkdir(exist_ok=True)
        shutil.copy(SAMPLE_DIR / "distorted" / f"{sample}.png", root / "dist" / f"{new}.png")
        shutil.copy(SAMPLE_DIR / "reference" / f"{sample}.png", root / "ref" / f"{new}_ref.png")
    return root / "dist", root / "ref"


@pytest.fixture(scope="module")
def pe_alex():
    return PEDistance("pe_alex", device="cpu")


def _core_scores(metric, distorted: Path, reference: Path) -> list[float]:
    with torch.inference_mode():
        return [float(metric(*read_pair(d, r))) for d, r in pair_images(distorted, reference)]


def _table(stdout: str) -> dict[str, list[str]]:
    """Rows of the printed score table keyed by their first cell (the mean row by "mean")."""
    rows = {}
    for line in stdout.splitlines():
        cells = line.split()
        if cells and cells[0] == "mean":
            rows["mean"] = cells
        elif cells and cells[0].endswith(".png"):
            rows[cells[0]] = cells
    return rows


def test_score_folders_verbose_and_csv_equal_the_core(tmp_path: Path, capsys, folders, pe_alex) -> None:
    dist, ref = folders
    out = tmp_path / "scores.csv"
    assert main(["score", "-t", str(dist), "-r", str(ref), "-v", "--csv", str(out), "--device", "cpu"]) == 0
    expected = _core_scores(pe_alex, dist, ref)
    stdout = capsys.readouterr().out
    header = stdout.splitlines()[0].split()
    assert header == ["distorted", "reference", "pe_alex"]
    rows = _table(stdout)
    assert rows["a.png"][1] == "a_ref.png" and rows["b.png"][1] == "b_ref.png"
    assert float(rows["a.png"][-1]) == pytest.approx(expected[0], abs=TOL)
    assert float(rows["b.png"][-1]) == pytest.approx(expected[1], abs=TOL)
    assert float(rows["mean"][-1]) == pytest.approx(sum(expected) / 2, abs=TOL)
    assert "lower = better: pe_alex" in stdout
    with out.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [Path(row["distorted"]).name for row in written] == ["a.png", "b.png"]
    assert [Path(row["reference"]).name for row in written] == ["a_ref.png", "b_ref.png"]
    assert [float(row["pe_alex"]) for row in written] == pytest.approx(expected, abs=TOL)


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("pe-iqa")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pe_iqa.cli"]


def test_console_script_scores_the_bundled_sample(tmp_path: Path, pe_alex) -> None:
    out = tmp_path / "sample.csv"
    result = subprocess.run([*_console_script(), "score", "--sample", "--csv", str(out), "--device", "cpu"],
                            capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    rows = _table(result.stdout)
    names = sorted(p.name for p in (SAMPLE_DIR / "distorted").glob("*.png"))
    assert sorted(set(rows) - {"mean"}) == names  # --sample lists every pair
    with out.open(newline="") as handle:
        written = {Path(row["distorted"]).stem: float(row["pe_alex"]) for row in csv.DictReader(handle)}
    for stem in ("blur_2", "noise_1"):  # two pairs suffice here: the folder test checks every pair
        core = _core_scores(pe_alex, SAMPLE_DIR / "distorted" / f"{stem}.png", SAMPLE_DIR / "reference" / f"{stem}.png")
        assert written[stem] == pytest.approx(core[0], abs=TOL)
    for name in names:
        assert float(rows[name][-1]) == pytest.approx(written[name[:-4]], abs=TOL)
    for kind in ("blur", "jpeg", "noise"):  # stronger distortion, larger distance
        assert written[f"{kind}_2"] > written[f"{kind}_1"] > 0


def test_rank_json_and_csv_match_the_registry(tmp_path: Path, capsys) -> None:
    # the ImageNet weights: their rankings ship with the package, so nothing is measured here
    args = ["rank", "alexnet", "--layers", "relu1", "--device", "cpu", "--top", "3"]
    assert main([*args, "--out", str(tmp_path / "r.json")]) == 0
    stdout = capsys.readouterr().out
    ranking = get_ranking("alexnet", "relu1")
    order = ranking.order().tolist()
    assert f"alexnet relu1: {ranking.n_channels} channels ranked by pe" in stdout
    assert re.search(rf"top\s+1\s+{order[0]}\s", stdout) and re.search(rf"bottom\s+64\s+{order[-1]}\s", stdout)
    assert "ranked 1 layer(s) in" in stdout

    document = json.loads((tmp_path / "r.json").read_text())
    assert document["weights_id"] == ranking.weights_id and document["backbone"] == "alexnet"
    assert document["config"] == dataclasses.asdict(AnalysisConfig())
    rows = document["layers"]["relu1"]
    assert [row["channel"] for row in rows] == order
    assert [row["rank"] for row in rows] == list(range(1, 65))
    assert [row["pe"] for row in rows] == ranking.pe[order].tolist()
    assert [row["mu2"] for row in rows] == ranking.mu2[order].tolist()

    assert main([*args, "--score", "mu1", "--out", str(tmp_path / "r.csv")]) == 0
    with (tmp_path / "r.csv").open(newline="") as handle:
        written = list(csv.DictReader(handle))
    by_mu1 = ranking.with_score("mu1")
    assert [int(row["channel"]) for row in written] == by_mu1.order().tolist()
    assert [float(row["score"]) for row in written] == by_mu1.mu1[by_mu1.order()].tolist()
    assert {row["layer"] for row in written} == {"relu1"}


def test_plot_writes_one_png_per_layer_and_reports_chromaticity(tmp_path: Path, capsys) -> None:
    args = ["plot", "alexnet", "--layers", "relu1", "relu2", "--n", "2", "--dpi", "30",
            "--out-dir", str(tmp_path / "figs"), "--device", "cpu"]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    pngs = sorted((tmp_path / "figs").glob("*.png"))
    assert [p.name for p in pngs] == ["alexnet_relu1_pe.png", "alexnet_relu2_pe.png"]
    for png in pngs:
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 2000
        assert str(png) in stdout
    assert "relu1 filter chromaticity" in stdout and "Spearman(PE, chromaticity)" in stdout
    assert "relu2 filter chromaticity" not in stdout


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["score", "-t", "{tmp}/missing.png", "-r", "{tmp}/missing.png"], "no such file or folder", 1),
        (["score", "-t", "{dist}", "-r", "{ref}/a_ref.png"], "same number of images", 1),
        (["score", "-t", "{dist}/a.png", "-r", "{ref}/a_ref.png", "no_such_metric_xyz"], "no_such_metric_xyz", 1),
        (["score", "--sample", "-t", "{dist}"], "either --sample", 1),
        (["score"], "-t DIST", 1),
        (["rank", "nonet"], "backbone must be one of", 1),
        (["rank", "alexnet", "--weights", "random", "--layers", "relu9"], "unknown layer(s) ['relu9']", 1),
        (["rank", "alexnet", "--out", "ranks.txt"], ".json or .csv", 1),
        (["plot", "alexnet", "--weights", "random", "--layers", "relu1", "--n", "0"], "--n must be >= 1", 1),
        (["bogus"], "invalid choice", 2),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(capsys, tmp_path, folders, args, message, code) -> None:
    dist, ref = folders
    filled = [a.format(tmp=tmp_path, dist=dist, ref=ref) for a in args]
    assert main(filled) == code
    stderr = capsys.readouterr().err
    assert message in stderr
    assert "Traceback" not in stderr


def test_version_and_help(capsys) -> None:
    assert main(["--version"]) == 0
    assert f"pe-iqa {__version__}" in capsys.readouterr().out
    for command in ("score", "rank", "plot"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert f"usage: pe-iqa {command}" in text and "examples:" in text
    assert main([]) == 2
    assert "score" in capsys.readouterr().out


def test_pyiqa_subcommand_without_the_plugin_fails_clearly(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "pe_iqa_pyiqa", None)  # makes `import pe_iqa_pyiqa` raise ImportError
    assert main(["pyiqa", "pe_alex", "-t", "x.png", "-r", "y.png"]) == 1
    stderr = capsys.readouterr().err
    assert "pe_iqa_pyiqa" in stderr and "Traceback" not in stderr


def test_score_pyiqa_metrics_equal_pyiqa(capsys, folders) -> None:
    pyiqa = pytest.importorskip("pyiqa")
    dist, ref = folders[0] / "a.png", folders[1] / "a_ref.png"
    assert main(["score", "-t", str(dist), "-r", str(ref), "lpips", "ssim", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "Loading pretrained" not in captured.out  # pyiqa's loading messages go to stderr
    rows = _table(captured.out)
    assert set(rows) == {"mean"}  # without -v only the means are printed
    mean = rows["mean"]
    images = read_pair(dist, ref)
    for column, name in ((-2, "lpips"), (-1, "ssim")):
        metric = pyiqa.create_metric(name, device="cpu")
        assert float(mean[column]) == pytest.approx(float(metric(*images)), abs=TOL)
    assert "lower = better: lpips; higher = better: ssim" in captured.out


def test_pyiqa_subcommand_runs_pyiqa_cli_with_pe_metrics(capsys, folders, pe_alex) -> None:
    pytest.importorskip("pyiqa")
    try:
        import pe_iqa_pyiqa  # noqa: F401
    except ImportError as error:
        pytest.skip(f"pe_iqa_pyiqa plugin not importable: {error}")
    dist, ref = folders[0] / "a.png", folders[1] / "a_ref.png"
    argv = list(sys.argv)
    assert main(["pyiqa", "pe_alex", "-t", str(dist), "-r", str(ref), "--device", "cpu"]) == 0
    assert sys.argv == argv
    match = re.search(r"'mean': (?:np\.float64\()?([-+0-9.eE]+)", capsys.readouterr().out)
    assert match, "pyiqa's CLI printed no mean"
    assert float(match.group(1)) == pytest.approx(_core_scores(pe_alex, dist, ref)[0], abs=TOL)
