"""Does PE select well? Controls, paired-bootstrap win counts and cross-validated defaults on LIVE.

For each backbone and each of its layers, the unit-normalised Eq. 1 distance (``channel_norm=True``, uniform
weights) of these channel sets is scored against DMOS (SROCC):

* ``H-x`` and ``L-x`` (x ∈ {5, 10, 25, 50}) ranked by every selector: PE and each registered efficacy score
  (:data:`pe_iqa.efficacy.EFFICACY_SCORES`: ``pe_integral``, the controls ``mu1``, ``mu2``, ``magnitude``, the
  variants ``pe_selectivity``, ``pe_rank``, ``csf_match``, ``osi``, ``csf_response``, and on AlexNet the
  chromatic ``achromatic``/``pe_achromatic``; the VGG-16 chromatic measurement takes minutes, so it is skipped);
* ``F`` (all channels), and random-x subsets of the size of H-x (``--seeds`` per x; mean and spread);
* the raw distance (``channel_norm=False``) of every set too; the tables show it for PE's H/L, F and random.

Win counts (per backbone, layer and selector, over the x values): H-x vs L-x, H-x vs F and H-x vs the mean
of the random-x SROCCs, each as a point win (SROCC difference > 0) and as a significant win (the 95 %
paired-bootstrap interval of the difference excludes 0). The bootstrap resamples images with replacement,
the same resamples for every configuration, and recomputes both SROCCs of a comparison on each resample
(for H vs random: H's SROCC minus the mean over seeds of the random sets' SROCCs on the same resample).
It covers image sampling only; the seed-to-seed spread of random subsets is reported beside it.

Cross-validated defaults (:mod:`benchmarks.cross_validation`): leave-one-reference-out over the LIVE
references, candidates = backbone × contiguous layer window (single layers up to all five) × selector
(every score's H-x, and F) × x × channel_norm on/off; the configuration with the best SROCC on the training
references is tested on the held-out one. Fixed configurations (the package default ``pe_alex``, F at its
layer, F over all five layers, pyiqa ``lpips``) are evaluated on the same folds.

Computation: every image goes through each backbone once (each reference once for its distorted images).
The normalised distances of all channel sets of a layer are evaluated at once by masked matrix products
(:func:`benchmarks.score_screening.subset_distances`); the engine
(:func:`benchmarks.live_features.evaluate_variants`) evaluates normalised sets one at a time, ≈ 0.03–0.2 s per
set and image at AlexNet relu1 on 2 CPU cores, too slow for ~200 sets × 99 images. The engine still defines the
numbers: the first pair is recomputed with it for a sample of sets and the largest relative difference is
reported (a difference above 1e-3 aborts the run). Channel sets come from
:func:`~benchmarks.live_features.standard_channel_sets` and
:func:`~benchmarks.live_features.random_channel_sets`, multi-layer distances from
:func:`~benchmarks.live_features.mean_over_layers`, so they are the ones ``PEDistance`` uses.

VGG-16 runs on images downscaled by ``--vgg-scale`` (default 0.5, antialiased; 384×256 for 768×512 LIVE
images): at full size it costs several seconds per image on 2 CPU cores. AlexNet runs at full size.

Outputs (``--out``): ``selection_srocc.csv`` (every set), ``selection_comparisons.csv`` (every comparison with
its CI), ``selection_win_counts.csv``, ``selection_cv_folds.csv``, ``selection_cv_summary.csv``,
``selection_report.md`` (environment, timings and all tables) and, per backbone,
``selection_srocc_vs_x_<backbone>.png`` and ``selection_differences_<backbone>.png``.

Usage::

    TORCH_HOME=../shared/torch_home HF_HUB_OFFLINE=1 python -m benchmarks.selection_study \\
        [--root ../shared/data/LIVE] [--backbones alexnet vgg16] [--seeds 20] [--boot 1000] \\
        [--out benchmarks/results] [--quick] [--vgg-scale 0.5] [--no-lpips]

References:
    B. Efron, R. Tibshirani. "An Introduction to the Bootstrap". Chapman & Hall, 1993 (paired percentile
    bootstrap).

    R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness of Deep Features
    as a Perceptual Metric". CVPR 2018 (LPIPS).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from benchmarks.cross_validation import CrossValidationResult, leave_one_group_out, rowwise_srocc
from benchmarks.datasets.live import LiveRecord, load_live_index
from benchmarks.live_features import (
    DistanceVariant,
    downscale,
    evaluate_variants,
    load_image,
    mean_over_layers,
    random_channel_sets,
    standard_channel_sets,
)
from benchmarks.protocols.correlation import srocc
from benchmarks.report import environment_info, markdown_table, write_csv
from benchmarks.score_screening import subset_distances
from pe_iqa.backbones import Backbone, load_backbone, resolve_backbone_name
from pe_iqa.distance import DEFAULTS
from pe_iqa.efficacy import EFFICACY_SCORES
from pe_iqa.presets import METRIC_PRESETS
from pe_iqa.registry import get_rankings

__all__ = [
    "DEFAULT_LIVE_ROOT",
    "BackboneDistances",
    "Candidate",
    "PairedBootstrap",
    "SelectionStudy",
    "build_candidates",
    "compare_selectors",
    "compute_backbone_distances",
    "layer_windows",
    "main",
    "run_selection_study",
    "set_name",
    "significance_matrix",
    "srocc_rows",
    "win_counts",
    "write_outputs",
]

DEFAULT_LIVE_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "LIVE"
DEFAULT_PERCENTS = (5.0, 10.0, 25.0, 50.0)
QUICK_PERCENTS = (10.0, 50.0)
QUICK_SEEDS, QUICK_BOOT, QUICK_PER_REF = 3, 200, 6
#: Selectors in report order; the chromatic ones need :func:`pe_iqa.chromatic_tuning.prepare_chromatic`.
SELECTORS = ("pe", "pe_integral", "mu1", "mu2", "magnitude", "pe_selectivity", "pe_rank", "csf_match", "osi",
             "csf_response")
CHROMATIC_SELECTORS = ("achromatic", "pe_achromatic")
COMPARISONS = ("H-L", "H-F", "H-random")
#: Relative difference to the evaluation engine above which a run is aborted.
MAX_ENGINE_ERROR = 1e-3


def _x(percent: float) -> str:
    return f"{float(percent):g}"


def set_name(subset: str, percent: float | None = None, selector: str | None = None, seed: int | None = None) -> str:
    """Name of a channel set: ``"F"``, ``"H-10:pe"``, ``"L-5:osi"``, ``"R-25:s3"``."""
    if subset == "F":
        return "F"
    if subset == "R":
        return f"R-{_x(percent)}:s{seed}"
    return f"{subset}-{_x(percent)}:{selector}"


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
        engine_error: largest relative difference to :func:`~benchmarks.live_features.evaluate_variants` on the
            checked pair.
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
    engine_error: float = math.nan

    def distances(self, name: str, channel_norm: bool) -> np.ndarray:
        """``(N, L)`` distances of set ``name`` with or without channel normalisation."""
        return (self.norm if channel_norm else self.raw)[name]

    def column(self, name: str, channel_norm: bool, layer: str) -> np.ndarray:
        """``(N,)`` distances of set ``name`` at one layer."""
        return self.distances(name, channel_norm)[:, self.layers.index(layer)]


def _channel_sets(
    rankings: Mapping, selectors: Sequence[str], percents: Sequence[float], seeds: int
) -> dict[str, dict[str, torch.Tensor]]:
    sets: dict[str, dict[str, torch.Tensor]] = {}
    for selector in selectors:
        ranked = {layer: ranking.with_score(selector) for layer, ranking in rankings.items()}
        for key, channels in standard_channel_sets(ranked, percents).items():
            sets["F" if key == "F" else f"{key}:{selector}"] = channels
    for x in percents:
        for seed in range(seeds):
            sets[set_name("R", x, seed=seed)] = random_channel_sets(rankings, x, seed)
    return sets


def _group_by_reference(records: Sequence[LiveRecord]) -> dict[Path, list[int]]:
    groups: dict[Path, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[Path(record.ref_path)].append(i)
    return groups


@torch.inference_mode()
def compute_backbone_distances(
    net: Backbone,
    records: Sequence[LiveRecord],
    selectors: Sequence[str],
    percents: Sequence[float] = DEFAULT_PERCENTS,
    seeds: int = 20,
    scale: float = 1.0,
    progress: bool = False,
) -> BackboneDistances:
    """Distances of F, H-x/L-x of every selector and random-x sets, normalised and raw, for every image and layer.

    Args:
        net: a loaded backbone; all its taps are evaluated.
        records: LIVE records (distorted image, reference), shape (N,).
        selectors: registered efficacy scores ranking the channels.
        percents: the x values, each in (0, 100].
        seeds: random subsets per x (>= 1).
        scale: downscaling factor of both images, in (0, 1].
        progress: print one line per reference.

    Returns:
        A :class:`BackboneDistances`.

    Raises:
        ValueError: on empty records, an unknown selector or ``seeds < 1``.
        RuntimeError: if the result differs from the evaluation engine by more than :data:`MAX_ENGINE_ERROR`.
    """
    if not records:
        raise ValueError("records is empty")
    unknown = [s for s in selectors if s not in EFFICACY_SCORES]
    if unknown:
        raise ValueError(f"selectors: unknown {unknown}; registered: {sorted(EFFICACY_SCORES)}")
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive int, got {seeds!r}")
    start = time.perf_counter()
    layers = tuple(net.layers)
    rankings = get_rankings(net, list(layers))
    sets = _channel_sets(rankings, selectors, percents, seeds)
    names = list(sets)
    n_channels = {layer: rankings[layer].n_channels for layer in layers}
    masks, unique, inverse = {}, {}, {}
    for layer in layers:
        mask = torch.zeros(len(names), n_channels[layer])
        for q, name in enumerate(names):
            mask[q, sets[name][layer]] = 1.0
        masks[layer] = mask.double()
        unique[layer], inverse[layer] = torch.unique(mask, dim=0, return_inverse=True)
    norm = np.full((len(names), len(records), len(layers)), math.nan)
    raw = np.full_like(norm, math.nan)

    def features(path: Path) -> dict[str, torch.Tensor]:
        out = net(downscale(load_image(path), scale))
        return {layer: out[layer][0].flatten(1) for layer in layers}  # (C, P) float32

    for ref_path, indices in _group_by_reference(records).items():
        ref = features(ref_path)
        for i in indices:
            dist = features(Path(records[i].dist_path))
            for k, layer in enumerate(layers):
                a, b = dist[layer], ref[layer]
                if a.shape != b.shape:
                    raise ValueError(f"{records[i].dist_path} and its reference {ref_path} differ in size")
                norm[:, i, k] = subset_distances(a, b, unique[layer]).numpy()[inverse[layer].numpy()]
                mse = (a.double() - b.double()).pow(2).mean(dim=1)  # (C,)
                raw[:, i, k] = ((masks[layer] @ mse) / masks[layer].sum(dim=1)).numpy()
        if progress:
            print(f"  {net.spec.name}: {ref_path.name} done ({len(indices)} images)", flush=True)
    result = BackboneDistances(
        backbone=net.spec.name, layers=layers, scale=float(scale), selectors=tuple(selectors),
        percents=tuple(float(x) for x in percents), seeds=seeds, n_channels=n_channels,
        sizes={name: {layer: int(sets[name][layer].numel()) for layer in layers} for name in names},
        norm={name: norm[q] for q, name in enumerate(names)}, raw={name: raw[q] for q, name in enumerate(names)},
        seconds=time.perf_counter() - start,
    )
    result.engine_error = _engine_check(net, records[0], sets, result, scale)
    if not result.engine_error <= MAX_ENGINE_ERROR:
        raise RuntimeError(f"{net.spec.name}: distances differ from the evaluation engine by "
                           f"{result.engine_error:.2e} (relative) on {records[0].dist_path}")
    return result


def _engine_check(net: Backbone, record: LiveRecord, sets: Mapping, result: BackboneDistances, scale: float) -> float:
    """Largest relative difference to :func:`~benchmarks.live_features.evaluate_variants` on the first pair."""
    x = result.percents[0]
    sample = ["F", set_name("H", x, "pe"), set_name("L", x, "pe"), set_name("R", x, seed=0)]
    sample += [set_name("H", result.percents[-1], s) for s in result.selectors[1:3]]
    variants = {f"{name}|{norm}": DistanceVariant(sets[name], norm) for name in sample for norm in (True, False)}
    engine = evaluate_variants(net, [record], variants, scale=scale, progress=False)
    errors = []
    for key, value in engine.items():
        name, norm = key.split("|")
        ours = result.distances(name, norm == "True")[0]
        errors.append(np.max(np.abs(ours - value[0]) / np.maximum(np.abs(value[0]), 1e-12)))
    return float(max(errors))


class PairedBootstrap:
    """Percentile bootstrap of SROCCs over images, with one set of resamples shared by every configuration.

    Sharing the resamples makes the bootstrap *paired*: the difference of two configurations' SROCCs is
    recomputed on each resample, so its interval accounts for their correlation through the images.

    Args:
        labels: subjective scores, shape (N,).
        n_boot: number of resamples (>= 1).
        seed: seed of the ``numpy.random.default_rng`` drawing the resamples.
        confidence: interval level in (0, 1).

    Raises:
        ValueError: on bad ``labels``, ``n_boot`` or ``confidence``.

    References:
        B. Efron, R. Tibshirani. "An Introduction to the Bootstrap". Chapman & Hall, 1993.
    """

    def __init__(self, labels: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> None:
        y = np.asarray(labels, dtype=np.float64)
        if y.ndim != 1 or y.size < 3 or not np.all(np.isfinite(y)):
            raise ValueError(f"labels must be a finite (N,) array with N >= 3, got shape {y.shape}")
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
            raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        self.labels, self.n_boot, self.confidence = y, n_boot, float(confidence)
        self.indices = np.random.default_rng(seed).integers(0, y.size, size=(n_boot, y.size))  # (B, N)
        ranks = stats.rankdata(y[self.indices], axis=1)
        self._label_ranks = ranks - ranks.mean(axis=1, keepdims=True)
        self._label_norm = np.sqrt((self._label_ranks**2).sum(axis=1))

    def sroccs(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """SROCC of ``values`` with the labels on every resample, shape (B,) (NaN where a side is constant).

        Raises:
            ValueError: if ``values`` is not a finite (N,) array.
        """
        x = np.asarray(values, dtype=np.float64)
        if x.shape != self.labels.shape or not np.all(np.isfinite(x)):
            raise ValueError(f"values must be a finite array of shape {self.labels.shape}, got {x.shape}")
        ranks = stats.rankdata(x[self.indices], axis=1)
        ranks -= ranks.mean(axis=1, keepdims=True)
        den = np.sqrt((ranks**2).sum(axis=1)) * self._label_norm
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (ranks * self._label_ranks).sum(axis=1) / den, math.nan)

    def interval(self, samples: np.ndarray) -> tuple[float, float]:
        """Percentile interval of bootstrap samples (NaN samples ignored; NaN if none is finite)."""
        finite = np.asarray(samples, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            return math.nan, math.nan
        alpha = (1.0 - self.confidence) / 2.0
        low, high = np.quantile(finite, [alpha, 1.0 - alpha])
        return float(low), float(high)


def _safe_srocc(values: np.ndarray, labels: np.ndarray) -> float:
    return srocc(values, labels) if np.all(np.isfinite(values)) else math.nan


@dataclass
class _Scored:
    """Point SROCC and bootstrap SROCCs of one (set, norm, layer)."""

    point: float
    boot: np.ndarray


class _Scorer:
    """Memoised SROCC + bootstrap of columns of a :class:`BackboneDistances`."""

    def __init__(self, dist: BackboneDistances, labels: np.ndarray, boot: PairedBootstrap) -> None:
        self.dist, self.labels, self.boot = dist, labels, boot
        self._cache: dict[tuple[str, bool, str], _Scored] = {}

    def __call__(self, name: str, channel_norm: bool, layer: str) -> _Scored:
        key = (name, channel_norm, layer)
        if key not in self._cache:
            values = self.dist.column(name, channel_norm, layer)
            self._cache[key] = _Scored(_safe_srocc(values, self.labels), self.boot.sroccs(values))
        return self._cache[key]

    def random(self, percent: float, channel_norm: bool, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """Point SROCCs of every seed, shape (S,), and the bootstrap SROCC of their mean, shape (B,)."""
        scored = [self(set_name("R", percent, seed=s), channel_norm, layer) for s in range(self.dist.seeds)]
        points = np.array([s.point for s in scored])
        return points, np.mean([s.boot for s in scored], axis=0)


def _selector_variants(dist: BackboneDistances) -> list[tuple[str, bool]]:
    """(selector, channel_norm) pairs of the tables: every selector normalised, and PE raw."""
    return [(s, True) for s in dist.selectors] + ([("pe", False)] if "pe" in dist.selectors else [])


def srocc_rows(dist: BackboneDistances, scorer: _Scorer) -> list[dict[str, object]]:
    """One row per (layer, selector, subset, x, channel_norm): SROCC with its bootstrap CI (random: over seeds)."""
    rows: list[dict[str, object]] = []
    base = {"backbone": dist.backbone, "scale": dist.scale}
    for layer in dist.layers:
        for norm in (True, False):
            s = scorer("F", norm, layer)
            low, high = scorer.boot.interval(s.boot)
            rows.append({**base, "layer": layer, "selector": "F", "subset": "F", "x": 100.0, "channel_norm": norm,
                         "channels": dist.n_channels[layer], "srocc": s.point, "ci_low": low, "ci_high": high})
        for selector, norm in _selector_variants(dist):
            for subset in ("H", "L"):
                for x in dist.percents:
                    name = set_name(subset, x, selector)
                    s = scorer(name, norm, layer)
                    low, high = scorer.boot.interval(s.boot)
                    rows.append({**base, "layer": layer, "selector": selector, "subset": subset, "x": x,
                                 "channel_norm": norm, "channels": dist.sizes[name][layer], "srocc": s.point,
                                 "ci_low": low, "ci_high": high})
        for norm in (True, False):
            for x in dist.percents:
                points, _ = scorer.random(x, norm, layer)
                rows.append({**base, "layer": layer, "selector": "random", "subset": "R", "x": x,
                             "channel_norm": norm, "channels": dist.sizes[set_name("R", x, seed=0)][layer],
                             "srocc": float(np.nanmean(points)), "ci_low": math.nan, "ci_high": math.nan,
                             "random_sd": float(np.nanstd(points, ddof=1)) if points.size > 1 else math.nan,
                             "random_min": float(np.nanmin(points)), "random_max": float(np.nanmax(points)),
                             "n_seeds": int(points.size)})
    return rows


def compare_selectors(dist: BackboneDistances, scorer: _Scorer) -> list[dict[str, object]]:
    """H-x vs L-x, F and the random-x mean for every layer, selector and x, with paired-bootstrap CIs.

    Returns:
        One row per comparison: ``h_srocc``, ``other_srocc``, ``diff`` (H minus other), ``ci_low``, ``ci_high``,
        ``point_win`` (diff > 0), ``sig_win`` (ci_low > 0), ``sig_loss`` (ci_high < 0); H vs random rows also
        carry ``random_sd`` and ``seeds_beaten`` (fraction of random seeds with a lower SROCC than H).
    """
    rows: list[dict[str, object]] = []
    for layer in dist.layers:
        for selector, norm in _selector_variants(dist):
            for x in dist.percents:
                high = scorer(set_name("H", x, selector), norm, layer)
                low_set = scorer(set_name("L", x, selector), norm, layer)
                full = scorer("F", norm, layer)
                points, random_boot = scorer.random(x, norm, layer)
                others = {
                    "H-L": (low_set.point, low_set.boot, {}),
                    "H-F": (full.point, full.boot, {}),
                    "H-random": (float(np.nanmean(points)), random_boot, {
                        "random_sd": float(np.nanstd(points, ddof=1)) if points.size > 1 else math.nan,
                        "seeds_beaten": float(np.mean(points < high.point)),
                    }),
                }
                for comparison, (other, other_boot, extra) in others.items():
                    diff = high.point - other
                    ci_low, ci_high = scorer.boot.interval(high.boot - other_boot)
                    rows.append({
                        "backbone": dist.backbone, "layer": layer, "selector": selector, "channel_norm": norm,
                        "x": x, "comparison": comparison, "h_srocc": high.point, "other_srocc": other,
                        "diff": diff, "ci_low": ci_low, "ci_high": ci_high,
                        "point_win": bool(diff > 0), "sig_win": bool(ci_low > 0), "sig_loss": bool(ci_high < 0),
                        **extra,
                    })
    return rows


def _selector_label(selector: str, channel_norm: bool) -> str:
    return selector if channel_norm else f"{selector} (raw)"


def win_counts(comparisons: Sequence[Mapping[str, object]], by_layer: bool) -> list[dict[str, object]]:
    """Counts of point wins, significant wins and significant losses per selector (and layer).

    Args:
        comparisons: rows of :func:`compare_selectors`.
        by_layer: count per (backbone, layer, selector) over x; otherwise per (backbone, selector) over
            layers and x.

    Returns:
        One row per group with, for each comparison ``C`` in :data:`COMPARISONS`, ``C n``, ``C wins``,
        ``C sig wins`` and ``C sig losses``, and a compact ``C`` cell ``"wins/n (sig+ / sig−)"``.
    """
    groups: dict[tuple, dict[str, list]] = {}
    for row in comparisons:
        key = (row["backbone"], row["layer"] if by_layer else "all",
               _selector_label(str(row["selector"]), bool(row["channel_norm"])))
        groups.setdefault(key, defaultdict(list))[str(row["comparison"])].append(row)
    out = []
    for (backbone, layer, selector), by_comparison in groups.items():
        entry: dict[str, object] = {"backbone": backbone, "layer": layer, "selector": selector}
        for comparison in COMPARISONS:
            items = by_comparison.get(comparison, [])
            wins = sum(bool(r["point_win"]) for r in items)
            sig = sum(bool(r["sig_win"]) for r in items)
            loss = sum(bool(r["sig_loss"]) for r in items)
            entry.update({f"{comparison} n": len(items), f"{comparison} wins": wins,
                          f"{comparison} sig wins": sig, f"{comparison} sig losses": loss,
                          comparison: f"{wins}/{len(items)} ({sig}+ / {loss}−)"})
        out.append(entry)
    return out


def layer_windows(layers: Sequence[str]) -> list[tuple[str, ...]]:
    """Every contiguous window of ``layers``: single layers, then pairs, …, then all of them."""
    layers = tuple(layers)
    return [layers[i:i + n] for n in range(1, len(layers) + 1) for i in range(len(layers) - n + 1)]


def _window_label(window: Sequence[str]) -> str:
    return window[0] if len(window) == 1 else f"{window[0]}..{window[-1]}"


@dataclass(frozen=True)
class Candidate:
    """One configuration of the cross-validation space.

    Attributes:
        backbone: canonical backbone name.
        layers: the compared layers (a contiguous window of the backbone's taps).
        selector: the efficacy score choosing H-x, or ``"F"`` for all channels.
        percent: x (``None`` for F).
        channel_norm: unit-normalise the selected channels.
        scale: image downscaling factor the backbone ran at.
        channels: channels compared per layer.
    """

    backbone: str
    layers: tuple[str, ...]
    selector: str
    percent: float | None
    channel_norm: bool
    scale: float
    channels: tuple[int, ...]

    @property
    def name(self) -> str:
        """E.g. ``"alexnet relu3 pe H-10 norm"`` (with ``@0.5`` when the images were downscaled)."""
        subset = "F" if self.percent is None else f"{self.selector} H-{_x(self.percent)}"
        scale = "" if self.scale == 1.0 else f"@{self.scale:g}"
        return f"{self.backbone}{scale} {_window_label(self.layers)} {subset} {'norm' if self.channel_norm else 'raw'}"

    @property
    def set_name(self) -> str:
        """Name of its channel set in :class:`BackboneDistances`."""
        return "F" if self.percent is None else set_name("H", self.percent, self.selector)


def build_candidates(dists: Sequence[BackboneDistances]) -> tuple[list[Candidate], np.ndarray]:
    """The cross-validation space: backbone × layer window × (selector H-x or F) × channel_norm.

    Args:
        dists: one :class:`BackboneDistances` per backbone (same images in the same order).

    Returns:
        ``(candidates, values)`` with ``values`` of shape (K, N): the distance of candidate k on image n
        (the mean over its layers, as ``PEDistance`` averages layers). The order is backbone, window,
        selector (F first, then the selectors' order), x, normalised before raw; it breaks ties in the CV.
    """
    candidates: list[Candidate] = []
    rows: list[np.ndarray] = []
    for dist in dists:
        for window in layer_windows(dist.layers):
            options = [("F", None)] + [(s, x) for s in dist.selectors for x in dist.percents]
            for selector, x in options:
                for norm in (True, False):
                    cand = Candidate(dist.backbone, window, selector, x, norm, dist.scale, ())
                    channels = tuple(dist.sizes[cand.set_name][layer] for layer in window)
                    cand = Candidate(dist.backbone, window, selector, x, norm, dist.scale, channels)
                    candidates.append(cand)
                    rows.append(mean_over_layers(dist.distances(cand.set_name, norm), dist.layers, window))
    return candidates, np.stack(rows)


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
            values.append(float(metric(load_image(record.dist_path), load_image(record.ref_path))))
    return np.array(values)


def _fold_rows(method: str, cv: CrossValidationResult, candidates: Sequence[Candidate] | None) -> list[dict]:
    rows = []
    for fold in cv.folds:
        row: dict[str, object] = {"method": method, "held_out": fold.held_out, "chosen": fold.chosen_name,
                                  "train_srocc": fold.train_srocc, "test_srocc": fold.test_srocc,
                                  "n_train": fold.n_train, "n_test": fold.n_test}
        if candidates is not None:
            cand = candidates[fold.chosen]
            row.update({"deepest_layer": cand.layers[-1], "deepest_channels": cand.channels[-1],
                        "total_channels": sum(cand.channels)})
        rows.append(row)
    return rows


def _cross_validate(
    dists: Sequence[BackboneDistances], labels: np.ndarray, groups: Sequence[str], lpips: np.ndarray | None,
    boot: PairedBootstrap,
) -> tuple[list[dict], list[dict]]:
    candidates, values = build_candidates(dists)
    spaces: dict[str, np.ndarray] = {"CV: all candidates": np.ones(len(candidates), dtype=bool)}
    if len(dists) > 1:
        for dist in dists:
            spaces[f"CV: {dist.backbone} only"] = np.array([c.backbone == dist.backbone for c in candidates])
    spaces["CV: PE H-x only (any backbone/layers/x/norm)"] = np.array([c.selector == "pe" for c in candidates])
    spaces["CV: alexnet PE H-x (layers, x, norm)"] = np.array(
        [c.backbone == "alexnet" and c.selector == "pe" for c in candidates])
    spaces["CV: alexnet relu3 PE H-x (x, norm)"] = np.array(
        [c.backbone == "alexnet" and c.layers == ("relu3",) and c.selector == "pe" for c in candidates])

    fixed: dict[str, np.ndarray] = {}
    by_name = {c.name: k for k, c in enumerate(candidates)}
    default_layers = tuple(DEFAULTS["layers"])
    default = Candidate(DEFAULTS["backbone"], default_layers, DEFAULTS["score"], float(DEFAULTS["top_percent"]),
                        bool(DEFAULTS["channel_norm"]), 1.0, ())
    f_default = Candidate(DEFAULTS["backbone"], default_layers, "F", None, True, 1.0, ())
    named = {"fixed: pe_alex (package default)": default, f"fixed: F {'+'.join(default_layers)} norm": f_default}
    alex = next((d for d in dists if d.backbone == "alexnet" and d.scale == 1.0), None)
    if alex is not None:
        named["fixed: F relu1..relu5 norm (LPIPS layers, unlearned)"] = Candidate(
            "alexnet", tuple(alex.layers), "F", None, True, 1.0, ())
    for preset in ("pe_vgg",):
        options = METRIC_PRESETS.get(preset)
        dist = next((d for d in dists if options and d.backbone == resolve_backbone_name(options["backbone"])), None)
        if dist is not None and options["subset"] == "high":
            named[f"fixed: {preset} preset (images at this run's VGG scale)"] = Candidate(
                dist.backbone, tuple(options["layers"]), options["score"], float(options["top_percent"]),
                bool(options["channel_norm"]), dist.scale, ())
    config_names: dict[str, str] = {}
    for label, cand in named.items():
        if cand.name in by_name:
            fixed[label] = values[by_name[cand.name]]
            config_names[label] = cand.name
    if lpips is not None:
        fixed["fixed: pyiqa lpips"] = lpips
        config_names["fixed: pyiqa lpips"] = "pyiqa lpips (LPIPS v0.1 AlexNet, full size)"

    summary, folds = [], []
    results: dict[str, CrossValidationResult] = {}
    for label, keep in spaces.items():
        if not keep.any():
            continue
        chosen_from = [c for c, k in zip(candidates, keep, strict=True) if k]
        cv = leave_one_group_out(values[keep], labels, groups, [c.name for c in chosen_from])
        results[label] = cv
        folds += _fold_rows(label, cv, chosen_from)
        full_sample = rowwise_srocc(values[keep], labels)
        in_sample = int(np.argmax(np.where(np.isfinite(full_sample), full_sample, -np.inf)))
        picks = Counter(f.chosen_name for f in cv.folds)
        summary.append(_summary_row(label, cv, int(keep.sum()), ", ".join(f"{n} ×{c}" for n, c in picks.items()),
                                    chosen_from[in_sample].name, float(full_sample[in_sample])))
    for label, vector in fixed.items():
        cv = leave_one_group_out(vector, labels, groups, [config_names[label]])
        results[label] = cv
        folds += _fold_rows(label, cv, None)
        summary.append(_summary_row(label, cv, 1, config_names[label], "", math.nan))

    reference = results.get("fixed: pe_alex (package default)")
    for row in summary:
        cv = results[str(row["method"])]
        if reference is None or cv is reference:
            continue
        diff_folds = cv.test_sroccs - reference.test_sroccs
        row["folds better than pe_alex"] = int(np.sum(diff_folds > 0))
        row["mean fold diff vs pe_alex"] = float(np.nanmean(diff_folds))
        boot_diff = boot.sroccs(cv.mapped_predictions) - boot.sroccs(reference.mapped_predictions)
        low, high = boot.interval(boot_diff)
        row["pooled mapped diff vs pe_alex"] = cv.pooled_mapped_srocc - reference.pooled_mapped_srocc
        row["diff ci_low"], row["diff ci_high"] = low, high
    return summary, folds


def _summary_row(label: str, cv: CrossValidationResult, n_candidates: int, picks: str, best_name: str,
                 best_srocc: float) -> dict[str, object]:
    return {"method": label, "candidates": n_candidates, "fold mean": cv.mean_test_srocc,
            "fold sd": cv.std_test_srocc, "pooled": cv.pooled_srocc, "pooled mapped": cv.pooled_mapped_srocc,
            "configs chosen": picks, "in-sample best": best_name, "in-sample best srocc": best_srocc}


def run_selection_study(
    root: str | os.PathLike[str] = DEFAULT_LIVE_ROOT,
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
        per_ref: Counter[str] = Counter()
        kept = []
        for record in records:
            per_ref[record.ref_name] += 1
            if per_ref[record.ref_name] <= QUICK_PER_REF:
                kept.append(record)
        records = kept
        percents, seeds, n_boot = QUICK_PERCENTS, min(seeds, QUICK_SEEDS), min(n_boot, QUICK_BOOT)
    if len({r.ref_name for r in records}) < 2:
        raise ValueError(f"need images of at least 2 references for cross-validation; {index.summary()}")
    labels = np.array([r.dmos for r in records])
    groups = [r.ref_name for r in records]
    boot = PairedBootstrap(labels, n_boot=n_boot, seed=0)

    dists: list[BackboneDistances] = []
    for name in backbones:
        canonical = resolve_backbone_name(name)
        t0 = time.perf_counter()
        net = load_backbone(canonical, weights=weights)
        selectors = [s for s in SELECTORS if s in EFFICACY_SCORES]
        if canonical in {resolve_backbone_name(b) for b in chromatic_backbones}:
            from pe_iqa.chromatic_tuning import prepare_chromatic

            prepare_chromatic(net)
            selectors += [s for s in CHROMATIC_SELECTORS if s in EFFICACY_SCORES]
        scale = vgg_scale if canonical.startswith("vgg") else 1.0
        dist = compute_backbone_distances(net, records, selectors, percents, seeds, scale, progress)
        dists.append(dist)
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
        scorer = _Scorer(dist, labels, boot)
        srocc_table += srocc_rows(dist, scorer)
        comparisons += compare_selectors(dist, scorer)
    timings["bootstrap"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cv_summary, cv_folds = _cross_validate(dists, labels, groups, lpips_values, boot)
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


def _per_layer_table(study: SelectionStudy, dist: BackboneDistances, layer: str) -> str:
    rows = [r for r in study.srocc if r["backbone"] == dist.backbone and r["layer"] == layer]
    table = []
    for selector, norm in _selector_variants(dist):
        entry: dict[str, object] = {"selector": _selector_label(selector, norm)}
        for subset in ("H", "L"):
            for x in dist.percents:
                match = [r for r in rows if r["selector"] == selector and r["subset"] == subset
                         and r["x"] == x and r["channel_norm"] == norm]
                entry[f"{subset}-{_x(x)}"] = f"{match[0]['srocc']:.3f}" if match else "–"
        table.append(entry)
    for norm in (True, False):
        entry = {"selector": _selector_label("random", norm)}
        for x in dist.percents:
            match = [r for r in rows if r["selector"] == "random" and r["x"] == x and r["channel_norm"] == norm]
            entry[f"H-{_x(x)}"] = f"{match[0]['srocc']:.3f}±{match[0]['random_sd']:.3f}" if match else "–"
        table.append(entry)
    f_rows = {r["channel_norm"]: r for r in rows if r["selector"] == "F"}
    columns = ["selector"] + [f"{s}-{_x(x)}" for s in ("H", "L") for x in dist.percents]
    f_text = ", ".join(f"{'norm' if n else 'raw'} {r['srocc']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
                       for n, r in f_rows.items())
    return (f"**{dist.backbone} {layer}** ({dist.n_channels[layer]} channels) — F: {f_text}\n\n"
            + markdown_table(table, columns))


def significance_matrix(study: SelectionStudy, backbone: str) -> str:
    """Selectors × layers: the significant wins (+) and losses (−) of H-x over the x values, per comparison.

    A cell ``"+L3 +R1 −F1"`` reads: over the x values, H-x beat L-x significantly 3 times, beat the random mean
    once and lost to F once (95 % paired-bootstrap intervals); ``·`` = nothing significant.
    """
    dist = next(d for d in study.dists if d.backbone == backbone)
    letters = {"H-L": "L", "H-F": "F", "H-random": "R"}
    table = []
    for selector, norm in _selector_variants(dist):
        entry: dict[str, object] = {"selector": _selector_label(selector, norm)}
        for layer in dist.layers:
            rows = [r for r in study.comparisons if r["backbone"] == backbone and r["layer"] == layer
                    and r["selector"] == selector and r["channel_norm"] == norm]
            parts = []
            for comparison, letter in letters.items():
                wins = sum(bool(r["sig_win"]) for r in rows if r["comparison"] == comparison)
                losses = sum(bool(r["sig_loss"]) for r in rows if r["comparison"] == comparison)
                parts += [f"+{letter}{wins}"] * bool(wins) + [f"−{letter}{losses}"] * bool(losses)
            entry[layer] = " ".join(parts) or "·"
        table.append(entry)
    return markdown_table(table, ["selector", *dist.layers])


def _comparison_table(study: SelectionStudy, backbone: str, selector: str, norm: bool) -> str:
    rows = [r for r in study.comparisons if r["backbone"] == backbone and r["selector"] == selector
            and r["channel_norm"] == norm]
    table: dict[tuple, dict[str, object]] = {}
    for r in rows:
        entry = table.setdefault((r["layer"], r["x"]), {"layer": r["layer"], "x": _x(float(r["x"])),
                                                        "H": f"{r['h_srocc']:.3f}"})
        mark = "*" if r["sig_win"] else ("†" if r["sig_loss"] else "")
        entry[str(r["comparison"])] = f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]{mark}"
        if r["comparison"] == "H-random":
            entry["seeds beaten"] = f"{r['seeds_beaten']:.0%}"
    return markdown_table(list(table.values()), ["layer", "x", "H", *COMPARISONS, "seeds beaten"])


def write_outputs(study: SelectionStudy, out: str | os.PathLike[str], command: str = "") -> list[Path]:
    """Write the CSV files, the Markdown report and the plots of a study into ``out``.

    Returns:
        The written paths.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        write_csv(study.srocc, folder / "selection_srocc.csv"),
        write_csv(study.comparisons, folder / "selection_comparisons.csv"),
        write_csv(study.wins_by_layer + study.wins_total, folder / "selection_win_counts.csv"),
        write_csv(study.cv_summary, folder / "selection_cv_summary.csv"),
        write_csv(study.cv_folds, folder / "selection_cv_folds.csv"),
    ]
    files += _plots(study, folder)
    files.append(_write_markdown(study, folder / "selection_report.md", command))
    study.files = files
    return files


def _write_markdown(study: SelectionStudy, path: Path, command: str) -> Path:
    extra: dict[str, object] = {f"time: {k}": f"{v:.1f} s" for k, v in study.timings.items()}
    extra["bootstrap resamples"] = study.n_boot
    for dist in study.dists:
        extra[f"{dist.backbone}"] = (f"scale {dist.scale:g}, layers {', '.join(dist.layers)}, selectors "
                                     f"{', '.join(dist.selectors)}; max relative difference to the evaluation "
                                     f"engine {dist.engine_error:.1e}")
    env = environment_info("cpu", {"LIVE": study.index_summary}, extra)
    win_columns = ["backbone", "layer", "selector", *COMPARISONS]
    lines = [
        "# Does PE select well? — controls, win counts and cross-validated defaults (LIVE)",
        "",
        f"Command: `{command}`" if command else "",
        "",
        "SROCC against DMOS (positive = agrees with humans). Distances are unit-normalised (`norm`) unless "
        "marked raw. Win cells: `point wins/n (significant wins+ / significant losses−)`, where significant "
        "means the 95 % paired-bootstrap interval of the SROCC difference excludes 0 (resampling images). "
        "H-random compares H-x with the mean over random seeds of random-x subsets of the same size.",
        "",
        "## Environment",
        "",
        markdown_table([{"key": k, "value": v} for k, v in env.items()]),
        "",
        "## Win counts per selector (all layers and x)",
        "",
        markdown_table(study.wins_total, win_columns),
        "",
        "## Significant wins and losses per layer",
        "",
        f"Over the {len(study.dists[0].percents) if study.dists else 0} x values: `+L3` = H-x significantly above "
        "L-x three times, `−F1` = significantly below F once, `R` = the random-x mean; `·` = nothing significant.",
        "",
    ]
    for dist in study.dists:
        lines += [f"**{dist.backbone}**", "", significance_matrix(study, dist.backbone), ""]
    lines += [
        "## Win counts per layer (over x)",
        "",
        markdown_table(study.wins_by_layer, win_columns),
        "",
        "## Cross-validation (leave one reference out)",
        "",
        "`fold mean ± sd`: held-out SROCC within each reference (≈20 images, noisy); `pooled`: SROCC of all "
        "held-out predictions concatenated (folds may pick differently scaled configs); `pooled mapped`: the "
        "same after each fold's logistic mapping fitted on its training references. `diff vs pe_alex`: "
        "pooled-mapped difference with a 95 % paired-bootstrap interval.",
        "",
        markdown_table(study.cv_summary, digits=3),
        "",
        "### Folds",
        "",
        markdown_table(study.cv_folds, digits=3),
        "",
    ]
    for dist in study.dists:
        lines += [f"## {dist.backbone}: PE comparisons with 95 % CIs (* significant win, † significant loss)", ""]
        for norm in (True, False):
            lines += [f"PE, {'normalised' if norm else 'raw'}:", "",
                      _comparison_table(study, dist.backbone, "pe", norm), ""]
        lines += [f"## {dist.backbone}: SROCC per layer", ""]
        for layer in dist.layers:
            lines += [_per_layer_table(study, dist, layer), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _plots(study: SelectionStudy, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for dist in study.dists:
        rows = [r for r in study.srocc if r["backbone"] == dist.backbone]
        fig, axes = plt.subplots(1, len(dist.layers), figsize=(4.2 * len(dist.layers), 4.6), sharey=True)
        axes = np.atleast_1d(axes)
        colours = plt.get_cmap("tab20")
        xs = np.array(dist.percents)
        for ax, layer in zip(axes, dist.layers, strict=True):
            here = [r for r in rows if r["layer"] == layer]
            rand = sorted((r for r in here if r["selector"] == "random" and r["channel_norm"]), key=lambda r: r["x"])
            mean = np.array([r["srocc"] for r in rand])
            sd = np.array([r["random_sd"] for r in rand])
            ax.fill_between(xs, [r["random_min"] for r in rand], [r["random_max"] for r in rand], color="0.9",
                            label="random (norm) min–max")
            ax.fill_between(xs, mean - sd, mean + sd, color="0.75", label="random (norm) mean ± sd")
            full = next(r for r in here if r["selector"] == "F" and r["channel_norm"])
            ax.axhline(full["srocc"], color="k", ls=":", lw=1, label="F (norm)")
            for j, selector in enumerate(dist.selectors):
                line = sorted((r for r in here if r["selector"] == selector and r["subset"] == "H"
                               and r["channel_norm"]), key=lambda r: r["x"])
                ax.plot(xs, [r["srocc"] for r in line], marker="o", ms=3, color="k" if selector == "pe"
                        else colours(j % 20), lw=2.2 if selector == "pe" else 1.0, label=f"H {selector}")
            low = sorted((r for r in here if r["selector"] == "pe" and r["subset"] == "L" and r["channel_norm"]),
                         key=lambda r: r["x"])
            ax.plot(xs, [r["srocc"] for r in low], ls="--", color="k", lw=1.2, label="L pe")
            raw = sorted((r for r in here if r["selector"] == "pe" and r["subset"] == "H" and not r["channel_norm"]),
                         key=lambda r: r["x"])
            ax.plot(xs, [r["srocc"] for r in raw], ls=":", marker="s", ms=3, color="tab:red", lw=1.5,
                    label="H pe (raw)")
            ax.set_xscale("log")
            ax.set_xticks(xs, [_x(x) for x in xs])
            ax.minorticks_off()
            ax.set_title(f"{dist.backbone} {layer}")
            ax.set_xlabel("x (% of channels)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("SROCC vs DMOS")
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=min(8, len(names)), fontsize=8)
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        path = folder / f"selection_srocc_vs_x_{dist.backbone}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

        comps = [r for r in study.comparisons if r["backbone"] == dist.backbone and r["comparison"] in
                 ("H-L", "H-random")]
        variants = _selector_variants(dist)
        fig, axes = plt.subplots(len(dist.layers), 2, figsize=(16, 2.6 * len(dist.layers)), sharey="row",
                                 squeeze=False)
        width = 0.8 / len(dist.percents)
        for i, layer in enumerate(dist.layers):
            for j, comparison in enumerate(("H-L", "H-random")):
                ax = axes[i, j]
                for k, x in enumerate(dist.percents):
                    cells = [next(r for r in comps if r["layer"] == layer and r["comparison"] == comparison
                                  and r["selector"] == s and r["channel_norm"] == n and r["x"] == x)
                             for s, n in variants]
                    diff = np.array([c["diff"] for c in cells])
                    err = np.array([[c["diff"] - c["ci_low"] for c in cells],
                                    [c["ci_high"] - c["diff"] for c in cells]])
                    pos = np.arange(len(variants)) + (k - (len(dist.percents) - 1) / 2) * width
                    ax.bar(pos, diff, width, yerr=np.nan_to_num(err), capsize=1.5, label=f"x={_x(x)}",
                           color=plt.get_cmap("viridis")(k / max(1, len(dist.percents) - 1)))
                ax.axhline(0, color="k", lw=0.8)
                ax.set_title(f"{dist.backbone} {layer}: SROCC {comparison} (95 % paired-bootstrap CI)", fontsize=9)
                ax.set_xticks(np.arange(len(variants)), [_selector_label(s, n) for s, n in variants], rotation=35,
                              ha="right", fontsize=7)
                ax.grid(axis="y", alpha=0.3)
        axes[0, 0].legend(fontsize=7, ncol=len(dist.percents))
        fig.tight_layout()
        path = folder / f"selection_differences_{dist.backbone}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("PE_IQA_LIVE_ROOT", DEFAULT_LIVE_ROOT)))
    parser.add_argument("--backbones", nargs="+", default=["alexnet", "vgg16"])
    parser.add_argument("--seeds", type=int, default=20, help="random subsets per x (default 20)")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--quick", action="store_true", help="6 images per reference, x in {10, 50}, few seeds")
    parser.add_argument("--vgg-scale", type=float, default=0.5, help="image downscaling for VGG-16 (default 0.5)")
    parser.add_argument("--weights", default="DEFAULT", help="backbone weights tag ('random' for smoke tests)")
    parser.add_argument("--chromatic-backbones", nargs="*", default=["alexnet"],
                        help="backbones evaluated with the chromatic scores (default: alexnet)")
    parser.add_argument("--no-lpips", action="store_true", help="skip pyiqa lpips")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.boot < 1:
        parser.error("--seeds and --boot must be positive")
    if not 0 < args.vgg_scale <= 1:
        parser.error("--vgg-scale must be in (0, 1]")
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        study = run_selection_study(
            args.root, args.backbones, seeds=args.seeds, n_boot=args.boot, weights=args.weights,
            vgg_scale=args.vgg_scale, chromatic_backbones=args.chromatic_backbones, lpips=not args.no_lpips,
            quick=args.quick, progress=args.progress,
        )
    command = "python -m benchmarks.selection_study " + " ".join(argv if argv is not None else sys.argv[1:])
    files = write_outputs(study, args.out, command.strip())
    print(markdown_table(study.wins_total, ["backbone", "selector", *COMPARISONS]))
    print()
    print(markdown_table(study.cv_summary, ["method", "fold mean", "fold sd", "pooled", "pooled mapped",
                                            "configs chosen"], digits=3))
    print(f"\nwrote {len(files)} files to {args.out} in {study.timings['total']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
