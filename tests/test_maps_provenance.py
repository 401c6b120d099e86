"""``--maps``: one distinct file per pair, provenance in the PNG, stale maps redrawn, destination checked first
(issue 19, items 7 and 11)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_iqa import PEDistance
from pe_iqa.cli import SAMPLE_DIR, main
from pe_iqa.scoring.maps import PROVENANCE_KEY, map_file_names, write_distance_maps
from pe_iqa.scoring.pairs import ScorePair


@pytest.fixture(scope="module")
def pe_alex() -> PEDistance:
    return PEDistance("pe_alex")


@pytest.fixture()
def colliding(tmp_path: Path) -> list[ScorePair]:
    """``x.jpg``, ``x.png`` and ``000001_x.png`` against one reference: three different distortions."""
    reference = tmp_path / "r.png"
    shutil.copy(SAMPLE_DIR / "reference" / "blur_1.png", reference)
    pairs = []
    for name, source in (("x.jpg", "blur_2"), ("x.png", "noise_2"), ("000001_x.png", "jpeg_2")):
        image = Image.open(SAMPLE_DIR / "distorted" / f"{source}.png").convert("RGB")
        image.save(tmp_path / name, quality=95) if name.endswith(".jpg") else image.save(tmp_path / name)
        pairs.append(ScorePair(tmp_path / name, reference))
    return pairs


def _stored(path: Path) -> dict:
    with Image.open(path) as image:
        return json.loads(image.text[PROVENANCE_KEY])


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_every_pair_gets_its_own_map(colliding, pe_alex, tmp_path) -> None:
    """Item 7: one map held another pair's picture and a pair got none, exit 0."""
    names = map_file_names(colliding)
    assert len(set(names)) == 3
    report = write_distance_maps(colliding, pe_alex, tmp_path / "maps")
    assert report.written == 3 and not report.failures
    files = sorted((tmp_path / "maps").iterdir())
    assert len(files) == 3
    from pe_iqa.scoring.output import file_sha256

    for pair, name in zip(colliding, names, strict=True):
        assert _stored(tmp_path / "maps" / name)["distorted"] == file_sha256(pair.distorted)


def test_long_names_are_shortened_not_failed(tmp_path, pe_alex) -> None:
    long = tmp_path / ("d" * 230 + ".png")
    shutil.copy(SAMPLE_DIR / "distorted" / "blur_1.png", long)
    pairs = [ScorePair(long, SAMPLE_DIR / "reference" / "blur_1.png")]
    (name,) = map_file_names(pairs)
    assert len(name.encode()) <= 200
    assert write_distance_maps(pairs, pe_alex, tmp_path / "maps").written == 1


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_stale_maps_are_redrawn_and_foreign_files_kept(colliding, pe_alex, tmp_path) -> None:
    """Item 7: maps on disk were "kept" after the metric or the distorted image changed."""
    folder = tmp_path / "maps"
    write_distance_maps(colliding, pe_alex, folder)
    again = write_distance_maps(colliding, pe_alex, folder)
    assert again.written == 0 and again.skipped == 3  # up to date: kept
    other = write_distance_maps(colliding, PEDistance("pe_alex_f"), folder)
    assert other.written == 3 and other.redrawn == 3
    assert _stored(folder / map_file_names(colliding)[0])["metric"]["spec"] == PEDistance("pe_alex_f").spec.digest()
    shutil.copy(SAMPLE_DIR / "distorted" / "noise_1.png", colliding[1].distorted)  # the image changed
    changed = write_distance_maps(colliding, PEDistance("pe_alex_f"), folder)
    assert changed.written == 1 and changed.redrawn == 1
    foreign = folder / map_file_names(colliding)[2]
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(foreign)  # a PNG that is not a pe-iqa map
    before = foreign.read_bytes()
    kept = write_distance_maps(colliding, pe_alex, folder)
    assert len(kept.failures) == 1 and "not a pe-iqa map" in kept.failures[0][1]
    assert foreign.read_bytes() == before


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_the_maps_destination_is_checked_before_scoring(tmp_path, where, capsys) -> None:
    """Item 11: the destination was checked only after the whole run was scored."""
    (tmp_path / "file").write_text("x")
    maps = tmp_path / "file" / "maps" if where == "under_a_file" else Path("/proc/pe_iqa_maps")
    csv_path = tmp_path / "s.csv"
    assert main(["score", "--sample", "pe_alex", "--maps", str(maps), "--csv", str(csv_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--maps" in err and "scored" not in err and not csv_path.exists()
