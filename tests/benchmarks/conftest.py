"""Shared fixtures of the benchmark tests: generated BAPPS/LIVE trees and the real LIVE subset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.fixtures.planted import BappsFixture, LiveFixture, make_bapps_tree, make_live_tree

# ../shared beside the checkout (see shared/README.md); PE_IQA_LIVE_ROOT overrides it.
_DEFAULT_LIVE_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "LIVE"


@pytest.fixture(scope="session")
def real_live_root() -> Path:
    """Root of the real LIVE Release 2 subset; skips the test when it is not available."""
    root = Path(os.environ.get("PE_IQA_LIVE_ROOT", _DEFAULT_LIVE_ROOT))
    if not (root / "databaserelease2").is_dir() or not (root / "labels" / "live_dmos.csv").is_file():
        pytest.skip(f"real LIVE data not found at {root}")
    return root


@pytest.fixture(scope="session")
def bapps_tree(tmp_path_factory: pytest.TempPathFactory) -> BappsFixture:
    """A complete generated BAPPS tree (all 2AFC and JND subsets), 8 items per subset, 2 incomplete ids."""
    return make_bapps_tree(tmp_path_factory.mktemp("bapps"), n_per_subset=8, seed=1, n_incomplete=2)


@pytest.fixture(scope="session")
def live_tree(tmp_path_factory: pytest.TempPathFactory) -> LiveFixture:
    """A generated official-layout LIVE tree: 3 references (one missing), 18 rows, 8 missing."""
    return make_live_tree(tmp_path_factory.mktemp("live"), n_missing_dist=2, n_missing_refs=1, seed=3)
