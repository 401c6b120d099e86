"""Does PE select well? The selection study: controls, paired-bootstrap win counts and cross-validated defaults.

* :mod:`~benchmarks.selection.distances` — the channel sets (H-x/L-x by every selector, F, random-x) and their
  distances from one forward pass per image (the core's Eq. 1 kernel);
* :mod:`~benchmarks.selection.variant_scores`, :mod:`~benchmarks.selection.chromatic` — research-only efficacy
  scores (the shipped core does not import them);
* :mod:`~benchmarks.selection.comparisons` — SROCCs with bootstrap CIs, H vs L / F / random, win counts;
* :mod:`~benchmarks.selection.candidates` — the configuration space and its leave-one-reference-out CV;
* :mod:`~benchmarks.selection.study` — the whole study; :mod:`~benchmarks.selection.report` — its outputs;
  ``python -m benchmarks.selection`` — the command line.
"""

from benchmarks.protocols.bootstrap import PairedBootstrap
from benchmarks.selection.candidates import Candidate, build_candidates, cross_validate, layer_windows
from benchmarks.selection.comparisons import COMPARISONS, Scorer, compare_selectors, srocc_rows, win_counts
from benchmarks.selection.distances import (
    DEFAULT_PERCENTS,
    SELECTORS,
    BackboneDistances,
    compute_backbone_distances,
    set_name,
)
from benchmarks.selection.report import significance_matrix, write_outputs
from benchmarks.selection.study import SelectionStudy, run_selection_study
from benchmarks.selection.variant_scores import SELECTOR_NAMES, rank_by_scores, rank_by_selector

__all__ = [
    "COMPARISONS",
    "DEFAULT_PERCENTS",
    "SELECTORS",
    "SELECTOR_NAMES",
    "BackboneDistances",
    "Candidate",
    "PairedBootstrap",
    "Scorer",
    "SelectionStudy",
    "build_candidates",
    "compare_selectors",
    "compute_backbone_distances",
    "cross_validate",
    "layer_windows",
    "rank_by_scores",
    "rank_by_selector",
    "run_selection_study",
    "set_name",
    "significance_matrix",
    "srocc_rows",
    "win_counts",
    "write_outputs",
]
