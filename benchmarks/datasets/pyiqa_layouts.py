"""Full-reference IQA datasets in pyiqa's layout, described by pyiqa's own ``default_dataset_configs.yml``.

People who benchmark with pyiqa keep their datasets as ``<root>/<name>/…`` plus meta-info CSVs in
``<root>/meta_info/meta_info_<Name>Dataset.csv`` (``<root>`` is pyiqa's ``./datasets``). Where the images and
the meta-info file live, and whether the subjective score is a MOS (higher = better) or a DMOS (lower =
better), is written in the ``default_dataset_configs.yml`` shipped *inside the installed pyiqa package*. This
module reads that file at run time (it is never copied here) and indexes one dataset:

* ``GeneralFRDataset`` entries (``live``, ``livem``, ``csiq``, ``tid2008``, ``tid2013``, ``kadid10k``,
  ``pipal``): the meta-info CSV is read **by position**, as pyiqa does — column 0 the reference, column 1 the
  distorted image, column 2 the score, whatever the header says (``ref_name,dist_name,mos``,
  ``ref_name,dist_name,dmos``, ``hq_name,dist_name,elo_score``, …). References live under ``dataroot_ref``
  (``dataroot_target`` when the config has none), distorted images under ``dataroot_target``.
* ``PieAPPDataset`` (``pieapp``): its test split is full-reference, with one per-image score per distorted
  image (columns ``ref_img_path``, ``dist_imgB_path``, ``per_img score for dist_imgB``, paths under
  ``dataroot_target``); rows without that score (train/val pairs) are skipped and repeated rows are kept once,
  as pyiqa's test phase does.

Score direction: the config's ``lower_better``. pyiqa's ``pieapp`` entry states none; PieAPP's dataset README
defines the per-image score as the dissimilarity to the reference (higher = worse), so it is lower-is-better
here, and the index says where each direction came from. The column *name* never decides the direction
(KADID-10k's column is called ``dmos`` but holds a MOS; its config says ``lower_better: false``).

Copies are often partial: rows whose images are missing are kept apart and counted. A dataset with no
meta-info file, or none of whose images exists, raises :class:`DatasetMissingError` with one line naming what
was expected where.

References:
    C. Chen, J. Mo et al., pyiqa (IQA-PyTorch), ``pyiqa/default_dataset_configs.yml``,
    ``pyiqa/data/general_fr_dataset.py``, ``pyiqa/data/pieapp_dataset.py``,
    https://github.com/chaofengc/IQA-PyTorch

    E. Prashnani et al., "PieAPP: Perceptual Image-Error Assessment through Pairwise Preference", CVPR 2018
    (``dataset/dataset_README.md``: per-image scores).
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import numpy as np

from benchmarks.datasets.live import IndexCounts, parse_label, split_found

__all__ = [
    "PYIQA_FR_DATASETS",
    "DatasetMissingError",
    "FRIndex",
    "FRRecord",
    "PyiqaFRSpec",
    "load_pyiqa_fr",
    "pyiqa_dataset_configs",
    "pyiqa_fr_spec",
    "under_root",
]

#: The full-reference datasets of pyiqa's config this adapter reads.
PYIQA_FR_DATASETS: tuple[str, ...] = ("live", "livem", "csiq", "tid2008", "tid2013", "kadid10k", "pipal", "pieapp")
_FR_TYPES = ("GeneralFRDataset", "PieAPPDataset")
#: Directions for config entries that state none: ``{key: (lower_better, source)}``.
_DIRECTION_WITHOUT_CONFIG: dict[str, tuple[bool, str]] = {
    "pieapp": (True, "PieAPP dataset README (per-image score = dissimilarity to the reference); pyiqa's config "
                     "states no direction"),
}
_PIEAPP_COLUMNS = ("ref_img_path", "dist_imgB_path", "per_img score for dist_imgB")
#: Distortion-type patterns of the distorted file names (only for the per-type counts of the summary line).
_DIST_TYPE_PATTERNS: dict[str, re.Pattern[str]] = {
    "tid2008": re.compile(r"^[iI]\d+_(\d+)_\d+\."),
    "tid2013": re.compile(r"^[iI]\d+_(\d+)_\d+\."),
    "kadid10k": re.compile(r"^[iI]\d+_(\d+)_\d+\."),
    "pipal": re.compile(r"^A\d+_(\d+)_\d+\."),
    "csiq": re.compile(r"^.+\.([^.]+)\.\d+\.[^.]+$"),
}


class DatasetMissingError(FileNotFoundError):
    """A dataset's meta-info file or all of its images are not where its layout puts them (one-line message)."""


@functools.lru_cache(maxsize=1)
def _read_configs(path: str) -> dict[str, dict]:
    import yaml  # pyiqa's own dependency

    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a mapping of dataset configs")
    return data


def pyiqa_dataset_configs() -> dict[str, dict]:
    """pyiqa's dataset configs, read from ``default_dataset_configs.yml`` inside the installed pyiqa package.

    The package is located without importing it (importing pyiqa loads every metric architecture).

    Returns:
        ``{key: config}`` exactly as the YAML file holds it (a fresh copy of each entry).

    Raises:
        ModuleNotFoundError: if pyiqa is not installed.
        FileNotFoundError: if the installed pyiqa has no ``default_dataset_configs.yml``.
    """
    spec = importlib.util.find_spec("pyiqa")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pyiqa is not installed (pip install pyiqa): its dataset configs define the layouts")
    path = Path(next(iter(spec.submodule_search_locations))) / "default_dataset_configs.yml"
    if not path.is_file():
        raise FileNotFoundError(f"the installed pyiqa has no dataset configs at {path}")
    return {key: dict(value) for key, value in _read_configs(str(path)).items()}


def under_root(config_path: str, root: Path) -> Path:
    """A config path (``./datasets/CSIQ/dst_imgs``) re-rooted as pyiqa's ``load_dataset`` does (``<root>/CSIQ/…``)."""
    parts = PurePosixPath(str(config_path)).parts
    return root.joinpath(*parts[1:]) if len(parts) > 1 else root / parts[0]


@dataclass(frozen=True)
class PyiqaFRSpec:
    """Where one full-reference dataset lives under a root, and its score direction.

    Attributes:
        key: pyiqa's config key (``"tid2013"``).
        name: pyiqa's display name (``"TID2013"``).
        dataset_type: pyiqa's dataset class (``"GeneralFRDataset"`` or ``"PieAPPDataset"``).
        target_dir: folder of the distorted images.
        ref_dir: folder of the reference images.
        meta_info: the meta-info CSV.
        lower_better: True when a higher score means worse quality (DMOS).
        direction_source: where ``lower_better`` came from.
        mos_range: the config's ``mos_range`` (informative), or None.
    """

    key: str
    name: str
    dataset_type: str
    target_dir: Path
    ref_dir: Path
    meta_info: Path
    lower_better: bool
    direction_source: str
    mos_range: tuple[float, float] | None


def pyiqa_fr_spec(dataset: str, root: str | os.PathLike[str], configs: Mapping[str, Mapping] | None = None
                  ) -> PyiqaFRSpec:
    """The layout of one full-reference dataset under ``root`` (pyiqa's ``./datasets`` folder).

    Args:
        dataset: pyiqa's config key, one of :data:`PYIQA_FR_DATASETS` (or another full-reference entry).
        root: the folder playing pyiqa's ``./datasets``.
        configs: dataset configs (default: :func:`pyiqa_dataset_configs`).

    Returns:
        A :class:`PyiqaFRSpec`.

    Raises:
        ValueError: if the key is unknown, not full-reference, or its direction is unknown.
    """
    configs = pyiqa_dataset_configs() if configs is None else configs
    if dataset not in configs:
        known = [k for k, c in configs.items() if c.get("type") in _FR_TYPES]
        raise ValueError(f"unknown dataset {dataset!r}; pyiqa's full-reference datasets: {', '.join(known)}")
    config = configs[dataset]
    kind = str(config.get("type", ""))
    if kind not in _FR_TYPES:
        raise ValueError(f"{dataset!r} is a {kind or 'untyped'} dataset in pyiqa's config, not full-reference")
    if "lower_better" in config:
        lower_better, source = bool(config["lower_better"]), "pyiqa default_dataset_configs.yml"
    elif dataset in _DIRECTION_WITHOUT_CONFIG:
        lower_better, source = _DIRECTION_WITHOUT_CONFIG[dataset]
    else:
        raise ValueError(f"pyiqa's config of {dataset!r} states no score direction (lower_better)")
    root_path = Path(root)
    target = under_root(config["dataroot_target"], root_path)
    ref = under_root(config["dataroot_ref"], root_path) if config.get("dataroot_ref") else target
    mos_range = config.get("mos_range")
    return PyiqaFRSpec(
        key=dataset, name=str(config.get("name", dataset)), dataset_type=kind, target_dir=target, ref_dir=ref,
        meta_info=under_root(config["meta_info_file"], root_path), lower_better=lower_better,
        direction_source=source, mos_range=tuple(float(v) for v in mos_range) if mos_range else None,
    )


@dataclass(frozen=True)
class FRRecord:
    """One labelled (distorted, reference) pair.

    It carries the attribute names of :class:`benchmarks.datasets.live.LiveRecord` (``dist_path``,
    ``ref_path``, ``dmos``, ``ref_name``, ``dist_name``, ``dist_type``) so that code written for LIVE records
    runs on any dataset; ``dmos`` is the label oriented lower-is-better (see below).

    Attributes:
        dist_path: the distorted image.
        ref_path: its reference image.
        label: the subjective score as written in the meta-info file.
        lower_better: direction of ``label`` (True for a DMOS).
        ref_name: the reference as the meta-info file names it (the reference group).
        dist_name: the distorted image as the meta-info file names it.
        dist_type: distortion type when the layout encodes it (folder or file-name pattern), else ``""``.
        dataset: pyiqa's key of the dataset.
    """

    dist_path: Path
    ref_path: Path
    label: float
    lower_better: bool
    ref_name: str
    dist_name: str
    dist_type: str
    dataset: str

    @property
    def dmos(self) -> float:
        """The label oriented lower-is-better: the label of a DMOS dataset, minus the label of a MOS dataset.

        Rank correlations with it equal, up to sign, those with :attr:`label` (exactly, since negation is exact).
        """
        return self.label if self.lower_better else -self.label


@dataclass(frozen=True)
class FRIndex(IndexCounts):
    """The labelled rows of one (possibly partial) dataset, split into found and missing.

    Attributes:
        spec: where the dataset lives and its direction.
        records: rows whose distorted and reference images both exist, in meta-info order.
        missing_records: rows with a missing image.
        label_column: header of the score column that was read.
    """

    spec: PyiqaFRSpec
    records: tuple[FRRecord, ...]
    missing_records: tuple[FRRecord, ...]
    label_column: str

    @property
    def dataset(self) -> str:
        """pyiqa's key of the dataset."""
        return self.spec.key

    @property
    def higher_is_better_label(self) -> bool:
        """True for a MOS dataset."""
        return not self.spec.lower_better

    @property
    def labels(self) -> np.ndarray:
        """Labels of the found rows as written, shape (N,) float64."""
        return np.array([r.label for r in self.records], dtype=np.float64)

    @property
    def groups(self) -> list[str]:
        """Reference group of every found row (``ref_name``), for leave-one-reference-out splits."""
        return [r.ref_name for r in self.records]

    def summary(self) -> str:
        """One line, e.g. ``"tid2013: 120/3000 labelled pairs found (2880 missing), MOS (higher = better) …"``."""
        direction = "DMOS (lower = better)" if self.spec.lower_better else "MOS (higher = better)"
        refs = len(set(self.groups))
        types = Counter(r.dist_type for r in self.records if r.dist_type)
        by_type = f" [{', '.join(f'{t} {n}' for t, n in sorted(types.items()))}]" if types else ""
        return (f"{self.spec.key}: {self.found}/{self.total} labelled pairs found ({self.missing} missing), "
                f"{refs} references, {direction} from {self.spec.direction_source}, images under "
                f"{self.spec.target_dir}{by_type}")


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        rows = [(line, row) for line, row in enumerate(reader, start=2) if any(cell.strip() for cell in row)]
    return header, rows


def _dist_type(dataset: str, dist_name: str) -> str:
    pattern = _DIST_TYPE_PATTERNS.get(dataset)
    name = PurePosixPath(dist_name)
    if pattern is not None:
        match = pattern.match(name.name)
        return match.group(1) if match else ""
    return name.parent.name if str(name.parent) not in ("", ".") else ""


def _triples(spec: PyiqaFRSpec, header: list[str], rows: list[tuple[int, list[str]]]
             ) -> tuple[str, list[tuple[str, str, float]]]:
    """(label column, [(ref name, dist name, label)]) of the rows pyiqa evaluates."""
    path = spec.meta_info
    if spec.dataset_type == "PieAPPDataset":
        missing = [c for c in _PIEAPP_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path} lacks PieAPP column(s) {missing} (has {header})")
        ref_i, dist_i, score_i = (header.index(c) for c in _PIEAPP_COLUMNS)
        out, seen = [], set()
        for line, row in rows:
            cells = row + [""] * (len(header) - len(row))
            if not cells[score_i].strip():
                continue  # a train/val pair: no per-image score
            triple = (cells[ref_i].strip(), cells[dist_i].strip(),
                      parse_label(cells[score_i], path, line, _PIEAPP_COLUMNS[2]))
            if triple[:2] not in seen:
                seen.add(triple[:2])
                out.append(triple)
        return _PIEAPP_COLUMNS[2], out
    if len(header) < 3:
        raise ValueError(f"{path} needs at least 3 columns (reference, distorted, score), has {header}")
    out = []
    for line, row in rows:
        if len(row) < 3:
            raise ValueError(f"{path}:{line}: expected 3 or more columns, got {len(row)}")
        out.append((row[0].strip(), row[1].strip(), parse_label(row[2], path, line, header[2])))
    return header[2], out


def load_pyiqa_fr(
    dataset: str,
    root: str | os.PathLike[str],
    *,
    meta_info: str | os.PathLike[str] | None = None,
    configs: Mapping[str, Mapping] | None = None,
) -> FRIndex:
    """Indexes one full-reference dataset in pyiqa's layout.

    Args:
        dataset: pyiqa's config key (``"tid2013"``, ``"live"``, …; see :data:`PYIQA_FR_DATASETS`).
        root: the folder playing pyiqa's ``./datasets`` (holding ``meta_info/`` and the dataset folders).
        meta_info: a meta-info CSV to use instead of the config's (same column layout).
        configs: dataset configs (default: pyiqa's, :func:`pyiqa_dataset_configs`).

    Returns:
        An :class:`FRIndex` of found and missing rows.

    Raises:
        DatasetMissingError: if the meta-info file is absent or none of the listed images exists.
        ValueError: on an unknown or non-full-reference dataset, or a malformed meta-info file.

    Example:
        >>> load_pyiqa_fr("tid2013", "/nowhere")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        benchmarks.datasets.pyiqa_layouts.DatasetMissingError: tid2013: no meta-info file at /nowhere/meta_info/...
    """
    spec = pyiqa_fr_spec(dataset, root, configs)
    if meta_info is not None:
        spec = replace(spec, meta_info=Path(meta_info))
    if not spec.meta_info.is_file():
        raise DatasetMissingError(
            f"{dataset}: no meta-info file at {spec.meta_info} (pyiqa layout: distorted images under "
            f"{spec.target_dir}, references under {spec.ref_dir}, meta-info CSV in {spec.meta_info.parent})")
    header, rows = _read_rows(spec.meta_info)
    label_column, triples = _triples(spec, header, rows)
    if not triples:
        raise ValueError(f"{spec.meta_info} lists no labelled full-reference pair")
    found, missing = split_found([
        FRRecord(dist_path=spec.target_dir / dist_name, ref_path=spec.ref_dir / ref_name, label=label,
                 lower_better=spec.lower_better, ref_name=ref_name, dist_name=dist_name,
                 dist_type=_dist_type(dataset, dist_name), dataset=dataset)
        for ref_name, dist_name, label in triples
    ])
    if not found:
        first = missing[0]
        raise DatasetMissingError(
            f"{dataset}: none of the {len(missing)} pairs listed in {spec.meta_info} was found (expected e.g. "
            f"{first.dist_path} and its reference {first.ref_path})")
    return FRIndex(spec=spec, records=tuple(found), missing_records=tuple(missing), label_column=label_column)
