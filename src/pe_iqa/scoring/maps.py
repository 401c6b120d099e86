"""Distance-map overlays of scored pairs (``pe-iqa score --maps DIR``): one PNG per pair, named after the pair.

Each PNG shows the pair's combined distance map (:meth:`pe_iqa.PEDistance.maps`, perceptually uniform colour map,
colour bar in distance units) over a grey version of the reference, titled with the file names and the score.
Files are written atomically and never onto an existing file's place unless it is a map of the same pair: a rerun
(``--resume``) skips the pairs whose map exists, and under ``torchrun`` each process draws its own shard.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..image_io import read_pair
from ..plotting import save_figure
from .distributed import launch_rank, shard_range
from .pairs import ScorePair

__all__ = ["MapReport", "map_file_names", "write_distance_maps"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def map_file_names(pairs: Sequence[ScorePair]) -> list[str]:
    """``<distorted stem>__vs__<reference stem>.png`` per pair; the pair's index is prefixed where names repeat."""
    names = [f"{_UNSAFE.sub('_', p.distorted.stem)}__vs__{_UNSAFE.sub('_', p.reference.stem)}.png" for p in pairs]
    repeated = {n for n, count in Counter(names).items() if count > 1}
    return [f"{i:06d}_{n}" if n in repeated else n for i, n in enumerate(names)]


@dataclass(frozen=True)
class MapReport:
    """What :func:`write_distance_maps` did: maps written, skipped (already there) and failures."""

    written: int
    skipped: int
    failures: tuple[tuple[int, str], ...]


@torch.no_grad()
def write_distance_maps(
    pairs: Sequence[ScorePair],
    metric: object,
    folder: str | os.PathLike[str],
    skip: set[int] | frozenset[int] = frozenset(),
    alpha: str = "error",
    dpi: int = 100,
) -> MapReport:
    """Write one distance-map overlay per pair (this process's torchrun shard), skipping existing files.

    Args:
        pairs: the pairs, in input order (their index names a repeated file).
        metric: a :class:`~pe_iqa.PEDistance` (any preset).
        folder: where the PNGs go (created if missing).
        skip: indices of pairs not to draw (e.g. pairs that failed to score).
        alpha: the reader's policy for transparent pixels (as ``pe-iqa score --alpha``).
        dpi: resolution of the PNGs.

    Returns:
        A :class:`MapReport`; a pair that cannot be read or scored is a failure, not an exception.
    """
    from ..explain import map_figure
    from ..plotting import require_matplotlib

    require_matplotlib()  # once, not as every pair's failure
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = map_file_names(pairs)
    rank, world = launch_rank()
    written = skipped = 0
    failures = []
    device = metric.device
    for index in shard_range(len(pairs), rank, world):
        path = folder / names[index]
        if index in skip or path.exists():
            skipped += 1
            continue
        pair = pairs[index]
        try:
            dist, ref = (t.to(device) for t in read_pair(pair.distorted, pair.reference, alpha=alpha))
            maps = metric.maps(dist, ref)
            figure = map_figure(maps, ref, f"{pair.distorted.name} vs {pair.reference.name}")
            save_figure(figure, path, dpi=dpi)
            written += 1
        except Exception as error:  # one pair's failure never stops the others' maps
            failures.append((index, f"{type(error).__name__}: {error}"))
    return MapReport(written, skipped, tuple(failures))
