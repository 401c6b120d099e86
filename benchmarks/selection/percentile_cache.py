"""The percentile study's per-image distances on disk, and their computation split over processes by reference.

A cache file is named by everything the distances depend on (images, sets, backbone, weights, scale). A long
configuration (VGG-16 at native resolution) can be computed in ``N`` processes, each scoring the images of every
``N``-th reference (``--shard K/N``) into its own cache file; a later run with ``--shards N`` assembles the full
cache from them (rows back in the study's image order) instead of recomputing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.datasets.live import LiveRecord
from benchmarks.selection.distances import BackboneDistances

__all__ = ["assemble_shards", "cache_file", "load_distances", "save_distances", "shard_records"]


def cache_file(cache_dir: Path, backbone: str, scale: float, records: Sequence[LiveRecord],
               percents: Sequence[float], n_random: int, weights: str) -> Path:
    """A cache file named by everything the distances depend on (images, sets, backbone, weights, scale)."""
    key = "|".join([backbone, weights, f"{scale:g}", ",".join(f"{x:g}" for x in percents), str(n_random),
                    *(f"{Path(r.dist_path).resolve()}>{Path(r.ref_path).resolve()}" for r in records)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"percentile_distances_{backbone}_x{scale:g}_{digest}.npz"


def load_distances(path: Path, backbone: str, scale: float, percents: Sequence[float],
                   n_random: int) -> BackboneDistances:
    """The unit-normalised distances saved by :func:`save_distances`."""
    with np.load(path, allow_pickle=False) as data:
        names = [str(n) for n in data["names"]]
        layers = tuple(str(x) for x in data["layers"])
        sizes_arr, channels = data["sizes"], data["n_channels"]
        return BackboneDistances(
            backbone=backbone, layers=layers, scale=scale, selectors=("pe",), percents=tuple(percents),
            seeds=n_random, n_channels={layer: int(c) for layer, c in zip(layers, channels, strict=True)},
            sizes={n: {layer: int(s) for layer, s in zip(layers, row, strict=True)}
                   for n, row in zip(names, sizes_arr, strict=True)},
            norm={n: data["norm"][q] for q, n in enumerate(names)}, raw={}, seconds=float(data["seconds"]))


def save_distances(dist: BackboneDistances, path: Path) -> None:
    """Write the unit-normalised distances of ``dist`` (atomically: a partial file, then renamed)."""
    names = list(dist.norm)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(partial, names=np.array(names), layers=np.array(dist.layers),
                        sizes=np.array([[dist.sizes[n][layer] for layer in dist.layers] for n in names]),
                        n_channels=np.array([dist.n_channels[layer] for layer in dist.layers]),
                        norm=np.stack([dist.norm[n] for n in names]), seconds=dist.seconds)
    partial.replace(path)


def shard_records(records: Sequence[LiveRecord], shard: int, shards: int) -> list[LiveRecord]:
    """The records of every ``shards``-th reference (sorted by name) from the ``shard``-th, in study order.

    Raises:
        ValueError: unless ``0 <= shard < shards``.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard must be in [0, {shards}), got {shard}")
    keep = set(sorted({r.ref_name for r in records})[shard::shards])
    return [r for r in records if r.ref_name in keep]


def assemble_shards(cache_dir: Path, backbone: str, scale: float, records: Sequence[LiveRecord],
                    percents: Sequence[float], n_random: int, weights: str, shards: int) -> BackboneDistances | None:
    """The full distances from ``shards`` shard caches (rows in ``records`` order); ``None`` if one is missing."""
    parts = [shard_records(records, k, shards) for k in range(shards)]
    paths = [cache_file(cache_dir, backbone, scale, part, percents, n_random, weights) for part in parts]
    if not all(path.exists() for path in paths):
        return None
    loaded = [load_distances(path, backbone, scale, percents, n_random) for path in paths]
    row = {id(r): i for i, r in enumerate(records)}
    order = np.array([row[id(r)] for part in parts for r in part])
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    first = loaded[0]
    norm = {name: np.concatenate([d.norm[name] for d in loaded])[inverse] for name in first.norm}
    return BackboneDistances(backbone=backbone, layers=first.layers, scale=scale, selectors=("pe",),
                             percents=tuple(percents), seeds=n_random, n_channels=first.n_channels,
                             sizes=first.sizes, norm=norm, raw={}, seconds=sum(d.seconds for d in loaded))
