"""Distances of every channel set of the selection study: H-x/L-x by every selector, F and random-x subsets.

For each backbone and each of its layers the study scores these channel sets, unit-normalised and raw:

* ``H-x`` and ``L-x`` (x ∈ {5, 10, 25, 50}) ranked by every selector: PE and each efficacy score (``pe_integral``,
  the controls ``mu1``, ``mu2``, ``magnitude``, the variants of :mod:`benchmarks.selection.variant_scores`, and
  the chromatic scores of :mod:`benchmarks.selection.chromatic` where measured);
* ``F`` (all channels), and random-x subsets of the size of H-x (``seeds`` per x).

Every image goes through the backbone once (each reference once for its distorted images) and every set is scored
by the core's Eq. 1 kernel (:func:`benchmarks.channel_sets.evaluate_variants`), so the numbers are those of
:class:`pe_iqa.PEDistance`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.channel_sets import PairRecord, Variant, evaluate_variants, random_channel_sets, standard_channel_sets
from benchmarks.selection.variant_scores import SELECTOR_NAMES, rank_by_selector
from pe_iqa.analysis.ranking import ChannelRanking
from pe_iqa.analysis.ranking_lookup import get_rankings
from pe_iqa.backbones import Backbone

__all__ = ["DEFAULT_PERCENTS", "SELECTORS", "BackboneDistances", "compute_backbone_distances", "format_percent",
           "set_name"]

DEFAULT_PERCENTS = (5.0, 10.0, 25.0, 50.0)
#: Selectors in report order (built-in scores and :data:`~benchmarks.selection.variant_scores.VARIANT_SCORES`).
SELECTORS = ("pe", "pe_integral", "mu1", "mu2", "magnitude", "pe_selectivity", "pe_rank", "csf_match", "osi",
             "csf_response")


def format_percent(percent: float) -> str:
    """``10.0`` → ``"10"``."""
    return f"{float(percent):g}"


def set_name(subset: str, percent: float | None = None, selector: str | None = None, seed: int | None = None) -> str:
    """Name of a channel set: ``"F"``, ``"H-10:pe"``, ``"L-5:osi"``, ``"R-25:s3"``."""
    if subset == "F":
        return "F"
    if subset == "R":
        return f"R-{format_percent(percent)}:s{seed}"
    return f"{subset}-{format_percent(percent)}:{selector}"


@dataclass
class BackboneDistances:
    """Per-image, per-layer distances of every channel set of one backbone.

    Attributes:
        backbone: canonical backbone name.
        layers: its tapped layers (the columns of the distance arrays).
        scale: downscaling factor applied to the images.
        selectors: the scores whose H-x/L-x sets were evaluated.
        percents: the x values.
        seeds: random sets per x.
        n_channels: channels per layer.
        sizes: ``{set name: {layer: channels selected}}``.
        norm: ``{set name: (N, L)}`` distances with channel normalisation.
        raw: ``{set name: (N, L)}`` distances without.
        seconds: wall time of the feature and distance computation.
    """

    backbone: str
    layers: tuple[str, ...]
    scale: float
    selectors: tuple[str, ...]
    percents: tuple[float, ...]
    seeds: int
    n_channels: dict[str, int]
    sizes: dict[str, dict[str, int]]
    norm: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    seconds: float = math.nan

    def distances(self, name: str, channel_norm: bool) -> np.ndarray:
        """``(N, L)`` distances of set ``name`` with or without channel normalisation."""
        return (self.norm if channel_norm else self.raw)[name]

    def column(self, name: str, channel_norm: bool, layer: str) -> np.ndarray:
        """``(N,)`` distances of set ``name`` at one layer."""
        return self.distances(name, channel_norm)[:, self.layers.index(layer)]


def _channel_sets(
    rankings_by_selector: Mapping[str, Mapping[str, ChannelRanking]], percents: Sequence[float], seeds: int
) -> dict[str, dict[str, torch.Tensor]]:
    sets: dict[str, dict[str, torch.Tensor]] = {}
    for selector, ranked in rankings_by_selector.items():
        for key, channels in standard_channel_sets(ranked, percents).items():
            sets["F" if key == "F" else f"{key}:{selector}"] = channels
    pe_rankings = rankings_by_selector["pe"]
    for x in percents:
        for seed in range(seeds):
            sets[set_name("R", x, seed=seed)] = random_channel_sets(pe_rankings, x, seed)
    return sets


def compute_backbone_distances(
    net: Backbone,
    records: Sequence[PairRecord],
    selectors: Sequence[str],
    percents: Sequence[float] = DEFAULT_PERCENTS,
    seeds: int = 20,
    scale: float = 1.0,
    progress: bool = False,
    extra_rankings: Mapping[str, Mapping[str, ChannelRanking]] | None = None,
    all_sets: bool = False,
) -> BackboneDistances:
    """Distances of F, H-x/L-x of every selector and random-x sets, normalised and raw, for every image and layer.

    Args:
        net: a loaded backbone; all its taps are evaluated.
        records: pairs (distorted image, reference), shape (N,).
        selectors: registered efficacy scores ranking the channels (``"pe"`` first).
        percents: the x values, each in (0, 100].
        seeds: random subsets per x (>= 1).
        scale: downscaling factor of both images, in (0, 1].
        progress: show a progress bar.
        extra_rankings: selectors ranked by explicit scores (e.g.
            :func:`~benchmarks.selection.chromatic.chromatic_rankings`), ``{selector: {layer: ranking}}``.
        all_sets: score all sets of a layer at once with the channels × sets indicator matrix
            (:func:`benchmarks.channel_sets.indicator_set_distances`; equal to the per-set kernel to float64
            rounding) — what makes VGG-16 at native resolution fit.

    Returns:
        A :class:`BackboneDistances`; selectors in the order ``selectors`` then ``extra_rankings``.

    Raises:
        ValueError: on empty records, an unknown selector, no ``"pe"`` selector or ``seeds < 1``.
    """
    if not records:
        raise ValueError("records is empty")
    unknown = [s for s in selectors if s not in SELECTOR_NAMES]
    if unknown:
        raise ValueError(f"selectors: unknown {unknown}; known: {list(SELECTOR_NAMES)}")
    if "pe" not in selectors:
        raise ValueError("selectors must include 'pe' (random sets take H-x sizes from it)")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive int, got {seeds!r}")
    start = time.perf_counter()
    layers = tuple(net.layers)
    rankings = get_rankings(net, list(layers))
    by_selector = {s: {layer: rank_by_selector(r, s) for layer, r in rankings.items()} for s in selectors}
    by_selector.update(extra_rankings or {})
    sets = _channel_sets(by_selector, percents, seeds)
    variants = {(name, norm): Variant(channels, norm) for name, channels in sets.items() for norm in (True, False)}
    values = evaluate_variants(net, records, variants, scale=scale, progress=progress,
                               desc=f"{net.spec.name}: {len(sets)} channel sets", all_sets=all_sets)
    return BackboneDistances(
        backbone=net.spec.name, layers=layers, scale=float(scale), selectors=tuple(by_selector),
        percents=tuple(float(x) for x in percents), seeds=seeds,
        n_channels={layer: rankings[layer].n_channels for layer in layers},
        sizes={name: {layer: int(sets[name][layer].numel()) for layer in layers} for name in sets},
        norm={name: values[(name, True)] for name in sets}, raw={name: values[(name, False)] for name in sets},
        seconds=time.perf_counter() - start,
    )
