"""Distance-map overlays of scored pairs (``pe-iqa score --maps DIR``): one PNG per pair, named after the pair.

Each PNG shows the pair's combined distance map (:meth:`pe_iqa.PEDistance.maps`, perceptually uniform colour map,
colour bar in distance units) over a grey version of the reference, titled with the file names and the score.

Names are unique per pair: ``<distorted stem>__vs__<reference stem>.png``; where two pairs would share a name
(``x.jpg`` and ``x.png`` against one reference, names equal but for case) each gets a short digest of its paths,
and long stems are shortened the same way, so no name exceeds the file system's limit.

Every map carries its provenance in PNG text chunks: the metric's :class:`~pe_iqa.provenance.Provenance` record
(and the alpha policy) and the SHA-256 of both image files. A rerun keeps a map only when both still match;
a map drawn by another metric or from a changed image is drawn again. A PNG in a map's place that is not a pe-iqa
map, or that is one of the run's inputs (an earlier map scored again), is never overwritten (that pair's failure).
Files are written atomically; under ``torchrun`` each process draws its own shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..image_io import read_pair
from ..plotting import save_figure
from ..provenance import Provenance, pe_provenance
from ..safe_files import DestinationError, InputSet, OutputPlan, check_destination
from .distributed import launch_rank, shard_range
from .output import file_sha256
from .pairs import ScorePair

__all__ = ["PROVENANCE_KEY", "MapReport", "check_maps_folder", "map_file_names", "write_distance_maps"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: PNG text chunk holding a map's provenance (JSON).
PROVENANCE_KEY = "pe-iqa provenance"
_MAX_STEM = 80  # characters of each image's stem kept in a name (the rest is replaced by a digest)


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode("utf-8", "surrogateescape")).hexdigest()[:10]


def _stem(path: Path) -> str:
    stem = _UNSAFE.sub("_", path.stem)
    return stem if len(stem) <= _MAX_STEM else f"{stem[:_MAX_STEM - 11]}_{_digest(path.stem)}"


def map_file_names(pairs: Sequence[ScorePair]) -> list[str]:
    """One distinct PNG name per pair (see the module documentation); at most 200 bytes each.

    Example:
        >>> from pathlib import Path
        >>> pairs = [ScorePair(Path(n), Path("r.png")) for n in ("x.jpg", "x.png", "000001_x.png", "y.png")]
        >>> names = map_file_names(pairs)
        >>> len(set(names)), names[3]
        (4, 'y__vs__r.png')
    """
    names = [f"{_stem(p.distorted)}__vs__{_stem(p.reference)}" for p in pairs]
    counts = Counter(n.casefold() for n in names)
    names = [n if counts[n.casefold()] == 1 else f"{n}__{_digest(i, p.distorted, p.reference)}"
             for i, (n, p) in enumerate(zip(names, pairs, strict=True))]
    taken: set[str] = set()
    unique = []
    for index, name in enumerate(names):
        candidate, attempt = name, 0
        while candidate.casefold() in taken:  # a digest that meets another pair's plain name: draw again
            attempt += 1
            candidate = f"{name}__{_digest(index, attempt)}"
        taken.add(candidate.casefold())
        unique.append(candidate + ".png")
    return unique


def check_maps_folder(folder: str | os.PathLike[str], csv: str | os.PathLike[str] | None = None) -> Path:
    """Check (before any scoring) that maps can be written into ``folder`` and that it is not the run's ``--csv``
    too; create it only once both passed (:class:`~pe_iqa.safe_files.OutputPlan`).

    Raises:
        DestinationError: a file or link is in the way, ``folder`` is also the CSV, the folder cannot be created
            (``/proc``, read-only, under a file) or written.
    """
    plan = OutputPlan()
    folder = plan.add_folder(folder, "--maps")
    if csv:
        plan.add(csv, "--csv")
    plan.ready()
    check_destination(folder / ".pe_iqa_write_check.png", what="--maps", kind="png")
    return folder


@dataclass(frozen=True)
class MapReport:
    """What :func:`write_distance_maps` did: maps written, kept (up to date or not to draw), redrawn and failures."""

    written: int
    skipped: int
    failures: tuple[tuple[int, str], ...]
    redrawn: int = 0


def _metadata(record: Provenance, pair: ScorePair) -> dict[str, str]:
    return {PROVENANCE_KEY: json.dumps({"metric": record.to_dict(), "distorted": file_sha256(pair.distorted),
                                        "reference": file_sha256(pair.reference)}, sort_keys=True)}


def _existing_metadata(path: Path) -> str | None:
    """The provenance chunk of an existing PNG (``None``: not a pe-iqa map)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return getattr(image, "text", {}).get(PROVENANCE_KEY)
    except Exception:
        return None


@torch.no_grad()
def write_distance_maps(
    pairs: Sequence[ScorePair],
    metric: object,
    folder: str | os.PathLike[str],
    skip: set[int] | frozenset[int] = frozenset(),
    alpha: str = "error",
    dpi: int = 100,
) -> MapReport:
    """Write one distance-map overlay per pair (this process's torchrun shard), keeping up-to-date maps.

    Args:
        pairs: the pairs, in input order.
        metric: a :class:`~pe_iqa.PEDistance` (any preset).
        folder: where the PNGs go (created if missing).
        skip: indices of pairs not to draw (e.g. pairs that failed to score).
        alpha: the reader's policy for transparent pixels (as ``pe-iqa score --alpha``).
        dpi: resolution of the PNGs.

    Returns:
        A :class:`MapReport`; a pair that cannot be read, scored or written is a failure, not an exception.
    """
    from ..explain_figures import map_figure
    from ..plotting import require_matplotlib

    require_matplotlib()  # once, not as every pair's failure
    folder = check_maps_folder(folder)
    names = map_file_names(pairs)
    record = pe_provenance(metric).with_options(alpha=alpha)
    inputs = InputSet(path for pair in pairs for path in (pair.distorted, pair.reference))
    rank, world = launch_rank()
    written = skipped = redrawn = 0
    failures = []
    device = metric.device
    for index in shard_range(len(pairs), rank, world):
        path = folder / names[index]
        if index in skip:
            skipped += 1
            continue
        pair = pairs[index]
        try:
            metadata = _metadata(record, pair)
            stale = False
            if os.path.lexists(path):
                source = inputs.find(path, path.stat())
                if source is not None:  # an earlier map used as an input is never drawn over
                    raise DestinationError(f"{path} is one of the inputs ({source}); pe-iqa never writes onto an input")
                found = _existing_metadata(path)
                if found is None:
                    raise DestinationError(f"{path} exists and is not a pe-iqa map; it is left as it is")
                if found == metadata[PROVENANCE_KEY]:
                    skipped += 1
                    continue
                stale = True  # another metric or a changed image: drawn again
            dist, ref = (t.to(device) for t in read_pair(pair.distorted, pair.reference, alpha=alpha))
            maps = metric.maps(dist, ref)
            figure = map_figure(maps, ref, f"{pair.distorted.name} vs {pair.reference.name}")
            save_figure(figure, path, dpi=dpi, metadata=metadata)
            written += 1
            redrawn += stale
        except Exception as error:  # one pair's failure never stops the others' maps
            failures.append((index, f"{type(error).__name__}: {error}"))
    return MapReport(written, skipped, tuple(failures), redrawn)
