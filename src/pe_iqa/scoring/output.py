"""Scores of a run in memory (:class:`ScoreTable`), the streamed journal, resume, and the final CSV.

While a run with ``csv_path`` goes on, each process appends every finished pair to its own **journal** next to the
CSV (``scores.csv.partial``, or ``scores.csv.rank<R>.partial`` per torchrun process; a resumed run writes new
journals ``scores.csv[.rank<R>].<N>.partial`` beside the old ones), flushed after each batch and fsynced every few
seconds: an interrupted run loses at most the batch in flight. A journal row holds the pair's index, its files, the
files' size and modification time (``size:mtime_ns``, taken when they were read) and the scores; a journal is in
index order. The final ``scores.csv`` is written once, atomically, in input order, by merging the journals as
streams (:mod:`.resume`), and the journals are then removed. ``resume=True`` keeps the pairs of the previous final
CSV and of every journal that scored and whose files are unchanged, and scores the rest (failed pairs are retried)
— the final file equals an uninterrupted run's.

Names are written losslessly: a file name that is not valid UTF-8 (``d\\xff.png``) is written with its raw bytes
(``surrogateescape``) and read back to the same name.

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
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import IO

import numpy as np

from ..provenance import Provenance, combine_records, read_sidecar, sidecar_path
from ..safe_files import create_exclusive

__all__ = [
    "JOURNAL_SUFFIX",
    "JournalError",
    "ResumeWarning",
    "ScoreJournal",
    "ScoreTable",
    "existing_journals",
    "file_sha256",
    "journal_header",
    "journal_path",
    "next_segment",
    "output_columns",
    "remove_journals",
]

JOURNAL_SUFFIX = ".partial"
_FSYNC_EVERY_S = 5.0
#: How every result file is encoded: UTF-8, a name's undecodable bytes kept as they were (lossless round trip).
ENCODING: Mapping[str, str] = MappingProxyType({"encoding": "utf-8", "errors": "surrogateescape"})


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


def format_score(value: float | None, present: bool) -> str:
    """A score cell: ``repr`` (the shortest text that reads back to the same float), ``""`` when absent."""
    return repr(float(value)) if present else ""


def parse_score(text: str) -> float | None:
    """A score cell read back (``None`` for an empty cell; ``ValueError`` for text that is no number)."""
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


def journal_path(csv_path: Path, rank: int = 0, world_size: int = 1, segment: int = 0) -> Path:
    """This process's journal next to ``csv_path`` (``segment`` > 0: the journal of a resumed run)."""
    middle = ("" if world_size == 1 else f".rank{rank}") + (f".{segment}" if segment else "")
    return csv_path.with_name(csv_path.name + middle + JOURNAL_SUFFIX)


_JOURNAL_NAME = re.compile(r"(?:\.rank(\d+))?(?:\.(\d+))?" + re.escape(JOURNAL_SUFFIX))


def _journal_key(csv_path: Path, path: Path) -> tuple[int, int] | None:
    match = _JOURNAL_NAME.fullmatch(path.name[len(csv_path.name):])
    if not path.name.startswith(csv_path.name) or match is None:
        return None
    return int(match.group(2) or 0), int(match.group(1) or 0)


def existing_journals(csv_path: Path) -> list[Path]:
    """Every journal of ``csv_path`` on disk (from single-process or torchrun runs of any size), oldest run first."""
    found = []
    for name in glob.glob(glob.escape(str(csv_path)) + "*" + JOURNAL_SUFFIX):
        key = _journal_key(csv_path, Path(name))
        if key is not None and Path(name).is_file():
            found.append((key, Path(name)))
    return [path for _, path in sorted(found)]


def next_segment(csv_path: Path) -> int:
    """The journal segment number of a run starting now (one more than any journal's on disk; 0 if none)."""
    keys = [_journal_key(csv_path, path) for path in existing_journals(csv_path)]
    return 1 + max(key[0] for key in keys if key) if keys else 0


def journal_header(metric_names: Sequence[str]) -> list[str]:
    """A journal's header: ``index, distorted, reference, distorted_stamp, reference_stamp, <metrics>, error``."""
    return ["index", "distorted", "reference", "distorted_stamp", "reference_stamp", *metric_names, "error"]


class ScoreJournal:
    """Append-only CSV of finished pairs (see :func:`journal_header`), created anew, flushed per write.

    Created exclusively without following links (:func:`~pe_iqa.safe_files.create_exclusive`): a stale file or a
    planted link at ``path`` is removed first, never followed.
    """

    def __init__(self, path: Path, metric_names: Sequence[str]) -> None:
        self.path = path
        self.metric_names = list(metric_names)
        if path.is_symlink() or path.is_file():
            path.unlink()
        self._handle: IO[str] = create_exclusive(path, **ENCODING)
        self._writer = csv.writer(self._handle)
        self._writer.writerow(journal_header(self.metric_names))
        self.rows = 0
        self._synced = time.monotonic()
        self.flush(sync=True)

    def write(self, rows: Sequence[tuple[int, str, str, tuple[str, str], Sequence[float | None], str]]) -> None:
        """Append finished pairs ``(index, distorted, reference, stamps, values, error)`` and flush them to the
        operating system (fsync every few seconds)."""
        for index, distorted, reference, stamps, values, error in rows:
            cells = [format_score(v, v is not None) for v in values]
            self._writer.writerow([index, distorted, reference, *stamps, *cells, error])
        self.rows += len(rows)
        self.flush(sync=time.monotonic() - self._synced > _FSYNC_EVERY_S)

    def flush(self, sync: bool = False) -> None:
        """Hand written rows to the operating system; ``sync``: to the disk too."""
        self._handle.flush()
        if sync:
            os.fsync(self._handle.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        """Flush, fsync and close."""
        if not self._handle.closed:
            self.flush(sync=True)
            self._handle.close()


def _trusted(source: Path, records: Mapping[str, Provenance], is_csv: bool) -> bool:
    """Whether ``source``'s sidecar says it was made like this run (``False``: not checkable, so not used).

    Raises:
        ProvenanceError: the sidecar names another configuration for one of this run's metrics.
    """
    found = read_sidecar(sidecar_path(source))
    if found is None:
        warnings.warn(f"{source} has no provenance file ({sidecar_path(source).name}): its scores cannot be "
                      f"checked and are computed again", ResumeWarning, stacklevel=5)
        return False
    saved, run = found
    if is_csv and run.get("csv_sha256") != file_sha256(source):
        warnings.warn(f"{source} changed since its provenance file was written: its scores are computed again",
                      ResumeWarning, stacklevel=5)
        return False
    unknown = combine_records(saved, records, str(source),
                              "resume with the same options, or delete it (and its .partial files) to start over")
    if unknown:
        warnings.warn(f"{unknown}: its scores cannot be checked and are computed again", ResumeWarning, stacklevel=5)
    return not unknown


def finite_check(value: float) -> str:
    """``""`` for a finite value, else why not (the default value check of resumed rows)."""
    return "" if math.isfinite(value) else f"non-finite value {value!r}"


def remove_journals(csv_path: Path) -> None:
    """Delete every journal of ``csv_path`` and their provenance files (after the final CSV was written)."""
    for stale in existing_journals(csv_path):
        stale.unlink(missing_ok=True)
        sidecar_path(stale).unlink(missing_ok=True)
