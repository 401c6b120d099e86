"""LIVE Image Quality Assessment Database, Release 2: the index of its labelled pairs.

Two on-disk forms are supported.

* **Official release** (``layout="official"``)::

      <root>/databaserelease2/refimgs/<name>.bmp
      <root>/databaserelease2/{jp2k,jpeg,wn,gblur,fastfading}/imgN.bmp
      <root>/labels/live_dmos.csv      # ref_name,dist_name,dist_type,dmos,dmos_realigned

* **pyiqa** (``layout="pyiqa"``): images directly under ``<root>`` (pyiqa's ``datasets/LIVEIQA_release2``) and
  pyiqa's meta-info CSV ``meta_info_LIVEIQADataset.csv`` with columns ``ref_name,dist_name,mos`` (pyiqa's
  ``mos`` *is* LIVE's DMOS). Older pyiqa meta files without the ``refimgs/`` prefix or the ``.bmp`` suffix are
  accepted too.

Labels are DMOS: **higher = worse** quality (``HIGHER_IS_BETTER_LABEL = False``). Copies of the database are
often partial; :func:`load_live_index` keeps every labelled row, splits them into rows whose distorted *and*
reference images were found and rows with a missing image, and reports the counts. Only found rows are scored.

Images differ in size (768×512, 480×720, ...). The index is what the runners score: ``run_fr`` through the
scoring engine of ``pe-iqa score`` (same-size batches), ``run_live`` and the selection study through
:mod:`benchmarks.channel_sets`.

References:
    H. R. Sheikh, Z. Wang, L. Cormack, A. C. Bovik. "LIVE Image Quality Assessment Database Release 2", 2005.
    https://live.ece.utexas.edu/research/quality/subjective.htm

    H. R. Sheikh, M. F. Sabir, A. C. Bovik. "A Statistical Evaluation of Recent Full Reference Image Quality
    Assessment Algorithms". IEEE TIP 15(11), 2006.

    pyiqa (C. Chen, J. Mo), ``GeneralFRDataset`` and ``meta_info_LIVEIQADataset.csv``,
    https://github.com/chaofengc/IQA-PyTorch
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeVar

__all__ = [
    "DEFAULT_ROOT",
    "HIGHER_IS_BETTER_LABEL",
    "LIVE_DISTORTION_TYPES",
    "IndexCounts",
    "LiveIndex",
    "LiveRecord",
    "first_per_reference",
    "load_live_index",
    "parse_label",
    "select_quick_records",
    "split_found",
]

LIVE_DISTORTION_TYPES: tuple[str, ...] = ("jp2k", "jpeg", "wn", "gblur", "fastfading")
HIGHER_IS_BETTER_LABEL = False
"""LIVE DMOS (and pyiqa's ``mos`` column for LIVE) is lower-is-better."""

_OFFICIAL_SUBDIR = "databaserelease2"
_DEFAULT_LABELS = (
    "labels/live_dmos.csv",
    "meta_info_LIVEIQADataset.csv",
    "../meta_info/meta_info_LIVEIQADataset.csv",
)
_LABEL_COLUMNS = ("dmos", "mos")


class IndexCounts:
    """``found`` / ``missing`` / ``total`` of an index holding ``records`` and ``missing_records``."""

    records: tuple
    missing_records: tuple

    @property
    def found(self) -> int:
        """Labelled rows whose images were found."""
        return len(self.records)

    @property
    def missing(self) -> int:
        """Labelled rows with a missing distorted or reference image."""
        return len(self.missing_records)

    @property
    def total(self) -> int:
        """Labelled rows read."""
        return self.found + self.missing


class _HasPaths(Protocol):
    dist_path: Path
    ref_path: Path


_PairRecord = TypeVar("_PairRecord", bound=_HasPaths)


class _HasGroups(Protocol):
    ref_name: str
    dist_type: str


_GroupedRecord = TypeVar("_GroupedRecord", bound=_HasGroups)

LayoutName = Literal["auto", "official", "pyiqa"]

#: Where the benchmarks look for LIVE by default: ``$PE_IQA_LIVE_ROOT``, else ``../shared/data/LIVE`` beside the
#: checkout (this repository's development setup).
DEFAULT_ROOT = Path(os.environ.get("PE_IQA_LIVE_ROOT",
                                  Path(__file__).resolve().parents[3] / "shared" / "data" / "LIVE"))


@dataclass(frozen=True)
class LiveRecord:
    """One labelled distorted image of LIVE.

    Attributes:
        dist_path: Path of the distorted image.
        ref_path: Path of its reference image.
        dmos: Subjective score from the chosen label column (DMOS: higher = worse).
        dist_type: Distortion folder, one of :data:`LIVE_DISTORTION_TYPES`.
        ref_name: Reference image name without folder or extension, e.g. ``"parrots"``.
        dist_name: Distorted image name relative to the image root, e.g. ``"jpeg/img3.bmp"``.
    """

    dist_path: Path
    ref_path: Path
    dmos: float
    dist_type: str
    ref_name: str
    dist_name: str


@dataclass(frozen=True)
class LiveIndex(IndexCounts):
    """The labelled rows of a (possibly partial) LIVE copy, split into found and missing.

    Attributes:
        records: Rows whose distorted and reference images both exist (the ones to score), in label-file
            order.
        missing_records: Rows with at least one missing image.
        image_root: Folder the image names are relative to.
        labels_path: The label file that was read.
        label_column: The label column that was read (``"dmos"``, ``"mos"``, ``"dmos_realigned"``, ...).
    """

    records: tuple[LiveRecord, ...]
    missing_records: tuple[LiveRecord, ...]
    image_root: Path
    labels_path: Path
    label_column: str

    def summary(self) -> str:
        """One-line report, e.g. ``"LIVE: 99/779 labelled images found (680 missing) [...]"``."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in self.records:
            counts[r.dist_type][0] += 1
        for r in self.missing_records:
            counts[r.dist_type][1] += 1
        types = ", ".join(f"{t} {f}/{f + m}" for t, (f, m) in sorted(counts.items()))
        return (
            f"LIVE: {self.found}/{self.total} labelled images found ({self.missing} missing) "
            f"in {self.image_root} [{types}]"
        )


def _resolve_image_root(root: Path, layout: LayoutName) -> Path:
    if layout == "official":
        return root / _OFFICIAL_SUBDIR
    if layout == "pyiqa":
        return root
    return root / _OFFICIAL_SUBDIR if (root / _OFFICIAL_SUBDIR).is_dir() else root


def _resolve_labels(root: Path, labels: str | os.PathLike[str] | None) -> Path:
    if labels is not None:
        path = Path(labels)
        if not path.is_file():
            raise FileNotFoundError(f"labels file not found: {path}")
        return path
    for candidate in _DEFAULT_LABELS:
        path = root / candidate
        if path.is_file():
            return path
    tried = ", ".join(str(root / c) for c in _DEFAULT_LABELS)
    raise FileNotFoundError(f"no LIVE label file found (tried {tried}); pass labels=...")


def _normalise_ref(name: str) -> str:
    name = name.strip().replace("\\", "/")
    if "/" not in name:
        name = f"refimgs/{name}"
    return name if Path(name).suffix else f"{name}.bmp"


def _normalise_dist(name: str) -> str:
    name = name.strip().replace("\\", "/")
    return name if Path(name).suffix else f"{name}.bmp"


def parse_label(value: str, path: Path, line: int, column: str) -> float:
    """A label cell as a finite float, else a ``ValueError`` naming the file, line and column."""
    try:
        number = float(value)
    except ValueError as error:
        raise ValueError(f"{path}:{line}: {column}={value!r} is not a number") from error
    if not math.isfinite(number):
        raise ValueError(f"{path}:{line}: {column} is not finite")
    return number


def split_found(records: Sequence[_PairRecord]) -> tuple[list[_PairRecord], list[_PairRecord]]:
    """``(found, missing)``: records whose distorted and reference files both exist, and the others (each path is
    checked once)."""
    exists: dict[Path, bool] = {}
    found, missing = [], []
    for record in records:
        for path in (record.dist_path, record.ref_path):
            if path not in exists:
                exists[path] = path.is_file()
        (found if exists[record.dist_path] and exists[record.ref_path] else missing).append(record)
    return found, missing


def load_live_index(
    root: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    label_column: str | None = None,
    layout: LayoutName = "auto",
) -> LiveIndex:
    """Reads the LIVE label table and checks which labelled images exist on disk.

    Args:
        root: Dataset root: the folder holding ``databaserelease2/`` (official layout) or the folder holding
            ``refimgs/``, ``jpeg/``, ... directly (pyiqa layout).
        labels: Label CSV. Default: the first existing of ``<root>/labels/live_dmos.csv``,
            ``<root>/meta_info_LIVEIQADataset.csv`` and ``<root>/../meta_info/meta_info_LIVEIQADataset.csv``.
            Needs columns ``ref_name``, ``dist_name`` and a label column; ``dist_type`` is optional (derived
            from the folder of ``dist_name``).
        label_column: Label column to read. Default: ``"dmos"`` if present, else ``"mos"`` (pyiqa). Use
            ``"dmos_realigned"`` for the realigned DMOS. All are lower-is-better.
        layout: ``"official"`` (images under ``<root>/databaserelease2``), ``"pyiqa"`` (images under
            ``<root>``) or ``"auto"`` (official if ``<root>/databaserelease2`` exists).

    Returns:
        A :class:`LiveIndex` with found and missing rows.

    Raises:
        FileNotFoundError: If ``root`` or the label file does not exist.
        ValueError: If ``layout`` is unknown, a required column is absent or a label is not a finite number.
    """
    if layout not in ("auto", "official", "pyiqa"):
        raise ValueError(f"layout must be 'auto', 'official' or 'pyiqa', got {layout!r}")
    root_path = Path(root)
    if not root_path.is_dir():
        raise FileNotFoundError(f"LIVE root not found: {root_path}")
    image_root = _resolve_image_root(root_path, layout)
    labels_path = _resolve_labels(root_path, labels)

    with labels_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{k.strip(): (v or "") for k, v in row.items() if k is not None} for row in reader]
    for required in ("ref_name", "dist_name"):
        if required not in columns:
            raise ValueError(f"labels file {labels_path} lacks column {required!r} (has {columns})")
    if label_column is None:
        label_column = next((c for c in _LABEL_COLUMNS if c in columns), None)
        if label_column is None:
            raise ValueError(f"labels file {labels_path} has none of the label columns {_LABEL_COLUMNS}")
    elif label_column not in columns:
        raise ValueError(f"label_column {label_column!r} is not a column of {labels_path} (has {columns})")

    records = []
    for line, row in enumerate(rows, start=2):
        ref_rel = _normalise_ref(row["ref_name"])
        dist_rel = _normalise_dist(row["dist_name"])
        records.append(LiveRecord(
            dist_path=image_root / dist_rel,
            ref_path=image_root / ref_rel,
            dmos=parse_label(row[label_column], labels_path, line, label_column),
            dist_type=row.get("dist_type", "").strip() or dist_rel.split("/")[0],
            ref_name=Path(ref_rel).stem,
            dist_name=dist_rel,
        ))
    found, missing = split_found(records)
    return LiveIndex(
        records=tuple(found),
        missing_records=tuple(missing),
        image_root=image_root,
        labels_path=labels_path,
        label_column=label_column,
    )


def first_per_reference(records: Sequence[_GroupedRecord], per_ref: int) -> list[_GroupedRecord]:
    """The first ``per_ref`` records of every reference, in label-file order (a quick mode that keeps every
    reference, so reference resampling still has its clusters)."""
    seen: dict[str, int] = {}
    kept = []
    for record in records:
        seen[record.ref_name] = seen.get(record.ref_name, 0) + 1
        if seen[record.ref_name] <= per_ref:
            kept.append(record)
    return kept


def select_quick_records(records: Sequence[_GroupedRecord], n_refs: int = 2,
                         per_ref: int = 4) -> list[_GroupedRecord]:
    """A small smoke-test subset: ``per_ref`` images of each of the first ``n_refs`` references (any records with
    ``ref_name`` and ``dist_type``: LIVE's, or the pyiqa layouts').

    Distortion types are taken in turn (one image of each type before a second of any), in label-file order.
    """
    by_ref: dict[str, list[_GroupedRecord]] = {}
    for record in records:
        if record.ref_name in by_ref or len(by_ref) < n_refs:
            by_ref.setdefault(record.ref_name, []).append(record)
    chosen = []
    for group in by_ref.values():
        rank: dict[str, int] = {}
        keyed = []
        for position, record in enumerate(group):
            rank[record.dist_type] = rank.get(record.dist_type, -1) + 1
            keyed.append((rank[record.dist_type], position, record))
        chosen += [record for _, _, record in sorted(keyed, key=lambda item: item[:2])[:per_ref]]
    return chosen
