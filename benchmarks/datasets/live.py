"""LIVE Image Quality Assessment Database, Release 2: index, torch ``Dataset`` and loaders.

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

Images differ in size (768×512, 480×720, ...), so batches must hold images of one size: use
:class:`SizeGroupedBatchSampler` (what :func:`make_live_loader` does by default) or ``batch_size=1``.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from pe_iqa.image_io import read_image

__all__ = [
    "DEFAULT_ROOT",
    "HIGHER_IS_BETTER_LABEL",
    "LIVE_DISTORTION_TYPES",
    "LiveDataset",
    "LiveIndex",
    "LiveRecord",
    "SizeGroupedBatchSampler",
    "collect_live_scores",
    "load_live_index",
    "make_live_loader",
    "parse_label",
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


class _HasPaths(Protocol):
    dist_path: Path
    ref_path: Path


_PairRecord = TypeVar("_PairRecord", bound=_HasPaths)

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
class LiveIndex:
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

    @property
    def found(self) -> int:
        """Number of labelled rows whose images were found."""
        return len(self.records)

    @property
    def missing(self) -> int:
        """Number of labelled rows with a missing distorted or reference image."""
        return len(self.missing_records)

    @property
    def total(self) -> int:
        """Number of labelled rows in the label file."""
        return self.found + self.missing

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


class LiveDataset(Dataset):
    """Torch dataset over the found rows of a :class:`LiveIndex`.

    Each item is ``(dist, ref, dmos, index)``: ``dist`` and ``ref`` are float32 tensors in [0, 1] of shape
    (3, H, W), ``dmos`` a float64 scalar tensor and ``index`` the position in :attr:`records`.

    Args:
        index: A :class:`LiveIndex` (its found rows are used) or a sequence of :class:`LiveRecord`.

    Raises:
        TypeError: If ``index`` is neither.
    """

    def __init__(self, index: LiveIndex | Sequence[LiveRecord]) -> None:
        if isinstance(index, LiveIndex):
            records = index.records
        elif isinstance(index, Sequence) and all(isinstance(r, LiveRecord) for r in index):
            records = tuple(index)
        else:
            raise TypeError(f"index must be a LiveIndex or a sequence of LiveRecord, got {type(index).__name__}")
        self.records: tuple[LiveRecord, ...] = records
        self._sizes: list[tuple[int, int]] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        record = self.records[i]
        dist = read_image(record.dist_path)[0]
        ref = read_image(record.ref_path)[0]
        if dist.shape != ref.shape:
            raise ValueError(
                f"{record.dist_path} has shape {tuple(dist.shape)} but its reference {record.ref_path} "
                f"has shape {tuple(ref.shape)}"
            )
        return dist, ref, torch.tensor(record.dmos, dtype=torch.float64), i

    def image_sizes(self) -> list[tuple[int, int]]:
        """(H, W) of every distorted image, read from the file headers (cached).

        Returns:
            One ``(height, width)`` per record.
        """
        if self._sizes is None:
            sizes = []
            for record in self.records:
                with Image.open(record.dist_path) as img:
                    width, height = img.size
                sizes.append((height, width))
            self._sizes = sizes
        return list(self._sizes)

    @property
    def labels(self) -> np.ndarray:
        """DMOS of every record, shape (N,)."""
        return np.array([r.dmos for r in self.records], dtype=np.float64)


class SizeGroupedBatchSampler(Sampler[list[int]]):
    """Batch sampler whose batches only contain items of equal image size.

    Items are grouped by size (groups in order of first appearance), each group is cut into batches of at most
    ``batch_size``; with ``shuffle`` the items within groups and the order of batches are permuted with a
    seeded generator (a new permutation each epoch).

    Args:
        sizes: One hashable size key per item, e.g. ``(H, W)``.
        batch_size: Maximum batch size (>= 1).
        shuffle: Shuffle items and batches.
        seed: Seed for shuffling.

    Raises:
        ValueError: If ``batch_size`` is not a positive int.
    """

    def __init__(self, sizes: Sequence[object], batch_size: int, shuffle: bool = False, seed: int = 0) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        groups: dict[object, list[int]] = defaultdict(list)
        for i, size in enumerate(sizes):
            groups[size].append(i)
        self.groups = list(groups.values())
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self._epoch = 0

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self._epoch])
        batches: list[list[int]] = []
        for group in self.groups:
            items = [group[j] for j in rng.permutation(len(group))] if self.shuffle else group
            batches += [items[k : k + self.batch_size] for k in range(0, len(items), self.batch_size)]
        if self.shuffle:
            batches = [batches[j] for j in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        self._epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        return sum(math.ceil(len(g) / self.batch_size) for g in self.groups)


def make_live_loader(
    dataset: LiveDataset,
    batch_size: int = 1,
    num_workers: int = 0,
    group_by_size: bool = True,
    shuffle: bool = False,
    seed: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Builds a ``DataLoader`` over a :class:`LiveDataset`.

    Batches are ``(dist, ref, dmos, index)`` with ``dist`` and ``ref`` of shape (B, 3, H, W), ``dmos`` and
    ``index`` of shape (B,).

    Args:
        dataset: The dataset.
        batch_size: Maximum batch size.
        num_workers: Worker processes for loading (0 = main process).
        group_by_size: Batch only images of equal size (:class:`SizeGroupedBatchSampler`). If False and
            ``batch_size > 1``, all images must have the same size.
        shuffle: Shuffle the order (deterministic given ``seed`` when ``group_by_size``).
        seed: Seed for shuffling.
        pin_memory: Passed to ``DataLoader``.

    Returns:
        The ``DataLoader``.

    Raises:
        TypeError: If ``dataset`` is not a :class:`LiveDataset`.
        ValueError: If ``batch_size`` or ``num_workers`` is invalid, or sizes differ with
            ``group_by_size=False`` and ``batch_size > 1``.
    """
    if not isinstance(dataset, LiveDataset):
        raise TypeError(f"dataset must be a LiveDataset, got {type(dataset).__name__}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
    if group_by_size:
        sampler = SizeGroupedBatchSampler(dataset.image_sizes(), batch_size, shuffle=shuffle, seed=seed)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, pin_memory=pin_memory)
    if batch_size > 1 and len(set(dataset.image_sizes())) > 1:
        raise ValueError(
            "batch_size > 1 with group_by_size=False needs images of one size; LIVE images differ in size "
            f"({sorted(set(dataset.image_sizes()))}): use group_by_size=True or batch_size=1"
        )
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )


@torch.no_grad()
def collect_live_scores(
    loader: DataLoader,
    score_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs a full-reference metric over a LIVE loader.

    Args:
        loader: A loader from :func:`make_live_loader`.
        score_fn: ``score_fn(dist, ref)`` with tensors of shape (B, 3, H, W) in [0, 1] returning a tensor
            with B elements.
        device: Device the images are moved to.

    Returns:
        ``(scores, dmos, indices)``, each of shape (N,), sorted by dataset index (so they align with
        ``dataset.records`` whatever the batch order).

    Raises:
        ValueError: If ``score_fn`` does not return one value per image.
    """
    scores, labels, indices = [], [], []
    for dist, ref, dmos, index in loader:
        out = torch.as_tensor(score_fn(dist.to(device), ref.to(device))).detach().reshape(-1).cpu()
        if out.numel() != dist.shape[0]:
            raise ValueError(f"score_fn returned {out.numel()} values for a batch of {dist.shape[0]} images")
        scores.append(out.double().numpy())
        labels.append(dmos.double().numpy())
        indices.append(torch.as_tensor(index).numpy())
    if not scores:
        empty = np.zeros(0)
        return empty, empty, np.zeros(0, dtype=np.int64)
    s, y, idx = np.concatenate(scores), np.concatenate(labels), np.concatenate(indices).astype(np.int64)
    order = np.argsort(idx, kind="stable")
    return s[order], y[order], idx[order]
