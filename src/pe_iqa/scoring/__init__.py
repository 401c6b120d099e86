"""Scoring at scale: many (distorted, reference) pairs, several metrics, one decode, resumable CSV, torchrun.

``pe-iqa score`` is a thin layer over this package::

    from pe_iqa.scoring import read_pairs_manifest, score_pairs

    pairs = read_pairs_manifest("pairs.csv")                 # distorted,reference[,mos,...]
    result = score_pairs(pairs, ["pe_alex", "lpips"], device="cuda", workers=8, batch_size=16,
                         csv_path="scores.csv", resume=True)
    result.rows[0]      # {'distorted': ..., 'reference': ..., 'mos': ..., 'pe_alex': 0.01, 'lpips': 0.1, 'error': ''}
    result.means(), result.failures

    # millions of rows: the manifest read as a stream, nothing kept per pair (the rows are in the CSV)
    result = score_pairs(open_pairs_manifest("pairs.csv"), ["pe_alex"], csv_path="scores.csv")
    result.n_ok, result.means()

Modules: :mod:`.pairs` (what to score), :mod:`.metrics` (presets and plugin-provided metrics),
:mod:`.pipeline` (decoding workers, batches, reference features), :mod:`.output` (journals), :mod:`.resume`
(resume and the final CSV), :mod:`.maps` (``score --maps``), :mod:`.distributed` (torchrun sharding), :mod:`.engine`,
:mod:`.result`.
"""

from ..safe_files import DestinationError, atomic_write, check_destination
from .engine import ScoringResult, score_pairs
from .metrics import METRIC_ENTRY_POINTS, MetricUnavailableError, ScoringMetric, build_metric, check_metric_names
from .output import JournalError
from .pairs import ScorePair, open_pairs_manifest, pairs_from_paths, read_pairs_manifest

__all__ = [
    "METRIC_ENTRY_POINTS",
    "DestinationError",
    "JournalError",
    "MetricUnavailableError",
    "ScorePair",
    "ScoringMetric",
    "ScoringResult",
    "atomic_write",
    "build_metric",
    "check_destination",
    "check_metric_names",
    "open_pairs_manifest",
    "pairs_from_paths",
    "read_pairs_manifest",
    "score_pairs",
]
