"""pyiqa-layout adapters on generated trees with a planted metric: paths, directions, partial copies, one-liners."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from benchmarks.datasets.bapps import load_bapps_2afc, load_bapps_jnd
from benchmarks.datasets.fr_sources import load_fr_dataset
from benchmarks.datasets.live import load_live_index
from benchmarks.datasets.pyiqa_layouts import (
    PYIQA_FR_DATASETS,
    DatasetMissingError,
    load_pyiqa_fr,
    pyiqa_dataset_configs,
    pyiqa_fr_spec,
)
from benchmarks.protocols.two_afc import two_afc_score
from scipy.stats import spearmanr
from tests.fixtures.planted import LiveFixture, planted_distance
from tests.fixtures.pyiqa_trees import make_pyiqa_bapps_tree, make_pyiqa_fr_tree

from pe_iqa.image_io import read_image

# What pyiqa's config says (checked against the installed file below), written out so a silent change shows.
EXPECTED_LOWER_BETTER = {"live": True, "livem": True, "csiq": True, "tid2008": False, "tid2013": False,
                         "kadid10k": False, "pipal": False, "pieapp": True}


def planted(record) -> float:
    return float(planted_distance(read_image(record.dist_path), read_image(record.ref_path))[0])


@pytest.fixture(scope="module")
def pyiqa_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One pyiqa ./datasets folder holding every supported dataset (tid2013 with a missing reference)."""
    root = tmp_path_factory.mktemp("datasets")
    fixtures = {name: make_pyiqa_fr_tree(root, name, n_missing_refs=int(name == "tid2013"), seed=i)
                for i, name in enumerate(PYIQA_FR_DATASETS)}
    return root, fixtures


def test_configs_are_read_from_the_installed_pyiqa_package() -> None:
    import importlib.util

    location = Path(next(iter(importlib.util.find_spec("pyiqa").submodule_search_locations)))
    with open(location / "default_dataset_configs.yml", encoding="utf-8") as handle:
        assert pyiqa_dataset_configs() == yaml.safe_load(handle)
    configs = pyiqa_dataset_configs()
    for name, lower_better in EXPECTED_LOWER_BETTER.items():
        assert pyiqa_fr_spec(name, "/r").lower_better is lower_better
        if name != "pieapp":
            assert configs[name]["lower_better"] is lower_better
    assert "lower_better" not in configs["pieapp"]  # hence the documented PieAPP README direction
    assert "PieAPP dataset README" in pyiqa_fr_spec("pieapp", "/r").direction_source


def test_paths_are_re_rooted_as_pyiqa_load_dataset_does() -> None:
    spec = pyiqa_fr_spec("csiq", "/data/iqa")
    assert spec.target_dir == Path("/data/iqa/CSIQ/dst_imgs")
    assert spec.ref_dir == Path("/data/iqa/CSIQ/src_imgs")
    assert spec.meta_info == Path("/data/iqa/meta_info/meta_info_CSIQDataset.csv")
    live = pyiqa_fr_spec("live", "/data/iqa")
    assert live.ref_dir == live.target_dir == Path("/data/iqa/LIVEIQA_release2")


@pytest.mark.parametrize("dataset", PYIQA_FR_DATASETS)
def test_every_layout_end_to_end(pyiqa_root, dataset: str) -> None:
    root, fixtures = pyiqa_root
    fixture = fixtures[dataset]
    index = load_pyiqa_fr(dataset, root)
    assert index.total == fixture.n_rows  # PieAPP: train rows skipped, repeated test rows kept once
    assert index.found == fixture.n_found
    assert [r.dist_name for r in index.records] == list(fixture.found_dist_names)
    assert [r.ref_name for r in index.records] == list(fixture.ref_names)
    np.testing.assert_array_equal(index.labels, fixture.labels)
    np.testing.assert_array_equal([planted(r) for r in index.records], fixture.planted)
    assert index.higher_is_better_label is (not EXPECTED_LOWER_BETTER[dataset])
    # the planted distance agrees perfectly with humans once the direction is the config's
    assert spearmanr([planted(r) for r in index.records], [r.dmos for r in index.records])[0] == pytest.approx(1)
    assert set(index.groups) == set(fixture.ref_names)
    summary = index.summary()
    assert summary.startswith(f"{dataset}: {fixture.n_found}/{fixture.n_rows} labelled pairs found")
    assert ("DMOS (lower = better)" if fixture.lower_better else "MOS (higher = better)") in summary


def test_partial_copy_counts_and_missing_reference(pyiqa_root) -> None:
    root, fixtures = pyiqa_root
    index = load_pyiqa_fr("tid2013", root)
    assert index.missing == 12 - fixtures["tid2013"].n_found == 5  # 4 pairs of the unwritten reference + 1
    assert all(not (r.dist_path.is_file() and r.ref_path.is_file()) for r in index.missing_records)
    assert len(set(index.groups)) == 2


def test_direction_comes_from_the_config_not_the_column_name(pyiqa_root) -> None:
    root, fixtures = pyiqa_root
    with open(fixtures["kadid10k"].meta_info, encoding="utf-8") as handle:
        assert next(csv.reader(handle))[2] == "dmos"  # as pyiqa's KADID-10k file, holding a MOS
    kadid = load_pyiqa_fr("kadid10k", root)
    assert kadid.higher_is_better_label
    np.testing.assert_array_equal([r.dmos for r in kadid.records], -kadid.labels)
    flipped = {k: dict(v) for k, v in pyiqa_dataset_configs().items()}
    flipped["kadid10k"]["lower_better"] = True
    wrong = load_pyiqa_fr("kadid10k", root, configs=flipped)
    rho = spearmanr([planted(r) for r in wrong.records], [r.dmos for r in wrong.records])[0]
    assert rho == pytest.approx(-1)


def test_missing_data_gives_one_line_naming_what_was_expected_where(tmp_path: Path, pyiqa_root) -> None:
    with pytest.raises(DatasetMissingError) as info:
        load_pyiqa_fr("tid2013", tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "meta_info" / "meta_info_TID2013Dataset.csv") in message
    assert str(tmp_path / "tid2013" / "distorted_images") in message
    _, fixtures = pyiqa_root
    (tmp_path / "meta_info").mkdir()
    (tmp_path / "meta_info" / "meta_info_PIPALDataset.csv").write_bytes(fixtures["pipal"].meta_info.read_bytes())
    with pytest.raises(DatasetMissingError) as info:
        load_pyiqa_fr("pipal", tmp_path)
    message = str(info.value)
    assert "\n" not in message and "none of the 12 pairs" in message
    assert str(tmp_path / "PIPAL" / "Dist_Imgs") in message and str(tmp_path / "PIPAL" / "Train_Ref") in message


def test_bad_requests_and_malformed_files(tmp_path: Path, pyiqa_root) -> None:
    with pytest.raises(ValueError, match="not full-reference"):
        load_pyiqa_fr("koniq10k", tmp_path)
    with pytest.raises(ValueError, match=r"unknown dataset 'nope'.*tid2013"):
        load_pyiqa_fr("nope", tmp_path)
    root, fixtures = pyiqa_root
    bad = tmp_path / "bad.csv"
    text = fixtures["csiq"].meta_info.read_text(encoding="utf-8").splitlines()
    text[3] = ",".join([*text[3].split(",")[:2], "n/a"])
    bad.write_text("\n".join(text), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv:4: dmos='n/a' is not a number"):
        load_pyiqa_fr("csiq", root, meta_info=bad)


def test_fr_sources_reads_live_official_and_pyiqa(live_tree: LiveFixture, pyiqa_root) -> None:
    official = load_fr_dataset("live", live_tree.root)
    reference = load_live_index(live_tree.root)
    assert official.spec.dataset_type == "official" and official.spec.lower_better
    assert [(r.dist_path, r.ref_path, r.label, r.ref_name) for r in official.records] == [
        (r.dist_path, r.ref_path, r.dmos, r.ref_name) for r in reference.records]
    assert official.missing == reference.missing
    root, _ = pyiqa_root
    assert load_fr_dataset("live", root).spec.dataset_type == "GeneralFRDataset"
    with pytest.raises(ValueError, match="only LIVE"):
        load_fr_dataset("tid2013", root, layout="official")
    with pytest.raises(DatasetMissingError, match="official layout"):
        load_fr_dataset("live", root / "nowhere", layout="official")


def test_bapps_in_pyiqa_layout(tmp_path: Path) -> None:
    fixture = make_pyiqa_bapps_tree(tmp_path / "datasets", n_per_subset=5, seed=3)
    index = load_bapps_2afc(fixture.root)  # auto: pyiqa's meta-info file is found
    assert index.dataset_root == fixture.images.root / "dataset"
    assert index.found_subsets == tuple(fixture.images.twoafc) and not index.missing_subsets
    for subset, records in index.records.items():
        listed = [f"{i:06d}" for i in range(5) if f"{i:06d}" not in fixture.unlisted[subset]]
        assert [r.stem for r in records] == [s for s in listed if s not in fixture.missing_listed[subset]]
        assert index.incomplete[subset] == 1
        truth = fixture.images.twoafc[subset]
        keep = np.array([int(r.stem) for r in records])
        np.testing.assert_array_equal([r.judge for r in records], truth["judge"][keep])
        d0 = [float(planted_distance(read_image(r.ref_path), read_image(r.p0_path))[0]) for r in records]
        d1 = [float(planted_distance(read_image(r.ref_path), read_image(r.p1_path))[0]) for r in records]
        np.testing.assert_array_equal(d0, truth["d0"][keep])
        expected = two_afc_score(truth["d0"][keep], truth["d1"][keep], truth["judge"][keep], lower_is_better=True)
        assert two_afc_score(np.array(d0), np.array(d1), np.array([r.judge for r in records]),
                             lower_is_better=True) == pytest.approx(expected)
    jnd = load_bapps_jnd(fixture.root, layout="pyiqa")
    for subset, records in jnd.records.items():
        np.testing.assert_array_equal([r.same for r in records], fixture.images.jnd[subset]["same"])
    # the same images read through the official layout: every id on disk, including the unlisted one
    official = load_bapps_2afc(fixture.images.root, layout="official")
    assert all(len(official.records[s]) == len(index.records[s]) + 1 for s in index.records)
    with pytest.raises(FileNotFoundError, match=r"meta_info_BAPPSDataset\.csv \(pyiqa layout\)"):
        load_bapps_2afc(tmp_path / "datasets" / "meta_info", layout="pyiqa")


def test_run_bapps_on_a_pyiqa_root(tmp_path: Path) -> None:
    """The BAPPS runner, unchanged, scores pyiqa's layout: the listed, complete triplets only."""
    from benchmarks.run_bapps import run_bapps

    from pe_iqa.scoring.metrics import ScoringMetric

    fixture = make_pyiqa_bapps_tree(tmp_path / "datasets", n_per_subset=5, seed=4, twoafc_subsets=["cnn", "color"])
    run = run_bapps(fixture.root, [ScoringMetric("planted", True, score=planted_distance)], out_dir=None,
                    progress=False, verbose=False)
    for subset in ("cnn", "color"):
        truth = fixture.images.twoafc[subset]
        keep = np.array([1, 2, 3])  # 0: p1 deleted, 4: not listed
        expected = two_afc_score(truth["d0"][keep], truth["d1"][keep], truth["judge"][keep], lower_is_better=True)
        assert run.score("planted", "2afc", subset) == pytest.approx(expected)
