"""One entry point for full-reference datasets: pyiqa's layouts, and LIVE's official release.

:func:`load_fr_dataset` returns an :class:`~benchmarks.datasets.pyiqa_layouts.FRIndex` either way, so the
runners do not care where the data came from. LIVE is the one dataset with an official-layout adapter here
(:mod:`benchmarks.datasets.live`); with ``layout="auto"`` a root holding ``databaserelease2/`` is read as the
official release, anything else as pyiqa's ``./datasets``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from benchmarks.datasets.live import load_live_index
from benchmarks.datasets.pyiqa_layouts import DatasetMissingError, FRIndex, FRRecord, PyiqaFRSpec, load_pyiqa_fr

__all__ = ["FRLayout", "live_official_index", "load_fr_dataset"]

FRLayout = Literal["auto", "pyiqa", "official"]


def live_official_index(root: str | os.PathLike[str]) -> FRIndex:
    """LIVE Release 2 in its official layout (``databaserelease2/`` + ``labels/live_dmos.csv``) as an FRIndex.

    Raises:
        DatasetMissingError: if the root, its labels or every labelled image is missing.
    """
    root_path = Path(root)
    try:
        live = load_live_index(root_path, layout="official")
    except FileNotFoundError as error:
        raise DatasetMissingError(f"live (official layout): {error}") from error
    spec = PyiqaFRSpec(key="live", name="LIVE (official release)", dataset_type="official",
                       target_dir=live.image_root, ref_dir=live.image_root, meta_info=live.labels_path,
                       lower_better=True, mos_range=None,
                       direction_source=f"LIVE DMOS ({live.label_column} of {live.labels_path.name})")

    def convert(records):
        return tuple(FRRecord(dist_path=r.dist_path, ref_path=r.ref_path, label=r.dmos, lower_better=True,
                              ref_name=r.ref_name, dist_name=r.dist_name, dist_type=r.dist_type, dataset="live")
                     for r in records)

    if not live.records:
        raise DatasetMissingError(f"live (official layout): none of the {live.total} labelled images of "
                                  f"{live.labels_path} was found under {live.image_root}")
    return FRIndex(spec=spec, records=convert(live.records), missing_records=convert(live.missing_records),
                   label_column=live.label_column)


def load_fr_dataset(dataset: str, root: str | os.PathLike[str], layout: FRLayout = "auto") -> FRIndex:
    """Indexes a full-reference dataset.

    Args:
        dataset: pyiqa's key (``"tid2013"``, ``"live"``, …).
        root: pyiqa's ``./datasets`` folder, or (LIVE, official layout) the folder holding ``databaserelease2/``.
        layout: ``"pyiqa"``, ``"official"`` (LIVE only) or ``"auto"``.

    Returns:
        An :class:`~benchmarks.datasets.pyiqa_layouts.FRIndex`.

    Raises:
        DatasetMissingError: when the data is not where the layout puts it (one-line message).
        ValueError: on an unknown dataset or layout.
    """
    if layout not in ("auto", "pyiqa", "official"):
        raise ValueError(f"layout must be 'auto', 'pyiqa' or 'official', got {layout!r}")
    if layout == "official" and dataset != "live":
        raise ValueError(f"only LIVE has an official-layout adapter; read {dataset!r} in pyiqa's layout")
    official_live = layout == "official" or (layout == "auto" and (Path(root) / "databaserelease2").is_dir())
    if dataset == "live" and official_live:
        return live_official_index(root)
    return load_pyiqa_fr(dataset, root)
