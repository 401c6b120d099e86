"""What to score: :class:`ScorePair` and the three ways to list pairs (manifest, pyiqa meta-info file, paths).

A **pairs manifest** is a CSV file with a header holding ``distorted`` and ``reference`` columns; paths are
relative to the manifest's folder unless absolute, and every other column (``mos``, ``dataset`` …) is carried
through to the output rows::

    distorted,reference,mos
    jpeg/img1.bmp,refimgs/bikes.bmp,41.2

A **pyiqa meta-info file** (``meta_info_*.csv`` of pyiqa's full-reference datasets) has ``ref_name`` and
``dist_name`` columns relative to a dataset root (pyiqa's ``dataroot_target``), usually a ``mos`` column too.
:func:`read_pairs_manifest` tells the two apart by their header.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..image_io import pair_images

__all__ = ["RESERVED_COLUMNS", "ListSource", "ManifestSource", "PairSource", "ScorePair", "open_pairs_manifest",
           "pairs_from_paths", "read_pairs_manifest"]

#: Output columns a manifest's extra columns may not use (the metric names are checked when scoring).
RESERVED_COLUMNS = ("distorted", "reference", "error")
_PYIQA_COLUMNS = ("dist_name", "ref_name")


@dataclass(frozen=True)
class ScorePair:
    """One distorted image and its reference, plus values carried through to the output row.

    Example:
        >>> pair = ScorePair("out/a.png", "ref/a.png", {"mos": "3.1"})
        >>> pair.distorted.name, dict(pair.extra)
        ('a.png', {'mos': '3.1'})
    """

    distorted: Path
    reference: Path
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "distorted", Path(self.distorted))
        object.__setattr__(self, "reference", Path(self.reference))
        extra = {str(k): "" if v is None else str(v) for k, v in dict(self.extra).items()}
        clash = sorted(set(extra) & set(RESERVED_COLUMNS))
        if clash:
            raise ValueError(f"extra columns may not be named {clash} (output columns of their own)")
        object.__setattr__(self, "extra", MappingProxyType(extra))

    def __hash__(self) -> int:
        return hash((self.distorted, self.reference, tuple(self.extra.items())))


def _resolve(root: str, text: str, what: str, line: int, manifest: Path) -> str:
    """``str(root / text)`` (``text`` if absolute) — what :class:`~pathlib.Path` makes of it, without building one
    for the common case of a plain relative name."""
    if not text.strip():  # the path itself is taken as written: " lead.png" is a file name
        raise ValueError(f"{manifest}, line {line}: empty {what} path")
    if text.startswith("/") or "//" in text or "/./" in text or text.startswith("./") or text.endswith(("/", "/.")) \
            or text == "." or root in ("", "."):
        path = Path(text)
        return str(path if path.is_absolute() else Path(root) / path)
    return (root if root.endswith("/") else root + "/") + text


def _header(first: list[str] | None, manifest: Path) -> tuple[str, str, bool, list[str], list[str]]:
    """``(distorted key, reference key, keep path columns, header, extra columns)`` of a manifest's first row."""
    header = [name.strip() for name in (first or [])]
    if {"distorted", "reference"} <= set(header):
        dist_key, ref_key, keep_paths = "distorted", "reference", False
    elif set(_PYIQA_COLUMNS) <= set(header):
        dist_key, ref_key, keep_paths = "dist_name", "ref_name", True
    else:
        raise ValueError(
            f"{manifest}: the header must hold 'distorted' and 'reference' columns (a pairs manifest) or "
            f"'ref_name' and 'dist_name' (a pyiqa meta-info file); got {header}"
        )
    named = [c for c in header if c]
    if len(set(named)) != len(named):
        raise ValueError(f"{manifest}: duplicate column names in the header {header}")
    # unnamed columns (a trailing comma in the header) are not output columns; they must stay empty
    extras = [c for c in named if keep_paths or c not in (dist_key, ref_key)]
    clash = sorted(set(extras) & set(RESERVED_COLUMNS))
    if clash:
        raise ValueError(f"{manifest}: columns {clash} are output columns of their own; rename them")
    return dist_key, ref_key, keep_paths, header, extras


#: ``(line, distorted, reference, extra values)`` of one manifest row.
Cells = tuple[int, str, str, tuple[str, ...]]


def _manifest_rows(manifest: Path, base: Path) -> Iterator[Cells]:
    """The cells of every non-blank row, checked as read; the first item is ``(0, "", "", extras)`` (the header)."""
    root = str(base)
    with _ManifestText(manifest) as handle:
        reader = csv.reader(handle)
        try:
            dist_key, ref_key, _, header, extras = _header(next(reader, None), manifest)
            yield 0, "", "", tuple(extras)
            width, unnamed = len(header), [k for k, name in enumerate(header) if not name]
            where = [header.index(name) for name in (dist_key, ref_key, *extras)]
            for row in reader:
                line = reader.line_num
                if len(row) > width:
                    raise ValueError(f"{manifest}, line {line}: more cells than header columns")
                if not any(value.strip() for value in row):
                    continue  # blank line
                if any(k < len(row) and row[k].strip() for k in unnamed):
                    raise ValueError(f"{manifest}, line {line}: a value under a column without a name in the "
                                     f"header (name the column, or remove the trailing comma)")
                cells = [row[k] if k < len(row) else "" for k in where]
                yield (line, _resolve(root, cells[0], dist_key, line, manifest),
                       _resolve(root, cells[1], ref_key, line, manifest), tuple(cells[2:]))
        except csv.Error as error:
            place = f"line {max(1, reader.line_num)}"
            reason = (f"a cell longer than {csv.field_size_limit()} characters (is it a CSV file?)"
                      if "field limit" in str(error) else str(error))
            raise ValueError(f"{manifest}, {place}: not a readable CSV row: {reason}") from None


class _ManifestText:
    """A manifest read as UTF-8 text line by line (a byte-order mark accepted); a line that is not UTF-8 is refused
    with one message naming the file and the line (``with`` and iteration, like a text file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("rb")
        self._lines = 0

    def __enter__(self) -> _ManifestText:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __iter__(self) -> _ManifestText:
        return self

    def __next__(self) -> str:
        raw = next(self._handle)
        self._lines += 1
        try:
            return raw.decode("utf-8-sig" if self._lines == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{self.path}, line {self._lines}: not UTF-8 text (byte {raw[error.start]:#04x}); is it "
                             f"a CSV file? Save it as UTF-8 CSV") from None


class PairSource:
    """Pairs that can be read again and again, in order, without holding them all: a manifest read as a stream,
    or a list. Rows are counted (and every row checked) once, when the source is made.

    Attributes:
        extras: the extra column names, in output order.
        protect: files the run reads besides the images (the manifest).
    """

    extras: list[str]
    protect: list[Path]

    def __len__(self) -> int:
        raise NotImplementedError

    def cells(self, start: int = 0, stop: int | None = None) -> Iterator[Cells]:
        """``(index, distorted, reference, extra values)`` for ``start <= index < stop``, in order: the paths as
        ``str(pair.distorted)``, the values in :attr:`extras` order (``""`` where a pair has none)."""
        raise NotImplementedError

    def iterate(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, ScorePair]]:
        """``(index, pair)`` for ``start <= index < stop``, in order."""
        for index, distorted, reference, values in self.cells(start, stop):
            yield index, ScorePair(distorted, reference, dict(zip(self.extras, values, strict=True)))


class ListSource(PairSource):
    """A :class:`PairSource` over pairs already in memory."""

    def __init__(self, pairs: Sequence[ScorePair]) -> None:
        self.pairs = list(pairs)
        self.extras = extra_columns(self.pairs)
        self.protect = []

    def __len__(self) -> int:
        return len(self.pairs)

    def iterate(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, ScorePair]]:
        stop = len(self.pairs) if stop is None else min(stop, len(self.pairs))
        for index in range(start, stop):
            yield index, self.pairs[index]

    def cells(self, start: int = 0, stop: int | None = None) -> Iterator[Cells]:
        for index, pair in self.iterate(start, stop):
            yield index, str(pair.distorted), str(pair.reference), tuple(pair.extra.get(c, "") for c in self.extras)


class ManifestSource(PairSource):
    """A :class:`PairSource` reading a manifest (see :func:`read_pairs_manifest`) as a stream: memory does not grow
    with the number of rows. Made by :func:`open_pairs_manifest`."""

    def __init__(self, path: Path, base: Path) -> None:
        self.path, self.base = path, base
        self.protect = [path]
        rows = _manifest_rows(path, base)
        self.extras = list(next(rows)[3])
        self._count = sum(1 for _ in rows)
        if not self._count:
            raise ValueError(f"{path} lists no pairs")

    def __len__(self) -> int:
        return self._count

    def cells(self, start: int = 0, stop: int | None = None) -> Iterator[Cells]:
        stop = self._count if stop is None else stop
        rows = _manifest_rows(self.path, self.base)
        next(rows)
        for index, (_, distorted, reference, values) in enumerate(rows):
            if index >= stop:
                return
            if index >= start:
                yield index, distorted, reference, values


def open_pairs_manifest(path: str | Path, root: str | Path | None = None) -> ManifestSource:
    """A manifest as a :class:`PairSource`: every row checked now (errors name the line), rows read again as a
    stream when scored. Same arguments and errors as :func:`read_pairs_manifest`."""
    manifest = Path(path)
    if not manifest.is_file():
        raise FileNotFoundError(f"no such pairs manifest: {manifest}")
    return ManifestSource(manifest, Path(root) if root is not None else manifest.parent)


def read_pairs_manifest(path: str | Path, root: str | Path | None = None) -> list[ScorePair]:
    """Read a pairs manifest (``distorted,reference[,...]``) or a pyiqa meta-info file (``ref_name,dist_name,...``).

    Args:
        path: the CSV file (UTF-8, with a header; a byte-order mark is accepted).
        root: the folder relative paths start from (default: the file's folder). pyiqa meta-info files name
            paths relative to the dataset root, so pass it for them.

    Returns:
        The pairs in file order; every column other than the two path columns is kept in ``extra`` (for pyiqa
        files ``ref_name`` and ``dist_name`` too, as join keys). For millions of rows use
        :func:`open_pairs_manifest` (a stream).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not UTF-8 CSV text, no recognised header, an empty path, a row with too many cells, a reserved
            column name, or no pairs at all (the message names the file and the line).

    Example:
        >>> import tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> with open(os.path.join(folder, "m.csv"), "w") as f:
        ...     _ = f.write("distorted,reference,mos\\nd/1.png,r/1.png,4.5\\n")
        >>> [(p.distorted.name, p.extra["mos"]) for p in read_pairs_manifest(os.path.join(folder, "m.csv"))]
        [('1.png', '4.5')]
    """
    return [pair for _, pair in open_pairs_manifest(path, root).iterate()]


def pairs_from_paths(distorted: str | Path, reference: str | Path) -> list[ScorePair]:
    """Pairs from two image files or two folders (paired by sorted name, warning when names differ).

    See :func:`pe_iqa.image_io.pair_images`.
    """
    return [ScorePair(d, r) for d, r in pair_images(distorted, reference)]


def extra_columns(pairs: Sequence[ScorePair]) -> list[str]:
    """The extra column names of ``pairs`` in first-appearance order."""
    seen: dict[str, None] = {}
    for pair in pairs:
        for name in pair.extra:
            seen.setdefault(name, None)
    return list(seen)
