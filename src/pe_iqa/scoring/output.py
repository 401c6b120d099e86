"""Scores of a run in memory (:class:`ScoreTable`), the streamed journal, resume, and the final CSV.

While a run with ``csv_path`` goes on, each process appends every finished pair to a **journal** next to the CSV
(``scores.csv.partial``, or ``scores.csv.rank<R>.partial`` per torchrun process), flushed after each batch and
fsynced every few seconds: an interrupted run loses at most the batch in flight. The final ``scores.csv`` is
written once, atomically, in input order, and the journals are then removed. ``resume=True`` reads the final
CSV (if a previous run completed) and every journal, keeps the pairs that scored, and scores the rest (failed
pairs are retried) — the final file equals an uninterrupted run's.

CSV columns: ``distorted, reference, <extra columns>, <one per metric>, error``. Scores are written with
``repr`` (shortest text that reads back to the same float); a failed pair has an ``error`` message and empty
cells for the metrics that did not score.

Provenance: the CSV and every journal have a sidecar ``<file>.provenance.json`` holding each metric's
:class:`~pe_iqa.provenance.Provenance` (and, for the CSV, the SHA-256 of the CSV it describes). ``resume`` compares
them with this run's records: another configuration is refused with one line naming the difference; a file without
a (matching) sidecar is not trusted and its pairs are scored again. Values read back are validated like fresh
ones (:meth:`~pe_iqa.scoring.metrics.ScoringMetric.check_value`): ``inf``, ``nan`` or an impossible value makes the
pair be scored again.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from ..provenance import Provenance, combine_records, read_sidecar, sidecar_path, write_sidecar
from ..safe_files import atomic_write, create_exclusive
from .pairs import ScorePair, extra_columns

__all__ = [
    "JOURNAL_SUFFIX",
    "JournalError",
    "ResumeWarning",
    "ScoreJournal",
    "ScoreTable",
    "existing_journals",
    "file_sha256",
    "journal_path",
    "output_columns",
    "read_previous_scores",
    "remove_journals",
    "write_scores_csv",
]

JOURNAL_SUFFIX = ".partial"
_FSYNC_EVERY_S = 5.0


class JournalError(ValueError):
    """Journals or a previous CSV that do not belong to this run (or exist when not resuming)."""


class ResumeWarning(UserWarning):
    """Earlier results that cannot be checked (no provenance file) and are scored again."""


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def output_columns(extras: Sequence[str], metric_names: Sequence[str]) -> list[str]:
    """The final CSV's header, from the pairs' extra columns (:func:`~pe_iqa.scoring.pairs.extra_columns`)."""
    return ["distorted", "reference", *extras, *metric_names, "error"]


def _format(value: float | None, present: bool) -> str:
    return repr(float(value)) if present else ""


def _parse(text: str) -> float | None:
    text = text.strip()
    return None if not text else float(text)


class ScoreTable:
    """Per-pair scores of one run: ``values[i, j]`` is metric ``j`` on pair ``i`` where ``present[i, j]``."""

    def __init__(self, n_pairs: int, metric_names: Sequence[str]) -> None:
        self.metric_names = list(metric_names)
        self.values = np.full((n_pairs, len(self.metric_names)), np.nan)
        self.present = np.zeros((n_pairs, len(self.metric_names)), dtype=bool)
        self.recorded = np.zeros(n_pairs, dtype=bool)
        self.errors: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.recorded)

    def record(self, index: int, values: Sequence[float | None], error: str = "") -> None:
        """Store pair ``index``'s scores (``None``: not scored) and its error message (``""``: none)."""
        row = [math.nan if v is None else float(v) for v in values]
        self.values[index] = row
        self.present[index] = [v is not None for v in values]
        self.recorded[index] = True
        if error:
            self.errors[index] = error
        else:
            self.errors.pop(index, None)

    def is_ok(self, index: int) -> bool:
        """Whether pair ``index`` scored with every metric and no error."""
        return bool(self.recorded[index]) and index not in self.errors and bool(self.present[index].all())

    def error_text(self, index: int) -> str:
        """Pair ``index``'s ``error`` cell: its error, ``"not scored"`` if nothing was recorded, else ``""``."""
        return self.errors.get(index, "" if self.recorded[index] else "not scored")

    def row_values(self, index: int) -> list[float | None]:
        """Pair ``index``'s scores, ``None`` where absent."""
        return [float(v) if p else None for v, p in zip(self.values[index], self.present[index], strict=True)]

    def ok_mask(self) -> np.ndarray:
        """``(n,)`` bool: pairs that scored with every metric and no error."""
        mask = self.recorded & self.present.all(axis=1)
        if self.errors:
            mask[np.fromiter(self.errors, dtype=np.int64)] = False
        return mask


def journal_path(csv_path: Path, rank: int = 0, world_size: int = 1) -> Path:
    """This process's journal next to ``csv_path``."""
    suffix = JOURNAL_SUFFIX if world_size == 1 else f".rank{rank}{JOURNAL_SUFFIX}"
    return csv_path.with_name(csv_path.name + suffix)


def existing_journals(csv_path: Path) -> list[Path]:
    """Every journal of ``csv_path`` on disk (from single-process or torchrun runs of any size)."""
    pattern = glob.escape(str(csv_path)) + ".rank*" + JOURNAL_SUFFIX
    found = sorted(Path(p) for p in glob.glob(pattern))
    single = journal_path(csv_path)
    return ([single] if single.is_file() else []) + found


def _journal_header(metric_names: Sequence[str]) -> list[str]:
    return ["index", "distorted", "reference", *metric_names, "error"]


class ScoreJournal:
    """Append-only CSV of finished pairs (``index, distorted, reference, <metrics>, error``), flushed per write."""

    def __init__(self, path: Path, metric_names: Sequence[str], append: bool) -> None:
        self.path = path
        self.metric_names = list(metric_names)
        if append and path.is_file():
            _drop_torn_tail(path)
        fresh = not (append and path.is_file() and not path.is_symlink() and path.stat().st_size > 0)
        if fresh:
            path.unlink(missing_ok=True)  # a stale journal or a (dangling) link: never followed
            self._handle: IO[str] = create_exclusive(path)
        else:
            self._handle = open(path, "a", newline="", encoding="utf-8", opener=_no_follow_opener)
        self._writer = csv.writer(self._handle)
        if fresh:
            self._writer.writerow(_journal_header(self.metric_names))
        self._synced = time.monotonic()
        self.flush(sync=True)

    def write(self, rows: Sequence[tuple[int, ScorePair, Sequence[float | None], str]]) -> None:
        """Append finished pairs and flush them to the operating system (fsync every few seconds)."""
        for index, pair, values, error in rows:
            cells = [_format(v, v is not None) for v in values]
            self._writer.writerow([index, str(pair.distorted), str(pair.reference), *cells, error])
        self.flush(sync=time.monotonic() - self._synced > _FSYNC_EVERY_S)

    def flush(self, sync: bool = False) -> None:
        self._handle.flush()
        if sync:
            os.fsync(self._handle.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        if not self._handle.closed:
            self.flush(sync=True)
            self._handle.close()


def _no_follow_opener(name: str, flags: int) -> int:
    return os.open(name, flags | getattr(os, "O_NOFOLLOW", 0))


def _drop_torn_tail(path: Path) -> None:
    """Cut a journal after its last complete line (a crash can leave half a row)."""
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        position = size
        while position > 0:
            step = min(65536, position)
            handle.seek(position - step)
            chunk = handle.read(step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                end = position - step + newline + 1
                if end != size:
                    handle.truncate(end)
                return
            position -= step
        handle.truncate(0)


def _mismatch(source: Path, line: int, index: int, pair: ScorePair, dist: str, ref: str) -> JournalError:
    return JournalError(
        f"{source}, line {line}: pair {index} is {dist} | {ref} there but {pair.distorted} | {pair.reference} in "
        f"this run's input; it belongs to another run: delete it (and its .partial files) to start over"
    )


def _read_journal(path: Path, pairs: Sequence[ScorePair], metric_names: Sequence[str]) -> Iterator[tuple]:
    with _Text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        if header != _journal_header(metric_names):
            raise JournalError(
                f"{path} was written for metrics {header[3:-1]}, not {list(metric_names)}; resume with the same "
                f"metrics, or delete it to start over"
            )
        width = len(header)
        for row in reader:
            if len(row) != width:
                continue  # a torn last line
            try:
                index = int(row[0])
                values = [_parse(cell) for cell in row[3:-1]]
            except ValueError:
                continue
            if not 0 <= index < len(pairs):
                raise JournalError(f"{path}, line {reader.line_num}: pair {index} does not exist in this run's "
                                   f"{len(pairs)} pairs; delete it to start over")
            pair = pairs[index]
            if row[1] != str(pair.distorted) or row[2] != str(pair.reference):
                raise _mismatch(path, reader.line_num, index, pair, row[1], row[2])
            yield index, values, row[-1]


def _read_final_csv(path: Path, pairs: Sequence[ScorePair], metric_names: Sequence[str]) -> Iterator[tuple]:
    with _Text(path) as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if not {"distorted", "reference", "error", *metric_names} <= set(header):
            return  # another metric set (or not ours): everything is scored again
        for index, row in enumerate(reader):
            if index >= len(pairs):
                break
            pair = pairs[index]
            if row["distorted"] != str(pair.distorted) or row["reference"] != str(pair.reference):
                raise _mismatch(path, reader.line_num, index, pair, row["distorted"], row["reference"])
            try:
                values = [_parse(row[name] or "") for name in metric_names]
            except ValueError:
                continue
            yield index, values, row["error"] or ""


class _Text:
    """A text file opened for reading whose decoding errors name the file (``with`` and iteration, like a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open(newline="", encoding="utf-8")

    def __enter__(self) -> _Text:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __iter__(self) -> _Text:
        return self

    def __next__(self) -> str:
        try:
            return next(self._handle)
        except UnicodeDecodeError as error:
            raise JournalError(f"{self.path} is not a pe-iqa CSV or journal (not UTF-8 text: {error.reason} at byte "
                               f"{error.start}); delete it to start over") from None


def _trusted(source: Path, records: Mapping[str, Provenance], is_csv: bool) -> bool:
    """Whether ``source``'s sidecar says it was made like this run (``False``: not checkable, so not used).

    Raises:
        ProvenanceError: the sidecar names another configuration for one of this run's metrics.
    """
    found = read_sidecar(sidecar_path(source))
    if found is None:
        warnings.warn(f"{source} has no provenance file ({sidecar_path(source).name}): its scores cannot be "
                      f"checked and are computed again", ResumeWarning, stacklevel=4)
        return False
    saved, run = found
    if is_csv and run.get("csv_sha256") != file_sha256(source):
        warnings.warn(f"{source} changed since its provenance file was written: its scores are computed again",
                      ResumeWarning, stacklevel=4)
        return False
    unknown = combine_records(saved, records, str(source),
                              "resume with the same options, or delete it (and its .partial files) to start over")
    if unknown:
        warnings.warn(f"{unknown}: its scores cannot be checked and are computed again", ResumeWarning, stacklevel=4)
    return not unknown


def read_previous_scores(csv_path: Path, pairs: Sequence[ScorePair], metric_names: Sequence[str],
                         records: Mapping[str, Provenance] | None = None,
                         check_values: Sequence[Callable[[float], str]] | None = None) -> ScoreTable:
    """Scores of earlier runs of the same pairs: the previous final CSV and every journal (successes win).

    Args:
        csv_path: the run's CSV (its journals are found next to it).
        pairs: this run's pairs.
        metric_names: this run's metrics (output columns).
        records: this run's provenance per metric; a file whose sidecar differs is refused, a file without a
            sidecar ignored (its pairs are scored again). ``None``: no check (reading files of a known run).
        check_values: per metric, ``value -> error`` (``""``: valid); a row with an invalid value is not taken.

    Raises:
        JournalError: a file lists other pairs or (journals) other metrics, or is not text.
        ProvenanceError: a file was made under another configuration (the message names the difference).
    """
    table = ScoreTable(len(pairs), metric_names)
    checks = list(check_values) if check_values is not None else [_finite] * len(metric_names)
    sources = ([csv_path] if csv_path.is_file() else []) + existing_journals(csv_path)
    for source in sources:
        if records is not None and not _trusted(source, records, source == csv_path):
            continue
        rows = _read_final_csv if source == csv_path else _read_journal
        for index, values, error in rows(source, pairs, metric_names):
            if table.is_ok(index):
                continue
            if any(v is not None and check(v) for v, check in zip(values, checks, strict=True)):
                continue  # an impossible value (inf, nan, out of range): scored again
            table.record(index, values, error)
    return table


def _finite(value: float) -> str:
    return "" if math.isfinite(value) else f"non-finite value {value!r}"


def remove_journals(csv_path: Path) -> None:
    """Delete every journal of ``csv_path`` and their provenance files (after the final CSV was written)."""
    for stale in existing_journals(csv_path):
        stale.unlink(missing_ok=True)
        sidecar_path(stale).unlink(missing_ok=True)


def write_scores_csv(path: Path, pairs: Sequence[ScorePair], table: ScoreTable,
                     records: Mapping[str, Provenance] | None = None) -> None:
    """Write the final CSV in input order, atomically (see :func:`~pe_iqa.safe_files.atomic_write`), then its
    provenance sidecar (``records`` and the CSV's SHA-256) when ``records`` are given."""
    extras = extra_columns(pairs)
    with atomic_write(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(output_columns(extras, table.metric_names))
        for index, pair in enumerate(pairs):
            error = table.error_text(index)
            cells = [_format(v, p) for v, p in zip(table.values[index], table.present[index], strict=True)]
            writer.writerow([str(pair.distorted), str(pair.reference), *(pair.extra.get(c, "") for c in extras),
                             *cells, error])
    if records is not None:
        write_sidecar(path, records, csv_sha256=file_sha256(path))
