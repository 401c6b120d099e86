"""Scoring at scale (issue 26; issue 25 items 7, 12, 16): streamed manifests, compact resume tied to the images'
content, lossless names, one-line manifest and name-length messages. A cheap planted metric keeps these fast."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_iqa.safe_files import DestinationError
from pe_iqa.scoring import ScorePair, ScoringMetric, pairs_from_paths, read_pairs_manifest, score_pairs
from pe_iqa.scoring.output import existing_journals, journal_path
from pe_iqa.scoring.pairs import open_pairs_manifest
from pe_iqa.scoring.resume import RunSummary


class _Mean(ScoringMetric):
    """Mean absolute difference (a real function of both images), counting the pairs it scores; raises
    KeyboardInterrupt at pair ``stop_at`` (an interrupted run)."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls = 0

        def score(dist, ref):
            self.calls += len(dist)
            if stop_at is not None and self.calls == stop_at:
                raise KeyboardInterrupt
            return (dist - ref).abs().mean(dim=(1, 2, 3))

        super().__init__("mad", True, score=score, valid_range=(0.0, 1.0))


def _image(path: Path, seed: int) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    """40 pairs over 4 references and 6 distorted images, with a ``mos`` column."""
    for k in range(6):
        _image(tmp_path / f"d{k}.png", k)
    for k in range(4):
        _image(tmp_path / f"r{k}.png", 100 + k)
    rows = [f"d{i % 6}.png,r{i // 10}.png,{i / 10}" for i in range(40)]
    (tmp_path / "pairs.csv").write_text("distorted,reference,mos\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path / "pairs.csv"


def _interrupt(pairs, out: Path, stop_at: int, resume: bool = False) -> None:
    with pytest.raises(KeyboardInterrupt):
        score_pairs(pairs, [_Mean(stop_at)], csv_path=out, resume=resume, progress=False)


def test_a_streamed_manifest_writes_the_bytes_of_a_listed_one(manifest: Path, tmp_path: Path) -> None:
    listed = score_pairs(read_pairs_manifest(manifest), [_Mean()], csv_path=tmp_path / "a.csv", progress=False)
    stream = open_pairs_manifest(manifest)
    streamed = score_pairs(stream, [_Mean()], csv_path=tmp_path / "b.csv", progress=False, workers=2,
                           batch_size=3)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert streamed.pairs is None and streamed.table is None  # nothing per pair kept
    assert len(stream) == 40 and not hasattr(stream, "pairs")
    assert streamed.means() == listed.means() and streamed.n_ok == listed.n_ok == 40
    assert streamed.timings["network"] > 0 and streamed.timings["loop"] >= streamed.timings["network"]


def test_kills_and_resumes_give_the_same_bytes_and_score_each_pair_once(manifest: Path, tmp_path: Path) -> None:
    pairs = open_pairs_manifest(manifest)
    score_pairs(pairs, [_Mean()], csv_path=tmp_path / "full.csv", progress=False)
    out = tmp_path / "s.csv"
    _interrupt(pairs, out, stop_at=11)  # 10 pairs journaled
    _interrupt(pairs, out, stop_at=13, resume=True)  # 12 more, in a second journal
    assert [p.name for p in existing_journals(out)] == ["s.csv.partial", "s.csv.1.partial"]
    last = _Mean()
    result = score_pairs(pairs, [last], csv_path=out, resume=True, progress=False, batch_size=4)
    assert last.calls == 40 - 22 and result.resumed == 22 and result.scored == 18  # no pair scored twice
    assert out.read_bytes() == (tmp_path / "full.csv").read_bytes()
    assert existing_journals(out) == []


@pytest.mark.parametrize("interrupted", [False, True])
def test_a_replaced_image_is_scored_again_on_resume(manifest: Path, tmp_path: Path, interrupted: bool) -> None:
    """Item 7: ``--resume`` kept a row whose image was replaced by another file of the same name."""
    pairs = read_pairs_manifest(manifest)
    out = tmp_path / "s.csv"
    if interrupted:
        _interrupt(pairs, out, stop_at=30)
    else:
        score_pairs(pairs, [_Mean()], csv_path=out, progress=False)
    _image(tmp_path / "d0.png", 999)  # same name, other content (pairs 0, 6, 12, 18, 24 use it)
    counting = _Mean()
    result = score_pairs(pairs, [counting], csv_path=out, resume=True, progress=False)
    fresh = score_pairs(pairs, [_Mean()], progress=False)
    assert result.scores("mad").tolist() == fresh.scores("mad").tolist()
    assert result.scored == counting.calls and (counting.calls == 40 - 29 + 5 if interrupted else counting.calls >= 7)


def test_a_name_that_is_not_utf8_keeps_the_run_and_resumes(tmp_path: Path) -> None:
    """Item 12: ``d\\xff.png`` made the journal write fail: exit 1, all results lost, ``--resume`` failed again."""
    folders = [tmp_path / "d", tmp_path / "r"]
    for folder in folders:
        folder.mkdir()
        for name in (b"a.png", b"d\xff.png", b"z.png"):
            _image(Path(os.fsdecode(bytes(folder) + b"/" + name)), len(name))
    pairs = pairs_from_paths(*folders)
    out = tmp_path / "s.csv"
    whole = score_pairs(pairs, [_Mean()], csv_path=tmp_path / "whole.csv", progress=False)
    assert whole.n_ok == 3 and whole.rows[1]["distorted"].name == os.fsdecode(b"d\xff.png")
    assert b"d\xff.png" in (tmp_path / "whole.csv").read_bytes()  # the name's own bytes
    _interrupt(pairs, out, stop_at=3)
    counting = _Mean()
    resumed = score_pairs(pairs, [counting], csv_path=out, resume=True, progress=False)
    assert counting.calls == 1 and resumed.n_ok == 3
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_manifest_messages_name_the_file_and_the_line(tmp_path: Path) -> None:
    """Item 16: a latin-1 or non-CSV manifest gave the codec's message with no file name; a huge cell
    "field larger than field limit"."""
    latin = tmp_path / "latin.csv"
    latin.write_bytes("distorted,reference\nd.png,r.png\ncaf\u00e9.png,r.png\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv, line 3: not UTF-8 text \(byte 0xe9\)"):
        read_pairs_manifest(latin)
    image = _image(tmp_path / "photo.png", 1)
    with pytest.raises(ValueError, match=r"photo\.png, line \d+: not UTF-8 text"):
        read_pairs_manifest(image)
    huge = tmp_path / "huge.csv"
    huge.write_text('distorted,reference\nd.png,"' + "x" * 200_000 + '"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"huge\.csv, line 2: not a readable CSV row: a cell longer than"):
        read_pairs_manifest(huge)


def test_a_too_long_csv_name_is_refused_naming_the_csv(manifest: Path, tmp_path: Path) -> None:
    """Item 16: the name-length refusal named the journal instead of the CSV the user gave."""
    out = tmp_path / ("s" * 180 + ".csv")
    with pytest.raises(DestinationError) as caught:
        score_pairs(read_pairs_manifest(manifest), [_Mean()], csv_path=out, progress=False)
    message = str(caught.value)
    assert message.startswith(f"CSV file {str(out)[:60]}") and ".partial" not in message
    assert not list(tmp_path.glob("s*"))


def test_summaries_of_shards_give_the_exact_mean_of_the_whole() -> None:
    rng = random.Random(5)
    values = [rng.uniform(-1, 1) * 10 ** rng.randint(-8, 8) for _ in range(500)]
    parts = []
    for start in range(0, 500, 137):
        part = RunSummary(["m"])
        for index in range(start, min(500, start + 137)):
            part.add(index, "d", "r", [values[index]], "")
        parts.append(part)
    failing = RunSummary(["m"])
    failing.add(500, "d", "r", [None], "unreadable")
    whole = RunSummary.combine([*parts, failing])
    assert whole.n_pairs == 501 and whole.n_ok == 500 and whole.failures == [(500, "d", "r", "unreadable")]
    assert whole.means()["m"] == math.fsum(values) / 500


def test_journals_are_in_index_order_and_name_each_run(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    _interrupt(open_pairs_manifest(manifest), out, stop_at=7)
    lines = journal_path(out).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "index,distorted,reference,distorted_stamp,reference_stamp,mad,error"
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(6))
    size, mtime = lines[1].split(",")[3].split(":")
    assert (int(size), int(mtime)) == ((tmp_path / "d0.png").stat().st_size, (tmp_path / "d0.png").stat().st_mtime_ns)


def test_pairs_outside_a_list_source_are_the_same_pairs(tmp_path: Path) -> None:
    pair = ScorePair(_image(tmp_path / "a.png", 1), _image(tmp_path / "b.png", 2), {"k": "v"})
    result = score_pairs([pair, pair], [_Mean()], progress=False)
    assert result.pairs == [pair, pair] and result.rows[1]["k"] == "v" and result.n_ok == 2
