"""Memory is estimated before the network runs; above the budget a call fails with one line, the engine fails that
pair only (issue 19, item 12)."""

from __future__ import annotations

import pytest
import torch

from pe_iqa import PEDistance
from pe_iqa.cli import SAMPLE_DIR, main
from pe_iqa.memory import MEMORY_BUDGET_ENV, MemoryBudgetError, estimate_call_bytes, memory_budget
from pe_iqa.scoring import ScorePair, score_pairs


def test_pe_alex_on_a_12000_pixel_pair_is_estimated_above_7_gb() -> None:
    """The adversarial case: pe_alex tried to allocate past 7 GB with no warning."""
    metric = PEDistance("pe_alex")
    estimate = estimate_call_bytes(metric.backbone.activation_bytes_per_pixel(), (1, 3, 12000, 12000))
    assert estimate > 7e9


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_a_call_over_the_budget_fails_before_running(monkeypatch) -> None:
    metric = PEDistance("pe_alex")
    x = torch.rand(1, 3, 256, 256)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "0.001")
    with pytest.raises(MemoryBudgetError, match=rf"alexnet on 1 256×256 pair\(s\) needs about .* GiB, above the "
                                                rf"memory budget of 0\.0 GiB; .*{MEMORY_BUDGET_ENV}"):
        metric(x, x)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "junk")
    with pytest.raises(ValueError, match="must be a number of GiB"):
        memory_budget()
    monkeypatch.delenv(MEMORY_BUDGET_ENV)
    assert memory_budget() > 2**20 and float(metric(x, x)) == 0.0


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_the_engine_fails_that_pair_only(monkeypatch, tmp_path) -> None:
    small = ScorePair(SAMPLE_DIR / "distorted" / "blur_1.png", SAMPLE_DIR / "reference" / "blur_1.png")
    pairs = [small, small]
    fine = score_pairs(pairs, ["pe_alex"], progress=False)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "0.0001")
    result = score_pairs(pairs, ["pe_alex"], progress=False)
    assert result.n_ok == 0 and all("above the memory budget" in message for _, _, message in result.failures)
    assert fine.n_ok == 2
    assert main(["score", "--sample", "pe_alex", "--no-progress"]) == 1  # pairs failed, the run did not crash
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "-3")
    assert main(["score", "--sample", "pe_alex", "--no-progress"]) == 2  # a wrong environment value: usage
