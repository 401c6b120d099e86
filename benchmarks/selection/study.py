"""Does PE select well? The whole study on a LIVE-style dataset: distances, comparisons, cross-validation.

For each backbone and each of its layers, the distances of H-x/L-x by every selector, F and random-x subsets
(:mod:`benchmarks.selection.distances`) are scored against DMOS (SROCC), compared with paired-bootstrap intervals
(:mod:`benchmarks.selection.comparisons`) and the configuration choice is cross-validated leaving one reference out
(:mod:`benchmarks.selection.candidates`). VGG-16 runs on images downscaled by ``vgg_scale`` (default 0.5,
antialiased; 384×256 for 768×512 LIVE images): at full size it costs several seconds per image on 2 CPU cores.
AlexNet runs at full size.

References:
    B. Efron, R. Tibshirani. "An Introduction to the Bootstrap". Chapman & Hall, 1993 (paired percentile
    bootstrap).

    R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness of Deep Features
    as a Perceptual Metric". CVPR 2018 (LPIPS).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.datasets.live import DEFAULT_ROOT, LiveRecord, first_per_reference, load_live_index
from benchmarks.protocols.bootstrap import PairedBootstrap
from benchmarks.selection.candidates import cross_validate
from benchmarks.selection.chromatic import chromatic_rankings, chromatic_responses
from benchmarks.selection.comparisons import Scorer, compare_selectors, srocc_rows, win_counts
from benchmarks.selection.distances import DEFAULT_PERCENTS, SELECTORS, BackboneDistances, compute_backbone_distances
from pe_iqa.analysis.ranking_lookup import get_rankings
from pe_iqa.backbones import canonical_name, load_backbone
from pe_iqa.image_io import read_image

__all__ = ["QUICK_PERCENTS", "SelectionStudy", "run_selection_study"]

QUICK_PERCENTS = (10.0, 50.0)
QUICK_SEEDS, QUICK_BOOT, QUICK_PER_REF = 3, 200, 6


@dataclass
class SelectionStudy:
    """Everything one run of the study produced (rows are plain dicts, as written to the CSV files)."""

    dists: list[BackboneDistances]
    labels: np.ndarray
    groups: list[str]
    srocc: list[dict[str, object]]
    comparisons: list[dict[str, object]]
    wins_by_layer: list[dict[str, object]]
    wins_total: list[dict[str, object]]
    cv_summary: list[dict[str, object]]
    cv_folds: list[dict[str, object]]
    lpips: np.ndarray | None
    n_boot: int
    index_summary: str
    timings: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def _lpips_scores(records: Sequence[LiveRecord]) -> np.ndarray:
    """pyiqa ``lpips`` (LPIPS v0.1, AlexNet) of every pair at full size, shape (N,) (lower = more similar)."""
    import pyiqa  # optional dependency: imported only when LPIPS is asked for

    metric = pyiqa.create_metric("lpips", device="cpu", as_loss=False)
    values = []
    with torch.inference_mode():
        for record in records:
            values.append(float(metric(read_image(record.dist_path), read_image(record.ref_path))))
    return np.array(values)



def run_selection_study(
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    backbones: Sequence[str] = ("alexnet", "vgg16"),
    *,
    seeds: int = 20,
    n_boot: int = 1000,
    percents: Sequence[float] = DEFAULT_PERCENTS,
    weights: str = "DEFAULT",
    vgg_scale: float = 0.5,
    chromatic_backbones: Sequence[str] = ("alexnet",),
    lpips: bool = True,
    quick: bool = False,
    progress: bool = False,
) -> SelectionStudy:
    """Run the whole study on a LIVE copy (see the module docstring).

    Args:
        root: LIVE root (official or pyiqa layout).
        backbones: backbone names.
        seeds: random subsets per x (quick: at most 3).
        n_boot: bootstrap resamples (quick: at most 200).
        percents: x values (quick: 10 and 50).
        weights: backbone weights tag (``"random"`` for tests without pretrained weights).
        vgg_scale: downscaling of the images for VGG-16, in (0, 1].
        chromatic_backbones: backbones on which the chromatic scores are measured and evaluated.
        lpips: also score pyiqa ``lpips`` (full size) as a fixed configuration of the cross-validation.
        quick: at most 6 images per reference, fewer x, seeds and resamples (smoke test).
        progress: print progress lines.

    Returns:
        A :class:`SelectionStudy` (nothing is written; see :func:`write_outputs`).

    Raises:
        ValueError: if fewer than 2 references with 2+ images are found, or an argument is out of range.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    index = load_live_index(root)
    records = list(index.records)
    if quick:
        records = first_per_reference(records, QUICK_PER_REF)
        percents, seeds, n_boot = QUICK_PERCENTS, min(seeds, QUICK_SEEDS), min(n_boot, QUICK_BOOT)
    if len({r.ref_name for r in records}) < 2:
        raise ValueError(f"need images of at least 2 references for cross-validation; {index.summary()}")
    labels = np.array([r.dmos for r in records])
    groups = [r.ref_name for r in records]
    boot = PairedBootstrap(labels, n_boot=n_boot, seed=0)
    reference_boot = PairedBootstrap(labels, n_boot=n_boot, seed=0, groups=groups)

    dists: list[BackboneDistances] = []
    chromatic = {canonical_name(b) for b in chromatic_backbones}
    for name in backbones:
        canonical = canonical_name(name)
        t0 = time.perf_counter()
        net = load_backbone(canonical, weights=weights)
        extra = chromatic_rankings(get_rankings(net), chromatic_responses(net)) if canonical in chromatic else None
        scale = vgg_scale if canonical.startswith("vgg") else 1.0
        dists.append(compute_backbone_distances(net, records, SELECTORS, percents, seeds, scale, progress, extra))
        timings[f"{canonical} (rankings + features + distances)"] = time.perf_counter() - t0
        if progress:
            print(f"{canonical}: {time.perf_counter() - t0:.1f} s", flush=True)

    lpips_values = None
    if lpips:
        t0 = time.perf_counter()
        lpips_values = _lpips_scores(records)
        timings["pyiqa lpips"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    srocc_table, comparisons = [], []
    for dist in dists:
        scorer = Scorer(dist, labels, boot, reference_boot)
        srocc_table += srocc_rows(dist, scorer)
        comparisons += compare_selectors(dist, scorer)
    timings["bootstrap"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cv_summary, cv_folds = cross_validate(dists, labels, groups, lpips_values, boot)
    timings["cross-validation"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start
    study = SelectionStudy(
        dists=dists, labels=labels, groups=groups, srocc=srocc_table, comparisons=comparisons,
        wins_by_layer=win_counts(comparisons, by_layer=True), wins_total=win_counts(comparisons, by_layer=False),
        cv_summary=cv_summary, cv_folds=cv_folds, lpips=lpips_values, n_boot=n_boot,
        index_summary=f"{index.summary()}; {len(records)} images used", timings=timings,
    )
    return study


# ----------------------------------------------------------------------------------------------------- outputs
