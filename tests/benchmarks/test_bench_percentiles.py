"""H-x's percentile among random subsets and the combined tests over cells, on planted distances."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.protocols.bootstrap import PairedBootstrap
from benchmarks.selection.distances import BackboneDistances, set_name
from benchmarks.selection.percentiles import (
    PercentileStudy,
    append_to_earlier,
    combined_tests,
    percentile_cells,
    write_percentile_outputs,
)
from scipy import stats


def _planted(n_random: int = 30, seed: int = 0):
    """One layer, x = 10: H tracks the labels closely, L is noise, random subsets and F in between."""
    rng = np.random.default_rng(seed)
    groups = [f"r{g}" for g in range(4) for _ in range(10)]
    labels = rng.normal(size=40)

    def column(noise: float) -> np.ndarray:
        return (labels + noise * rng.normal(size=40))[:, None]

    norm = {"F": column(1.0), set_name("H", 10.0, "pe"): column(0.1), set_name("L", 10.0, "pe"): column(10.0)}
    norm.update({set_name("R", 10.0, seed=s): column(1.0) for s in range(n_random)})
    sizes = {name: {"relu1": 6} for name in norm}
    dist = BackboneDistances(backbone="net", layers=("relu1",), scale=1.0, selectors=("pe",), percents=(10.0,),
                             seeds=n_random, n_channels={"relu1": 64}, sizes=sizes, norm=norm, raw={})
    return dist, labels, groups


def test_a_planted_best_subset_ranks_above_every_random_one():
    dist, labels, groups = _planted()
    image = PairedBootstrap(labels, n_boot=200, seed=0)
    reference = PairedBootstrap(labels, n_boot=200, seed=0, groups=groups)
    (cell,) = percentile_cells(dist, labels, groups, image, reference, "native 10×10")
    assert cell["percentile"] == 1.0 and cell["perm_p"] == pytest.approx(1 / 31)
    assert cell["n_random"] == 30 and cell["channels"] == 6
    assert cell["H-L"] > 0 and cell["H-L ref low"] > 0  # H far above the noise subset, by references too
    assert cell["H-F"] > 0 and cell["H-L sign-flip p"] == pytest.approx(2 / 16)  # 4 references: floor 2/16


def test_combined_tests_count_cells_above_the_95th_percentile():
    cells = [{"backbone": "net", "scale": 1.0, "resolution": "native", "percentile": p, "perm_p": q,
              "H-L": 0.1, "H-L ref low": 0.01, "H-L ref high": 0.2, "H-L image low": 0.02, "H-L image high": 0.2,
              "H-F": -0.1, "H-F ref low": -0.2, "H-F ref high": 0.01, "H-F image low": -0.2, "H-F image high": -0.01}
             for p, q in [(0.99, 0.01), (0.96, 0.04), (0.5, 0.5), (0.95, 0.05), (0.1, 0.9)]]
    (row,) = combined_tests(cells, n_references=5)
    assert row["above p95"] == 2  # strictly above .95
    assert row["binomial p"] == pytest.approx(stats.binom.sf(1, 5, 0.05))
    assert row["fisher p"] == pytest.approx(stats.combine_pvalues([0.01, 0.04, 0.5, 0.05, 0.9]).pvalue)
    assert row["median percentile"] == 0.95
    assert row["H>L"] == "5/5 (ref 5+ / 0−; image 5+ / 0−)" and row["H>F"] == "0/5 (ref 0+ / 0−; image 0+ / 5−)"


def _study(backbone: str, seed: int) -> PercentileStudy:
    dist, labels, groups = _planted(seed=seed)
    dist.backbone = backbone
    image = PairedBootstrap(labels, n_boot=50, seed=0)
    reference = PairedBootstrap(labels, n_boot=50, seed=0, groups=groups)
    cells = percentile_cells(dist, labels, groups, image, reference, "native 10×10")
    return PercentileStudy(cells, combined_tests(cells, 4), 30, 50, "planted", 4, {"t": 1.0})


def test_append_keeps_the_committed_rows_byte_identical(tmp_path):
    write_percentile_outputs(_study("net", 0), tmp_path, "first run")
    before = {name: (tmp_path / name).read_text(encoding="utf-8").splitlines()
              for name in ("selection_percentiles.csv", "selection_percentiles_combined.csv")}
    table_before = (tmp_path / "selection_percentiles.md").read_text(encoding="utf-8").split("## Every cell")[1]
    added = _study("other", 1)
    earlier = append_to_earlier(added, tmp_path)
    write_percentile_outputs(added, tmp_path, "second run", earlier_environment=earlier)
    for name, lines in before.items():
        after = (tmp_path / name).read_text(encoding="utf-8").splitlines()
        assert after[:len(lines)] == lines and len(after) == len(lines) + 1  # one new cell / combined row
        assert after[-1].startswith("other,")
    text = (tmp_path / "selection_percentiles.md").read_text(encoding="utf-8")
    assert table_before.strip().splitlines()[2] in text  # the earlier cell's row, as it was
    assert "## Environment of the earlier rows" in text and "first run" in text and "second run" in text
    with pytest.raises(ValueError, match="already in"):
        append_to_earlier(_study("other", 2), tmp_path)
