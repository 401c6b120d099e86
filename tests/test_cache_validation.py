"""Every ranking entry read from a file is checked against the network and configuration it is for.

A user-cache entry with a valid checksum but the wrong contents (another channel count, a foreign stimulus grid,
non-finite or absurd responses, another layer's measurement, an oversized file) must never reach a score: it is
reported with one warning, rebuilt, and the file really replaced, so the next run is silent.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pe_iqa import PEDistance
from pe_iqa.analysis import ranking_lookup as ranking_lookup
from pe_iqa.analysis.ranking_lookup import clear_memory_cache, get_rankings
from pe_iqa.analysis.tuning import AnalysisConfig, TuningCurves
from pe_iqa.analysis.tuning_cache import (
    MAX_ENTRY_BYTES,
    CacheEntryError,
    TuningKey,
    default_cache_dir,
    read_entry,
    write_entry,
)
from pe_iqa.backbones import Backbone, load_backbone

CONFIG = AnalysisConfig(size=64, n_frequencies=8, n_orientations=6, n_phases=2, f_max=12.0, pixels_per_degree=32.0)


@pytest.fixture(scope="module")
def alexnet_random() -> Backbone:
    return load_backbone("alexnet", ["relu1"], weights="random")


@pytest.fixture
def good(alexnet_random: Backbone, tmp_path_factory: pytest.TempPathFactory) -> TuningCurves:
    """A genuine relu1 measurement (64 channels) under CONFIG."""
    clear_memory_cache()
    return get_rankings(alexnet_random, config=CONFIG, use_cache=False)["relu1"].tuning


def _forge(tuning: TuningCurves, **changes: torch.Tensor) -> dict[str, torch.Tensor]:
    return {**tuning.arrays(), **changes}


def _bad_entries(good: TuningCurves) -> dict[str, dict[str, torch.Tensor]]:
    f = good.response_f.shape[1]
    t = good.response_theta.shape[1]
    return {
        "fewer channels": _forge(good, response_f=good.response_f[:20], response_theta=good.response_theta[:20]),
        "more channels": _forge(good, response_f=good.response_f.repeat(2, 1),
                                response_theta=good.response_theta.repeat(2, 1)),
        "zero channels": _forge(good, response_f=torch.zeros(0, f), response_theta=torch.zeros(0, t)),
        "1-D responses": _forge(good, response_f=good.response_f[:, 0]),
        "wrong frequency grid": _forge(good, frequencies=good.frequencies[:-1], response_f=good.response_f[:, :-1]),
        "shifted frequencies": _forge(good, frequencies=good.frequencies * 1.01),
        "NaN response": _forge(good, response_f=good.response_f.index_fill(0, torch.tensor([3]), float("nan"))),
        "Inf response": _forge(good, response_theta=good.response_theta.index_fill(0, torch.tensor([0]),
                                                                                   float("inf"))),
        "1e300 response": _forge(good, response_f=good.response_f.index_fill(0, torch.tensor([1]), 1e300)),
    }


@pytest.mark.parametrize("case", ["fewer channels", "more channels", "zero channels", "1-D responses",
                                  "wrong frequency grid", "shifted frequencies", "NaN response", "Inf response",
                                  "1e300 response"])
@pytest.mark.slow  # 0.6 s measured (full run, 2 shared cores)
def test_forged_entry_is_reported_rebuilt_and_replaced(case: str, alexnet_random: Backbone, good: TuningCurves,
                                                        tmp_path: Path) -> None:
    key = TuningKey("alexnet", alexnet_random.weights_id, "relu1", CONFIG.key())
    path = write_entry(tmp_path, key, CONFIG, _bad_entries(good)[case])  # valid checksum, wrong contents
    clear_memory_cache()
    with pytest.warns(RuntimeWarning, match="untrusted ranking cache entry, replacing it"):
        ranking = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)["relu1"]
    assert torch.equal(ranking.tuning.response_f, good.response_f)
    # the file was really replaced: a fresh process (memory cleared) reads it without a word
    stored = TuningCurves(**read_entry(path, key, TuningCurves.ARRAYS))
    assert torch.equal(stored.response_f, good.response_f)
    clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)


@pytest.mark.slow  # 2.1 s measured (quick-tier run, 2 shared cores)
def test_entry_of_another_layer_stored_under_this_name_is_replaced(alexnet_random: Backbone, tmp_path: Path,
                                                                   good: TuningCurves) -> None:
    two = load_backbone("alexnet", ["relu1", "relu2"], weights="random")
    relu2 = get_rankings(two, ["relu2"], config=CONFIG, use_cache=False)["relu2"].tuning
    key = TuningKey("alexnet", alexnet_random.weights_id, "relu1", CONFIG.key())
    write_entry(tmp_path, key, CONFIG, relu2.arrays())  # 192 channels where relu1 has 64
    clear_memory_cache()
    with pytest.warns(RuntimeWarning, match="does not fit alexnet relu1"):
        get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # replaced: not warned about on every run
        assert get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)["relu1"].n_channels == 64


@pytest.mark.slow  # 1.5 s measured (full run, 2 shared cores)
def test_default_metric_ignores_a_forged_user_entry(alexnet_weights_available: bool, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # the reported attack: 100 of relu3's 384 channels under the shipped key moved the default score 4×
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME")
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    y = (x + 0.1).clamp(0, 1)
    monkeypatch.setenv("PE_IQA_CACHE", str(tmp_path))
    clear_memory_cache()
    honest = float(PEDistance()(x, y))
    shipped = PEDistance().rankings["relu3"]
    key = TuningKey("alexnet", shipped.weights_id, "relu3", shipped.config.key())
    tuning = shipped.tuning
    write_entry(tmp_path, key, shipped.config, _forge(tuning, response_f=tuning.response_f[:100],
                                                      response_theta=tuning.response_theta[:100]))
    clear_memory_cache()
    assert float(PEDistance()(x, y)) == honest  # a preset runs from the shipped selections: the entry is not read
    with pytest.warns(RuntimeWarning, match="ships this ranking"):  # nor trusted over the shipped ranking
        assert torch.equal(get_rankings("alexnet", ["relu3"])["relu3"].order(), shipped.order())


def test_oversized_entry_is_not_read(alexnet_random: Backbone, tmp_path: Path, good: TuningCurves) -> None:
    key = TuningKey("alexnet", alexnet_random.weights_id, "relu1", CONFIG.key())
    path = write_entry(tmp_path, key, CONFIG, good.arrays())
    with path.open("r+b") as handle:  # sparse: the size is what is checked, before any byte is read
        handle.truncate(MAX_ENTRY_BYTES + 1)
    with pytest.raises(CacheEntryError, match="more than"):
        read_entry(path, key, TuningCurves.ARRAYS)


def test_cache_folder_expands_user_and_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PE_IQA_CACHE", "~/pecache")
    assert default_cache_dir() == tmp_path / "pecache"
    monkeypatch.setenv("SOMEWHERE", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("PE_IQA_CACHE", "$SOMEWHERE/cache")
    assert default_cache_dir() == tmp_path / "elsewhere" / "cache"


@pytest.mark.slow  # 0.8 s measured (quick-tier run, 2 shared cores)
def test_measurement_of_a_broken_network_is_refused(alexnet_random: Backbone) -> None:
    broken = load_backbone("alexnet", ["relu1"], weights="random")
    with torch.no_grad():
        broken.extractor.get_submodule("features.0").bias.fill_(float("inf"))
    with pytest.raises(RuntimeError, match="responses to gratings are unusable"):
        get_rankings(broken, config=CONFIG, use_cache=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=4096))
@pytest.mark.slow  # 1.0 s measured (full run, 2 shared cores)
def test_arbitrary_bytes_never_crash_the_loader(content: bytes, alexnet_random: Backbone,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("bytes")
    key = TuningKey("alexnet", alexnet_random.weights_id, "relu1", CONFIG.key())
    (folder / key.filename()).write_bytes(content)
    with pytest.raises(CacheEntryError):
        read_entry(folder / key.filename(), key, TuningCurves.ARRAYS)
    # through the lookup: a warning and a measurement, never an exception or a foreign ranking
    clear_memory_cache()
    calls = []
    real = ranking_lookup.measure_tuning

    def counting(*args: object, **kwargs: object) -> dict:
        calls.append(1)
        return real(*args, **kwargs)

    ranking_lookup.measure_tuning = counting
    try:
        with pytest.warns(RuntimeWarning, match="untrusted ranking cache entry"):
            ranking = get_rankings(alexnet_random, config=CONFIG, cache_dir=folder)["relu1"]
    finally:
        ranking_lookup.measure_tuning = real
    assert calls == [1] and ranking.n_channels == 64
    assert os.path.getsize(folder / key.filename()) > 0
