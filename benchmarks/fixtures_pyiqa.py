"""Generators of tiny datasets in pyiqa's layouts, with a planted metric (see :mod:`benchmarks.fixtures`).

Every distorted image's planted distance to its reference (:func:`benchmarks.fixtures.planted_distance`) is a
distinct integer ``d`` in 1..100, and its label is a monotone function of ``d`` in the dataset's direction:
``label = lo + (hi - lo)·d/101`` for a DMOS dataset (lower = better) and ``lo + (hi - lo)·(101 - d)/101`` for
a MOS one, with ``(lo, hi)`` the config's ``mos_range``. So the planted metric has SRCC exactly +1 against
humans once the direction is right, and -1 if an adapter gets the direction wrong.

Paths and directions come from pyiqa's own ``default_dataset_configs.yml`` (read, as the adapter does, from the
installed package); file names and meta-info headers imitate each dataset's real meta-info files (positional
columns with the real header names, e.g. ``hq_name,dist_name,elo_score`` for PIPAL, ``…,dmos,std`` holding a
MOS for KADID-10k; PieAPP's seven columns with repeated test rows and train rows without per-image scores).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.datasets.bapps import JND_SUBSETS, TWOAFC_SUBSETS
from benchmarks.datasets.pyiqa_layouts import PYIQA_FR_DATASETS, pyiqa_dataset_configs, pyiqa_fr_spec, under_root
from benchmarks.fixtures import BappsFixture, make_bapps_tree, planted_image

__all__ = ["PyiqaBappsFixture", "PyiqaFRFixture", "make_pyiqa_bapps_tree", "make_pyiqa_fr_tree"]

Namer = Callable[[int, int, int], tuple[str, str]]
_TYPES = ("jpeg", "wn", "gblur", "jp2k")
_CSIQ_TYPES = ("AWGN", "JPEG", "BLUR", "jpeg2000")

#: (reference j, distortion type t, level k) -> (ref_name, dist_name) as each dataset's meta-info file writes them.
_NAMERS: dict[str, Namer] = {
    "live": lambda j, t, k: (f"refimgs/ref{j}.bmp", f"{_TYPES[t]}/img{j * 10 + k + 1}.bmp"),
    "livem": lambda j, t, k: (f"Part 1/blurjpeg/scene{j}.bmp", f"Part 1/blurjpeg/scene{j}_blur{t + 1}_jpeg{k + 1}.bmp"),
    "csiq": lambda j, t, k: (f"scene{j}.png", f"scene{j}.{_CSIQ_TYPES[t]}.{k + 1}.png"),
    "tid2008": lambda j, t, k: (f"I{j + 1:02d}.BMP", f"i{j + 1:02d}_{t + 1:02d}_{k + 1}.bmp"),
    "tid2013": lambda j, t, k: (f"I{j + 1:02d}.BMP", f"i{j + 1:02d}_{t + 1:02d}_{k + 1}.bmp"),
    "kadid10k": lambda j, t, k: (f"I{j + 1:02d}.png", f"I{j + 1:02d}_{t + 1:02d}_{k + 1:02d}.png"),
    "pipal": lambda j, t, k: (f"A{j + 1:04d}.bmp", f"A{j + 1:04d}_{t:02d}_{k:02d}.bmp"),
    "pieapp": lambda j, t, k: (f"reference_images/test/ref_{j}.png",
                               f"distorted_images/test/ref_{j}/distort_{j}_{_TYPES[t]}_inter_{k}.png"),
}
_HEADERS: dict[str, tuple[str, ...]] = {
    "live": ("ref_name", "dist_name", "mos"),
    "livem": ("ref_name", "dist_name", "dmos"),
    "csiq": ("ref_name", "dist_name", "dmos"),
    "tid2008": ("ref_name", "dist_name", "mos", "std"),
    "tid2013": ("ref_name", "dist_name", "mos", "std"),
    "kadid10k": ("ref_name", "dist_name", "dmos", "std"),
    "pipal": ("hq_name", "dist_name", "elo_score"),
}
_PIEAPP_HEADER = ("ref_img_path", "dist_imgA_path", "dist_imgB_path", "raw preference for A",
                  "processed preference for A", "per_img score for dist_imgB", "split")


@dataclass(frozen=True)
class PyiqaFRFixture:
    """What :func:`make_pyiqa_fr_tree` wrote.

    Attributes:
        root: the folder playing pyiqa's ``./datasets``.
        dataset: pyiqa's key.
        meta_info: the meta-info CSV.
        lower_better: the direction the labels were written in (the config's).
        n_rows: labelled pairs the adapter should read (PieAPP: distinct test pairs).
        found_dist_names: ``dist_name`` of the pairs whose images were written, in meta-info order.
        ref_names: their ``ref_name``.
        planted: their planted distances ``d`` (distinct integers in 1..100).
        labels: their labels as written.
    """

    root: Path
    dataset: str
    meta_info: Path
    lower_better: bool
    n_rows: int
    found_dist_names: tuple[str, ...]
    ref_names: tuple[str, ...]
    planted: np.ndarray
    labels: np.ndarray

    @property
    def n_found(self) -> int:
        """Pairs whose images were written."""
        return len(self.found_dist_names)


def _label(d: float, lower_better: bool, mos_range: Sequence[float] | None) -> float:
    lo, hi = (float(mos_range[0]), float(mos_range[1])) if mos_range else (0.0, 10.0)
    fraction = d / 101.0 if lower_better else (101.0 - d) / 101.0
    return round(lo + (hi - lo) * fraction, 6)


def make_pyiqa_fr_tree(
    root: str | os.PathLike[str],
    dataset: str,
    n_refs: int = 3,
    n_types: int = 2,
    n_levels: int = 2,
    n_missing_dist: int = 1,
    n_missing_refs: int = 0,
    seed: int = 0,
    configs: Mapping[str, Mapping] | None = None,
) -> PyiqaFRFixture:
    """Writes a tiny full-reference dataset in pyiqa's layout under ``root`` (pyiqa's ``./datasets``).

    Args:
        root: output folder (several datasets may share it; each writes its own folders and meta-info file).
        dataset: pyiqa's key, one of :data:`~benchmarks.datasets.pyiqa_layouts.PYIQA_FR_DATASETS`.
        n_refs: references; ``n_types`` × ``n_levels`` distorted images each (at most 100 in all).
        n_types: distortion types per reference (at most 4).
        n_levels: levels per type.
        n_missing_dist: listed distorted images not written (among those of written references).
        n_missing_refs: listed references not written (the last ones; their pairs go missing).
        seed: random seed.
        configs: dataset configs (default: the installed pyiqa's).

    Returns:
        A :class:`PyiqaFRFixture`.

    Raises:
        ValueError: on an unknown dataset or out-of-range counts.
    """
    if dataset not in PYIQA_FR_DATASETS:
        raise ValueError(f"dataset must be one of {PYIQA_FR_DATASETS}, got {dataset!r}")
    n_rows = n_refs * n_types * n_levels
    if not (1 <= n_types <= 4 and n_levels >= 1 and n_refs >= 1 and n_rows <= 100):
        raise ValueError("need n_refs, n_levels >= 1, 1 <= n_types <= 4 and at most 100 pairs")
    n_candidates = (n_refs - n_missing_refs) * n_types * n_levels
    if not (0 <= n_missing_refs < n_refs and 0 <= n_missing_dist < n_candidates):
        raise ValueError("n_missing_refs/n_missing_dist leave no pair to find")
    configs = pyiqa_dataset_configs() if configs is None else configs
    spec = pyiqa_fr_spec(dataset, root, configs)
    rng = np.random.default_rng(seed)
    planted = rng.permutation(np.arange(1, 101))[:n_rows]
    skip = set(rng.permutation(n_candidates)[:n_missing_dist].tolist())
    ref_root = spec.ref_dir  # PieAPP: the target folder (its config has no dataroot_ref)
    rows: list[tuple[str, str, float]] = []
    found: list[tuple[str, str, float, float]] = []
    candidate = 0
    for j in range(n_refs):
        height, width = ((40, 56), (56, 40))[j % 2]  # two sizes; large enough for AlexNet's five taps
        green = 40 + 20 * (j % 3)
        ref_written = j < n_refs - n_missing_refs
        for t in range(n_types):
            for k in range(n_levels):
                ref_name, dist_name = _NAMERS[dataset](j, t, k)
                d = float(planted[len(rows)])
                label = _label(d, spec.lower_better, spec.mos_range)
                rows.append((ref_name, dist_name, label))
                if not ref_written:
                    continue
                if not (ref_root / ref_name).is_file():
                    (ref_root / ref_name).parent.mkdir(parents=True, exist_ok=True)
                    planted_image(rng, green, height, width).save(ref_root / ref_name)
                if candidate not in skip:
                    (spec.target_dir / dist_name).parent.mkdir(parents=True, exist_ok=True)
                    planted_image(rng, green + int(d), height, width).save(spec.target_dir / dist_name)
                    found.append((ref_name, dist_name, d, label))
                candidate += 1
    spec.meta_info.parent.mkdir(parents=True, exist_ok=True)
    with spec.meta_info.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if dataset == "pieapp":
            _write_pieapp_rows(writer, rows)
        else:
            header = _HEADERS[dataset]
            writer.writerow(header)
            writer.writerows([ref, dist, label, *(["0.1"] * (len(header) - 3))] for ref, dist, label in rows)
    return PyiqaFRFixture(
        root=Path(root), dataset=dataset, meta_info=spec.meta_info, lower_better=spec.lower_better, n_rows=n_rows,
        found_dist_names=tuple(f[1] for f in found), ref_names=tuple(f[0] for f in found),
        planted=np.array([f[2] for f in found]), labels=np.array([f[3] for f in found]),
    )


def _write_pieapp_rows(writer, rows: Sequence[tuple[str, str, float]]) -> None:
    """PieAPP's meta-info rows: a train pair without per-image score, then each test image twice as image B."""
    writer.writerow(_PIEAPP_HEADER)
    writer.writerow(["reference_images/train/ref_99.png", "distorted_images/train/ref_99/a.png",
                     "distorted_images/train/ref_99/b.png", "0.4", "0.41", "", "0"])
    for ref, dist, label in rows:
        for other in ("distorted_images/test/first.png", "distorted_images/test/second.png"):
            writer.writerow([ref, other, dist, "0.5", "", label, "2"])


@dataclass(frozen=True)
class PyiqaBappsFixture:
    """What :func:`make_pyiqa_bapps_tree` wrote.

    Attributes:
        root: the folder playing pyiqa's ``./datasets``.
        meta_info: pyiqa's BAPPS meta-info CSV.
        images: the official tree inside pyiqa's image folder (its planted distances and labels).
        unlisted: per 2AFC subset, stems present on disk but absent from the meta-info file.
        missing_listed: per 2AFC subset, listed stems whose ``p1`` image was deleted.
    """

    root: Path
    meta_info: Path
    images: BappsFixture
    unlisted: dict[str, tuple[str, ...]]
    missing_listed: dict[str, tuple[str, ...]]


def make_pyiqa_bapps_tree(
    root: str | os.PathLike[str],
    n_per_subset: int = 6,
    seed: int = 0,
    twoafc_subsets: Sequence[str] = TWOAFC_SUBSETS,
    jnd_subsets: Sequence[str] = JND_SUBSETS,
) -> PyiqaBappsFixture:
    """Writes BAPPS in pyiqa's layout: the official tree in pyiqa's image folder plus pyiqa's meta-info CSV.

    In each 2AFC subset the last triplet is left out of the CSV (pyiqa's listing decides what is evaluated) and
    the ``p1`` image of the first listed triplet is deleted (an incomplete row). A train-split row is listed too
    (ignored by the validation index).

    Args:
        root: output folder (pyiqa's ``./datasets``).
        n_per_subset: triplets/pairs written per subset (>= 3).
        seed: random seed.
        twoafc_subsets: 2AFC validation subsets to write.
        jnd_subsets: JND subsets to write.

    Returns:
        A :class:`PyiqaBappsFixture`.
    """
    if n_per_subset < 3:
        raise ValueError(f"n_per_subset must be >= 3, got {n_per_subset}")
    config = pyiqa_dataset_configs()["bapps"]
    root_path = Path(root)
    image_root = under_root(config["dataroot_target"], root_path)
    meta = under_root(config["meta_info_file"], root_path)
    images = make_bapps_tree(image_root.parent, n_per_subset=n_per_subset, seed=seed,
                             twoafc_subsets=twoafc_subsets, jnd_subsets=jnd_subsets)
    if images.root / "dataset" != image_root:
        raise RuntimeError(f"pyiqa's BAPPS image folder {image_root} is not '<parent>/dataset'")
    unlisted, missing = {}, {}
    meta.parent.mkdir(parents=True, exist_ok=True)
    with meta.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref_img_path", "p0_img_path", "p1_img_path", "judge/same", "split"])
        writer.writerow(["2afc/train/mix/ref/000000.png", "2afc/train/mix/p0/000000.png",
                         "2afc/train/mix/p1/000000.png", "0.5", "0"])
        for subset in twoafc_subsets:
            stems = [f"{i:06d}" for i in range(n_per_subset)]
            unlisted[subset], missing[subset] = (stems[-1],), (stems[0],)
            judges = images.twoafc[subset]["judge"]
            for i, stem in enumerate(stems[:-1]):
                base = f"2afc/val/{subset}"
                writer.writerow([f"{base}/ref/{stem}.png", f"{base}/p0/{stem}.png", f"{base}/p1/{stem}.png",
                                 float(judges[i]), "1"])
            (image_root / "2afc" / "val" / subset / "p1" / f"{stems[0]}.png").unlink()
        for subset in jnd_subsets:
            for i, same in enumerate(images.jnd[subset]["same"]):
                base = f"jnd/val/{subset}"
                writer.writerow(["jnd", f"{base}/p0/{i:06d}.png", f"{base}/p1/{i:06d}.png", float(same), "1"])
    return PyiqaBappsFixture(root=root_path, meta_info=meta, images=images, unlisted=unlisted,
                             missing_listed=missing)
