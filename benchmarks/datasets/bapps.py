"""BAPPS (Berkeley-Adobe Perceptual Patch Similarity): 2AFC and JND index, torch datasets and loaders.

Official layout, as written by ``scripts/download_dataset.sh`` of the LPIPS repository::

    <root>/dataset/2afc/<split>/<subset>/{ref,p0,p1}/<id>.png
    <root>/dataset/2afc/<split>/<subset>/judge/<id>.npy    # one float: fraction of humans preferring p1
    <root>/dataset/jnd/val/<subset>/{p0,p1}/<id>.png
    <root>/dataset/jnd/val/<subset>/same/<id>.npy          # one float: fraction answering "same"

with the 2AFC validation subsets ``traditional, cnn, superres, deblur, color, frameinterp`` (training subsets
``traditional, cnn, mix``) and the JND subsets ``traditional, cnn``. ``root`` may also be the ``dataset``
folder itself (pyiqa's ``datasets/PerceptualSimilarity/dataset``).

pyiqa layout (``layout="pyiqa"``, or found by ``"auto"`` when no official tree is there): ``root`` is pyiqa's
``./datasets`` folder; the images and the meta-info CSV are where pyiqa's ``default_dataset_configs.yml``
(entry ``bapps``, read from the installed pyiqa package) puts them, by default
``<root>/PerceptualSimilarity/dataset`` and ``<root>/meta_info/meta_info_BAPPSDataset.csv``. The CSV
(written by pyiqa's ``scripts/process_bapps.py``) has one row per triplet or pair, read by position:
``ref_img_path`` (``"jnd"`` for a JND pair), ``p0_img_path``, ``p1_img_path``, ``judge/same`` (the value of
the official ``.npy`` file: fraction preferring ``p1``, or fraction answering "same"), then a split column.
Paths are relative to the image folder (``2afc/val/cnn/p0/000000.png``); kind, split and subset are read from
them, not from the split column. Listed rows whose files are missing are counted as incomplete.

LPIPS pairs the files of the ``ref``/``p0``/``p1``/``judge`` folders by sorted position; here they are paired
by file stem (identical for the official data, and robust to an incomplete copy, whose unpaired files are
counted in :attr:`BappsIndex.incomplete`). Images are loaded as RGB and resized (bilinear) to
``load_size × load_size`` (64 by default, as LPIPS; a no-op for the official 64×64 patches; LPIPS resizes the
shorter side, which is the same for square patches). LPIPS scales patches to [-1, 1]; here they are in [0, 1]
unless ``minus_one_one=True``.

References:
    R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness of Deep Features
    as a Perceptual Metric". CVPR 2018.

    ``data/dataset/twoafc_dataset.py``, ``data/dataset/jnd_dataset.py``, ``scripts/download_dataset.sh`` and
    ``test_dataset_model.py`` in https://github.com/richzhang/PerceptualSimilarity (BSD-2-Clause).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as tvf

__all__ = [
    "JND_SUBSETS",
    "TWOAFC_SUBSETS",
    "TWOAFC_TRAIN_SUBSETS",
    "BappsIndex",
    "JNDDataset",
    "JNDRecord",
    "TwoAFCDataset",
    "TwoAFCRecord",
    "collect_2afc_distances",
    "collect_jnd_distances",
    "load_bapps_2afc",
    "load_bapps_jnd",
    "make_bapps_loader",
]

TWOAFC_SUBSETS: tuple[str, ...] = ("traditional", "cnn", "superres", "deblur", "color", "frameinterp")
"""2AFC validation subsets, in the order of LPIPS ``test_dataset_model.py``."""
TWOAFC_TRAIN_SUBSETS: tuple[str, ...] = ("traditional", "cnn", "mix")
JND_SUBSETS: tuple[str, ...] = ("traditional", "cnn")

_IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")  # as LPIPS data/image_folder.py (any case)
_TWOAFC_FOLDERS = ("ref", "p0", "p1", "judge")
_JND_FOLDERS = ("p0", "p1", "same")

Kind = Literal["2afc", "jnd"]
Layout = Literal["auto", "official", "pyiqa"]


@dataclass(frozen=True)
class TwoAFCRecord:
    """One 2AFC triplet.

    Attributes:
        ref_path: Reference patch.
        p0_path: First distorted patch.
        p1_path: Second distorted patch.
        judge: Fraction of humans who judged ``p1`` closer to the reference, in [0, 1].
        subset: Subset name, e.g. ``"cnn"``.
        stem: File stem shared by the four files, e.g. ``"000123"``.
    """

    ref_path: Path
    p0_path: Path
    p1_path: Path
    judge: float
    subset: str
    stem: str


@dataclass(frozen=True)
class JNDRecord:
    """One JND pair.

    Attributes:
        p0_path: First patch.
        p1_path: Second patch.
        same: Fraction of humans who judged the two patches identical, in [0, 1].
        subset: Subset name.
        stem: File stem shared by the three files.
    """

    p0_path: Path
    p1_path: Path
    same: float
    subset: str
    stem: str


@dataclass(frozen=True)
class BappsIndex:
    """Found and missing subsets of one BAPPS task and split.

    Attributes:
        kind: ``"2afc"`` or ``"jnd"``.
        split: ``"val"`` or ``"train"``.
        dataset_root: The ``dataset`` folder.
        records: Complete records per found subset, in requested-subset order.
        missing_subsets: Requested subsets whose folder (or one of its required sub-folders) is absent.
        incomplete: Per found subset, how many ids lack one of their files (skipped).
    """

    kind: str
    split: str
    dataset_root: Path
    records: dict[str, tuple[TwoAFCRecord, ...] | tuple[JNDRecord, ...]]
    missing_subsets: tuple[str, ...]
    incomplete: dict[str, int]

    @property
    def found_subsets(self) -> tuple[str, ...]:
        """Subsets that were found."""
        return tuple(self.records)

    def __len__(self) -> int:
        return sum(len(r) for r in self.records.values())

    def summary(self) -> str:
        """One-line report of found/missing subsets and their sizes."""
        parts = []
        for subset, recs in self.records.items():
            extra = f" ({self.incomplete[subset]} incomplete skipped)" if self.incomplete.get(subset) else ""
            parts.append(f"{subset} {len(recs)}{extra}")
        found = ", ".join(parts) or "none"
        missing = ", ".join(self.missing_subsets) or "none"
        n_req = len(self.records) + len(self.missing_subsets)
        return (
            f"BAPPS {self.kind}/{self.split}: {len(self.records)}/{n_req} subsets found [{found}]; missing: {missing}"
        )


def _official_root(root: Path, inside_pyiqa_root: bool) -> Path | None:
    candidates = [root / "dataset", root] + ([root / "PerceptualSimilarity" / "dataset"] if inside_pyiqa_root else [])
    for candidate in candidates:
        if (candidate / "2afc").is_dir() or (candidate / "jnd").is_dir():
            return candidate
    return None


def _pyiqa_paths(root: Path) -> tuple[Path, Path]:
    """(image folder, meta-info CSV) of pyiqa's ``bapps`` config entry under ``root``."""
    from benchmarks.datasets.pyiqa_layouts import pyiqa_dataset_configs, under_root

    config = pyiqa_dataset_configs()["bapps"]
    return under_root(config["dataroot_target"], root), under_root(config["meta_info_file"], root)


def _resolve_layout(root: Path, layout: Layout) -> tuple[str, Path]:
    """("official", dataset folder) or ("pyiqa", meta-info CSV).

    ``"auto"`` tries, in order: an official tree at ``root/dataset`` or ``root``; pyiqa's meta-info CSV; an
    official tree at pyiqa's image folder ``root/PerceptualSimilarity/dataset`` (pyiqa's images without its CSV).
    """
    if layout not in ("auto", "official", "pyiqa"):
        raise ValueError(f"layout must be 'auto', 'official' or 'pyiqa', got {layout!r}")
    if layout != "pyiqa":
        official = _official_root(root, inside_pyiqa_root=False)
        if official is not None:
            return "official", official
    meta: Path | None = None
    if layout != "official":
        meta = _pyiqa_paths(root)[1]
        if meta.is_file():
            return "pyiqa", meta
    official = _official_root(root, inside_pyiqa_root=True) if layout != "pyiqa" else None
    if official is not None:
        return "official", official
    expected = [f"{root / 'dataset' / '2afc'} or {root / 'dataset' / 'jnd'} (official layout, see "
                "scripts/download_dataset.sh of richzhang/PerceptualSimilarity)"] if layout != "pyiqa" else []
    expected += [f"{meta} (pyiqa layout)"] if meta is not None else []
    raise FileNotFoundError(f"no BAPPS data under {root}: expected {' or '.join(expected)}")


def _list_files(folder: Path, numpy: bool) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if path.is_file() and (suffix == ".npy" if numpy else suffix in _IMG_EXTENSIONS):
            out[path.stem] = path
    return out


def _read_fraction(path: Path) -> float:
    value = np.load(path, allow_pickle=False)
    value = np.asarray(value, dtype=np.float64).reshape(-1)
    if value.size != 1 or not np.isfinite(value[0]) or not 0.0 <= value[0] <= 1.0:
        raise ValueError(f"{path} must hold one fraction in [0, 1], got {value!r}")
    return float(value[0])


def _check_subsets(subsets: Sequence[str] | None, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if subsets is None:
        return allowed
    if isinstance(subsets, str):
        subsets = (subsets,)
    unknown = [s for s in subsets if s not in allowed]
    if unknown:
        raise ValueError(f"subsets has unknown {name} subset(s) {unknown}; known: {list(allowed)}")
    return tuple(subsets)


def _fraction_cell(value: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError as error:
        raise ValueError(f"{where}: {value!r} is not a number") from error
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ValueError(f"{where} must hold one fraction in [0, 1], got {value!r}")
    return number


def _load_pyiqa_index(root: Path, meta: Path, kind: Kind, subsets: tuple[str, ...], split: str) -> BappsIndex:
    """A :class:`BappsIndex` from pyiqa's meta-info CSV (see the module docstring)."""
    image_root = _pyiqa_paths(root)[0]
    wanted = set(subsets)
    listed: dict[str, list] = {s: [] for s in subsets}
    incomplete = dict.fromkeys(subsets, 0)
    with meta.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for line, row in enumerate(reader, start=2):
            if len(row) < 4 or not row[1].strip():
                continue
            parts = PurePosixPath(row[1].strip()).parts
            if len(parts) < 5 or parts[0] != kind or parts[1] != split or parts[2] not in wanted:
                continue
            subset, stem = parts[2], PurePosixPath(parts[-1]).stem
            value = _fraction_cell(row[3].strip(), f"{meta}:{line}")
            p0, p1 = image_root / row[1].strip(), image_root / row[2].strip()
            if kind == "2afc":
                record = TwoAFCRecord(image_root / row[0].strip(), p0, p1, value, subset, stem)
                paths = (record.ref_path, p0, p1)
            else:
                record, paths = JNDRecord(p0, p1, value, subset, stem), (p0, p1)
            if all(p.is_file() for p in paths):
                listed[subset].append(record)
            else:
                incomplete[subset] += 1
    records = {s: tuple(sorted(r, key=lambda rec: rec.stem)) for s, r in listed.items() if r}
    if not records:
        raise FileNotFoundError(
            f"none of the BAPPS {kind}/{split} subsets {list(subsets)} listed in {meta} was found under {image_root}")
    return BappsIndex(kind=kind, split=split, dataset_root=image_root, records=records,
                      missing_subsets=tuple(s for s in subsets if s not in records),
                      incomplete={s: incomplete[s] for s in records})


def _load_index(
    root: str | os.PathLike[str], kind: Kind, subsets: tuple[str, ...], split: str, folders: tuple[str, ...],
    layout: Layout = "auto",
) -> BappsIndex:
    root_path = Path(root)
    if not root_path.is_dir():
        raise FileNotFoundError(f"BAPPS root not found: {root_path}")
    found_layout, where = _resolve_layout(root_path, layout)
    if found_layout == "pyiqa":
        return _load_pyiqa_index(root_path, where, kind, subsets, split)
    data_root = where
    records: dict[str, tuple] = {}
    missing: list[str] = []
    incomplete: dict[str, int] = {}
    label_folder = folders[-1]
    for subset in subsets:
        base = data_root / kind / split / subset
        if not all((base / f).is_dir() for f in folders):
            missing.append(subset)
            continue
        files = {f: _list_files(base / f, numpy=(f == label_folder)) for f in folders}
        all_ids = set().union(*(set(v) for v in files.values()))
        complete = sorted(set.intersection(*(set(v) for v in files.values())))
        incomplete[subset] = len(all_ids) - len(complete)
        if kind == "2afc":
            records[subset] = tuple(
                TwoAFCRecord(
                    ref_path=files["ref"][i],
                    p0_path=files["p0"][i],
                    p1_path=files["p1"][i],
                    judge=_read_fraction(files["judge"][i]),
                    subset=subset,
                    stem=i,
                )
                for i in complete
            )
        else:
            records[subset] = tuple(
                JNDRecord(
                    p0_path=files["p0"][i],
                    p1_path=files["p1"][i],
                    same=_read_fraction(files["same"][i]),
                    subset=subset,
                    stem=i,
                )
                for i in complete
            )
    if not records:
        raise FileNotFoundError(
            f"none of the BAPPS {kind}/{split} subsets {list(subsets)} was found under {data_root / kind / split}"
        )
    return BappsIndex(
        kind=kind,
        split=split,
        dataset_root=data_root,
        records=records,
        missing_subsets=tuple(missing),
        incomplete=incomplete,
    )


def load_bapps_2afc(
    root: str | os.PathLike[str],
    subsets: Sequence[str] | None = None,
    split: Literal["val", "train"] = "val",
    layout: Layout = "auto",
) -> BappsIndex:
    """Indexes the BAPPS 2AFC triplets of the requested subsets.

    Args:
        root: Folder holding ``dataset/2afc`` (or the ``dataset`` folder itself), or pyiqa's ``./datasets``.
        subsets: Subset names; default all of :data:`TWOAFC_SUBSETS` (val) or :data:`TWOAFC_TRAIN_SUBSETS`.
        split: ``"val"`` (the benchmark) or ``"train"``.
        layout: ``"official"``, ``"pyiqa"`` or ``"auto"`` (official if its folders are found, else pyiqa's).

    Returns:
        A :class:`BappsIndex` of :class:`TwoAFCRecord`; absent subsets are listed in ``missing_subsets``.

    Raises:
        FileNotFoundError: If ``root`` does not exist or none of the requested subsets is present.
        ValueError: If ``split``, ``layout`` or a subset name is unknown, or a judge value is malformed.
    """
    if split not in ("val", "train"):
        raise ValueError(f"split must be 'val' or 'train', got {split!r}")
    allowed = TWOAFC_SUBSETS if split == "val" else TWOAFC_TRAIN_SUBSETS
    names = _check_subsets(subsets, allowed, f"2afc/{split}")
    return _load_index(root, "2afc", names, split, _TWOAFC_FOLDERS, layout)


def load_bapps_jnd(
    root: str | os.PathLike[str], subsets: Sequence[str] | None = None, layout: Layout = "auto"
) -> BappsIndex:
    """Indexes the BAPPS JND pairs (validation split) of the requested subsets.

    Args:
        root: Folder holding ``dataset/jnd`` (or the ``dataset`` folder itself), or pyiqa's ``./datasets``.
        subsets: Subset names; default all of :data:`JND_SUBSETS`.
        layout: ``"official"``, ``"pyiqa"`` or ``"auto"`` (official if its folders are found, else pyiqa's).

    Returns:
        A :class:`BappsIndex` of :class:`JNDRecord`; absent subsets are listed in ``missing_subsets``.

    Raises:
        FileNotFoundError: If ``root`` does not exist or none of the requested subsets is present.
        ValueError: If ``layout`` or a subset name is unknown, or a ``same`` value is malformed.
    """
    names = _check_subsets(subsets, JND_SUBSETS, "jnd")
    return _load_index(root, "jnd", names, "val", _JND_FOLDERS, layout)


def _records_of(source: BappsIndex | Sequence, record_type: type, kind: str) -> tuple:
    if isinstance(source, BappsIndex):
        if source.kind != kind:
            raise ValueError(f"index is a {source.kind} index, expected {kind}")
        return tuple(r for recs in source.records.values() for r in recs)
    if isinstance(source, Sequence) and all(isinstance(r, record_type) for r in source):
        return tuple(source)
    raise TypeError(f"index must be a BappsIndex or a sequence of {record_type.__name__}")


class _PatchLoader:
    """Loads an RGB patch as a float tensor (3, S, S), as LPIPS (``Resize(load_size)`` + ``ToTensor``)."""

    def __init__(self, load_size: int, minus_one_one: bool) -> None:
        if not isinstance(load_size, int) or isinstance(load_size, bool) or load_size < 1:
            raise ValueError(f"load_size must be a positive int, got {load_size!r}")
        if not isinstance(minus_one_one, bool):
            raise TypeError(f"minus_one_one must be a bool, got {type(minus_one_one).__name__}")
        self.load_size = load_size
        self.minus_one_one = minus_one_one

    def __call__(self, path: Path) -> torch.Tensor:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
        if rgb.size != (self.load_size, self.load_size):
            rgb = tvf.resize(rgb, [self.load_size, self.load_size], interpolation=InterpolationMode.BILINEAR)
        tensor = tvf.to_tensor(rgb)
        return tensor * 2.0 - 1.0 if self.minus_one_one else tensor


class TwoAFCDataset(Dataset):
    """Torch dataset of BAPPS 2AFC triplets.

    Each item is ``(ref, p0, p1, judge, index)``: three float32 tensors of shape (3, S, S) with
    ``S = load_size``, in [0, 1] (or [-1, 1] with ``minus_one_one``, LPIPS' own convention), ``judge`` a
    float64 scalar tensor (fraction preferring ``p1``) and ``index`` the position in :attr:`records`.

    Args:
        index: A 2AFC :class:`BappsIndex` (all found subsets, concatenated) or a sequence of
            :class:`TwoAFCRecord` (e.g. ``index.records["cnn"]``).
        load_size: Side of the loaded patches (64 as LPIPS).
        minus_one_one: Return images scaled to [-1, 1] instead of [0, 1].

    Raises:
        TypeError: If ``index`` has the wrong type.
        ValueError: If ``index`` is a JND index or ``load_size`` is invalid.
    """

    def __init__(
        self, index: BappsIndex | Sequence[TwoAFCRecord], load_size: int = 64, minus_one_one: bool = False
    ) -> None:
        self.records: tuple[TwoAFCRecord, ...] = _records_of(index, TwoAFCRecord, "2afc")
        self._load = _PatchLoader(load_size, minus_one_one)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
        r = self.records[i]
        judge = torch.tensor(r.judge, dtype=torch.float64)
        return self._load(r.ref_path), self._load(r.p0_path), self._load(r.p1_path), judge, i


class JNDDataset(Dataset):
    """Torch dataset of BAPPS JND pairs.

    Each item is ``(p0, p1, same, index)``: two float32 tensors of shape (3, S, S) in [0, 1] (or [-1, 1]),
    ``same`` a float64 scalar tensor and ``index`` the position in :attr:`records`.

    Args:
        index: A JND :class:`BappsIndex` or a sequence of :class:`JNDRecord`.
        load_size: Side of the loaded patches (64 as LPIPS).
        minus_one_one: Return images scaled to [-1, 1] instead of [0, 1].

    Raises:
        TypeError: If ``index`` has the wrong type.
        ValueError: If ``index`` is a 2AFC index or ``load_size`` is invalid.
    """

    def __init__(
        self, index: BappsIndex | Sequence[JNDRecord], load_size: int = 64, minus_one_one: bool = False
    ) -> None:
        self.records: tuple[JNDRecord, ...] = _records_of(index, JNDRecord, "jnd")
        self._load = _PatchLoader(load_size, minus_one_one)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        r = self.records[i]
        same = torch.tensor(r.same, dtype=torch.float64)
        return self._load(r.p0_path), self._load(r.p1_path), same, i


def make_bapps_loader(
    dataset: TwoAFCDataset | JNDDataset,
    batch_size: int = 50,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Builds a sequential (unshuffled, as LPIPS) ``DataLoader`` over a BAPPS dataset.

    Args:
        dataset: A :class:`TwoAFCDataset` or :class:`JNDDataset`.
        batch_size: Batch size (LPIPS evaluates with 50).
        num_workers: Worker processes for loading (0 = main process).
        pin_memory: Passed to ``DataLoader``.

    Returns:
        The ``DataLoader``; batches stack the item fields, images of shape (B, 3, S, S).

    Raises:
        TypeError: If ``dataset`` is not a BAPPS dataset.
        ValueError: If ``batch_size`` or ``num_workers`` is invalid.
    """
    if not isinstance(dataset, (TwoAFCDataset, JNDDataset)):
        raise TypeError(f"dataset must be a TwoAFCDataset or JNDDataset, got {type(dataset).__name__}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin_memory)


def _flat(values: object, n: int, name: str) -> np.ndarray:
    out = torch.as_tensor(values).detach().reshape(-1).double().cpu().numpy()
    if out.size != n:
        raise ValueError(f"{name} returned {out.size} values for a batch of {n} pairs")
    return out


@torch.no_grad()
def collect_2afc_distances(
    loader: DataLoader,
    distance_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Computes ``d0 = d(ref, p0)`` and ``d1 = d(ref, p1)`` over a 2AFC loader (LPIPS argument order).

    Args:
        loader: A loader over a :class:`TwoAFCDataset`.
        distance_fn: ``distance_fn(x, y)`` with tensors of shape (B, 3, S, S) returning B values.
        device: Device the images are moved to.

    Returns:
        ``(d0, d1, judge)``, each of shape (N,), in dataset order.

    Raises:
        ValueError: If ``distance_fn`` does not return one value per triplet.
    """
    d0s, d1s, judges, indices = [], [], [], []
    for ref, p0, p1, judge, index in loader:
        ref = ref.to(device)
        d0s.append(_flat(distance_fn(ref, p0.to(device)), ref.shape[0], "distance_fn"))
        d1s.append(_flat(distance_fn(ref, p1.to(device)), ref.shape[0], "distance_fn"))
        judges.append(judge.double().numpy())
        indices.append(torch.as_tensor(index).numpy())
    if not d0s:
        empty = np.zeros(0)
        return empty, empty, empty
    order = np.argsort(np.concatenate(indices), kind="stable")
    return np.concatenate(d0s)[order], np.concatenate(d1s)[order], np.concatenate(judges)[order]


@torch.no_grad()
def collect_jnd_distances(
    loader: DataLoader,
    distance_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Computes ``d = d(p0, p1)`` over a JND loader.

    Args:
        loader: A loader over a :class:`JNDDataset`.
        distance_fn: ``distance_fn(x, y)`` with tensors of shape (B, 3, S, S) returning B values.
        device: Device the images are moved to.

    Returns:
        ``(distances, same)``, each of shape (N,), in dataset order.

    Raises:
        ValueError: If ``distance_fn`` does not return one value per pair.
    """
    ds, sames, indices = [], [], []
    for p0, p1, same, index in loader:
        ds.append(_flat(distance_fn(p0.to(device), p1.to(device)), p0.shape[0], "distance_fn"))
        sames.append(same.double().numpy())
        indices.append(torch.as_tensor(index).numpy())
    if not ds:
        empty = np.zeros(0)
        return empty, empty
    order = np.argsort(np.concatenate(indices), kind="stable")
    return np.concatenate(ds)[order], np.concatenate(sames)[order]
