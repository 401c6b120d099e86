"""``score_pairs``: score many (distorted, reference) pairs with several metrics, on one process or under torchrun."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..image_io import ALPHA_POLICIES
from ..provenance import Provenance, sidecar_path, write_sidecar
from ..safe_files import MAX_NAME_BYTES, DestinationError, check_destination, output_name
from .distributed import ProcessGroup, process_group, shard_range
from .metrics import ScoringMetric, build_metric, check_metric_names
from .output import (
    JOURNAL_SUFFIX,
    JournalError,
    ScoreJournal,
    ScoreTable,
    existing_journals,
    journal_path,
    next_segment,
    remove_journals,
)
from .pairs import ListSource, PairSource, ScorePair
from .pipeline import (
    DecodedPair,
    ReferenceFeatureCache,
    ShardDataset,
    describe_error,
    pair_batches,
    same_size_groups,
    stack_group,
)
from .result import ScoringResult
from .resume import RunSummary, find_done, previous_sources, read_final_rows, write_final_csv

__all__ = ["ScoringResult", "run_records", "score_pairs"]

_SHOWN_FAILURES = 10


class _Scorer:
    """Runs the metrics on decoded items: same-size batches, cached reference features, per-pair isolation."""

    def __init__(self, metrics: Sequence[ScoringMetric], device: torch.device, reuse_references: bool,
                 cache_bytes: int) -> None:
        self.metrics, self.device = list(metrics), device
        self.reuse = reuse_references
        self.cache = ReferenceFeatureCache(cache_bytes)
        self.features_computed = self.features_reused = 0

    def score(self, items: Sequence[DecodedPair]) -> list[tuple[int, list[float | None], str]]:
        finished = [(item.index, [None] * len(self.metrics), item.error) for item in items if item.error]
        for group in same_size_groups(items):
            keys = [item.ref_path for item in group]
            try:
                dist, ref = stack_group(group, self.device)
            except Exception as error:
                message = describe_error(error, first_line=True)
                finished += [(item.index, [None] * len(self.metrics), message) for item in group]
                continue
            columns = [self._run(metric, dist, ref, keys) for metric in self.metrics]
            for k, item in enumerate(group):
                values = [column[k][0] for column in columns]
                errors = [column[k][1] for column in columns if column[k][1]]
                finished.append((item.index, values, "; ".join(errors)))
        return finished

    def _run(self, metric: ScoringMetric, dist: torch.Tensor, ref: torch.Tensor,
             keys: list[str]) -> list[tuple[float | None, str]]:
        try:
            values = self._batch(metric, dist, ref, keys).tolist()
        except Exception as error:
            if len(keys) == 1:
                return [(None, f"{metric.name}: {describe_error(error, first_line=True)}")]
            # find the pair(s) that fail; the others still score
            return [self._run(metric, dist[k:k + 1], ref[k:k + 1], keys[k:k + 1])[0] for k in range(len(keys))]
        return [(v, metric.check_value(v)) for v in values]

    def _batch(self, metric: ScoringMetric, dist: torch.Tensor, ref: torch.Tensor, keys: list[str]) -> torch.Tensor:
        if self.reuse and metric.reuses_references:
            out = metric.score_with_features(dist, ref, self._features(metric, ref, keys))
        else:
            out = metric.score(dist, ref)
        out = torch.as_tensor(out).detach().reshape(-1)
        if out.numel() != len(keys):
            raise RuntimeError(f"returned {out.numel()} values for {len(keys)} pairs")
        return out.double().cpu()

    def _features(self, metric: ScoringMetric, ref: torch.Tensor, keys: list[str]) -> list[torch.Tensor]:
        found: dict[str, list[torch.Tensor]] = {}
        missing: dict[str, int] = {}
        for position, key in enumerate(keys):
            if key in found or key in missing:
                continue
            cached = self.cache.get((metric.name, key))
            if cached is None:
                missing[key] = position
            else:
                found[key] = cached
        if missing:
            positions = list(missing.values())
            batch = ref[positions[0]:positions[0] + 1] if len(positions) == 1 else ref[positions]
            computed = metric.features(batch)
            for j, key in enumerate(missing):
                own = computed if len(positions) == 1 else [t[j:j + 1].clone() for t in computed]
                found[key] = own
                self.cache.put((metric.name, key), own)
        self.features_computed += len(missing)
        self.features_reused += len(keys) - len(missing)
        if len(keys) == 1:
            return found[keys[0]]
        return [torch.cat([found[key][part] for key in keys]) for part in range(len(found[keys[0]]))]


def _check_arguments(source: PairSource, names: list[str], workers: int, batch_size: int,
                     alpha: str, reference_cache_mb: float) -> None:
    if not len(source):
        raise ValueError("no pairs to score")
    if not names:
        raise ValueError("no metrics to compute")
    for name, value, low in (("workers", workers, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if alpha not in ALPHA_POLICIES:
        raise ValueError(f"alpha must be one of {ALPHA_POLICIES}, got {alpha!r}")
    if isinstance(reference_cache_mb, bool) or not isinstance(reference_cache_mb, (int, float)) or not (
            math.isfinite(reference_cache_mb) and reference_cache_mb >= 0):
        raise ValueError(f"reference_cache_mb must be a finite number >= 0, got {reference_cache_mb!r}")
    clash = sorted(set(names) & set(source.extras))
    if clash:
        raise ValueError(f"the pairs carry columns named like metrics {clash}; rename those columns")


#: Up to this many pairs every image is compared with the outputs by inode too; beyond, only same-named ones.
_INODE_CHECKED_PAIRS = 50_000


def _protected_inputs(source: PairSource, destinations: Sequence[Path], protect: Sequence[str | Path]) -> list[Path]:
    """The inputs the outputs must not be, read as a stream: every image of a small run, else the images whose
    name is an output's (what :func:`~pe_iqa.safe_files.check_destination` compares for long input lists)."""
    names = {d.name for d in destinations} | {Path(os.path.realpath(d)).name for d in destinations}
    every = len(source) <= _INODE_CHECKED_PAIRS
    found = dict.fromkeys(str(p) for p in protect)  # each file once: a reference serves many pairs
    for _, distorted, reference, _ in source.cells():
        for text in (distorted, reference):
            if text not in found and (every or (any(name in text for name in names) and Path(text).name in names)):
                found[text] = None
    return [Path(text) for text in found]


def _check_output(csv_path: Path, source: PairSource, resume: bool, group: ProcessGroup,
                  protect: Sequence[str | Path]) -> None:
    """Everything about the output that can be checked before a model is built."""
    longest = f".rank{group.rank}.99{JOURNAL_SUFFIX}.provenance.json" if group.world_size > 1 else (
        f".99{JOURNAL_SUFFIX}.provenance.json")
    if len(csv_path.name.encode("utf-8", "surrogateescape")) + len(longest) > MAX_NAME_BYTES:
        raise DestinationError(f"CSV file {str(csv_path)[:60]}…: the file name is longer than "
                               f"{MAX_NAME_BYTES - len(longest)} bytes (files named like it with up to {len(longest)} "
                               f"more bytes are written beside it); give a shorter name")
    own_journal = journal_path(csv_path, group.rank, group.world_size)
    outputs = [(csv_path, "CSV file", "csv"), (own_journal, "journal", None),
               (sidecar_path(csv_path), "provenance file", "json"),
               (sidecar_path(own_journal), "provenance file", "json")]
    inputs = _protected_inputs(source, [path for path, _, _ in outputs], protect)
    for path, what, kind in outputs:
        check_destination(path, inputs, what, kind=kind)
    if not resume:
        journals = existing_journals(csv_path)
        if journals:
            raise JournalError(f"{journals[0]} holds pairs of an interrupted run: resume it (--resume) or delete "
                               f"it to start over")


def run_records(metrics: Sequence[ScoringMetric], alpha: str) -> dict[str, Provenance]:
    """Each metric's :class:`~pe_iqa.provenance.Provenance` in this run: its own record plus the reading rules
    (pe-iqa's image reader, its version, the alpha policy)."""
    from .. import __version__

    return {m.name: m.record().with_options(alpha=alpha, reader=f"pe-iqa {__version__}") for m in metrics}


@dataclass
class _Output:
    """The CSV side of a run on this process: earlier results, the done record of its shard, its journal."""

    csv_path: Path
    sources: list[Path]
    done: np.ndarray
    segment: int
    journal: ScoreJournal


def _open_output(csv_path: Path, source: PairSource, shard: range, metrics: Sequence[ScoringMetric], resume: bool,
                 group: ProcessGroup, records: dict[str, Provenance]) -> _Output:
    names = [m.name for m in metrics]
    sources = previous_sources(csv_path, records, names) if resume else []
    done = (find_done(sources, csv_path, source, shard.start, shard.stop, names, [m.check_value for m in metrics])
            if sources else np.zeros(len(shard), dtype=np.uint8))
    segment = next_segment(csv_path)
    group.barrier()  # every process has listed and read the earlier results before any journal is created
    own_journal = journal_path(csv_path, group.rank, group.world_size, segment)
    write_sidecar(own_journal, records)
    return _Output(csv_path, sources, done, segment, ScoreJournal(own_journal, names))


def score_pairs(
    pairs: Sequence[ScorePair] | PairSource,
    metrics: Sequence[str | ScoringMetric],
    *,
    device: torch.device | str = "cpu",
    workers: int = 0,
    batch_size: int = 1,
    reuse_references: bool = True,
    csv_path: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    alpha: str = "error",
    reference_cache_mb: float = 1024.0,
    protect: Sequence[str | Path] = (),
    collect: bool | None = None,
) -> ScoringResult:
    """Score every pair with every metric; a pair that fails is reported in its row and the others still score.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) each process scores one contiguous block of the pairs, reading only
    its own block of a manifest as a stream; with ``csv_path`` each writes its own journal and process 0 merges
    them into the CSV as streams: memory does not grow with the number of pairs (one byte per pair for resume).

    Args:
        pairs: what to score: a list (see :func:`~pe_iqa.scoring.read_pairs_manifest`) or a stream
            (:func:`~pe_iqa.scoring.pairs.open_pairs_manifest`, for millions of rows).
        metrics: pe-iqa presets (``"pe_alex"`` ...), names of installed metric providers (``"lpips"`` with the
            pyiqa extra), or :class:`~pe_iqa.scoring.metrics.ScoringMetric` objects.
        device: where the metrics run (``"cuda"`` is ``cuda:<LOCAL_RANK>`` under torchrun).
        workers: ``DataLoader`` processes decoding images (0: decode in this process).
        batch_size: pairs per batch; pairs of different sizes in a batch are split into same-size groups.
        reuse_references: encode a reference once per run for metrics that support it (same scores).
        csv_path: stream finished pairs to a journal next to it and write it, in input order, at the end.
        resume: continue an interrupted run of the same ``csv_path`` (also re-scores pairs that failed and pairs
            whose image files changed since: size or modification time).
        progress: show a progress bar (pairs/s, ETA) and the first failures on standard error.
        alpha: the image reader's alpha policy (:data:`pe_iqa.image_io.ALPHA_POLICIES`).
        reference_cache_mb: memory budget for cached reference features (on ``device``).
        protect: further files ``csv_path`` must not be (e.g. the manifest); the images are always protected.
        collect: keep every pair's row in the result (default: for a list, not for a stream) — every process
            then returns the whole table.

    Returns:
        A :class:`ScoringResult` (rows in input order when collected).

    Raises:
        ValueError: bad arguments, an unavailable metric (``MetricUnavailableError``), a ``csv_path`` that may
            not be written (``DestinationError``), or journals of another run (``JournalError``) — all before
            any pair is scored.
    """
    source = pairs if isinstance(pairs, PairSource) else ListSource(pairs)
    collect = not isinstance(pairs, PairSource) if collect is None else bool(collect)
    names = list(dict.fromkeys(m if isinstance(m, str) else m.name for m in metrics))
    _check_arguments(source, names, workers, batch_size, alpha, reference_cache_mb)
    check_metric_names([m for m in metrics if isinstance(m, str)])
    csv_path = output_name(csv_path, "--csv") if csv_path is not None else None
    with process_group(device) as group:
        shard = shard_range(len(source), group.rank, group.world_size)
        checking = time.perf_counter()
        if csv_path is not None:
            _check_output(csv_path, source, resume, group, [*protect, *source.protect])
        started = time.perf_counter()
        given = {m.name: m for m in metrics if isinstance(m, ScoringMetric)}
        built = [given.get(name) or build_metric(name, group.device) for name in names]
        loaded = time.perf_counter()
        records = run_records(built, alpha)
        output = _open_output(csv_path, source, shard, built, resume, group, records) if csv_path else None
        timings = {"check": started - checking, "resume": time.perf_counter() - loaded}
        scorer = _Scorer(built, group.device, reuse_references, int(reference_cache_mb * 2**20))
        summary, collected = RunSummary(names), ({} if collect and csv_path is None else None)
        try:
            scored = _run(scorer, source, shard, output, summary, collected, group, workers, batch_size, alpha,
                          progress, timings)
        finally:
            if output is not None:
                output.journal.close()
        result = ScoringResult(
            pairs=[pair for _, pair in source.iterate()] if collect else None, metric_names=names,
            metric_directions={m.name: bool(m.lower_better) for m in built}, summary=summary,
            load_s=loaded - started, world_size=group.world_size, device=str(group.device), csv_path=csv_path,
            features_computed=scorer.features_computed, features_reused=scorer.features_reused, timings=timings,
        )
        _finish(result, source, output, scored, collected, group, records)
        result.score_s = time.perf_counter() - loaded
        group.barrier()
    return result


def _finish(result: ScoringResult, source: PairSource, output: _Output | None, scored: int,
            collected: dict | None, group: ProcessGroup, records: dict[str, Provenance]) -> None:
    """Gather the processes' counts; write the final CSV (process 0) or combine the summaries; fill the table."""
    names = result.metric_names
    done = output.done if output is not None else None
    gathered = group.all_gather((scored, 0 if done is None else int(np.count_nonzero(done)), done,
                                 result.summary if output is None else None, collected))
    result.scored = sum(part[0] for part in gathered)
    result.resumed = sum(part[1] for part in gathered)
    if output is not None:
        summary = None
        if group.is_main:
            started = time.perf_counter()
            world = group.world_size
            shards = [shard_range(len(source), rank, world) for rank in range(world)]
            journals = [(journal_path(output.csv_path, rank, world, output.segment), shard.start, shard.stop)
                        for rank, shard in enumerate(shards)]
            summary = write_final_csv(output.csv_path, source, names, np.concatenate([part[2] for part in gathered]),
                                      output.sources, journals, records)
            remove_journals(output.csv_path)
            result.timings["merge"] = time.perf_counter() - started
        result.summary = group.all_gather(summary)[0]
    else:
        result.summary = RunSummary.combine([part[3] for part in gathered])
    if result.pairs is not None:
        result.table = ScoreTable(len(source), names)
        rows = (((i, v, e) for i, _, _, _, v, e in read_final_rows(output.csv_path, names)) if output is not None
                else ((i, v, e) for part in gathered for i, (v, e) in part[4].items()))
        for index, values, error in rows:
            result.table.record(index, values, error)


def _run(scorer: _Scorer, source: PairSource, shard: range, output: _Output | None, summary: RunSummary,
         collected: dict | None, group: ProcessGroup, workers: int, batch_size: int, alpha: str, progress: bool,
         timings: dict[str, float]) -> int:
    """Score this process's shard (the pairs not done); returns how many pairs it scored."""
    from tqdm.auto import tqdm

    done = output.done if output is not None else None
    todo = len(shard) - (int(np.count_nonzero(done)) if done is not None else 0)
    timings.update(network=0.0, decode_wait=0.0, loop=0.0)
    if not todo:
        return 0
    label = "scoring" if group.world_size == 1 else f"scoring (process 0 of {group.world_size})"
    bar = tqdm(total=todo, desc=label, unit="pair", file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
               disable=not (progress and group.is_main) or None, leave=False)
    shown = count = 0
    dataset = ShardDataset(source, shard.start, shard.stop, done if done is not None and done.any() else None,
                           batch_size, alpha)
    batches = iter(pair_batches(dataset, workers, pin_memory=scorer.device.type == "cuda"))
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            while True:
                asked = time.perf_counter()
                items: list[DecodedPair] | None = next(batches, None)
                got = time.perf_counter()
                timings["decode_wait"] += got - asked
                if items is None:
                    break
                finished = scorer.score(items)
                timings["network"] += time.perf_counter() - got
                by_index = {item.index: item for item in items}
                rows = sorted((index, by_index[index].dist_path, by_index[index].ref_path, by_index[index].stamps,
                               values, error) for index, values, error in finished)
                for index, dist, ref, _, values, error in rows:
                    if collected is not None:
                        collected[index] = (values, error)
                    if output is None:
                        summary.add(index, dist, ref, values, error)
                    if error and progress and shown < _SHOWN_FAILURES:
                        shown += 1
                        where = "" if group.world_size == 1 else f"[process {group.rank}] "
                        tqdm.write(f"{where}pair {index} ({dist} | {ref}) failed: {error}", file=sys.stderr)
                if output is not None:
                    output.journal.write(rows)
                count += len(rows)
                bar.update(len(items))
    finally:
        bar.close()
        timings["loop"] = time.perf_counter() - started
    return count
