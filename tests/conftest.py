"""Shared test setup: offline weights from ``../shared``, a private ranking cache per session, LIVE data.

The environment is set when this module is imported, before any test module imports torch hub, timm or
huggingface_hub (``huggingface_hub`` reads ``HF_HUB_OFFLINE`` once, at import time):

* ``TORCH_HOME`` defaults to ``<checkout>/../shared/torch_home`` (the real AlexNet/VGG-16 weights) and
  ``PE_IQA_LIVE_ROOT`` to ``<checkout>/../shared/data/LIVE`` when they are unset and those folders exist, so the
  README's test command needs no environment variable; tests that need the weights or LIVE skip, saying why,
  where they are absent;
* ``HF_HUB_OFFLINE=1``: no test reaches the network;
* ``PE_IQA_CACHE`` points at a fresh temporary folder for the whole session, so a developer's user cache can
  neither satisfy nor be polluted by the tests (the shipped rankings inside the package are still used).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_CHECKOUT = Path(__file__).resolve().parents[1]
_SHARED = _CHECKOUT.parent / "shared"

# only where ../shared exists: elsewhere a developer's own torch hub cache and LIVE copy (if any) stay in use
if "TORCH_HOME" not in os.environ and (_SHARED / "torch_home").is_dir():
    os.environ["TORCH_HOME"] = str(_SHARED / "torch_home")
if "PE_IQA_LIVE_ROOT" not in os.environ and (_SHARED / "data" / "LIVE").is_dir():
    os.environ["PE_IQA_LIVE_ROOT"] = str(_SHARED / "data" / "LIVE")
os.environ["HF_HUB_OFFLINE"] = "1"
_SESSION_CACHE = tempfile.mkdtemp(prefix="pe_iqa_test_cache_")
os.environ["PE_IQA_CACHE"] = _SESSION_CACHE
atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)  # also after --collect-only or a crash


@pytest.fixture(scope="session")
def session_ranking_cache() -> Path:
    """The session's private ``PE_IQA_CACHE`` folder (removed when the interpreter exits)."""
    return Path(_SESSION_CACHE)


@pytest.fixture()
def fresh_ranking_memory() -> Iterator[None]:
    """The in-memory ranking cache cleared before and after the test (``pytest.mark.usefixtures`` it)."""
    from pe_iqa.analysis.ranking_lookup import clear_memory_cache

    clear_memory_cache()
    yield
    clear_memory_cache()


@pytest.fixture(scope="session")
def torch_home() -> Path:
    """The torch hub cache the tests load pretrained weights from (``$TORCH_HOME``, else torch's own default)."""
    import torch

    return Path(os.environ["TORCH_HOME"]) if "TORCH_HOME" in os.environ else Path(torch.hub.get_dir()).parent


@pytest.fixture(scope="session")
def alexnet_weights_available(torch_home: Path) -> bool:
    """Whether the ImageNet AlexNet checkpoint is in the torch hub cache."""
    return (torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth").is_file()


@pytest.fixture(scope="session")
def live_root() -> Path:
    """Root of the real LIVE Release 2 subset (``$PE_IQA_LIVE_ROOT`` or ``../shared/data/LIVE``); skips if absent."""
    root = Path(os.environ.get("PE_IQA_LIVE_ROOT", _SHARED / "data" / "LIVE"))
    if not (root / "databaserelease2").is_dir() or not (root / "labels" / "live_dmos.csv").is_file():
        pytest.skip(f"real LIVE data not found at {root}")
    return root
