"""Ranking-cache faults: full disk at every step of a write, older-format files, concurrent writers and readers.

Basic corruption (bit flips, truncation, wrong key, read-only folders) is covered in ``test_ranking_cache.py``;
here the write itself fails or races:

* ``ENOSPC`` while creating the folder, writing the JSON, fsyncing or renaming: a warning, the ranking kept in
  memory, no temporary or partial file left, an existing file untouched, the metric usable;
* files of format version 0 (an older release) are reported and rewritten in the current format;
* several processes rewriting one entry while another reads it: every read sees a complete, valid file.
"""

from __future__ import annotations

import errno
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

from pe_iqa import PEDistance, safe_files
from pe_iqa.analysis import ranking_lookup as registry
from pe_iqa.analysis import tuning_cache as ranking_cache
from pe_iqa.analysis.ranking_lookup import clear_memory_cache, get_rankings
from pe_iqa.analysis.tuning import AnalysisConfig, TuningCurves
from pe_iqa.analysis.tuning_cache import FORMAT_VERSION, CacheEntryError, TuningKey, write_entry
from pe_iqa.backbones import Backbone, load_backbone

# A tiny analysis (64-px stimuli, few samples): cache handling does not depend on the stimulus set.
CONFIG = AnalysisConfig(size=64, n_frequencies=6, n_orientations=4, n_phases=1)
NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"

pytestmark = pytest.mark.usefixtures("fresh_ranking_memory")


@pytest.fixture(scope="module")
def alexnet_random() -> Backbone:
    return load_backbone("alexnet", ["relu1"], weights="random:11")


def _key(backbone: Backbone, layer: str = "relu1") -> TuningKey:
    return TuningKey("alexnet", backbone.weights_id, layer, CONFIG.key())


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, NO_SPACE)


def _count_measuring(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = registry.measure_tuning

    def counting(*args: object, **kwargs: object) -> dict[str, TuningCurves]:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "measure_tuning", counting)
    return calls


def _assert_same_tuning(a: TuningCurves, b: TuningCurves) -> None:
    for name in ("frequencies", "response_f", "orientations", "response_theta"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0, msg=name)


def _half_written_then_full(document: object, handle, **kwargs: object) -> None:
    text = json.dumps(document)
    handle.write(text[: len(text) // 2])
    handle.flush()
    raise OSError(errno.ENOSPC, NO_SPACE)


# where the disk fills up during ranking_cache.write_entry
FAULTS: dict[str, tuple[object, str, Callable[..., object]]] = {
    "mkdir": (Path, "mkdir", _no_space),
    "json_write": (ranking_cache.json, "dump", _half_written_then_full),
    "fsync": (safe_files.os, "fsync", _no_space),
    "replace": (safe_files.os, "replace", _no_space),
}


@pytest.mark.slow  # 2.0 s measured (quick-tier run, 2 shared cores)
@pytest.mark.parametrize("step", sorted(FAULTS))
def test_full_disk_warns_keeps_ranking_in_memory_and_leaves_no_file(
    step: str, alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = get_rankings(alexnet_random, config=CONFIG, use_cache=False)["relu1"]
    folder = tmp_path / "cache"
    if step != "mkdir":
        folder.mkdir()
    target, attribute, fault = FAULTS[step]
    with monkeypatch.context() as patch:
        patch.setattr(target, attribute, fault)
        message = rf"could not write the ranking cache in {re.escape(str(folder))}.*{NO_SPACE}.*in memory only"
        with pytest.warns(RuntimeWarning, match=message):
            ranking = get_rankings(alexnet_random, config=CONFIG, cache_dir=folder)["relu1"]
    _assert_same_tuning(ranking.tuning, expected.tuning)
    assert not folder.exists() or list(folder.iterdir()) == []  # no temporary or partial file
    calls = _count_measuring(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = get_rankings(alexnet_random, config=CONFIG, cache_dir=folder)["relu1"]
    assert again.tuning is ranking.tuning and calls == []  # served from memory, nothing re-measured


def test_full_disk_leaves_an_existing_file_untouched(
    alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / _key(alexnet_random).filename()
    path.write_text('{"checksum": "from an interrupted older write"}', encoding="utf-8")
    before = path.read_bytes()
    monkeypatch.setattr(safe_files.os, "fsync", _no_space)
    with pytest.warns(RuntimeWarning) as record:
        get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    messages = [str(w.message) for w in record]
    assert any("untrusted ranking cache entry" in m and str(path) in m for m in messages), messages
    assert any("could not write the ranking cache" in m and NO_SPACE in m for m in messages), messages
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]


def test_metric_works_on_a_full_disk(alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PE_IQA_CACHE", str(tmp_path))
    monkeypatch.setattr(safe_files.os, "replace", _no_space)
    with pytest.warns(RuntimeWarning, match=f"could not write the ranking cache.*{NO_SPACE}"):
        metric = PEDistance(backbone=alexnet_random, layers=alexnet_random.layers, config=CONFIG, top_percent=25,
                            reduction="none")
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    assert torch.all(metric(x, x) == 0) and torch.all(metric(x, x.flip(-1)) > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second metric takes the in-memory ranking: no new warning
        other = PEDistance(backbone=alexnet_random, layers=alexnet_random.layers, config=CONFIG, top_percent=25,
                           reduction="none")
    assert torch.equal(other.selected_channels()["relu1"], metric.selected_channels()["relu1"])
    assert list(tmp_path.iterdir()) == []


def test_unreadable_file_is_rebuilt(alexnet_random: Backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    clear_memory_cache()

    def io_error(path: Path, key: TuningKey, names: tuple[str, ...]) -> dict:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))

    monkeypatch.setattr(registry, "read_entry", io_error)
    calls = _count_measuring(monkeypatch)
    with pytest.warns(RuntimeWarning, match=f"untrusted ranking cache entry.*{os.strerror(errno.EIO)}"):
        get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)
    assert calls == [1]


# --------------------------------------------------------------------------------- older format


def _version_0_checksummed(document: dict) -> dict:
    """The current layout with format_version 0 and a matching checksum: only the version is old."""
    payload = {**document["payload"], "format_version": 0}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return {"checksum": hashlib.sha256(canonical).hexdigest(), "payload": payload}


def _version_0_legacy(document: dict) -> dict:
    """An unwrapped, un-checksummed document (a plausible earlier layout), tuning as plain float lists."""
    payload = document["payload"]
    return {"format_version": 0, "key": payload["key"], "pe": [0.5] * 64, "config": payload["config"]}


@pytest.mark.parametrize(("make_old", "reason"), [
    (_version_0_checksummed, "format version 0, expected 1"),
    (_version_0_legacy, "not a pe-iqa cache entry"),
], ids=["checksummed", "legacy_layout"])
def test_format_version_0_file_is_reported_and_rewritten(
    make_old: Callable[[dict], dict], reason: str, alexnet_random: Backbone, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert FORMAT_VERSION == 1, "update the expected messages"
    original = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)["relu1"]
    key = _key(alexnet_random)
    path = tmp_path / key.filename()
    path.write_text(json.dumps(make_old(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")
    with pytest.raises(CacheEntryError, match=reason):
        read_tuning(path, key)
    clear_memory_cache()
    calls = _count_measuring(monkeypatch)
    message = rf"untrusted ranking cache entry, replacing it: {re.escape(str(path))}: {reason}"
    with pytest.warns(RuntimeWarning, match=message):
        rebuilt = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)["relu1"]
    assert calls == [1]
    _assert_same_tuning(rebuilt.tuning, original.tuning)
    assert json.loads(path.read_text(encoding="utf-8"))["payload"]["format_version"] == FORMAT_VERSION
    _assert_same_tuning(read_tuning(path, key), original.tuning)


# --------------------------------------------------------------------------------- concurrent writers


_WRITER = r"""
import sys, time
from pathlib import Path
import torch
from pe_iqa.analysis.tuning_cache import TuningKey, write_entry
from pe_iqa.analysis.tuning import AnalysisConfig, TuningCurves

folder, flags, value, rounds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
config = AnalysisConfig(size=64, n_frequencies=6, n_orientations=4, n_phases=1)
key = TuningKey("alexnet", "0123456789abcdef", "relu1", config.key())
# large enough (~1 MB) that a torn write would be visible
tuning = TuningCurves(config.frequencies(), torch.full((2000, 6), value, dtype=torch.float64),
                      config.orientations(), torch.full((2000, 4), value, dtype=torch.float64))
(flags / f"ready_{value:g}").touch()
deadline = time.time() + 120
while not (flags / "go").exists():
    if time.time() > deadline:
        sys.exit("no go signal")
    time.sleep(0.005)
for _ in range(rounds):
    write_entry(folder, key, config, tuning.arrays())
"""


@pytest.mark.slow  # 6.0 s measured (full run, 2 shared cores)
def test_concurrent_rewrites_never_show_a_torn_file(tmp_path: Path) -> None:
    folder, flags = tmp_path / "cache", tmp_path / "flags"
    flags.mkdir()
    key = TuningKey("alexnet", "0123456789abcdef", "relu1", CONFIG.key())
    values = (1.0, 2.0)
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(folder), str(flags), str(v), "25"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in values]
    seen: set[float] = set()
    reads = 0
    try:
        deadline = time.time() + 120
        while not all((flags / f"ready_{v:g}").exists() for v in values):
            assert time.time() < deadline, "writers did not start"
            assert all(w.poll() is None for w in writers), [w.communicate() for w in writers]
            time.sleep(0.01)
        (flags / "go").touch()
        while any(w.poll() is None for w in writers):  # read while both processes replace the file
            try:
                tuning = read_tuning(folder / key.filename(), key)  # raises CacheEntryError on a torn file
            except FileNotFoundError:
                continue
            reads += 1
            values_in_file = set(tuning.response_f.unique().tolist()) | set(tuning.response_theta.unique().tolist())
            assert len(values_in_file) == 1 and values_in_file <= set(values)  # one writer's complete content
            seen |= values_in_file
        results = [w.communicate(timeout=60) for w in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    for writer, (_, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err
    assert reads > 0 and seen
    assert [p.name for p in folder.iterdir()] == [key.filename()]  # no temporary files left behind
    read_tuning(folder / key.filename(), key)


def test_stale_temporary_file_of_a_crashed_writer_is_ignored(
    alexnet_random: Backbone, tmp_path: Path
) -> None:
    key = _key(alexnet_random)
    stale = tmp_path / f".{key.filename()}.crashed.tmp"
    stale.write_text('{"checksum": "half', encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranking = get_rankings(alexnet_random, config=CONFIG, cache_dir=tmp_path)["relu1"]
    _assert_same_tuning(read_tuning(tmp_path / key.filename(), key), ranking.tuning)
    assert stale.read_text(encoding="utf-8") == '{"checksum": "half'


def test_write_entry_reports_full_disk_to_its_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = TuningKey("alexnet", "0123456789abcdef", "relu1", CONFIG.key())
    tuning = TuningCurves(CONFIG.frequencies(), torch.zeros(3, 6, dtype=torch.float64),
                          CONFIG.orientations(), torch.zeros(3, 4, dtype=torch.float64))
    monkeypatch.setattr(safe_files.os, "fsync", _no_space)
    with pytest.raises(OSError, match=NO_SPACE) as info:
        write_entry(tmp_path, key, CONFIG, tuning.arrays())
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
