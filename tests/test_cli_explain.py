"""``pe-iqa explain``, ``pe-iqa score --maps`` and ``pe-iqa layers``: as a user runs them."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from pe_iqa import PEDistance
from pe_iqa.cli import SAMPLE_DIR, main
from pe_iqa.image_io import read_pair


@pytest.fixture(scope="module")
def pe_alex(alexnet_weights_available: bool) -> PEDistance:
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME")
    return PEDistance("pe_alex")


@pytest.mark.slow  # 7.0 s measured (full run, 2 shared cores)
def test_explain_prints_writes_and_adds_up(pe_alex: PEDistance, tmp_path: Path, capsys) -> None:
    files = {"--csv": tmp_path / "c.csv", "--json": tmp_path / "c.json", "--figure": tmp_path / "why.png"}
    argv = ["explain", "--sample", "blur_2", "--top", "4"] + [x for k, v in files.items() for x in (k, str(v))]
    assert main(argv) == 0
    out = capsys.readouterr().out
    with torch.no_grad():
        score = float(pe_alex(*read_pair(SAMPLE_DIR / "distorted" / "blur_2.png",
                                         SAMPLE_DIR / "reference" / "blur_2.png")))
    assert f"score {score:.6f}" in out and "these 4 of 38 channels carry" in out
    with open(files["--csv"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 38 and sum(float(r["contribution"]) for r in rows) == pytest.approx(score, rel=1e-5)
    document = json.loads(files["--json"].read_text(encoding="utf-8"))
    assert document["score"] == pytest.approx(score, rel=1e-6) and len(document["channels"]) == 38
    assert files["--figure"].stat().st_size > 10_000


def test_explain_refuses_to_write_onto_an_input_before_any_work(tmp_path: Path, capsys) -> None:
    reference = tmp_path / "ref.png"
    shutil.copy(SAMPLE_DIR / "reference" / "blur_1.png", reference)
    before = reference.read_bytes()
    status = main(["explain", "-t", str(SAMPLE_DIR / "distorted" / "blur_1.png"), "-r", str(reference),
                   "--csv", str(reference)])
    assert status != 0 and reference.read_bytes() == before
    assert "one of the inputs" in capsys.readouterr().err
    assert main(["explain", "--sample", "nope"]) == 2


@pytest.mark.slow  # 11.6 s measured (full run, 2 shared cores)
def test_score_maps_one_png_per_pair_and_resume_keeps_them(pe_alex: PEDistance, tmp_path: Path, capsys) -> None:
    maps = tmp_path / "maps"
    assert main(["score", "--sample", "pe_alex", "--maps", str(maps), "--no-progress"]) == 0
    names = sorted(p.name for p in maps.iterdir())
    assert names == sorted(f"{n}__vs__{n}.png" for n in ("blur_1", "blur_2", "jpeg_1", "jpeg_2", "noise_1",
                                                          "noise_2"))
    assert "wrote 6 maps" in capsys.readouterr().err
    stamp = {p.name: p.stat().st_mtime_ns for p in maps.iterdir()}
    (maps / names[0]).unlink()
    assert main(["score", "--sample", "pe_alex", "--maps", str(maps), "--no-progress"]) == 0
    assert "wrote 1 map to" in capsys.readouterr().err
    assert all(p.stat().st_mtime_ns == stamp[p.name] for p in maps.iterdir() if p.name != names[0])


def test_score_maps_usage_errors(tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me", encoding="utf-8")
    assert main(["score", "--sample", "pe_alex", "--maps", str(a_file)]) != 0
    assert a_file.read_text(encoding="utf-8") == "keep me"
    assert main(["score", "--sample", "pe_alex", "--maps-metric", "pe_alex"]) == 2
    assert main(["score", "--sample", "pe_alex", "--maps", str(tmp_path / "m"), "--maps-metric", "lpips"]) == 2
    assert "--maps draws a PE preset" in capsys.readouterr().err


@pytest.mark.slow  # 6.2 s measured (full run, 2 shared cores)
def test_layers_lists_every_layer_with_channels(capsys) -> None:
    assert main(["layers", "vgg16"]) == 0
    out = capsys.readouterr().out
    assert "vgg16: 13 layers" in out and "relu1_1" in out and "relu5_3" in out
    assert main(["layers", "timm:resnet18"]) == 0
    assert "layer4" in capsys.readouterr().out
    assert main(["layers", "timm:vit_small_patch16_224"]) == 2  # a wrong command line (issue 20.7)
    assert "transformer" in capsys.readouterr().err


@pytest.mark.slow  # 13.9 s measured (full run, 2 shared cores)
def test_rank_all_layers(capsys) -> None:
    assert main(["rank", "alexnet", "--weights", "random", "--layers", "all", "--top", "1", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert all(f"alexnet relu{k}:" in out for k in range(1, 6))


@pytest.mark.slow  # 2.0 s measured (full run, 2 shared cores)
def test_one_map_that_fails_in_any_way_never_stops_the_others(pe_alex: PEDistance, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from pe_iqa import explain_figures as explain
    from pe_iqa.scoring.maps import write_distance_maps
    from pe_iqa.scoring.pairs import ScorePair

    draw, calls = explain.map_figure, []

    def failing_once(*args, **kwargs):  # e.g. a TypeError from matplotlib on one pair
        calls.append(1)
        if len(calls) == 1:
            raise TypeError("cannot draw this one")
        return draw(*args, **kwargs)

    monkeypatch.setattr(explain, "map_figure", failing_once)
    pairs = [ScorePair(SAMPLE_DIR / "distorted" / f"{n}.png", SAMPLE_DIR / "reference" / f"{n}.png")
             for n in ("blur_1", "jpeg_1", "noise_1")]
    report = write_distance_maps(pairs, pe_alex, tmp_path / "maps")
    assert report.written == 2 and len(report.failures) == 1
    assert report.failures[0][0] == 0 and "TypeError: cannot draw this one" in report.failures[0][1]
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["jpeg_1__vs__jpeg_1.png",
                                                                     "noise_1__vs__noise_1.png"]
