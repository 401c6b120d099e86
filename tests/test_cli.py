"""The ``pe-iqa`` command line: score, rank, plot; streams (results on stdout, the rest on stderr); exit statuses.

Scores printed and written by the CLI are checked against the core (:class:`pe_iqa.PEDistance`) on the same
tensors; rankings against :func:`pe_iqa.get_ranking`. Error handling: ``test_cli_errors.py``; pyiqa-related
commands: ``test_cli_pyiqa.py``.
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

import numpy as np
import pytest
import torch
from PIL import Image

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


@pytest.mark.slow  # 1.6 s measured (full run, 2 shared cores)
def test_score_folders_verbose_and_csv_equal_the_core(tmp_path: Path, capsys, folders, pe_alex) -> None:
    dist, ref = folders
    out = tmp_path / "scores.csv"
    assert main(["score", "-t", str(dist), "-r", str(ref), "-v", "--csv", str(out), "--device", "cpu"]) == 0
    expected = _core_scores(pe_alex, dist, ref)
    captured = capsys.readouterr()
    header = captured.out.splitlines()[0].split()
    assert header == ["distorted", "reference", "pe_alex"]
    rows = _table(captured.out)
    assert rows["a.png"][1] == "a_ref.png" and rows["b.png"][1] == "b_ref.png"
    assert float(rows["a.png"][-1]) == pytest.approx(expected[0], abs=TOL)
    assert float(rows["b.png"][-1]) == pytest.approx(expected[1], abs=TOL)
    assert rows["mean"][:3] == ["mean", "(2", "pairs)"]
    assert float(rows["mean"][-1]) == pytest.approx(sum(expected) / 2, abs=TOL)
    assert "lower = better: pe_alex" in captured.out
    # the names differ: paired by sorted name, with one warning line on stderr
    warning = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "2 of 2 pairs have different names (first: a.png ↔ a_ref.png)" in warning[0]
    assert f"wrote {out}" in captured.err and "wrote" not in captured.out
    with out.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [Path(row["distorted"]).name for row in written] == ["a.png", "b.png"]
    assert [Path(row["reference"]).name for row in written] == ["a_ref.png", "b_ref.png"]
    assert [float(row["pe_alex"]) for row in written] == pytest.approx(expected, abs=TOL)
    assert [row["error"] for row in written] == ["", ""]


@pytest.mark.slow  # 0.8 s measured (full run, 2 shared cores)
def test_one_pair_says_mean_of_1_pair(capsys, folders) -> None:
    dist, ref = folders
    assert main(["score", "-t", str(dist / "a.png"), "-r", str(ref / "a_ref.png"), "--device", "cpu"]) == 0
    assert "mean (1 pair) " in capsys.readouterr().out


def test_when_the_only_pair_fails_the_summary_says_so_once(tmp_path, capsys) -> None:
    """Issue 20.8: "scored 1 pair in 0.02 s, 46.8 pairs/s" then "1 of 1 pair failed and are left out"."""
    (tmp_path / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    shutil.copy(SAMPLE_DIR / "reference" / "blur_1.png", tmp_path / "r.png")
    assert main(["score", "-t", str(tmp_path / "d.png"), "-r", str(tmp_path / "r.png"), "--device", "cpu",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "pairs/s" not in err and "scored 1" not in err and "are left out" not in err
    assert re.search(r"^no pair scored: the only pair failed \(\d+\.\d\d s on cpu\)$", err, re.MULTILINE), err


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_v_names_distorted_and_reference_files_the_same_way(tmp_path, capsys) -> None:
    """Issue 20.8: ``-v`` showed the distorted file's base name but the reference's whole path. Base names for
    both when each names one file; paths for both when a base name stands for two files."""
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        shutil.copy(SAMPLE_DIR / "distorted" / "blur_1.png", tmp_path / folder / "d.png")
        shutil.copy(SAMPLE_DIR / "reference" / "blur_1.png", tmp_path / folder / "r.png")
    shutil.copy(SAMPLE_DIR / "distorted" / "blur_2.png", tmp_path / "x" / "e.png")
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("distorted,reference\nx/d.png,x/r.png\nx/e.png,x/r.png\n", encoding="utf-8")
    assert main(["score", "--pairs", str(manifest), "-v", "--device", "cpu", "--no-progress"]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:3]]
    assert rows == [["d.png", "r.png"], ["e.png", "r.png"]]  # r.png shared by two pairs: still one file
    manifest.write_text("distorted,reference\nx/d.png,x/r.png\ny/d.png,y/r.png\n", encoding="utf-8")
    assert main(["score", "--pairs", str(manifest), "-v", "--device", "cpu", "--no-progress"]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:3]]
    assert rows == [[str(tmp_path / f / "d.png"), str(tmp_path / f / "r.png")] for f in ("x", "y")]


@pytest.mark.slow  # 1.2 s measured (full run, 2 shared cores)
def test_a_bad_pair_is_reported_the_others_scored_and_the_exit_status_says_so(tmp_path, capsys, folders,
                                                                             pe_alex) -> None:
    """Issue 10.6: one corrupt pair among many lost the whole run and wrote no CSV."""
    dist, ref = folders
    for name in ("a", "b"):
        shutil.copy(dist / f"{name}.png", tmp_path / f"{name}.png")
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(f"distorted,reference,mos\na.png,{ref / 'a_ref.png'},1\nc.png,{ref / 'a_ref.png'},2\n"
                        f"b.png,{ref / 'b_ref.png'},3\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["score", "--pairs", str(manifest), "--csv", str(out), "--device", "cpu", "-v", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "mean (2 of 3 pairs)" in captured.out
    # both columns name files the same way: base names (a_ref.png is one file shared by two pairs; issue 20.8)
    assert re.search(r"^c\.png\s+a_ref\.png\s+-\s+failed$", captured.out, re.MULTILINE)
    assert "pair 1 (" in captured.err and "c.png" in captured.err and "Traceback" not in captured.err
    summary = [line for line in captured.err.splitlines() if line.startswith("scored")]
    assert len(summary) == 1 and summary[0].startswith("scored 2 of 3 pairs in ")
    assert summary[0].endswith(f"; 1 pair failed and is left out of the means (see the error column of {out})")
    with out.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [row["mos"] for row in written] == ["1", "2", "3"]
    expected = _core_scores(pe_alex, dist, ref)
    assert float(written[0]["pe_alex"]) == pytest.approx(expected[0], abs=TOL)
    assert float(written[2]["pe_alex"]) == pytest.approx(expected[1], abs=TOL)
    assert written[1]["pe_alex"] == "" and "c.png" in written[1]["error"]


@pytest.mark.slow  # 1.3 s measured (full run, 2 shared cores)
def test_macos_metadata_files_do_not_abort_a_folder_run(tmp_path: Path, capsys, folders) -> None:
    dist, ref = folders
    shutil.copytree(dist, tmp_path / "dist")
    shutil.copytree(ref, tmp_path / "ref")
    for side in ("dist", "ref"):
        (tmp_path / side / "._a.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    assert main(["score", "-t", str(tmp_path / "dist"), "-r", str(tmp_path / "ref"), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "mean (2 pairs)" in captured.out
    assert captured.err.count("skipped 1 hidden file") == 2


def test_csv_onto_an_input_is_refused_before_scoring(tmp_path: Path, capsys, folders) -> None:
    """Issue 10.2: ``--csv r.png`` replaced the reference image with CSV text."""
    dist, ref = folders
    shutil.copy(ref / "a_ref.png", tmp_path / "r.png")
    before = (tmp_path / "r.png").read_bytes()
    assert main(["score", "-t", str(dist / "a.png"), "-r", str(tmp_path / "r.png"), "--csv",
                 str(tmp_path / "r.png"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "is one of the inputs" in err and "loaded" not in err  # refused before any metric was loaded
    assert (tmp_path / "r.png").read_bytes() == before


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("pe-iqa")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pe_iqa"]


@pytest.mark.slow  # 13.9 s measured (full run, 2 shared cores)
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


@pytest.mark.slow  # 7.1 s measured (full run, 2 shared cores)
def test_python_dash_m_is_the_same_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "pe_iqa", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith(f"pe-iqa {__version__}")
    usage = subprocess.run([sys.executable, "-m", "pe_iqa", "score", "--help"], capture_output=True, text=True,
                           timeout=120)
    assert usage.returncode == 0 and "usage: pe-iqa score" in usage.stdout and "--pairs" in usage.stdout


@pytest.mark.slow  # 1.4 s measured (full run, 2 shared cores)
def test_rank_table_on_stdout_and_files_match_the_registry(tmp_path: Path, capsys) -> None:
    # the ImageNet weights: their rankings ship with the package, so nothing is measured here
    args = ["rank", "alexnet", "--layers", "relu1", "--device", "cpu", "--top", "3"]
    assert main([*args, "--out", str(tmp_path / "r.json")]) == 0
    captured = capsys.readouterr()
    ranking = get_ranking("alexnet", "relu1")
    order = ranking.order().tolist()
    assert f"alexnet relu1: {ranking.n_channels} channels ranked by pe" in captured.out
    assert re.search(rf"top\s+1\s+{order[0]}\s", captured.out)
    assert re.search(rf"bottom\s+64\s+{order[-1]}\s", captured.out)
    # issue 11.7: progress, timings and "wrote FILE" go to stderr, not into the table
    assert "ranked 1 layer(s) in" in captured.err and f"wrote {tmp_path / 'r.json'}" in captured.err
    assert "ranked 1 layer" not in captured.out and "wrote" not in captured.out

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
    by_mu1 = dataclasses.replace(ranking, score_name="mu1")
    assert [int(row["channel"]) for row in written] == by_mu1.order().tolist()
    assert [float(row["score"]) for row in written] == by_mu1.mu1[by_mu1.order()].tolist()
    assert {row["layer"] for row in written} == {"relu1"}
    capsys.readouterr()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "photo.json", format="PNG")
    assert main([*args, "--out", str(tmp_path / "photo.json")]) == 2  # an image under a .json name: kept
    assert "holds an image" in capsys.readouterr().err


@pytest.mark.slow  # 2.3 s measured (full run, 2 shared cores)
def test_plot_writes_pngs_reports_on_stdout_and_files_on_stderr(tmp_path: Path, capsys) -> None:
    args = ["plot", "alexnet", "--layers", "relu1", "relu2", "--n", "2", "--dpi", "30",
            "--out-dir", str(tmp_path / "figs"), "--device", "cpu"]
    assert main(args) == 0
    captured = capsys.readouterr()
    pngs = sorted((tmp_path / "figs").glob("*.png"))
    assert [p.name for p in pngs] == ["alexnet_relu1_pe.png", "alexnet_relu2_pe.png"]
    for png in pngs:
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 2000
        assert f"wrote {png}" in captured.err and str(png) not in captured.out
    assert "relu1 filter chromaticity" in captured.out and "Spearman(PE, chromaticity)" in captured.out
    assert "relu2 filter chromaticity" not in captured.out
    assert "plotted 2 layer(s)" in captured.err
    assert not list((tmp_path / "figs").glob(".*"))  # no temporary or check files left behind


def test_version_and_help(capsys) -> None:
    assert main(["--version"]) == 0
    assert f"pe-iqa {__version__}" in capsys.readouterr().out
    for command in ("score", "rank", "plot"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert f"usage: pe-iqa {command}" in text and "examples:" in text and "--debug" in text
    assert main([]) == 2
    assert "score" in capsys.readouterr().err
