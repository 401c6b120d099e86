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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..image_io import pair_images

__all__ = ["RESERVED_COLUMNS", "ScorePair", "pairs_from_paths", "read_pairs_manifest"]

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


def _resolve(root: Path, text: str, what: str, line: int, manifest: Path) -> Path:
    if not text.strip():  # the path itself is taken as written: " lead.png" is a file name
        raise ValueError(f"{manifest}, line {line}: empty {what} path")
    path = Path(text)
    return path if path.is_absolute() else root / path


def read_pairs_manifest(path: str | Path, root: str | Path | None = None) -> list[ScorePair]:
    """Read a pairs manifest (``distorted,reference[,...]``) or a pyiqa meta-info file (``ref_name,dist_name,...``).

    Args:
        path: the CSV file (UTF-8, with a header; a byte-order mark is accepted).
        root: the folder relative paths start from (default: the file's folder). pyiqa meta-info files name
            paths relative to the dataset root, so pass it for them.

    Returns:
        The pairs in file order; every column other than the two path columns is kept in ``extra`` (for pyiqa
        files ``ref_name`` and ``dist_name`` too, as join keys).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: no recognised header, an empty path, a row with too many cells, a reserved column name, or
            no pairs at all.

    Example:
        >>> import tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> with open(os.path.join(folder, "m.csv"), "w") as f:
        ...     _ = f.write("distorted,reference,mos\\nd/1.png,r/1.png,4.5\\n")
        >>> [(p.distorted.name, p.extra["mos"]) for p in read_pairs_manifest(os.path.join(folder, "m.csv"))]
        [('1.png', '4.5')]
    """
    manifest = Path(path)
    if not manifest.is_file():
        raise FileNotFoundError(f"no such pairs manifest: {manifest}")
    base = Path(root) if root is not None else manifest.parent
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in (reader.fieldnames or [])]
        reader.fieldnames = header
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
        pairs = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise ValueError(f"{manifest}, line {line}: more cells than header columns")
            if not any((value or "").strip() for value in row.values()):
                continue  # blank line
            if "" in header and (row.get("") or "").strip():
                raise ValueError(f"{manifest}, line {line}: a value under a column without a name in the header "
                                 f"(name the column, or remove the trailing comma)")
            pairs.append(ScorePair(
                _resolve(base, row[dist_key] or "", dist_key, line, manifest),
                _resolve(base, row[ref_key] or "", ref_key, line, manifest),
                {c: (row[c] or "") for c in extras},
            ))
    if not pairs:
        raise ValueError(f"{manifest} lists no pairs")
    return pairs


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
