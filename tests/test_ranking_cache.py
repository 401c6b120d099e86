"""Ranking cache: checksummed files, rebuild on corruption, concurrent writers, read-only folders, memory hits."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tests.fixtures.cache_entries import read_tuning

from pe_iqa.analysis import ranking_lookup as registry
from pe_iqa.analysis.ranking_lookup import clear_memory_cache, get_rankings
from pe_iqa.analysis.tuning import AnalysisConfig, TuningCurves
from pe_iqa.analysis.tuning_cache import FORMAT_VERSION, CacheEntryError, TuningKey, default_cache_dir
from pe_iqa.backbones import Backbone, load_backbone

# A tiny analysis (64-px stimuli, few samples): the cache logic does not depend on the stimulus set.
CONFIG = AnalysisConfig(size=64, n_frequencies=6, n_orientations=4, n_phases=1)
LAYERS = ["relu1", "relu2"]

pytestmark = pytest.mark.usefixtures("fresh_ranking_memory")


@pytest.fixture(scope="module")
def alexnet_random() -> Backbone:
    return load_backbone("alexnet", LAYERS, weights="random")


def _key(backbone: Backbone, layer: str, config: AnalysisConfig = CONFIG) -> TuningKey:
    return TuningKey("alexnet", backbone.weights_id, layer, config.key())


def _forbid_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("measure_tuning was called although the ranking should come from a cache")

    monkeypatch.setattr(registry, "measure_tuning", fail)


def _count_measuring(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    calls: list[tuple[str, ...]] = []
    real = registry.measure_tuning

    def counting(backbone: Backbone, *args: object, **kwargs: object) -> dict[str, TuningCurves]:
        calls.append(tuple(backbone.layers))
        return real(backbone, *args, **kwargs)

    monkeypatch.setattr(registry, "measure_tuning", counting)
    return calls


def _assert_same_tuning(a: TuningCurves, b: TuningCurves) -> None:
    for name in ("frequencies", "response_f", "orientations", "response_theta"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-6, atol=1e-9, msg=name)


def _leftover_temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_default_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PE_IQA_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("PE_IQA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "pe_iqa"


@pytest.mark.slow  # 2.3 s measured (full run, 2 shared cores)
def test_writes_one_verified_file_per_layer_and_reads_it_back(
    alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_measuring(monkeypatch)
    first = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    assert list(first) == LAYERS and calls == [tuple(LAYERS)]  # both layers in one measurement
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(_key(alexnet_random, layer).filename() for layer in LAYERS)
    for layer in LAYERS:
        stored = read_tuning(tmp_path / _key(alexnet_random, layer).filename(), _key(alexnet_random, layer))
        for name in ("frequencies", "response_f", "orientations", "response_theta"):
            assert torch.equal(getattr(stored, name), getattr(first[layer].tuning, name))  # exact round trip
    clear_memory_cache()
    _forbid_measuring(monkeypatch)
    again = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    for layer in LAYERS:
        assert torch.equal(again[layer].order(), first[layer].order())


@pytest.mark.slow  # 1.7 s measured (quick-tier run, 2 shared cores)
def test_default_folder_is_pe_iqa_cache(alexnet_random: Backbone, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PE_IQA_CACHE", str(tmp_path / "cache"))
    get_rankings(alexnet_random, ["relu1"], config=CONFIG)
    assert (tmp_path / "cache" / _key(alexnet_random, "relu1").filename()).is_file()


def _flip(offset_fraction: float, mask: int) -> Callable[[Path, Path], None]:
    def corrupt(path: Path, other: Path) -> None:
        data = bytearray(path.read_bytes())
        index = int(len(data) * offset_fraction)
        data[index] ^= mask
        path.write_bytes(bytes(data))

    return corrupt


def _truncate(path: Path, other: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _write_text(text: str) -> Callable[[Path, Path], None]:
    def corrupt(path: Path, other: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return corrupt


def _wrong_key(path: Path, other: Path) -> None:
    path.write_bytes(other.read_bytes())  # a valid entry, but for another layer


def _other_format_version(path: Path, other: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    document["payload"]["format_version"] = FORMAT_VERSION + 1
    # a consistent checksum (SHA-256 of the canonical payload JSON), so only the version is wrong
    canonical = json.dumps(document["payload"], sort_keys=True, separators=(",", ":")).encode()
    document["checksum"] = hashlib.sha256(canonical).hexdigest()
    path.write_text(json.dumps(document), encoding="utf-8")


def _edited_values(path: Path, other: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    document["payload"]["tuning"]["response_f"] = document["payload"]["tuning"]["response_theta"]
    path.write_text(json.dumps(document), encoding="utf-8")


CORRUPTIONS = {
    "flip_bit_mid": (_flip(0.5, 0x01), "checksum|not a pe-iqa"),
    "flip_byte_non_utf8": (_flip(0.3, 0xFF), "codec|utf|not a pe-iqa|checksum"),
    "flip_bit_in_header": (_flip(0.0005, 0x04), "checksum|not a pe-iqa|format"),
    "truncated": (_truncate, "not a pe-iqa"),
    "empty": (_write_text(""), "not a pe-iqa"),
    "not_json": (_write_text("this is not JSON"), "not a pe-iqa"),
    "json_list": (_write_text("[1, 2, 3]"), "not a pe-iqa"),
    "json_without_payload": (_write_text('{"checksum": "00"}'), "not a pe-iqa"),
    "wrong_key": (_wrong_key, "expected"),
    "other_format_version": (_other_format_version, "format version"),
    "edited_values": (_edited_values, "checksum"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.slow  # 2.7 s measured (full run, 2 shared cores)
def test_untrusted_file_warns_and_is_rebuilt(
    corruption: str, alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrupt, reason = CORRUPTIONS[corruption]
    original = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    key = _key(alexnet_random, "relu1")
    path = tmp_path / key.filename()
    corrupt(path, tmp_path / _key(alexnet_random, "relu2").filename())
    with pytest.raises(CacheEntryError, match=re.escape(str(path))):
        read_tuning(path, key)
    clear_memory_cache()
    calls = _count_measuring(monkeypatch)
    with pytest.warns(RuntimeWarning, match="untrusted") as record:
        rebuilt = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    messages = " ".join(str(w.message) for w in record if issubclass(w.category, RuntimeWarning))
    assert str(path) in messages
    assert re.search(reason, messages, flags=re.IGNORECASE), messages
    assert len(calls) == 1  # re-measured (relu2 came from its intact file, but a measurement runs all taps)
    _assert_same_tuning(rebuilt["relu1"].tuning, original["relu1"].tuning)
    _assert_same_tuning(read_tuning(path, key), original["relu1"].tuning)  # the file is valid again
    assert not _leftover_temp_files(tmp_path)
    clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a rebuilt file is trusted again: no further warning
        get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)


_WORKER = r"""
import sys, time
from pathlib import Path
from pe_iqa.analysis.ranking_lookup import get_rankings
from pe_iqa.analysis.tuning import AnalysisConfig

cache, flags, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
config = AnalysisConfig(size=64, n_frequencies=6, n_orientations=4, n_phases=1)
(flags / f"ready_{name}").touch()
deadline = time.time() + 120
while not (flags / "go").exists():
    if time.time() > deadline:
        sys.exit("no go signal")
    time.sleep(0.005)
rankings = get_rankings("squeezenet1_1", ["relu1", "fire2"], weights="random", config=config, cache_dir=cache)
print(rankings["relu1"].weights_id)
"""


@pytest.mark.slow  # 28.8 s measured (full run, 2 shared cores)
def test_concurrent_processes_leave_one_valid_file_per_layer(tmp_path: Path) -> None:
    # SqueezeNet 1.1: random initialisation is cheap, so the processes spend their time importing and measuring.
    squeezenet = load_backbone("squeezenet1_1", ["relu1", "fire2"], weights="random")
    keys = {layer: TuningKey("squeezenet1_1", squeezenet.weights_id, layer, CONFIG.key())
            for layer in squeezenet.layers}
    cache, flags = tmp_path / "cache", tmp_path / "flags"
    flags.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"}
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(cache), str(flags), name], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    try:
        deadline = time.time() + 120
        while not all((flags / f"ready_{name}").exists() for name in ("a", "b")):
            assert time.time() < deadline, "workers did not start"
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
            time.sleep(0.01)
        (flags / "go").touch()  # both processes now miss the cache and measure at the same time
        results = [w.communicate(timeout=120) for w in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert out.strip() == squeezenet.weights_id
    names = sorted(p.name for p in cache.iterdir())
    assert names == sorted(key.filename() for key in keys.values())  # exactly one file per layer, no temp files
    for key in keys.values():
        read_tuning(cache / key.filename(), key)


@pytest.mark.slow  # 1.1 s measured (full run, 2 shared cores)
def test_random_and_pretrained_weights_get_different_keys(
    alexnet_random: Backbone, alexnet_weights_available: bool, tmp_path: Path
) -> None:
    if not alexnet_weights_available:
        pytest.skip("ImageNet AlexNet weights not in TORCH_HOME")
    random_ranking = get_rankings(alexnet_random, ["relu1"], config=CONFIG, cache_dir=tmp_path)["relu1"]
    pretrained = get_rankings("alexnet", ["relu1"], weights="DEFAULT", config=CONFIG, cache_dir=tmp_path)["relu1"]
    assert random_ranking.weights_id == alexnet_random.weights_id
    assert pretrained.weights_id != random_ranking.weights_id
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2
    assert {f.split("__")[1] for f in files} == {random_ranking.weights_id, pretrained.weights_id}
    assert not torch.allclose(random_ranking.tuning.response_f, pretrained.tuning.response_f)


@pytest.mark.slow  # 0.9 s measured (quick-tier run, 2 shared cores)
def test_analysis_config_is_part_of_the_key(alexnet_random: Backbone, tmp_path: Path) -> None:
    other = AnalysisConfig(size=64, n_frequencies=7, n_orientations=4, n_phases=1)
    assert other.key() != CONFIG.key()
    get_rankings(alexnet_random, ["relu1"], config=CONFIG, cache_dir=tmp_path)
    ranking = get_rankings(alexnet_random, ["relu1"], config=other, cache_dir=tmp_path)["relu1"]
    assert ranking.tuning.response_f.shape[1] == 7
    assert len(list(tmp_path.iterdir())) == 2


def _assert_memory_only(backbone: Backbone, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.warns(RuntimeWarning, match="could not write the ranking cache"):
        first = get_rankings(backbone, ["relu1"], config=CONFIG, cache_dir=folder)["relu1"]
    assert first.n_channels == 64
    _forbid_measuring(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = get_rankings(backbone, ["relu1"], config=CONFIG, cache_dir=folder)["relu1"]  # from memory
    assert again.tuning is first.tuning


def test_read_only_cache_folder_keeps_the_ranking_in_memory(
    alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running with privileges that ignore folder permissions (root)")
        _assert_memory_only(alexnet_random, folder, monkeypatch)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_permission_denied_on_write_keeps_the_ranking_in_memory(
    alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a read-only folder does to a non-root user, simulated so that it also runs as root (CI containers).
    def denied(directory: Path, *args: object, **kwargs: object) -> Path:
        raise PermissionError(13, "Permission denied", str(directory))

    monkeypatch.setattr(registry, "write_entry", denied)
    _assert_memory_only(alexnet_random, tmp_path, monkeypatch)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_cache_path_keeps_the_ranking_in_memory(
    alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A regular file where the cache folder should be: mkdir fails even for root.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    _assert_memory_only(alexnet_random, blocker / "cache", monkeypatch)
    assert blocker.read_text() == "not a folder"


@pytest.mark.slow  # 1.9 s measured (quick-tier run, 2 shared cores)
def test_memory_cache_hit_and_use_cache_false(
    alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    for path in tmp_path.iterdir():
        path.unlink()
    calls = _count_measuring(monkeypatch)
    second = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    assert calls == []  # served from memory, files gone
    assert all(second[layer].tuning is first[layer].tuning for layer in LAYERS)
    assert list(tmp_path.iterdir()) == []
    fresh = get_rankings(alexnet_random, ["relu1"], config=CONFIG, cache_dir=tmp_path, use_cache=False)
    assert calls == [tuple(LAYERS)]  # use_cache=False always measures …
    assert list(tmp_path.iterdir()) == []  # … and writes nothing
    _assert_same_tuning(fresh["relu1"].tuning, first["relu1"].tuning)
    clear_memory_cache()
    get_rankings(alexnet_random, ["relu2"], config=CONFIG, cache_dir=tmp_path)
    assert len(calls) == 2  # memory cleared: measured again


def test_ranking_key_filenames() -> None:
    key = TuningKey("timm:vgg16.tv_in1k", "0123456789abcdef", "features_3", "abcdefabcdef")
    assert key.filename() == "timm-vgg16.tv_in1k__0123456789abcdef__features_3__abcdefabcdef.json"
    assert "/" not in TuningKey("timm:a/b", "0" * 16, "l", "c").filename()
