"""Dataset adapters: LIVE Release 2, BAPPS (2AFC, JND) and pyiqa's full-reference layouts, partial copies included."""

from __future__ import annotations

from benchmarks.datasets.bapps import (
    JND_SUBSETS,
    TWOAFC_SUBSETS,
    BappsIndex,
    JNDDataset,
    JNDRecord,
    TwoAFCDataset,
    TwoAFCRecord,
    collect_2afc_distances,
    collect_jnd_distances,
    load_bapps_2afc,
    load_bapps_jnd,
    make_bapps_loader,
)
from benchmarks.datasets.fr_sources import load_fr_dataset
from benchmarks.datasets.live import (
    LIVE_DISTORTION_TYPES,
    LiveDataset,
    LiveIndex,
    LiveRecord,
    SizeGroupedBatchSampler,
    collect_live_scores,
    load_live_index,
    make_live_loader,
)
from benchmarks.datasets.pyiqa_layouts import (
    PYIQA_FR_DATASETS,
    DatasetMissingError,
    FRIndex,
    FRRecord,
    load_pyiqa_fr,
    pyiqa_dataset_configs,
)

__all__ = [
    "JND_SUBSETS",
    "LIVE_DISTORTION_TYPES",
    "PYIQA_FR_DATASETS",
    "TWOAFC_SUBSETS",
    "BappsIndex",
    "DatasetMissingError",
    "FRIndex",
    "FRRecord",
    "JNDDataset",
    "JNDRecord",
    "LiveDataset",
    "LiveIndex",
    "LiveRecord",
    "SizeGroupedBatchSampler",
    "TwoAFCDataset",
    "TwoAFCRecord",
    "collect_2afc_distances",
    "collect_jnd_distances",
    "collect_live_scores",
    "load_bapps_2afc",
    "load_bapps_jnd",
    "load_fr_dataset",
    "load_live_index",
    "load_pyiqa_fr",
    "make_bapps_loader",
    "make_live_loader",
    "pyiqa_dataset_configs",
]
