"""``score_pairs``: score many (distorted, reference) pairs with several metrics, on one process or under torchrun."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..image_io import ALPHA_POLICIES
from ..provenance import Provenance, sidecar_path, write_sidecar
from ..safe_files import check_destination, output_name
from .distributed import ProcessGroup, process_group, shard_range
from .metrics import ScoringMetric, build_metric, check_metric_names
from .output import (
    JournalError,
    ScoreJournal,
    ScoreTable,
    existing_journals,
    journal_path,
    read_previous_scores,
    remove_journals,
    write_scores_csv,
)
from .pairs import ScorePair, extra_columns
from .pipeline import (
    DecodedPair,
    PairDataset,
    ReferenceFeatureCache,
    describe_error,
    pair_batches,
    same_size_groups,
    stack_group,
)

__all__ = ["ScoringResult", "run_records", "score_pairs"]

_SHOWN_FAILURES = 10


@dataclass
class ScoringResult:
    """Scores of every pair, in input order.

    Attributes:
        pairs: the pairs, as given.
        metric_names: one output column per metric.
        metric_directions: ``{name: lower_better}``.
        table: the per-pair values (see :class:`~pe_iqa.scoring.output.ScoreTable`).
        scored: pairs scored by this call (all processes); ``resumed``: pairs taken from an earlier run.
        load_s, score_s: seconds spent building the metrics and scoring (this process).
        world_size: processes that shared the work (torchrun); device: this process's device.
        features_computed, features_reused: reference encodings computed vs. served from the cache (this process).
    """

    pairs: list[ScorePair]
    metric_names: list[str]
    metric_directions: dict[str, bool]
    table: ScoreTable
    scored: int = 0
    resumed: int = 0
    load_s: float = 0.0
    score_s: float = 0.0
    world_size: int = 1
    device: str = "cpu"
    csv_path: Path | None = None
    features_computed: int = 0
    features_reused: int = 0
    _rows: list[dict] | None = field(default=None, repr=False)

    @property
    def rows(self) -> list[dict]:
        """One dict per pair: ``distorted``, ``reference``, the extra columns, one float per metric (``None``
        where it did not score) and ``error`` (``""`` when the pair scored)."""
        if self._rows is None:
            extras = extra_columns(self.pairs)
            self._rows = []
            for index, pair in enumerate(self.pairs):
                row: dict = {"distorted": pair.distorted, "reference": pair.reference}
                row.update({name: pair.extra.get(name, "") for name in extras})
                row.update(zip(self.metric_names, self.table.row_values(index), strict=True))
                row["error"] = self.table.error_text(index)
                self._rows.append(row)
        return self._rows

    @property
    def failures(self) -> list[tuple[int, ScorePair, str]]:
        """``(index, pair, message)`` of every pair that did not score with all metrics."""
        mask = self.table.ok_mask()
        return [(int(i), self.pairs[int(i)], self.table.errors.get(int(i), "not scored"))
                for i in np.flatnonzero(~mask)]

    @property
    def n_ok(self) -> int:
        """Pairs scored by every metric without error."""
        return int(self.table.ok_mask().sum())

    def scores(self, name: str) -> np.ndarray:
        """``(n,)`` float64 values of metric ``name`` (NaN where it did not score)."""
        column = self.metric_names.index(name)
        return np.where(self.table.present[:, column], self.table.values[:, column], np.nan)

    def means(self) -> dict[str, float]:
        """Mean of each metric over the pairs every metric scored (exactly rounded: any process count agrees)."""
        mask = self.table.ok_mask()
        count = int(mask.sum())
        return {name: (math.fsum(self.table.values[mask, j].tolist()) / count if count else math.nan)
                for j, name in enumerate(self.metric_names)}

    @property
    def pairs_per_s(self) -> float:
        """Pairs scored per second of scoring (this call, all processes together)."""
        return self.scored / self.score_s if self.score_s > 0 else math.nan


class _Scorer:
    """Runs the metrics on decoded items: same-size batches, cached reference features, per-pair isolation."""

    def __init__(self, metrics: Sequence[ScoringMetric], pairs: Sequence[ScorePair], device: torch.device,
                 reuse_references: bool, cache_bytes: int) -> None:
        self.metrics, self.pairs, self.device = list(metrics), pairs, device
        self.reuse = reuse_references
        self.cache = ReferenceFeatureCache(cache_bytes)
        self.features_computed = self.features_reused = 0

    def score(self, items: Sequence[DecodedPair]) -> list[tuple[int, list[float | None], str]]:
        finished = [(item.index, [None] * len(self.metrics), item.error) for item in items if item.error]
        for group in same_size_groups(items):
            keys = [str(self.pairs[item.index].reference) for item in group]
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


def _check_arguments(pairs: Sequence[ScorePair], names: list[str], workers: int, batch_size: int,
                     alpha: str, reference_cache_mb: float) -> None:
    if not pairs:
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
    clash = sorted(set(names) & set(extra_columns(pairs)))
    if clash:
        raise ValueError(f"the pairs carry columns named like metrics {clash}; rename those columns")


def _check_output(csv_path: Path, pairs: list[ScorePair], resume: bool, group: ProcessGroup,
                  protect: Sequence[str | Path]) -> None:
    """Everything about the output that can be checked before a model is built."""
    inputs = [*protect, *(p.distorted for p in pairs), *(p.reference for p in pairs)]
    own_journal = journal_path(csv_path, group.rank, group.world_size)
    for path, what, kind in ((csv_path, "CSV file", "csv"), (own_journal, "journal", None),
                             (sidecar_path(csv_path), "provenance file", "json"),
                             (sidecar_path(own_journal), "provenance file", "json")):
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


def _open_output(csv_path: Path, pairs: list[ScorePair], metrics: Sequence[ScoringMetric], resume: bool,
                 group: ProcessGroup, records: dict[str, Provenance]) -> tuple[ScoreTable, ScoreJournal]:
    names = [m.name for m in metrics]
    own_journal = journal_path(csv_path, group.rank, group.world_size)
    if resume:
        table = read_previous_scores(csv_path, pairs, names, records, [m.check_value for m in metrics])
    else:
        table = ScoreTable(len(pairs), names)
    append = resume and sidecar_path(own_journal).is_file()  # a journal without one was not trusted: start it anew
    group.barrier()  # every process has read the old journals before any appends to its own
    write_sidecar(own_journal, records)
    return table, ScoreJournal(own_journal, names, append=append)


def score_pairs(
    pairs: Sequence[ScorePair],
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
) -> ScoringResult:
    """Score every pair with every metric; a pair that fails is reported in its row and the others still score.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) each process scores one contiguous block of the pairs and the results
    are gathered: every process returns the whole result, process 0 writes ``csv_path``.

    Args:
        pairs: what to score (see :func:`~pe_iqa.scoring.read_pairs_manifest`).
        metrics: pe-iqa presets (``"pe_alex"`` ...), names of installed metric providers (``"lpips"`` with the
            pyiqa extra), or :class:`~pe_iqa.scoring.metrics.ScoringMetric` objects.
        device: where the metrics run (``"cuda"`` is ``cuda:<LOCAL_RANK>`` under torchrun).
        workers: ``DataLoader`` processes decoding images (0: decode in this process).
        batch_size: pairs per batch; pairs of different sizes in a batch are split into same-size groups.
        reuse_references: encode a reference once per run for metrics that support it (same scores).
        csv_path: stream finished pairs to a journal next to it and write it, in input order, at the end.
        resume: continue an interrupted run of the same ``csv_path`` (also re-scores pairs that failed).
        progress: show a progress bar (pairs/s, ETA) and the first failures on standard error.
        alpha: the image reader's alpha policy (:data:`pe_iqa.image_io.ALPHA_POLICIES`).
        reference_cache_mb: memory budget for cached reference features (on ``device``).
        protect: further files ``csv_path`` must not be (e.g. the manifest); the images are always protected.

    Returns:
        A :class:`ScoringResult` in input order.

    Raises:
        ValueError: bad arguments, an unavailable metric (``MetricUnavailableError``), a ``csv_path`` that may
            not be written (``DestinationError``), or journals of another run (``JournalError``) — all before
            any pair is scored.
    """
    pairs = list(pairs)
    names = list(dict.fromkeys(m if isinstance(m, str) else m.name for m in metrics))
    _check_arguments(pairs, names, workers, batch_size, alpha, reference_cache_mb)
    check_metric_names([m for m in metrics if isinstance(m, str)])
    csv_path = output_name(csv_path, "--csv") if csv_path is not None else None
    with process_group(device) as group:
        journal = None
        if csv_path is not None:
            _check_output(csv_path, pairs, resume, group, protect)
        started = time.perf_counter()
        given = {m.name: m for m in metrics if isinstance(m, ScoringMetric)}
        built = [given.get(name) or build_metric(name, group.device) for name in names]
        loaded = time.perf_counter()
        records = run_records(built, alpha)
        if csv_path is not None:
            table, journal = _open_output(csv_path, pairs, built, resume, group, records)
        else:
            table = ScoreTable(len(pairs), names)
        resumed = int(table.ok_mask().sum())
        try:
            todo = [i for i in shard_range(len(pairs), group.rank, group.world_size) if not table.is_ok(i)]
            scorer = _Scorer(built, pairs, group.device, reuse_references, int(reference_cache_mb * 2**20))
            new_rows = _run(scorer, pairs, todo, table, journal, group, workers, batch_size, alpha, progress)
        finally:
            if journal is not None:
                journal.close()
        done = time.perf_counter()
        scored = len(new_rows)
        if group.world_size > 1:
            gathered = group.all_gather(new_rows)
            scored = sum(len(rows) for rows in gathered)
            for rank, rows in enumerate(gathered):
                if rank != group.rank:
                    for index, (values, error) in rows.items():
                        table.record(index, values, error)
        result = ScoringResult(
            pairs=pairs, metric_names=names, metric_directions={m.name: bool(m.lower_better) for m in built},
            table=table, scored=scored, resumed=resumed, load_s=loaded - started, score_s=done - loaded,
            world_size=group.world_size, device=str(group.device), csv_path=csv_path,
            features_computed=scorer.features_computed, features_reused=scorer.features_reused,
        )
        if csv_path is not None and group.is_main:
            write_scores_csv(csv_path, pairs, table, records)
            remove_journals(csv_path)
        group.barrier()
    return result


def _run(scorer: _Scorer, pairs: list[ScorePair], todo: list[int], table: ScoreTable, journal: ScoreJournal | None,
         group: ProcessGroup, workers: int, batch_size: int, alpha: str, progress: bool) -> dict:
    from tqdm.auto import tqdm

    new_rows: dict[int, tuple[list[float | None], str]] = {}
    if not todo:
        return new_rows
    label = "scoring" if group.world_size == 1 else f"scoring (process 0 of {group.world_size})"
    bar = tqdm(total=len(todo), desc=label, unit="pair", file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
               disable=not (progress and group.is_main) or None, leave=False)
    shown = 0
    dataset = PairDataset(pairs, todo, alpha=alpha)  # uint8 crosses processes: 4× fewer bytes
    try:
        with torch.inference_mode():
            for items in pair_batches(dataset, batch_size, workers, pin_memory=scorer.device.type == "cuda"):
                finished = scorer.score(items)
                for index, values, error in finished:
                    table.record(index, values, error)
                    new_rows[index] = (values, error)
                    if error and progress and shown < _SHOWN_FAILURES:
                        shown += 1
                        pair = pairs[index]
                        where = "" if group.world_size == 1 else f"[process {group.rank}] "
                        tqdm.write(f"{where}pair {index} ({pair.distorted} | {pair.reference}) failed: {error}",
                                   file=sys.stderr)
                if journal is not None:
                    journal.write([(i, pairs[i], v, e) for i, v, e in finished])
                bar.update(len(items))
    finally:
        bar.close()
    return new_rows
