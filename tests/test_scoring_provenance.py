"""Resumed results are checked against this run's provenance and validated like fresh ones (issue 19, items 1, 2,
10, 14); the engine's records say what produced each column."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_iqa.provenance import Provenance, ProvenanceError, read_sidecar, sidecar_path
from pe_iqa.scoring import ScorePair, ScoringMetric, build_metric, score_pairs
from pe_iqa.scoring.output import JournalError, ResumeWarning, journal_path


@pytest.fixture(scope="module")
def pe_alex() -> ScoringMetric:
    return build_metric("pe_alex", "cpu")


@pytest.fixture(scope="module")
def transparent_pairs(tmp_path_factory) -> list[ScorePair]:
    """Three pairs whose distorted images are half transparent: alpha white and black give other scores."""
    root = tmp_path_factory.mktemp("alpha")
    rng = np.random.default_rng(1)
    pairs = []
    for k in range(3):
        ref = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        rgba = np.dstack([ref, np.full((64, 64), 128, np.uint8)])
        Image.fromarray(ref).save(root / f"r{k}.png")
        Image.fromarray(rgba, "RGBA").save(root / f"d{k}.png")
        pairs.append(ScorePair(root / f"d{k}.png", root / f"r{k}.png"))
    return pairs


class _StopAfter(ScoringMetric):
    """``inner`` that raises KeyboardInterrupt on call ``stop_at`` (an interrupted run)."""

    def __init__(self, inner: ScoringMetric, stop_at: int) -> None:
        calls = [0]

        def score(dist, ref):
            calls[0] += 1
            if calls[0] == stop_at:
                raise KeyboardInterrupt
            return inner.score(dist, ref)

        super().__init__(inner.name, inner.lower_better, score=score, provenance=inner.provenance,
                         valid_range=inner.valid_range)


def _scores(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["pe_alex"] for row in csv.DictReader(handle)]


def test_resume_with_another_alpha_policy_is_refused(transparent_pairs, pe_alex, tmp_path) -> None:
    """Item 1: ``--alpha white`` then ``--alpha black --resume`` kept the white scores."""
    out = tmp_path / "s.csv"
    white = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="white", progress=False)
    black = score_pairs(transparent_pairs, [pe_alex], alpha="black", progress=False)
    assert not np.array_equal(white.scores("pe_alex"), black.scores("pe_alex"))
    saved, run = read_sidecar(sidecar_path(out))
    assert dict(saved["pe_alex"].options)["alpha"] == "white" and len(run["csv_sha256"]) == 64
    before = out.read_bytes()
    with pytest.raises(ProvenanceError, match=r"options\.alpha: white ≠ black"):
        score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="black", resume=True, progress=False)
    assert out.read_bytes() == before
    # the same from an interrupted run's journal
    partial = tmp_path / "p.csv"
    with pytest.raises(KeyboardInterrupt):
        score_pairs(transparent_pairs, [_StopAfter(pe_alex, 3)], csv_path=partial, alpha="white", progress=False)
    with pytest.raises(ProvenanceError, match=r"p\.csv\.partial holds pe_alex scores made under another"):
        score_pairs(transparent_pairs, [pe_alex], csv_path=partial, alpha="black", resume=True, progress=False)
    resumed = score_pairs(transparent_pairs, [pe_alex], csv_path=partial, alpha="white", resume=True, progress=False)
    assert resumed.resumed == 2 and resumed.scores("pe_alex").tolist() == white.scores("pe_alex").tolist()


def test_resume_refuses_other_weights_or_selection(transparent_pairs, pe_alex, tmp_path) -> None:
    out = tmp_path / "s.csv"
    score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="drop", progress=False)
    other = Provenance(**{**pe_alex.provenance.to_dict(), "weights_id": "0123456789abcdef", "options": {}})
    impostor = ScoringMetric("pe_alex", True, score=pe_alex.score, provenance=other)
    with pytest.raises(ProvenanceError, match="weights_id"):
        score_pairs(transparent_pairs, [impostor], csv_path=out, alpha="drop", resume=True, progress=False)


@pytest.mark.parametrize("bad", ["inf", "nan", "1e999", "-5.0"])
def test_impossible_values_in_a_journal_are_scored_again(transparent_pairs, pe_alex, tmp_path, bad) -> None:
    """Item 2: a resumed ``inf``/``nan``/``-5.0`` became a score (mean inf/nan/wrong, exit 0)."""
    fresh = score_pairs(transparent_pairs, [pe_alex], alpha="drop", progress=False)
    out = tmp_path / "s.csv"
    with pytest.raises(KeyboardInterrupt):
        score_pairs(transparent_pairs, [_StopAfter(pe_alex, 2)], csv_path=out, alpha="drop", progress=False)
    pair = transparent_pairs[1]
    with journal_path(out).open("a", encoding="utf-8") as handle:
        handle.write(f"1,{pair.distorted},{pair.reference},{bad},\n")
    result = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="drop", resume=True, progress=False)
    assert result.resumed == 1 and result.failures == []
    assert result.scores("pe_alex").tolist() == fresh.scores("pe_alex").tolist()
    assert all(math.isfinite(float(v)) and float(v) >= 0 for v in _scores(out))


def test_an_edited_or_unrecorded_csv_is_scored_again(transparent_pairs, pe_alex, tmp_path) -> None:
    out = tmp_path / "s.csv"
    fresh = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="drop", progress=False)
    out.write_text(out.read_text(encoding="utf-8").replace(repr(fresh.scores("pe_alex")[0]), "inf"),
                   encoding="utf-8")
    with pytest.warns(ResumeWarning, match="changed since its provenance file"):
        again = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="drop", resume=True, progress=False)
    assert again.resumed == 0 and again.scores("pe_alex").tolist() == fresh.scores("pe_alex").tolist()
    sidecar_path(out).unlink()
    with pytest.warns(ResumeWarning, match="no provenance file"):
        again = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="drop", resume=True, progress=False)
    assert again.resumed == 0
    assert json.loads(sidecar_path(out).read_text())["metrics"]["pe_alex"]["metric"] == "pe_alex"


def test_fresh_values_outside_the_metric_range_are_failures(transparent_pairs, pe_alex) -> None:
    negative = ScoringMetric("pe_alex", True, score=lambda d, r: -pe_alex.score(d, r) - 1,
                             provenance=pe_alex.provenance, valid_range=pe_alex.valid_range)
    result = score_pairs(transparent_pairs, [negative], alpha="drop", progress=False)
    assert result.n_ok == 0 and "outside [0, inf]" in result.failures[0][2]


def test_the_journal_never_follows_a_planted_link(transparent_pairs, pe_alex, tmp_path) -> None:
    """Item 10: a dangling symlink at ``<csv>.partial`` made the journal create its target elsewhere."""
    elsewhere = tmp_path / "elsewhere" / "target.txt"
    elsewhere.parent.mkdir()
    out = tmp_path / "s.csv"
    journal_path(out).symlink_to(elsewhere)
    os.symlink(elsewhere, sidecar_path(journal_path(out)))
    score_pairs(transparent_pairs, [_StopAfter(pe_alex, 99)], csv_path=out, alpha="drop", progress=False)
    assert not elsewhere.exists() and out.is_file()
    assert not journal_path(out).exists() and not os.path.lexists(journal_path(out))


def test_a_binary_journal_names_the_file(transparent_pairs, pe_alex, tmp_path) -> None:
    out = tmp_path / "s.csv"
    with pytest.raises(KeyboardInterrupt):
        score_pairs(transparent_pairs, [_StopAfter(pe_alex, 2)], csv_path=out, alpha="drop", progress=False)
    journal_path(out).write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(JournalError, match=r"s\.csv\.partial is not a pe-iqa CSV or journal"):
        score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="drop", resume=True, progress=False)


def test_manifest_paths_are_taken_as_written_and_unnamed_columns_are_not_output(tmp_path) -> None:
    """Item 14: ``" lead.png"`` could not be scored; a trailing comma in the header made a column with no name."""
    from pe_iqa.scoring import read_pairs_manifest

    (tmp_path / "m.csv").write_text("distorted,reference,mos,\n lead.png,ref.png,3,\n", encoding="utf-8")
    (pair,) = read_pairs_manifest(tmp_path / "m.csv")
    assert pair.distorted == tmp_path / " lead.png" and dict(pair.extra) == {"mos": "3"}
    (tmp_path / "bad.csv").write_text("distorted,reference,\na.png,b.png,oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: a value under a column without a name"):
        read_pairs_manifest(tmp_path / "bad.csv")


def test_pyiqa_metrics_record_their_version_and_options(transparent_pairs, tmp_path) -> None:
    pytest.importorskip("pyiqa")
    out = tmp_path / "s.csv"
    score_pairs(transparent_pairs, ["ssim"], csv_path=out, alpha="drop", progress=False)
    saved, _ = read_sidecar(sidecar_path(out))
    record = saved["ssim"]
    assert record.kind == "pyiqa" and record.version.startswith("pyiqa ")
    assert '"type": "SSIM"' in dict(record.options)["metric_opts"] and dict(record.options)["alpha"] == "drop"


# --- issue 25: a partial or unreadable record is unknown, never trusted (pe_iqa.provenance.combine_records) ---

def _edit_metrics(path: Path, metrics: dict) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["metrics"] = metrics
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("partial", ["empty", "another metric"])
def test_a_csv_sidecar_emptied_or_left_partial_is_not_trusted(transparent_pairs, pe_alex, tmp_path, partial) -> None:
    """Issue 25, item 1: ``--alpha white``, empty the record, ``--alpha black --resume`` kept the white values."""
    out = tmp_path / "s.csv"
    white = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="white", progress=False)
    black = score_pairs(transparent_pairs, [pe_alex], alpha="black", progress=False)
    assert white.scores("pe_alex").tolist() != black.scores("pe_alex").tolist()
    record = json.loads(sidecar_path(out).read_text(encoding="utf-8"))["metrics"]["pe_alex"]
    _edit_metrics(sidecar_path(out), {} if partial == "empty" else {"lpips": {**record, "metric": "lpips"}})
    with pytest.warns(ResumeWarning, match=r"s\.csv has no record for pe_alex"):
        again = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="black", resume=True, progress=False)
    assert again.resumed == 0 and again.scores("pe_alex").tolist() == black.scores("pe_alex").tolist()


def test_a_journal_sidecar_left_partial_is_not_trusted(transparent_pairs, pe_alex, tmp_path) -> None:
    """Issue 25, item 1, journals: an interrupted white run whose journal record was emptied, resumed black."""
    out = tmp_path / "s.csv"
    with pytest.raises(KeyboardInterrupt):
        score_pairs(transparent_pairs, [_StopAfter(pe_alex, 3)], csv_path=out, alpha="white", progress=False)
    _edit_metrics(sidecar_path(journal_path(out)), {})
    black = score_pairs(transparent_pairs, [pe_alex], alpha="black", progress=False)
    with pytest.warns(ResumeWarning, match=r"s\.csv\.partial has no record for pe_alex"):
        again = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="black", resume=True, progress=False)
    assert again.resumed == 0 and again.scores("pe_alex").tolist() == black.scores("pe_alex").tolist()


def test_a_deeply_nested_sidecar_is_refused_in_one_line_naming_it(transparent_pairs, pe_alex, tmp_path) -> None:
    """Issue 25, item 16: such a sidecar raised a RecursionError naming no file."""
    out = tmp_path / "s.csv"
    score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="white", progress=False)
    sidecar_path(out).write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    with pytest.raises(ProvenanceError) as caught:
        score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="white", resume=True, progress=False)
    message = str(caught.value)
    assert str(sidecar_path(out)) in message and "nested too deeply" in message and "\n" not in message
