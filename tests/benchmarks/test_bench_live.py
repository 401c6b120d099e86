"""Tests of the LIVE adapter on the real partial copy and on generated partial trees."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from benchmarks.datasets.live import load_live_index
from tests.fixtures.planted import LiveFixture, make_live_tree


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_real_live_finds_the_present_rows(real_live_root: Path) -> None:
    index = load_live_index(real_live_root)
    rows = read_csv(real_live_root / "labels" / "live_dmos.csv")
    image_root = real_live_root / "databaserelease2"
    on_disk = {f"{p.parent.name}/{p.name}" for p in image_root.glob("*/*.bmp") if p.parent.name != "refimgs"}
    assert index.total == len(rows) == 779
    assert index.found == 99 == len(on_disk)
    assert index.missing == 680
    assert {r.dist_name for r in index.records} == on_disk
    assert all(r.dist_path.is_file() and r.ref_path.is_file() for r in index.records)
    assert not any(r.dist_path.is_file() and r.ref_path.is_file() for r in index.missing_records)
    by_name = {row["dist_name"]: row for row in rows}
    for record in index.records:
        row = by_name[record.dist_name]
        assert record.dmos == float(row["dmos"])
        assert record.dist_type == row["dist_type"]
        assert f"refimgs/{record.ref_name}.bmp" == row["ref_name"]
    types = Counter(p.split("/")[0] for p in on_disk)
    summary = index.summary()
    assert summary.startswith("LIVE: 99/779 labelled images found (680 missing)")
    assert f"jpeg {types['jpeg']}/" in summary and "jp2k 0/" in summary
    realigned = load_live_index(real_live_root, label_column="dmos_realigned")
    assert realigned.records[0].dmos == float(by_name[realigned.records[0].dist_name]["dmos_realigned"])


def test_generated_partial_tree_counts(live_tree: LiveFixture) -> None:
    index = load_live_index(live_tree.root)
    assert index.total == live_tree.n_rows == 18
    assert index.found == live_tree.n_found == 10
    assert index.missing == live_tree.n_missing == 8
    assert tuple(r.dist_name for r in index.records) == live_tree.found_dist_names
    np.testing.assert_array_equal([r.dmos for r in index.records], live_tree.dmos)
    assert index.summary().startswith("LIVE: 10/18 labelled images found (8 missing)")
    assert index.label_column == "dmos"


def test_pyiqa_meta_info_layout(tmp_path: Path) -> None:
    fixture = make_live_tree(tmp_path / "LIVEIQA_release2", layout="pyiqa", seed=5)
    index = load_live_index(fixture.root)
    assert index.label_column == "mos"
    assert index.image_root == fixture.root
    assert (index.found, index.missing) == (fixture.n_found, fixture.n_missing)
    np.testing.assert_array_equal([r.dmos for r in index.records], fixture.dmos)

    # older pyiqa meta files: bare reference names and no .bmp suffix; given explicitly
    old = tmp_path / "meta_info" / "meta_info_LIVEIQADataset.csv"
    old.parent.mkdir()
    with old.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref_name", "dist_name", "mos"])
        for row in read_csv(fixture.labels_path):
            writer.writerow([Path(row["ref_name"]).name, row["dist_name"].removesuffix(".bmp"), row["mos"]])
    fixture.labels_path.unlink()
    # found by default at ../meta_info/ (pyiqa's datasets/meta_info beside datasets/LIVEIQA_release2)
    legacy = load_live_index(fixture.root)
    assert legacy.labels_path.resolve() == old.resolve()
    assert [r.dist_path for r in legacy.records] == [r.dist_path for r in index.records]
    assert [r.dist_type for r in legacy.records] == [r.dist_type for r in index.records]


def test_bad_inputs(tmp_path: Path, live_tree: LiveFixture) -> None:
    with pytest.raises(FileNotFoundError, match="LIVE root not found"):
        load_live_index(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no LIVE label file"):
        load_live_index(tmp_path)
    with pytest.raises(ValueError, match="label_column 'quality'"):
        load_live_index(live_tree.root, label_column="quality")
    with pytest.raises(ValueError, match="layout"):
        load_live_index(live_tree.root, layout="tid")  # type: ignore[arg-type]
    bad = tmp_path / "bad.csv"
    bad.write_text("ref,dist,mos\na,b,1\n")
    with pytest.raises(ValueError, match="lacks column 'ref_name'"):
        load_live_index(live_tree.root, labels=bad)


def test_pyiqa_reads_the_same_rows(tmp_path: Path) -> None:
    pytest.importorskip("pyiqa")
    from pyiqa.data.general_fr_dataset import GeneralFRDataset

    fixture = make_live_tree(tmp_path / "LIVEIQA_release2", layout="pyiqa", seed=2)
    opt = {"dataroot_target": str(fixture.root), "meta_info_file": str(fixture.labels_path), "phase": "test"}
    theirs = [(Path(ref), Path(dist), float(mos)) for ref, dist, mos in GeneralFRDataset(opt).paths_mos]
    index = load_live_index(fixture.root)
    ours = [(r.ref_path, r.dist_path, r.dmos) for r in index.records + index.missing_records]
    assert sorted(ours) == sorted(theirs)
