"""Quick (smoke) modes of the selection benchmarks write to a temporary folder, never into benchmarks/results."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pytest
from benchmarks.selection import __main__ as selection_cli
from benchmarks.selection import percentiles
from tests.fixtures.planted import make_live_tree


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


@pytest.fixture()
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a 'committed' benchmarks/results file, and temporary folders under tmp_path."""
    work = tmp_path / "work"
    (work / "benchmarks" / "results").mkdir(parents=True)
    (work / "benchmarks" / "results" / "selection_percentiles.csv").write_text("committed\n")
    monkeypatch.chdir(work)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return tmp_path


def _quick_tree(sandbox: Path, n_per_type: int, seed: int):
    """A complete 3-reference LIVE tree, the sandbox's ``benchmarks/results`` and a snapshot of it."""
    tree = make_live_tree(sandbox / "live", n_refs=3, n_per_type=n_per_type, n_missing_dist=0, n_missing_refs=0,
                          seed=seed)
    results = sandbox / "work" / "benchmarks" / "results"
    return tree, results, _snapshot(results)


@pytest.mark.slow
def test_percentiles_quick_writes_to_a_temporary_folder(sandbox: Path) -> None:
    tree, results, before = _quick_tree(sandbox, n_per_type=3, seed=2)
    code = percentiles.main(["--quick", "--root", str(tree.root), "--weights", "random", "--configs", "alexnet:1",
                             "--random", "5", "--boot", "20"])
    assert code == 0
    assert _snapshot(results) == before  # the committed results are untouched
    written = list((sandbox / "temp").glob("pe_percentiles_*/selection_percentiles.csv"))
    assert len(written) == 1
    with open(written[0], newline="", encoding="utf-8") as handle:
        cells = list(csv.DictReader(handle))
    assert len(cells) == 5 * 2  # AlexNet's 5 layers × x in {10, 50}
    assert all(0.0 <= float(c["percentile"]) <= 1.0 for c in cells)
    assert all(float(c["perm_p"]) >= 1 / 6 for c in cells)  # 5 random subsets: p >= 1/(5+1)
    combined = (written[0].parent / "selection_percentiles.md").read_text(encoding="utf-8")
    assert "above the 95th percentile" in combined and "resampling the 3 references" in combined


@pytest.mark.slow
def test_selection_quick_writes_to_a_temporary_folder(sandbox: Path) -> None:
    tree, results, before = _quick_tree(sandbox, n_per_type=2, seed=4)
    code = selection_cli.main(["--quick", "--root", str(tree.root), "--weights", "random", "--backbones", "alexnet",
                               "--chromatic-backbones", "--no-lpips", "--seeds", "2", "--boot", "20"])
    assert code == 0
    assert _snapshot(results) == before  # old code wrote the quick run over benchmarks/results
    assert list((sandbox / "temp").glob("pe_selection_*/selection_srocc.csv"))


@pytest.mark.slow
def test_percentiles_in_shards_by_reference_give_the_same_table(sandbox: Path) -> None:
    """``--shard K/N`` runs fill the cache per reference; ``--shards N`` assembles them: the same cells as one run
    (all sets at once in the shards, set by set in the direct run: equal to float64 rounding)."""
    tree, _, _ = _quick_tree(sandbox, n_per_type=3, seed=2)
    common = ["--quick", "--root", str(tree.root), "--weights", "random", "--configs", "alexnet:1", "--random", "5",
              "--boot", "20"]
    assert percentiles.main([*common, "--out", str(sandbox / "direct")]) == 0
    cache = sandbox / "cache"
    for k in range(2):
        assert percentiles.main([*common, "--cache", str(cache), "--shard", f"{k}/2", "--all-sets"]) == 0
    assert percentiles.main([*common, "--cache", str(cache), "--shards", "2", "--out", str(sandbox / "sharded")]) == 0

    def cells(folder: str) -> list[dict[str, str]]:
        with open(sandbox / folder / "selection_percentiles.csv", newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    direct, sharded = cells("direct"), cells("sharded")
    assert len(direct) == len(sharded) == 10
    for a, b in zip(direct, sharded, strict=True):
        assert a["percentile"] == b["percentile"] and a["layer"] == b["layer"]
        assert float(a["h_srocc"]) == pytest.approx(float(b["h_srocc"]), abs=1e-12)
    assert percentiles.main([*common, "--cache", str(sandbox / "empty"), "--shards", "3"]) == 2  # exit table: usage
