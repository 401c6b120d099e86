"""Resume and the final CSV at scale: earlier results read as streams, a compact record of done pairs, one merge.

* :func:`previous_sources` lists the files an interrupted or finished run left (the final CSV, then every
  journal, oldest run first) whose provenance matches this run.
* :func:`find_done` reads them as streams, beside the pairs of one shard, and returns one byte per pair of the
  shard: ``0`` to score, ``k`` if source ``k`` holds a valid score of it from the same files (a journal row's
  ``size:mtime_ns`` stamps equal the files' now; a final CSV's rows are checked by blocks of :data:`BLOCK` rows
  against the digests of their stamps kept in its provenance file). Neither the rows nor the images are held or
  read again: memory is one byte per pair of the shard, time one ``stat`` per file.
* :func:`write_final_csv` merges, in input order, the pairs, the chosen earlier rows and this run's journals (each in
  index order) into the final CSV and computes the run's :class:`RunSummary` as it goes.
"""

from __future__ import annotations

import csv
import hashlib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..provenance import Provenance, read_sidecar, sidecar_path, write_sidecar
from ..safe_files import atomic_write
from .output import (
    ENCODING,
    JournalError,
    ResumeWarning,
    _trusted,
    existing_journals,
    file_sha256,
    format_score,
    journal_header,
    output_columns,
    parse_score,
)
from .pairs import Cells, PairSource
from .pipeline import image_stamp

__all__ = ["BLOCK", "RunSummary", "find_done", "previous_sources", "read_final_rows", "write_final_csv"]

#: Rows of a final CSV per digest of image stamps (a changed image re-scores at most this many pairs).
BLOCK = 1024
_MAX_SOURCES = 255  # source numbers fit one byte
_SHOWN = 10

#: ``(index, distorted, reference, stamps or None, values, error)``
Record = tuple[int, str, str, "tuple[str, str] | None", list, str]


class _ExactSum:
    """A float sum without rounding error until read (Shewchuk's partials, as :func:`math.fsum`), built one value
    at a time: a mean that does not depend on the order or the number of processes."""

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        kept = 0
        for y in self.partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                self.partials[kept] = low
                kept += 1
            x = high
        self.partials[kept:] = [x]

    def value(self) -> float:
        return math.fsum(self.partials)


@dataclass
class RunSummary:
    """Counts, the first failures and exact means of a run, computed row by row (memory independent of its size).

    ``failures`` holds the first :data:`_SHOWN` failed pairs as ``(index, distorted, reference, message)``.
    """

    metric_names: list[str]
    n_pairs: int = 0
    n_ok: int = 0
    failures: list[tuple[int, str, str, str]] = field(default_factory=list)
    n_failed: int = 0
    sums: list[_ExactSum] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sums = self.sums or [_ExactSum() for _ in self.metric_names]

    def add(self, index: int, distorted: str, reference: str, values: Sequence[float | None], error: str) -> None:
        """Count one finished row (ok: every metric scored and no error)."""
        self.n_pairs += 1
        if not error and all(v is not None for v in values):
            self.n_ok += 1
            for total, value in zip(self.sums, values, strict=True):
                total.add(float(value))
            return
        self.n_failed += 1
        if len(self.failures) < _SHOWN:
            self.failures.append((index, distorted, reference, error or "not scored"))

    def means(self) -> dict[str, float]:
        """Mean of each metric over the pairs every metric scored (exactly rounded)."""
        return {name: total.value() / self.n_ok if self.n_ok else math.nan
                for name, total in zip(self.metric_names, self.sums, strict=True)}

    @classmethod
    def combine(cls, parts: Sequence[RunSummary]) -> RunSummary:
        """The summary of consecutive shards (in order)."""
        whole = cls(list(parts[0].metric_names))
        for part in parts:
            whole.n_pairs += part.n_pairs
            whole.n_ok += part.n_ok
            whole.n_failed += part.n_failed
            whole.failures += part.failures[:max(0, _SHOWN - len(whole.failures))]
            for total, other in zip(whole.sums, part.sums, strict=True):
                total.partials += other.partials  # fsum of all partials is exact
        return whole


def _not_ours(path: Path) -> JournalError:
    return JournalError(f"{path} is not a pe-iqa CSV or journal; delete it to start over")


def _journal_kind(path: Path, header: list[str] | None, metric_names: Sequence[str]) -> bool:
    """Whether a journal's ``header`` is this run's (``False``: an older pe-iqa's, whose pairs are scored again).

    Raises:
        JournalError: the file is not a pe-iqa journal, or it was written for another set of metrics.
    """
    if header is None or header == journal_header(metric_names):
        return True
    if header[:1] != ["index"] or "\0" in "".join(header):
        raise _not_ours(path)
    if header[3:5] != ["distorted_stamp", "reference_stamp"]:
        warnings.warn(f"{path} was written by an older pe-iqa and does not say which image files its "
                      f"scores come from: its pairs are scored again", ResumeWarning, stacklevel=5)
        return False
    raise JournalError(f"{path} was written for metrics {header[5:-1]}, not {list(metric_names)}; "
                       f"resume with the same metrics, or delete it to start over")


def _journal_header_of(path: Path) -> list[str] | None:
    with path.open(newline="", **ENCODING) as handle:
        try:
            return next(csv.reader(handle), None)
        except csv.Error:
            raise _not_ours(path) from None


def _journal_rows(path: Path, metric_names: Sequence[str], n_pairs: int) -> Iterator[Record]:
    with path.open(newline="", **ENCODING) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or not _journal_kind(path, header, metric_names):
                return
            width = len(header)
            for row in reader:
                if len(row) != width:
                    continue  # a torn last line
                try:
                    index = int(row[0])
                    values = [parse_score(cell) for cell in row[5:-1]]
                except ValueError:
                    continue
                if not 0 <= index < n_pairs:
                    raise JournalError(f"{path}, line {reader.line_num}: pair {index} does not exist in this run's "
                                       f"{n_pairs} pairs; delete it to start over")
                yield index, row[1], row[2], (row[3], row[4]), values, row[-1]
        except csv.Error:
            raise _not_ours(path) from None


def read_final_rows(path: Path, metric_names: Sequence[str]) -> Iterator[Record]:
    """The rows of a final CSV (index = row number; no stamps); nothing if its header lacks a column of this run."""
    with path.open(newline="", **ENCODING) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None) or []
            if not {"distorted", "reference", "error", *metric_names} <= set(header):
                return  # another metric set (or not ours): everything is scored again
            where = [header.index(name) for name in ("distorted", "reference", *metric_names, "error")]
            for index, row in enumerate(reader):
                if len(row) != len(header):
                    continue
                cells = [row[k] for k in where]
                try:
                    values = [parse_score(cell) for cell in cells[2:-1]]
                except ValueError:
                    continue
                yield index, cells[0], cells[1], None, values, cells[-1]
        except csv.Error:
            raise _not_ours(path) from None


def previous_sources(csv_path: Path, records: Mapping[str, Provenance], metric_names: Sequence[str]) -> list[Path]:
    """The earlier results of ``csv_path`` this run may take pairs from (final CSV first, then every journal).

    A journal written for another set of metrics is refused (``JournalError``) before its record is looked at: the
    metric set is part of the command line, so another one is a usage error, not an unknown record to re-score.
    """
    journals = [journal for journal in existing_journals(csv_path)
                if _journal_kind(journal, _journal_header_of(journal), metric_names)]
    candidates = ([csv_path] if csv_path.is_file() else []) + journals
    return [path for path in candidates if _trusted(path, records, path == csv_path)]


class _PairCursor:
    """The cells of the pairs of ``source`` in ``[lo, hi)`` by index, read forward as a stream (read again from
    ``lo`` when asked for an earlier index)."""

    def __init__(self, source: PairSource, lo: int, hi: int) -> None:
        self.source, self.lo, self.hi = source, lo, hi
        self._restart()

    def _restart(self) -> None:
        self._rows = self.source.cells(self.lo, self.hi)
        self.current: Cells = (self.lo - 1, "", "", ())

    def get(self, index: int) -> Cells:
        if index < self.current[0]:
            self._restart()
        while self.current[0] < index:
            self.current = next(self._rows)
        return self.current


class _Stamps:
    """:func:`image_stamp` of recently seen files (a reference shared by adjacent pairs is read once)."""

    def __init__(self, size: int = 4096) -> None:
        self._seen: dict[str, str] = {}
        self._size = size

    def __call__(self, path: str) -> str:
        stamp = self._seen.get(path)
        if stamp is None:
            if len(self._seen) >= self._size:
                self._seen.clear()
            stamp = self._seen[path] = image_stamp(path)
        return stamp


def _block_digest() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=8)


def _check_same(source: Path, index: int, cells: Cells, dist: str, ref: str) -> None:
    if dist != cells[1] or ref != cells[2]:
        raise JournalError(
            f"{source}: pair {index} is {dist} | {ref} there but {cells[1]} | {cells[2]} in this run's input; it "
            f"belongs to another run: delete it (and its .partial files) to start over")


def _valid(values: Sequence[float | None], error: str, checks: Sequence[Callable[[float], str]]) -> bool:
    return not error and all(v is not None and not check(v) for v, check in zip(values, checks, strict=True))


def find_done(sources: Sequence[Path], csv_path: Path, pairs: PairSource, start: int, stop: int,
              metric_names: Sequence[str], checks: Sequence[Callable[[float], str]]) -> np.ndarray:
    """One byte per pair of the shard ``[start, stop)``: ``k`` > 0 if ``sources[k - 1]`` holds its valid score from
    unchanged files, ``0`` if it is to be scored (see the module docstring).

    Raises:
        JournalError: a source lists other pairs or (journals) other metrics, or is not a pe-iqa file.
    """
    done = np.zeros(stop - start, dtype=np.uint8)
    stamp = _Stamps()
    for number, path in enumerate(sources[:_MAX_SOURCES], start=1):
        if path == csv_path:
            _done_from_csv(path, number, done, stamp, pairs, start, stop, metric_names, checks)
            continue
        cursor = _PairCursor(pairs, start, stop)
        for index, dist, ref, stamps, values, error in _journal_rows(path, metric_names, len(pairs)):
            if not start <= index < stop or done[index - start]:
                continue
            _check_same(path, index, cursor.get(index), dist, ref)
            if (_valid(values, error, checks) and stamps[0] and stamps[1]
                    and stamps == (stamp(dist), stamp(ref))):
                done[index - start] = number
    return done


def _saved_digests(path: Path) -> tuple[int, list[str]] | None:
    found = read_sidecar(sidecar_path(path))
    text = found[1].get("image_stamps", "") if found else ""
    block, _, digests = text.partition(":")
    if not block.isdigit() or int(block) <= 0:
        warnings.warn(f"{path} was written by an older pe-iqa and does not say which image files its scores come "
                      f"from: its pairs are scored again", ResumeWarning, stacklevel=4)
        return None
    return int(block), digests.split(",")


def _done_from_csv(path: Path, number: int, done: np.ndarray, stamp: _Stamps, pairs: PairSource, start: int,
                   stop: int, metric_names: Sequence[str], checks: Sequence[Callable[[float], str]]) -> None:
    saved = _saved_digests(path)
    if saved is None or stop <= start:
        return
    block, digests = saved
    lo, hi = start // block * block, min(len(pairs), -(-stop // block) * block)
    cursor = _PairCursor(pairs, lo, hi)
    digest, pending = _block_digest(), []

    def close(index: int) -> None:
        if index // block < len(digests) and digest.hexdigest() == digests[index // block]:
            for k in pending:
                if not done[k - start]:
                    done[k - start] = number

    last = lo - 1
    for index, dist, ref, _, values, error in read_final_rows(path, metric_names):
        if index < lo:
            continue
        if index >= hi or index >= len(pairs):
            break
        _check_same(path, index, cursor.get(index), dist, ref)
        digest.update(f"{stamp(dist)}/{stamp(ref)}\n".encode("utf-8", "surrogateescape"))
        if start <= index < stop and _valid(values, error, checks):
            pending.append(index)
        last = index
        if index % block == block - 1:
            close(index)
            digest, pending = _block_digest(), []
    if pending:
        close(last)


class _RecordCursor:
    """Rows of one result file by index, read forward as a stream (read again when asked for an earlier index)."""

    def __init__(self, path: Path, is_csv: bool, metric_names: Sequence[str], n_pairs: int) -> None:
        self._open = (lambda: read_final_rows(path, metric_names)) if is_csv else (
            lambda: _journal_rows(path, metric_names, n_pairs))
        self._rows, self._current = self._open(), None

    def get(self, index: int) -> Record | None:
        if self._current is not None and self._current[0] > index:
            self._rows, self._current = self._open(), None
        while self._current is None or self._current[0] < index:
            self._current = next(self._rows, None)
            if self._current is None:
                self._rows = iter(())
                return None
        return self._current if self._current[0] == index else None


def write_final_csv(csv_path: Path, pairs: PairSource, metric_names: Sequence[str], choice: np.ndarray,
                    sources: Sequence[Path], journals: Sequence[tuple[Path, int, int]],
                    records: Mapping[str, Provenance] | None) -> RunSummary:
    """Write the final CSV in input order (atomically), then its provenance file, from streams.

    Args:
        csv_path: the final CSV.
        pairs: the run's pairs.
        metric_names: the metric columns.
        choice: one byte per pair (:func:`find_done` of every shard): ``k`` > 0 takes the row of ``sources[k-1]``,
            ``0`` the row of this run's journal covering it.
        sources: the earlier results ``choice`` refers to.
        journals: this run's journals as ``(path, start, stop)`` (the shard each covers).
        records: provenance per metric for the sidecar (with the CSV's SHA-256 and the image-stamp digests).

    Returns:
        The run's :class:`RunSummary` over every row of the final CSV.
    """
    n = len(pairs)
    earlier = [_RecordCursor(p, p == csv_path, metric_names, n) for p in sources]
    own = [(_RecordCursor(p, False, metric_names, n), lo, hi) for p, lo, hi in journals]
    summary, stamp = RunSummary(list(metric_names)), _Stamps()
    digests, digest = [], _block_digest()
    with atomic_write(csv_path, **ENCODING) as handle:
        writer = csv.writer(handle)
        writer.writerow(output_columns(pairs.extras, metric_names))
        for index, dist, ref, extra in pairs.cells():
            number = int(choice[index])
            if number:
                found = earlier[number - 1].get(index)
            else:
                found = next((cursor.get(index) for cursor, lo, hi in own if lo <= index < hi), None)
            if found is None:
                values, error, stamps = [None] * len(metric_names), "not scored", None
            else:
                _, _, _, stamps, values, error = found
            stamps = stamps or (stamp(dist), stamp(ref))
            digest.update(f"{stamps[0]}/{stamps[1]}\n".encode("utf-8", "surrogateescape"))
            if index % BLOCK == BLOCK - 1 or index == n - 1:
                digests.append(digest.hexdigest())
                digest = _block_digest()
            writer.writerow([dist, ref, *extra,
                             *(format_score(v, v is not None) for v in values), error])
            summary.add(index, dist, ref, values, error)
    if records is not None:
        write_sidecar(csv_path, records, csv_sha256=file_sha256(csv_path),
                      image_stamps=f"{BLOCK}:{','.join(digests)}")
    return summary
