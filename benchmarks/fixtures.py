"""Generators of tiny official-format BAPPS and LIVE-like trees with a *planted* metric.

Every generated image has random noise in its red and blue channels and a **constant green channel** whose
value is chosen by the generator. :func:`planted_distance` reads that value back, so the distance between two
generated images is known in advance::

    planted_distance(x, y) == |green(x) - green(y)|        # in 0..255 grey levels

A constant channel survives resizing exactly, so this holds after the loaders' resize too. The generators
return the planted distances and the human labels they wrote, from which the expected 2AFC score, JND mAP or
correlations can be computed independently of the loaders.

Layouts written:

* BAPPS: ``<root>/dataset/2afc/val/<subset>/{ref,p0,p1,judge}`` and ``<root>/dataset/jnd/val/<subset>/
  {p0,p1,same}`` with files ``000000.png`` / ``000000.npy`` as in the official release.
* LIVE: ``<root>/databaserelease2/{refimgs,<type>}/...bmp`` and ``<root>/labels/live_dmos.csv`` (official),
  or pyiqa's form: images under ``<root>`` and ``<root>/meta_info_LIVEIQADataset.csv``
  (``ref_name,dist_name,mos``).

References:
    See :mod:`benchmarks.datasets.bapps` and :mod:`benchmarks.datasets.live` for the layouts' sources.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from benchmarks.datasets.bapps import JND_SUBSETS, TWOAFC_SUBSETS

__all__ = [
    "BappsFixture",
    "LiveFixture",
    "make_bapps_tree",
    "make_live_tree",
    "planted_distance",
    "planted_image",
]


def planted_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The planted metric: absolute difference of the (constant) green channels, in grey levels.

    Args:
        x: Images of shape (N, 3, H, W), in [0, 1].
        y: Images of shape (N, 3, H, W), in [0, 1].

    Returns:
        Distances of shape (N,), rounded to whole grey levels (exact for generated images).

    Raises:
        ValueError: If the inputs are not 4-D with 3 channels or their shapes differ.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"x must have shape (N, 3, H, W), got {tuple(x.shape)}")
    if y.shape != x.shape:
        raise ValueError(f"y must have the shape of x {tuple(x.shape)}, got {tuple(y.shape)}")
    gx = x[:, 1].mean(dim=(1, 2))
    gy = y[:, 1].mean(dim=(1, 2))
    return torch.round((gx - gy).abs() * 255.0)


def planted_image(rng: np.random.Generator, green: int, height: int, width: int) -> Image.Image:
    """An RGB image with random red/blue noise and the constant green level ``green`` (0..255).

    Raises:
        ValueError: if ``green`` is outside 0..255.
    """
    if not 0 <= green <= 255:
        raise ValueError(f"planted green level {green} is outside 0..255")
    arr = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    arr[..., 1] = green
    return Image.fromarray(arr)


_patch = planted_image


@dataclass(frozen=True)
class BappsFixture:
    """What :func:`make_bapps_tree` wrote.

    Attributes:
        root: The tree root (pass it to the loaders).
        twoafc: Per written 2AFC subset: ``{"d0", "d1", "judge"}`` arrays of shape (N,), in file order, where
            ``d0``/``d1`` are the planted distances ``ref``-``p0`` and ``ref``-``p1``.
        jnd: Per written JND subset: ``{"d", "same"}`` arrays of shape (N,), in file order.
        n_incomplete: Extra ids written per subset without their label file (to be skipped).
    """

    root: Path
    twoafc: dict[str, dict[str, np.ndarray]]
    jnd: dict[str, dict[str, np.ndarray]]
    n_incomplete: int


def make_bapps_tree(
    root: str | os.PathLike[str],
    n_per_subset: int = 8,
    seed: int = 0,
    twoafc_subsets: Sequence[str] = TWOAFC_SUBSETS,
    jnd_subsets: Sequence[str] = JND_SUBSETS,
    size: int = 64,
    n_incomplete: int = 0,
) -> BappsFixture:
    """Writes a tiny BAPPS tree in the official layout with planted distances and random human labels.

    2AFC triplets include ties ``d0 == d1`` (every fourth triplet) and judges that are multiples of 1/5; JND
    pairs have distinct distances within a subset and ``same`` fractions that are multiples of 1/5 (at least
    one positive).

    Args:
        root: Output folder (created; existing files with the same names are overwritten).
        n_per_subset: Triplets/pairs per subset (>= 1, at most 60 so that JND distances stay distinct).
        seed: Random seed.
        twoafc_subsets: 2AFC validation subsets to write (omit some to simulate a partial copy).
        jnd_subsets: JND subsets to write.
        size: Side of the square patches (64 in the official data).
        n_incomplete: Extra ids per subset whose label file (``judge``/``same``) is not written.

    Returns:
        A :class:`BappsFixture` with the planted distances and labels.

    Raises:
        ValueError: If ``n_per_subset``, ``size`` or ``n_incomplete`` is out of range or a subset is unknown.
    """
    if not isinstance(n_per_subset, int) or not 1 <= n_per_subset <= 60:
        raise ValueError(f"n_per_subset must be an int in [1, 60], got {n_per_subset!r}")
    if not isinstance(size, int) or size < 4:
        raise ValueError(f"size must be an int >= 4, got {size!r}")
    if not isinstance(n_incomplete, int) or n_incomplete < 0:
        raise ValueError(f"n_incomplete must be a non-negative int, got {n_incomplete!r}")
    for name, given, known in (
        ("twoafc_subsets", twoafc_subsets, TWOAFC_SUBSETS),
        ("jnd_subsets", jnd_subsets, JND_SUBSETS),
    ):
        unknown = [s for s in given if s not in known]
        if unknown:
            raise ValueError(f"{name} has unknown subset(s) {unknown}; known: {list(known)}")
    root_path = Path(root)
    rng = np.random.default_rng(seed)
    n_total = n_per_subset + n_incomplete

    twoafc: dict[str, dict[str, np.ndarray]] = {}
    for subset in twoafc_subsets:
        base = root_path / "dataset" / "2afc" / "val" / subset
        for folder in ("ref", "p0", "p1", "judge"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        d0 = np.zeros(n_per_subset)
        d1 = np.zeros(n_per_subset)
        judge = np.zeros(n_per_subset)
        for i in range(n_total):
            g_ref = int(rng.integers(80, 176))
            k0 = int(rng.integers(0, 61))
            k1 = k0 if i % 4 == 3 else int(rng.integers(0, 61))
            g0 = g_ref + k0 * int(rng.choice([-1, 1]))
            g1 = g_ref + k1 * int(rng.choice([-1, 1]))
            stem = f"{i:06d}"
            _patch(rng, g_ref, size, size).save(base / "ref" / f"{stem}.png")
            _patch(rng, g0, size, size).save(base / "p0" / f"{stem}.png")
            _patch(rng, g1, size, size).save(base / "p1" / f"{stem}.png")
            if i < n_per_subset:
                h = float(rng.integers(0, 6)) / 5.0
                np.save(base / "judge" / f"{stem}.npy", np.array([h]))
                d0[i], d1[i], judge[i] = k0, k1, h
        twoafc[subset] = {"d0": d0, "d1": d1, "judge": judge}

    jnd: dict[str, dict[str, np.ndarray]] = {}
    for subset in jnd_subsets:
        base = root_path / "dataset" / "jnd" / "val" / subset
        for folder in ("p0", "p1", "same"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        ks = rng.permutation(61)[:n_total]
        same = rng.integers(0, 6, size=n_per_subset) / 5.0
        if not np.any(same > 0):
            same[0] = 1.0
        for i in range(n_total):
            g = int(rng.integers(80, 176))
            g1 = g + int(ks[i]) * int(rng.choice([-1, 1]))
            stem = f"{i:06d}"
            _patch(rng, g, size, size).save(base / "p0" / f"{stem}.png")
            _patch(rng, g1, size, size).save(base / "p1" / f"{stem}.png")
            if i < n_per_subset:
                np.save(base / "same" / f"{stem}.npy", np.array([same[i]]))
        jnd[subset] = {"d": ks[:n_per_subset].astype(np.float64), "same": same}
    return BappsFixture(root=root_path, twoafc=twoafc, jnd=jnd, n_incomplete=n_incomplete)


@dataclass(frozen=True)
class LiveFixture:
    """What :func:`make_live_tree` wrote.

    Attributes:
        root: The tree root (pass it to :func:`benchmarks.datasets.live.load_live_index`).
        labels_path: The label CSV.
        n_rows: Labelled rows in the CSV.
        found_dist_names: ``dist_name`` of the rows whose distorted and reference images were written, in
            CSV order.
        dmos: DMOS of those rows, in the same order; the planted distance between each distorted image and
            its reference equals its DMOS.
    """

    root: Path
    labels_path: Path
    n_rows: int
    found_dist_names: tuple[str, ...]
    dmos: np.ndarray

    @property
    def n_found(self) -> int:
        """Rows whose images were written."""
        return len(self.found_dist_names)

    @property
    def n_missing(self) -> int:
        """Rows with a missing distorted or reference image."""
        return self.n_rows - self.n_found


def make_live_tree(
    root: str | os.PathLike[str],
    n_refs: int = 3,
    n_per_type: int = 2,
    dist_types: Sequence[str] = ("jpeg", "wn", "gblur"),
    n_missing_dist: int = 2,
    n_missing_refs: int = 1,
    layout: Literal["official", "pyiqa"] = "official",
    seed: int = 0,
) -> LiveFixture:
    """Writes a tiny LIVE-like tree (BMP images of two sizes plus a DMOS table), partially missing.

    References are ``ref0.bmp, ref1.bmp, ...``; distorted images are numbered ``img1.bmp, img2.bmp, ...``
    within each distortion folder, as in LIVE. Each distorted image's planted distance to its reference equals
    its DMOS (distinct integers in 1..100). The last ``n_missing_refs`` references are not written (all their
    rows go missing), nor are ``n_missing_dist`` distorted images of the other references.

    Args:
        root: Output folder.
        n_refs: Number of reference images.
        n_per_type: Distorted images per reference and distortion type.
        dist_types: Distortion folders to use.
        n_missing_dist: Labelled distorted images not written (among those of written references).
        n_missing_refs: References not written.
        layout: ``"official"`` (``databaserelease2/`` + ``labels/live_dmos.csv``) or ``"pyiqa"`` (images under
            ``root`` + ``meta_info_LIVEIQADataset.csv`` with ``ref_name,dist_name,mos``).
        seed: Random seed.

    Returns:
        A :class:`LiveFixture`.

    Raises:
        ValueError: If a count is out of range or ``layout`` is unknown.
    """
    if layout not in ("official", "pyiqa"):
        raise ValueError(f"layout must be 'official' or 'pyiqa', got {layout!r}")
    if n_refs < 1 or n_per_type < 1 or not dist_types:
        raise ValueError("n_refs, n_per_type and dist_types must be positive/non-empty")
    if not 0 <= n_missing_refs <= n_refs:
        raise ValueError(f"n_missing_refs must be in [0, n_refs], got {n_missing_refs!r}")
    n_rows = n_refs * n_per_type * len(dist_types)
    if n_rows > 100:
        raise ValueError(f"at most 100 labelled rows are supported (distinct DMOS in 1..100), got {n_rows}")
    n_candidates = (n_refs - n_missing_refs) * n_per_type * len(dist_types)
    if not 0 <= n_missing_dist <= n_candidates:
        raise ValueError(f"n_missing_dist must be in [0, {n_candidates}], got {n_missing_dist!r}")

    root_path = Path(root)
    image_root = root_path / "databaserelease2" if layout == "official" else root_path
    rng = np.random.default_rng(seed)
    dmos_values = rng.permutation(np.arange(1, 101))[:n_rows]
    skip_dist = set(rng.permutation(n_candidates)[:n_missing_dist].tolist())
    sizes = [(40, 56), (56, 40)]  # (H, W): two sizes, like LIVE's landscape/portrait images

    (image_root / "refimgs").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    found: list[str] = []
    found_dmos: list[float] = []
    counters = dict.fromkeys(dist_types, 0)
    candidate = 0
    for j in range(n_refs):
        ref_written = j < n_refs - n_missing_refs
        height, width = sizes[j % 2]
        g_ref = 20 + (10 * j) % 50
        ref_rel = f"refimgs/ref{j}.bmp"
        if ref_written:
            _patch(rng, g_ref, height, width).save(image_root / ref_rel)
        for dist_type in dist_types:
            (image_root / dist_type).mkdir(parents=True, exist_ok=True)
            for _ in range(n_per_type):
                counters[dist_type] += 1
                dist_rel = f"{dist_type}/img{counters[dist_type]}.bmp"
                dmos = float(dmos_values[len(rows)])
                rows.append({"ref_name": ref_rel, "dist_name": dist_rel, "dist_type": dist_type, "dmos": dmos})
                if not ref_written:
                    continue
                write = candidate not in skip_dist
                candidate += 1
                if write:
                    _patch(rng, g_ref + int(dmos), height, width).save(image_root / dist_rel)
                    found.append(dist_rel)
                    found_dmos.append(dmos)

    if layout == "official":
        labels_path = root_path / "labels" / "live_dmos.csv"
        labels_path.parent.mkdir(parents=True, exist_ok=True)
        fields = ["ref_name", "dist_name", "dist_type", "dmos", "dmos_realigned"]
        out_rows = [{**r, "dmos_realigned": 1.5 * float(r["dmos"]) - 10.0} for r in rows]
    else:
        labels_path = root_path / "meta_info_LIVEIQADataset.csv"
        fields = ["ref_name", "dist_name", "mos"]
        out_rows = [{"ref_name": r["ref_name"], "dist_name": r["dist_name"], "mos": r["dmos"]} for r in rows]
    with labels_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(out_rows)
    return LiveFixture(
        root=root_path,
        labels_path=labels_path,
        n_rows=n_rows,
        found_dist_names=tuple(found),
        dmos=np.array(found_dmos, dtype=np.float64),
    )
