"""The scoring engine: manifests, batching, reference reuse, failures, streamed CSV, resume, safe destinations.

Scores are never compared with hard-coded values: every test compares one path through the engine with another
(batch 1 vs 4, reuse vs none, workers vs none, resumed vs uninterrupted, engine vs the module on the same tensors).
"""

from __future__ import annotations

import csv
import errno
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pe_iqa.image_io import read_pair
from pe_iqa.scoring import (
    DestinationError,
    JournalError,
    MetricUnavailableError,
    ScorePair,
    ScoringMetric,
    build_metric,
    check_metric_names,
    read_pairs_manifest,
    score_pairs,
)
from pe_iqa.scoring import metrics as metrics_module
from pe_iqa.scoring.output import journal_path


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """LIVE-like: 2 references of 64×64 with 3 distortions each, 1 reference of 48×80 with 2; a manifest."""
    root = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(0)
    lines = ["distorted,reference,mos,dataset"]
    for r, (h, w, n) in enumerate([(64, 64, 3), (64, 64, 3), (48, 80, 2)]):
        ref = np.kron(rng.integers(0, 256, (h // 8, w // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
        _save(root / "refs" / f"r{r}.png", ref)
        for d in range(n):
            noisy = np.clip(ref + rng.normal(0, 6 * (d + 1), ref.shape), 0, 255).astype(np.uint8)
            _save(root / "dist" / f"r{r}_d{d}.png", noisy)
            lines.append(f"dist/r{r}_d{d}.png,refs/r{r}.png,{r + d / 10:.1f},toy")
    (root / "pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def pe_alex() -> ScoringMetric:
    return build_metric("pe_alex", "cpu")


@pytest.fixture(scope="module")
def reference_scores(dataset: Path, pe_alex: ScoringMetric) -> list[float]:
    """The module's scores on the tensors of each pair, one pair per call (the plain path)."""
    with torch.inference_mode():
        return [float(pe_alex.score(*read_pair(p.distorted, p.reference))[0])
                for p in read_pairs_manifest(dataset / "pairs.csv")]


class _Counting(ScoringMetric):
    """A metric wrapper counting calls; optionally raising ``error`` on call number ``fail_at``."""

    def __init__(self, inner: ScoringMetric, fail_at: int | None = None, error: BaseException | None = None):
        self.calls = 0

        def score(dist, ref, *features):
            self.calls += 1
            if fail_at is not None and self.calls == fail_at:
                raise error
            return inner.score_with_features(dist, ref, *features) if features else inner.score(dist, ref)

        super().__init__(inner.name, inner.lower_better, score=lambda d, r: score(d, r), features=inner.features,
                         score_with_features=lambda d, r, f: score(d, r, f), provenance=inner.provenance,
                         valid_range=inner.valid_range)


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------------------------------------- manifests


def test_manifest_paths_extras_bom_and_blank_lines(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere" / "ref.png"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.csv").write_text(
        f"\ufeffdistorted,reference,mos, dataset \nd/1.png,{absolute},3.5,live\n\n,,,\nd/2.png,r/2.png,,tid\n",
        encoding="utf-8")
    pairs = read_pairs_manifest(tmp_path / "sub" / "m.csv")
    assert [p.distorted for p in pairs] == [tmp_path / "sub" / "d/1.png", tmp_path / "sub" / "d/2.png"]
    assert pairs[0].reference == absolute and pairs[1].reference == tmp_path / "sub" / "r/2.png"
    assert [dict(p.extra) for p in pairs] == [{"mos": "3.5", "dataset": "live"}, {"mos": "", "dataset": "tid"}]
    rooted = read_pairs_manifest(tmp_path / "sub" / "m.csv", root=tmp_path / "data")
    assert rooted[1].distorted == tmp_path / "data" / "d/2.png"


def test_pyiqa_meta_info_files_are_read_with_a_root(tmp_path: Path) -> None:
    (tmp_path / "meta_info_LIVEIQADataset.csv").write_text(
        "ref_name,dist_name,mos\nrefimgs/bikes.bmp,jpeg/img1.bmp,41.2\n", encoding="utf-8")
    (pair,) = read_pairs_manifest(tmp_path / "meta_info_LIVEIQADataset.csv", root=tmp_path / "LIVE")
    assert pair.distorted == tmp_path / "LIVE" / "jpeg/img1.bmp"
    assert pair.reference == tmp_path / "LIVE" / "refimgs/bikes.bmp"
    assert dict(pair.extra) == {"ref_name": "refimgs/bikes.bmp", "dist_name": "jpeg/img1.bmp", "mos": "41.2"}


@pytest.mark.parametrize(("text", "message"), [
    ("a,b\nx,y\n", "header must hold"),
    ("distorted,reference,error\nx,y,z\n", "output columns of their own"),
    ("distorted,reference\nx,y,z\n", "more cells"),
    ("distorted,reference\n,y\n", "empty distorted path"),
    ("distorted,reference\n", "lists no pairs"),
    ("distorted,reference,mos,mos\nx,y,1,2\n", "duplicate column"),
])
def test_bad_manifests_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_pairs_manifest(tmp_path / "m.csv")
    with pytest.raises(FileNotFoundError, match="no such pairs manifest"):
        read_pairs_manifest(tmp_path / "none.csv")


def test_score_pair_extra_may_not_shadow_output_columns() -> None:
    with pytest.raises(ValueError, match="error"):
        ScorePair("a.png", "b.png", {"error": "x"})
    assert ScorePair("a.png", "b.png", {"mos": 1}).extra["mos"] == "1"
    with pytest.raises(ValueError, match="named like metrics"):
        score_pairs([ScorePair("a.png", "b.png", {"pe_alex": "1"})], ["pe_alex"], progress=False)


# ---------------------------------------------------------------------------------------------- scoring


@pytest.mark.slow  # 1.1 s measured (full run, 2 shared cores)
def test_rows_follow_the_input_with_extras_and_equal_the_module(dataset, pe_alex, reference_scores) -> None:
    pairs = read_pairs_manifest(dataset / "pairs.csv")
    result = score_pairs(pairs, [pe_alex], progress=False)
    assert [row["distorted"] for row in result.rows] == [p.distorted for p in pairs]
    assert [row["mos"] for row in result.rows] == [p.extra["mos"] for p in pairs]
    assert [row["pe_alex"] for row in result.rows] == reference_scores
    assert all(row["error"] == "" for row in result.rows) and result.failures == []
    assert result.metric_directions == {"pe_alex": True}
    assert result.means()["pe_alex"] == pytest.approx(float(np.mean(reference_scores)), rel=1e-12)


@pytest.mark.slow  # 8.8 s measured (quick-tier run, 2 shared cores)
@pytest.mark.parametrize("batch_size", [1, 4])
def test_reference_reuse_gives_identical_scores(dataset, pe_alex, reference_scores, batch_size) -> None:
    pairs = read_pairs_manifest(dataset / "pairs.csv")
    reused = score_pairs(pairs, [pe_alex], batch_size=batch_size, progress=False)
    fresh = score_pairs(pairs, [pe_alex], batch_size=batch_size, reuse_references=False, progress=False)
    if batch_size == 1:  # the same computations: bit for bit
        assert reused.scores("pe_alex").tolist() == fresh.scores("pe_alex").tolist() == reference_scores
    else:  # convolutions are not batch-invariant: other batch shapes move the last float bits
        np.testing.assert_allclose(reused.scores("pe_alex"), fresh.scores("pe_alex"), rtol=1e-5, atol=0)
        np.testing.assert_allclose(fresh.scores("pe_alex"), reference_scores, rtol=1e-5, atol=0)
    assert reused.features_computed == 3 and reused.features_reused == len(pairs) - 3  # 3 references
    assert fresh.features_computed == fresh.features_reused == 0
    no_room = score_pairs(pairs, [pe_alex], batch_size=batch_size, reference_cache_mb=0, progress=False)
    np.testing.assert_allclose(no_room.scores("pe_alex"), reused.scores("pe_alex"), rtol=1e-5, atol=0)
    assert no_room.features_computed > reused.features_computed


@pytest.mark.slow  # 1.5 s measured (full run, 2 shared cores)
def test_batches_of_mixed_sizes_and_workers_give_the_same_scores(dataset, pe_alex, reference_scores) -> None:
    pairs = read_pairs_manifest(dataset / "pairs.csv")
    batched = score_pairs(pairs, [pe_alex], batch_size=5, workers=1, progress=False)  # batches span both sizes
    np.testing.assert_allclose(batched.scores("pe_alex"), reference_scores, rtol=1e-5, atol=0)
    in_workers = score_pairs(pairs, [pe_alex], workers=2, progress=False)
    assert in_workers.scores("pe_alex").tolist() == reference_scores


def test_a_batch_never_mixes_8_bit_and_16_bit_references(tmp_path, pe_alex) -> None:
    # 8-bit distorted images of one size; one reference 8-bit, the other 16-bit (read as float): stacked together,
    # the 8-bit reference would be promoted to floats in [0, 255] without the division by 255
    rng = np.random.default_rng(3)
    reference = np.kron(rng.integers(0, 256, (8, 8)), np.ones((8, 8))).astype(np.uint8)
    _save(tmp_path / "ref8.png", np.repeat(reference[..., None], 3, axis=2))
    _save(tmp_path / "ref16.png", reference.astype(np.uint16) * 257)  # the same picture at 16 bits
    noisy = np.clip(reference + rng.normal(0, 12, reference.shape), 0, 255).astype(np.uint8)
    _save(tmp_path / "dist.png", np.repeat(noisy[..., None], 3, axis=2))
    pairs = [ScorePair(tmp_path / "dist.png", tmp_path / name) for name in ("ref8.png", "ref16.png")]
    one_by_one = score_pairs(pairs, [pe_alex], batch_size=1, progress=False).scores("pe_alex")
    batched = score_pairs(pairs, [pe_alex], batch_size=2, reuse_references=False, progress=False).scores("pe_alex")
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=0)
    np.testing.assert_allclose(one_by_one[0], one_by_one[1], rtol=1e-5, atol=0)  # same picture, same score


def test_failing_pairs_are_reported_and_the_others_scored(dataset, pe_alex, reference_scores, tmp_path) -> None:
    good = read_pairs_manifest(dataset / "pairs.csv")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _save(tmp_path / "tiny.png", np.zeros((8, 8, 3), np.uint8))  # smaller than the network accepts
    bad = [ScorePair(tmp_path / "missing.png", good[0].reference), ScorePair(tmp_path / "corrupt.png",
           good[0].reference), ScorePair(good[-1].distorted, good[0].reference),  # 48×80 vs 64×64
           ScorePair(tmp_path / "tiny.png", tmp_path / "tiny.png")]
    pairs = [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3], good[3]]
    result = score_pairs(pairs, [pe_alex], batch_size=4, csv_path=tmp_path / "s.csv", progress=False)
    values = result.scores("pe_alex")
    np.testing.assert_allclose([values[i] for i in (0, 2, 5, 7)], reference_scores[:4], rtol=1e-5, atol=0)
    failed = {index: message for index, _, message in result.failures}
    assert sorted(failed) == [1, 3, 4, 6]
    assert "missing.png" in failed[1] and "corrupt.png" in failed[3]
    assert "equal sizes" in failed[4] and failed[6].startswith("pe_alex:")
    assert result.n_ok == 4
    assert result.means()["pe_alex"] == pytest.approx(float(np.mean(reference_scores[:4])), rel=1e-5)
    written = _rows(tmp_path / "s.csv")
    assert len(written) == 8 and [bool(row["error"]) for row in written] == [i in failed for i in range(8)]
    assert written[1]["pe_alex"] == "" and float(written[0]["pe_alex"]) == values[0]


def test_a_non_finite_score_fails_its_pair(dataset, pe_alex) -> None:
    pairs = read_pairs_manifest(dataset / "pairs.csv")[:3]
    calls = []

    def score(dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        out = pe_alex.score(dist, ref)
        return torch.full_like(out, float("nan")) if len(calls) == 2 else out  # the second pair

    result = score_pairs(pairs, [ScoringMetric("odd", True, score=score)], progress=False)
    assert [i for i, _, _ in result.failures] == [1] and "odd returned nan" in result.failures[0][2]
    assert result.n_ok == 2 and np.isnan(result.scores("odd")[1])


def test_unknown_metrics_fail_before_anything_is_built(monkeypatch) -> None:
    with pytest.raises(MetricUnavailableError, match="pe_alex, pe_vgg"):
        check_metric_names(["pe_alex", "no_such_metric_xyz"])

    class MissingExtra:
        name, value = "fancy", "fancy_plugin:PROVIDER"

        def load(self):
            raise ModuleNotFoundError("No module named 'fancy_lib'", name="fancy_lib")

    monkeypatch.setattr(metrics_module, "metric_providers", lambda: [MissingExtra()])
    with pytest.raises(MetricUnavailableError, match=r"pip install 'pe-iqa\[fancy\]'"):
        build_metric("fancy_metric")


def test_a_registry_is_extended_into_a_new_one_and_the_default_is_unchanged(monkeypatch) -> None:
    monkeypatch.setattr(metrics_module, "metric_providers", lambda: [])  # no installed provider: nothing imported
    planted = ScoringMetric("planted_xyz", True, score=lambda dist, ref: (dist - ref).abs().flatten(1).mean(1))

    class Baselines:
        def knows(self, name: str) -> bool:
            return name == "zero_xyz"

        def build(self, name: str, device: torch.device) -> ScoringMetric:
            return ScoringMetric(name, True, score=lambda dist, ref: dist.new_zeros(len(dist)), source="baseline")

    extended = metrics_module.METRICS.with_providers(Baselines()).with_metrics(planted)
    assert extended.build("planted_xyz") is planted
    assert extended.build("zero_xyz", "cpu").source == "baseline"
    assert all(name in extended for name in ("pe_alex", "planted_xyz", "zero_xyz"))
    for name in ("planted_xyz", "zero_xyz"):  # the default registry (pe-iqa score) never learnt them
        assert name not in metrics_module.METRICS
        with pytest.raises(MetricUnavailableError, match=rf"{name}.*no metric provider is installed"):
            check_metric_names([name])
    with pytest.raises(ValueError, match=r"\['pe_alex'\] are already taken"):  # a preset keeps its meaning
        metrics_module.METRICS.with_metrics(ScoringMetric("pe_alex", True, score=planted.score))
    with pytest.raises(ValueError, match="already taken"):
        extended.with_metrics(planted)
    with pytest.raises(TypeError, match="ScoringMetric objects"):
        metrics_module.METRICS.with_metrics("planted_xyz")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metric name must be a string"):
        extended.build(planted)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- output


def test_rows_stream_to_a_journal_and_the_final_csv_is_in_input_order(dataset, pe_alex, tmp_path) -> None:
    pairs = read_pairs_manifest(dataset / "pairs.csv")
    out = tmp_path / "scores.csv"
    seen: list[int] = []

    def score(dist, ref, features):
        journal = journal_path(out)
        seen.append(len(journal.read_text(encoding="utf-8").splitlines()) - 1)  # rows already on disk
        return pe_alex.score_with_features(dist, ref, features)

    spy = ScoringMetric("pe_alex", True, score=pe_alex.score, features=pe_alex.features, score_with_features=score,
                        provenance=pe_alex.provenance)
    result = score_pairs(pairs, [spy], csv_path=out, progress=False)
    assert seen == list(range(len(pairs)))  # every finished pair was flushed before the next one started
    assert not journal_path(out).exists()
    written = _rows(out)
    assert [row["distorted"] for row in written] == [str(p.distorted) for p in pairs]
    assert list(written[0]) == ["distorted", "reference", "mos", "dataset", "pe_alex", "error"]
    assert [float(row["pe_alex"]) for row in written] == result.scores("pe_alex").tolist()  # repr round-trips


def _interrupted_run(pairs, pe_alex, out: Path, stop_at: int) -> None:
    with pytest.raises(KeyboardInterrupt):
        score_pairs(pairs, [_Counting(pe_alex, fail_at=stop_at, error=KeyboardInterrupt())], csv_path=out,
                    progress=False)
    assert not out.exists() and journal_path(out).exists()


@pytest.mark.slow  # 1.1 s measured (quick-tier run, 2 shared cores)
def test_resume_gives_the_file_of_an_uninterrupted_run(dataset, pe_alex, tmp_path) -> None:
    pairs = read_pairs_manifest(dataset / "pairs.csv")
    score_pairs(pairs, [pe_alex], csv_path=tmp_path / "full.csv", progress=False)
    out = tmp_path / "resumed.csv"
    _interrupted_run(pairs, pe_alex, out, stop_at=4)
    with pytest.raises(JournalError, match="resume"):  # never silently start over
        score_pairs(pairs, [pe_alex], csv_path=out, progress=False)
    counting = _Counting(pe_alex)
    result = score_pairs(pairs, [counting], csv_path=out, resume=True, progress=False)
    assert result.resumed == 3 and result.scored == len(pairs) - 3 and counting.calls == len(pairs) - 3
    assert out.read_bytes() == (tmp_path / "full.csv").read_bytes()
    assert not journal_path(out).exists()
    again = score_pairs(pairs, [_Counting(pe_alex)], csv_path=out, resume=True, progress=False)  # nothing left
    assert again.scored == 0 and out.read_bytes() == (tmp_path / "full.csv").read_bytes()


@pytest.mark.slow  # 0.9 s measured (quick-tier run, 2 shared cores)
def test_resume_survives_a_torn_last_line_and_rescores_failed_pairs(dataset, pe_alex, tmp_path) -> None:
    pairs = read_pairs_manifest(dataset / "pairs.csv")
    score_pairs(pairs, [pe_alex], csv_path=tmp_path / "full.csv", progress=False)
    moved = tmp_path / "moved.png"
    pairs[1].distorted.rename(moved)  # pair 1 fails in the first run
    try:
        out = tmp_path / "s.csv"
        _interrupted_run(pairs, pe_alex, out, stop_at=4)
        with journal_path(out).open("a", encoding="utf-8") as handle:
            handle.write(f"5,{pairs[5].distorted},{str(pairs[5].reference)[:-4]}")  # a crash mid-row
    finally:
        moved.rename(pairs[1].distorted)
    result = score_pairs(pairs, [pe_alex], csv_path=out, resume=True, progress=False)
    assert result.resumed == 3 and result.failures == []  # pairs 0, 2, 3 kept; 1 (failed) scored again
    assert out.read_bytes() == (tmp_path / "full.csv").read_bytes()


def test_journals_of_other_runs_are_refused(dataset, pe_alex, tmp_path) -> None:
    pairs = read_pairs_manifest(dataset / "pairs.csv")
    out = tmp_path / "s.csv"
    _interrupted_run(pairs, pe_alex, out, stop_at=3)
    with pytest.raises(JournalError, match="another run"):
        score_pairs(pairs[::-1], [pe_alex], csv_path=out, resume=True, progress=False)
    renamed = ScoringMetric("other", True, score=pe_alex.score)
    with pytest.raises(JournalError, match="written for metrics"):
        score_pairs(pairs, [renamed], csv_path=out, resume=True, progress=False)


def _fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_ino


def test_the_csv_is_never_written_onto_an_input(dataset, pe_alex, tmp_path) -> None:
    """Issue 10.2: ``--csv r.png`` replaced the reference image with CSV text."""
    pairs = read_pairs_manifest(dataset / "pairs.csv")
    reference = pairs[0].reference
    before = _fingerprint(reference)
    (tmp_path / "link.png").symlink_to(reference)
    os.link(reference, tmp_path / "hard.png")
    counting = _Counting(pe_alex)
    for target in (reference, reference.parent / ".." / reference.parent.name / reference.name, tmp_path / "link.png",
                   tmp_path / "hard.png"):
        with pytest.raises(DestinationError, match="one of the inputs"):
            score_pairs(pairs, [counting], csv_path=target, progress=False)
    with pytest.raises(DestinationError, match="one of the inputs"):
        score_pairs(pairs, [counting], csv_path=dataset / "pairs.csv", protect=[dataset / "pairs.csv"],
                    progress=False)
    _save(tmp_path / "photo.png", np.zeros((4, 4, 3), np.uint8))  # not an input, but an image: refused too
    with pytest.raises(DestinationError, match="holds an image"):
        score_pairs(pairs, [counting], csv_path=tmp_path / "photo.png", progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DestinationError, match="cannot create the folder"):
        score_pairs(pairs, [counting], csv_path=tmp_path / "file" / "s.csv", progress=False)
    assert counting.calls == 0  # every destination was checked before any scoring
    assert _fingerprint(reference) == before


@pytest.mark.slow  # 1.5 s measured (quick-tier run, 2 shared cores)
def test_the_final_csv_is_replaced_atomically(dataset, pe_alex, tmp_path, monkeypatch) -> None:
    """Issue 10.2: on a full disk an existing scores.csv was replaced by a truncated one."""
    pairs = read_pairs_manifest(dataset / "pairs.csv")
    out = tmp_path / "scores.csv"
    out.write_text("previous results\n")

    def full_disk(source, destination):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pe_iqa.safe_files.os.replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        score_pairs(pairs, [pe_alex], csv_path=out, progress=False)
    assert out.read_text() == "previous results\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp file left
