"""Dataset adapters: LIVE Release 2 and BAPPS (2AFC and JND), tolerant of partial copies."""

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

__all__ = [
    "JND_SUBSETS",
    "LIVE_DISTORTION_TYPES",
    "TWOAFC_SUBSETS",
    "BappsIndex",
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
    "load_live_index",
    "make_bapps_loader",
    "make_live_loader",
]
