"""Shipped rankings: valid entries for the default analysis, equal to a fresh measurement, used without recompute."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from tests.fixtures.cache_entries import read_tuning

from pe_iqa.analysis import ranking_lookup as registry
from pe_iqa.analysis.ranking import ChannelRanking
from pe_iqa.analysis.ranking_lookup import SHIPPED_DIR, clear_memory_cache, get_rankings
from pe_iqa.analysis.tuning import AnalysisConfig
from pe_iqa.analysis.tuning_cache import TuningKey

ALEXNET_LAYERS = ("relu1", "relu2", "relu3", "relu4", "relu5")
ALEXNET_CHANNELS = {"relu1": 64, "relu2": 192, "relu3": 384, "relu4": 256, "relu5": 256}
VGG16_CHANNELS = {"relu1_2": 64, "relu2_2": 128, "relu3_3": 256, "relu4_3": 512, "relu5_3": 512}

pytestmark = pytest.mark.usefixtures("fresh_ranking_memory")


def _require_weights(torch_home: Path, filename: str) -> None:
    if not (torch_home / "hub" / "checkpoints" / filename).is_file():
        pytest.skip(f"{filename} not in TORCH_HOME={torch_home}")


def _shipped_files() -> list[Path]:
    return sorted(SHIPPED_DIR.glob("*.json"))


def _key_of(path: Path) -> TuningKey:
    backbone, weights_id, layer, config_key = path.stem.split("__")
    return TuningKey(backbone, weights_id, layer, config_key)


def _forbid_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("measure_tuning was called: the shipped ranking was not used")

    monkeypatch.setattr(registry, "measure_tuning", fail)


def test_shipped_files_are_valid_default_analysis_entries() -> None:
    files = _shipped_files()
    names = {path.name for path in files}
    assert any(name.startswith("alexnet__") for name in names)
    default = AnalysisConfig()
    for path in files:
        key = _key_of(path)
        assert key.filename() == path.name
        assert key.config_key == default.key(), path.name
        tuning = read_tuning(path, key)  # checksum, format version and key verified
        payload = json.loads(path.read_text(encoding="utf-8"))["payload"]
        assert payload["config"] == dataclasses.asdict(default)
        assert tuning.response_f.shape[1] == default.n_frequencies
        assert tuning.response_theta.shape[1] == default.n_orientations
        torch.testing.assert_close(tuning.frequencies, default.frequencies(), rtol=0, atol=0)
        torch.testing.assert_close(tuning.orientations, default.orientations(), rtol=0, atol=0)
        expected_channels = {**ALEXNET_CHANNELS, **VGG16_CHANNELS}.get(key.layer)
        assert tuning.n_channels == expected_channels, path.name
        assert bool(torch.isfinite(tuning.response_f).all()) and bool(torch.isfinite(tuning.response_theta).all())


@pytest.fixture(scope="module")
def fresh_alexnet(torch_home: Path) -> dict[str, ChannelRanking]:
    """All five AlexNet layers measured now with the shared ImageNet weights (no cache)."""
    _require_weights(torch_home, "alexnet-owt-7be5be79.pth")
    clear_memory_cache()
    return get_rankings("alexnet", list(ALEXNET_LAYERS), use_cache=False)


@pytest.mark.slow  # 35.6 s measured (full run, 2 shared cores)
def test_alexnet_shipped_rankings_equal_a_fresh_measurement(fresh_alexnet: dict[str, ChannelRanking]) -> None:
    assert list(fresh_alexnet) == list(ALEXNET_LAYERS)
    for layer, fresh in fresh_alexnet.items():
        key = TuningKey("alexnet", fresh.weights_id, layer, AnalysisConfig().key())
        path = SHIPPED_DIR / key.filename()
        assert path.is_file(), f"no shipped ranking {path.name} for these weights (weights_id {fresh.weights_id})"
        shipped = ChannelRanking("alexnet", fresh.weights_id, layer, fresh.config, read_tuning(path, key))
        assert shipped.n_channels == fresh.n_channels == ALEXNET_CHANNELS[layer]
        torch.testing.assert_close(shipped.tuning.response_f, fresh.tuning.response_f, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(shipped.tuning.response_theta, fresh.tuning.response_theta, rtol=1e-4, atol=1e-6)
        for subset in ("high", "low"):
            assert torch.equal(shipped.select(subset, 10), fresh.select(subset, 10)), (layer, subset)


@pytest.mark.slow  # 2.6 s measured (full run, 2 shared cores)
def test_registry_uses_the_shipped_alexnet_rankings_without_measuring(
    fresh_alexnet: dict[str, ChannelRanking], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_measuring(monkeypatch)
    rankings = get_rankings("alexnet", cache_dir=tmp_path)  # default layers, DEFAULT weights, default config
    assert list(rankings) == list(ALEXNET_LAYERS)
    for layer, ranking in rankings.items():
        key = TuningKey("alexnet", ranking.weights_id, layer, AnalysisConfig().key())
        shipped = read_tuning(SHIPPED_DIR / key.filename(), key)
        assert torch.equal(ranking.tuning.response_f, shipped.response_f)
        assert torch.equal(ranking.tuning.response_theta, shipped.response_theta)
        assert torch.equal(ranking.select("high", 10), fresh_alexnet[layer].select("high", 10))
    assert list(tmp_path.iterdir()) == []  # shipped entries are read in place, not copied to the user cache


@pytest.mark.slow  # 8.4 s measured (full run, 2 shared cores)
def test_registry_uses_the_shipped_vgg16_rankings_without_measuring(
    torch_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_weights(torch_home, "vgg16-397923af.pth")
    keys = [_key_of(path) for path in _shipped_files() if path.name.startswith("vgg16__")]
    if not keys:
        pytest.skip("no VGG-16 rankings shipped")
    assert sorted(key.layer for key in keys) == sorted(VGG16_CHANNELS)  # LPIPS's five taps
    _forbid_measuring(monkeypatch)  # fails if the shipped files do not match the shared weights' fingerprint
    rankings = get_rankings("vgg16", cache_dir=tmp_path)
    assert list(rankings) == list(VGG16_CHANNELS)
    for key in keys:
        ranking = rankings[key.layer]
        assert ranking.weights_id == key.weights_id
        assert ranking.n_channels == VGG16_CHANNELS[key.layer]
        assert torch.equal(ranking.tuning.response_f, read_tuning(SHIPPED_DIR / key.filename(), key).response_f)
        assert len(ranking.select("high", 10)) >= round(ranking.n_channels / 10)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_shipped_ranking_is_trusted_over_a_user_entry_for_its_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A user-cache entry for a key the package ships (here: the shipped AlexNet relu3 curves with channels permuted,
    # checksum recomputed, so the file itself is valid) must not change the ranking: reported once, ignored.
    from pe_iqa.analysis.tuning_cache import write_entry

    path = next(p for p in _shipped_files() if p.name.startswith("alexnet__") and "__relu3__" in p.name)
    key = _key_of(path)
    shipped = read_tuning(path, key)
    permutation = torch.randperm(shipped.n_channels, generator=torch.Generator().manual_seed(0))
    edited = dataclasses.replace(shipped, response_f=shipped.response_f[permutation],
                                 response_theta=shipped.response_theta[permutation])
    write_entry(tmp_path, key, AnalysisConfig(), edited.arrays())
    _forbid_measuring(monkeypatch)
    with pytest.warns(RuntimeWarning, match="ships this ranking") as caught:
        ranking = get_rankings("alexnet", ["relu3"], cache_dir=tmp_path)["relu3"]
    assert len([w for w in caught if "ships this ranking" in str(w.message)]) == 1
    assert torch.equal(ranking.tuning.response_f, shipped.response_f)
    expected = ChannelRanking("alexnet", key.weights_id, "relu3", AnalysisConfig(), shipped)
    assert torch.equal(ranking.select("high", 10), expected.select("high", 10))
