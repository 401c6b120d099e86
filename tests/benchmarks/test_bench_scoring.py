"""The scoring benchmark's pieces on a generated LIVE tree (the real run: benchmarks/results/scoring_cpu.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.scoring_throughput import run_cell, write_live_manifest

from pe_iqa.scoring import read_pairs_manifest


def test_live_manifest_lists_the_found_pairs_repeated(live_tree, tmp_path: Path) -> None:
    manifest = tmp_path / "pairs.csv"
    n = write_live_manifest(live_tree.root, 2, manifest)
    pairs = read_pairs_manifest(manifest)
    assert len(pairs) == n and n % 2 == 0 and n > 0
    assert pairs[: n // 2] == pairs[n // 2:]
    assert all(p.distorted.is_file() and p.reference.is_file() for p in pairs)


@pytest.mark.parametrize("cell", ["bound", "bound_reuse", "engine_workers0"])
@pytest.mark.slow  # 7.8 s measured (full run, 2 shared cores)
def test_cells_measure_every_pair(live_tree, tmp_path: Path, cell: str) -> None:
    manifest = tmp_path / "pairs.csv"
    n = write_live_manifest(live_tree.root, 1, manifest)
    result = run_cell(cell, manifest, tmp_path)
    assert result["pairs"] == n and result["pairs_per_s"] > 0
    if cell.startswith("engine"):
        assert result["failed"] == 0 and result["main_peak_growth_mib"] >= 0
