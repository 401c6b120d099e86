"""Per-layer distances of many channel configurations from one forward pass per image.

Scoring a grid of configurations (F, H-x, L-x for several x, random subsets, other scores, channel normalisation
on/off, uniform or score-proportional channel weights) with :class:`~pe_iqa.PEDistance` would run the network once
per configuration and image. Here each image goes through the backbone **once** (each reference once for all its
distorted images) and every configuration is evaluated from the same activations by the core's Eq. 1 kernel
(:func:`pe_iqa.feature_distance.prepare_features` then :func:`~pe_iqa.feature_distance.layer_distance`, through
:func:`set_distances`) — the functions :class:`~pe_iqa.PEDistance` runs, here in float64 (the head's dtype for a
float64 network; PEDistance's default float32 head agrees to float32 rounding). The result is, per configuration,
an ``(N, L)`` array of per-layer distances; a multi-layer distance is the mean of its layers' columns
(:func:`mean_over_layers`), as ``PEDistance`` averages layers.

Typical use (the selection study: random subsets, other scores, cross-validation over layer combinations)::

    net = load_backbone("alexnet")                      # all five taps
    rankings = get_rankings(net)
    sets = standard_channel_sets(rankings, (5, 10, 25, 50))            # {"F": {...}, "H-5": {...}, ...}
    d = evaluate_variants(net, live_index.records, {name: Variant(c) for name, c in sets.items()})
    srocc(mean_over_layers(d["H-10"], net.layers, ["relu3"]), dmos)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pe_iqa.analysis.ranking import ChannelRanking
from pe_iqa.backbones import Backbone
from pe_iqa.feature_distance import NORM_EPS, channel_errors, channel_weights, layer_distance, prepare_features
from pe_iqa.image_io import read_image

__all__ = [
    "ChannelSet",
    "PairRecord",
    "Variant",
    "downscale",
    "evaluate_variants",
    "group_by_reference",
    "indicator_set_distances",
    "mean_over_layers",
    "random_channel_sets",
    "reference_set_norms",
    "selected_scores",
    "set_distances",
    "standard_channel_sets",
]

ChannelSets = Mapping[str, torch.Tensor]
#: Largest ``positions × sets`` whose reference norms :func:`evaluate_variants` keeps (float64: 400 MB); beyond it
#: (VGG-16 relu1_2 at 768×512 with 409 sets: 1.3 GB) they are recomputed for every distorted image.
REFERENCE_NORMS_MAX = 50_000_000


@dataclass(frozen=True)
class ChannelSet:
    """One channel set of a layer and its weights, for :func:`set_distances`.

    Attributes:
        channels: ``(K,)`` distinct int64 channel indices.
        weights: ``(K,)`` channel weights (:func:`~pe_iqa.feature_distance.channel_weights`, with the same
            ``channel_norm``).
    """

    channels: torch.Tensor
    weights: torch.Tensor


def _check_set(channel_set: ChannelSet, n_channels: int) -> tuple[int, ...]:
    idx = channel_set.channels.reshape(-1)
    if idx.numel() == 0 or channel_set.weights.numel() != idx.numel():
        raise ValueError(f"a channel set needs K >= 1 channels and K weights, got {idx.numel()} and "
                         f"{channel_set.weights.numel()}")
    key = tuple(int(i) for i in idx.tolist())
    if min(key) < 0 or max(key) >= n_channels or len(set(key)) != len(key):
        raise ValueError(f"channel indices must be distinct and in [0, {n_channels})")
    return key


def _checked_pair(a: torch.Tensor, b: torch.Tensor, sets: Sequence[ChannelSet]) -> list[tuple[int, ...]]:
    """Every set's channel indices, after checking that ``a`` and ``b`` are one ``(1, C, H, W)`` pair."""
    if a.shape != b.shape or a.ndim != 4 or a.shape[0] != 1:
        raise ValueError(f"a and b must both have shape (1, C, H, W), got {tuple(a.shape)} and {tuple(b.shape)}")
    return [_check_set(s, a.shape[1]) for s in sets]


@torch.inference_mode()
def set_distances(a: torch.Tensor, b: torch.Tensor, sets: Sequence[ChannelSet], channel_norm: bool) -> torch.Tensor:
    """Distances of one pair of activations for many channel sets and weightings, by the core's Eq. 1 kernel.

    Each set is :func:`~pe_iqa.feature_distance.prepare_features` (select, and with ``channel_norm`` unit-normalise)
    then :func:`~pe_iqa.feature_distance.layer_distance` — what :class:`~pe_iqa.PEDistance` computes — in float64;
    sets with the same channels share their prepared features. Raw sets (no normalisation) share one vector of
    per-channel errors (:func:`~pe_iqa.feature_distance.channel_errors`), dotted with each set's weights: the same
    distance, summed in another order.

    Args:
        a: activations of the distorted image, ``(1, C, H, W)`` (all channels of the layer).
        b: activations of the reference, same shape.
        sets: the channel sets with their weights.
        channel_norm: unit-normalise each set's channels.

    Returns:
        ``(Q,)`` float64 distances, one per set, in the order of ``sets``.

    Raises:
        ValueError: mismatched shapes, or a set with invalid indices or weights.
    """
    keys = _checked_pair(a, b, sets)
    wide_a, wide_b = a.to(torch.float64), b.to(torch.float64)
    out = torch.empty(len(sets), dtype=torch.float64)
    if not channel_norm:  # raw sets share one per-channel error vector (the kernel's channel_errors)
        errors = channel_errors(prepare_features(wide_a, None, False, torch.float64),
                                prepare_features(wide_b, None, False, torch.float64))[0]
        for q, channel_set in enumerate(sets):
            index = torch.tensor(keys[q], device=errors.device)
            out[q] = float((errors.index_select(0, index) * channel_set.weights.to(errors)).sum())
        return out
    by_channels: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for q, key in enumerate(keys):
        by_channels[key].append(q)
    for key, rows in by_channels.items():
        index = torch.tensor(key, device=a.device)
        prepared_a = prepare_features(wide_a, index, channel_norm, torch.float64)
        prepared_b = prepare_features(wide_b, index, channel_norm, torch.float64)
        for q in rows:
            out[q] = float(layer_distance(prepared_a, prepared_b, sets[q].weights)[0])
    return out


def _set_matrices(sets: Sequence[ChannelSet], keys: Sequence[tuple[int, ...]], n_channels: int,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The channels × sets indicator ``I`` and weight matrix ``W`` (``W[m, q] = w_m`` of set ``q``), float64."""
    indicator = torch.zeros(n_channels, len(sets), dtype=torch.float64)
    weights = torch.zeros(n_channels, len(sets), dtype=torch.float64)
    for q, (key, channel_set) in enumerate(zip(keys, sets, strict=True)):
        index = torch.tensor(key)
        indicator[index, q] = 1.0
        weights[index, q] = channel_set.weights.to(torch.float64).reshape(-1)
    return indicator, weights


@torch.inference_mode()
def reference_set_norms(b: torch.Tensor, sets: Sequence[ChannelSet], chunk: int = 1024) -> torch.Tensor:
    """``‖b_S‖²`` of every set at every position, ``(H·W, Q)`` float64: a reference's share of
    :func:`indicator_set_distances`, computed once for all its distorted images (pass the same ``chunk``)."""
    keys = [_check_set(s, b.shape[1]) for s in sets]
    indicator = _set_matrices(sets, keys, b.shape[1])[0].to(b.device)
    flat_b = b.to(torch.float64)[0].flatten(1).T
    out = torch.empty(flat_b.shape[0], len(sets), dtype=torch.float64, device=b.device)
    for start in range(0, flat_b.shape[0], chunk):
        torch.matmul(flat_b[start:start + chunk].square(), indicator, out=out[start:start + chunk])
    return out


@torch.inference_mode()
def indicator_set_distances(a: torch.Tensor, b: torch.Tensor, sets: Sequence[ChannelSet], channel_norm: bool,
                            chunk: int = 1024, reference_norms: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`set_distances` for all sets at once: products with the channels × sets indicator matrix.

    The kernel's unit-normalised distance of a set ``S`` with weights ``w`` at one position expands to
    ``i_a² Σ_S w a² + i_b² Σ_S w b² − 2 i_a i_b Σ_S w a b`` with ``i_a = 1 / (sqrt(Σ_S a² + ε²) + ε)``
    (:func:`~pe_iqa.feature_distance.prepare_features`, same ``ε``); for uniform weights ½ it is
    ``1 − Σ_S a b / (‖a_S‖ ‖b_S‖)`` where both norms are non-zero. Every sum over ``S`` of every set is one matrix
    product of the per-position channel vectors (``a²``, ``b²``, ``a∘b``) with the indicator ``I`` or the weight
    matrix ``W`` (channels × sets), so one pass over the positions scores all sets; then the spatial mean, as
    :func:`~pe_iqa.feature_distance.layer_distance`. Raw sets are one product too: the per-channel errors
    (:func:`~pe_iqa.feature_distance.channel_errors`) times ``W``. Equal to :func:`set_distances` to float64
    rounding (a sum in another order), not bit for bit; the cost no longer grows with the number of sets' channels.

    Args:
        a: activations of the distorted image, ``(1, C, H, W)``.
        b: activations of the reference, same shape.
        sets: the channel sets with their weights.
        channel_norm: unit-normalise each set's channels.
        chunk: positions per matrix product (``chunk × len(sets)`` float64 temporaries: small enough to stay in
            the CPU cache, which makes the element-wise steps about 3× faster than 16384).
        reference_norms: ``b``'s :func:`reference_set_norms` for these sets, if already computed.

    Returns:
        ``(Q,)`` float64 distances, one per set, in the order of ``sets``.

    Raises:
        ValueError: mismatched shapes, or a set with invalid indices or weights.
    """
    keys = _checked_pair(a, b, sets)
    indicator, weights = _set_matrices(sets, keys, a.shape[1])
    wide_a, wide_b = a.to(torch.float64), b.to(torch.float64)
    indicator, weights = indicator.to(wide_a.device), weights.to(wide_a.device)
    if not channel_norm:
        errors = channel_errors(prepare_features(wide_a, None, False, torch.float64),
                                prepare_features(wide_b, None, False, torch.float64))
        return (errors @ weights)[0].cpu()
    per_set = weights.sum(dim=0) / indicator.sum(dim=0)
    uniform = bool(torch.equal(weights, indicator * per_set))  # then Σ_S w a² = w_S ‖a_S‖²: 3 products, not 5
    flat_a, flat_b = wide_a[0].flatten(1).T, wide_b[0].flatten(1).T  # (positions, C)
    total = torch.zeros(len(sets), dtype=torch.float64, device=wide_a.device)
    for start in range(0, flat_a.shape[0], chunk):
        pa, pb = flat_a[start:start + chunk], flat_b[start:start + chunk]
        square_a, square_b = pa * pa, pb * pb
        norm_a = square_a @ indicator
        norm_b = square_b @ indicator if reference_norms is None else reference_norms[start:start + chunk]
        inv_a = (norm_a + NORM_EPS**2).sqrt().add_(NORM_EPS).reciprocal_()
        inv_b = (norm_b + NORM_EPS**2).sqrt().add_(NORM_EPS).reciprocal_()
        weighted_a = norm_a * per_set if uniform else square_a @ weights
        weighted_b = norm_b * per_set if uniform else square_b @ weights
        value = inv_a.square() * weighted_a + inv_b.square() * weighted_b
        total += (value - 2.0 * inv_a * inv_b * ((pa * pb) @ weights)).sum(dim=0)
    return (total / flat_a.shape[0]).cpu()


class PairRecord(Protocol):
    """Anything with a distorted and a reference image path (e.g. :class:`benchmarks.datasets.live.LiveRecord`)."""

    dist_path: Path
    ref_path: Path


@dataclass(frozen=True)
class Variant:
    """One distance configuration evaluated by :func:`evaluate_variants`.

    Attributes:
        channels: per layer, the selected channel indices, ``{layer: (K,) int64}``; must name every tapped layer.
        channel_norm: unit-normalise the selected channels at each position (LPIPS-style) before comparing.
        scores: per layer, non-negative scores of the selected channels (``(K,)``) for score-proportional weights
            (``weighting="pe"``); ``None`` = uniform weights (exactly Eq. 1 for raw distances).
    """

    channels: ChannelSets
    channel_norm: bool = True
    scores: ChannelSets | None = None

    def channel_set(self, layer: str) -> ChannelSet:
        """The layer's channels with their weights, as :class:`~pe_iqa.PEDistance` weights them."""
        channels = self.channels[layer].to(torch.long).reshape(-1)
        scores = None if self.scores is None else self.scores[layer]
        return ChannelSet(channels, channel_weights(channels.numel(), self.channel_norm, scores))


def standard_channel_sets(
    rankings: Mapping[str, ChannelRanking], percents: Sequence[float] = (5, 10, 25, 50)
) -> dict[str, dict[str, torch.Tensor]]:
    """The paper's subsets for every ranked layer: ``F`` and ``H-x``, ``L-x`` for each ``x`` in ``percents``.

    Args:
        rankings: ``{layer: ChannelRanking}`` (e.g. from :func:`pe_iqa.get_rankings`).
        percents: the values of ``x``, each in ``(0, 100]``.

    Returns:
        ``{"F": {layer: idx}, "H-5": {...}, "L-5": {...}, ...}`` with indices as
        :meth:`~pe_iqa.ChannelRanking.select` returns them (so identical to ``PEDistance``'s).

    Raises:
        ValueError: if ``rankings`` is empty or a percent is out of range.
    """
    if not rankings:
        raise ValueError("rankings must hold at least one layer")
    sets: dict[str, dict[str, torch.Tensor]] = {"F": {k: r.select("all") for k, r in rankings.items()}}
    for x in percents:
        sets[f"H-{float(x):g}"] = {k: r.select("high", x) for k, r in rankings.items()}
        sets[f"L-{float(x):g}"] = {k: r.select("low", x) for k, r in rankings.items()}
    return sets


def random_channel_sets(
    rankings: Mapping[str, ChannelRanking], percent: float, seed: int
) -> dict[str, torch.Tensor]:
    """A random control subset of the same size as ``H-x`` in every layer (seeded, reproducible).

    Args:
        rankings: ``{layer: ChannelRanking}``; only the channel counts and the ``H-x`` sizes are used.
        percent: ``x``, in ``(0, 100]``.
        seed: seed of the ``torch.Generator`` (layer ``i`` uses ``seed`` mixed with ``i``).

    Returns:
        ``{layer: (K,) int64}`` sorted indices, ``K = len(ranking.select("high", percent))``.
    """
    out = {}
    for i, (layer, ranking) in enumerate(rankings.items()):
        k = int(ranking.select("high", percent).numel())
        generator = torch.Generator().manual_seed(int(seed) * 1000003 + i)
        out[layer] = torch.sort(torch.randperm(ranking.n_channels, generator=generator)[:k]).values
    return out


def selected_scores(rankings: Mapping[str, ChannelRanking], channels: ChannelSets) -> dict[str, torch.Tensor]:
    """The ranking scores of the selected channels, ``{layer: (K,)}`` (the weights of ``weighting="pe"``)."""
    return {layer: rankings[layer].score[idx] for layer, idx in channels.items()}


def downscale(images: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear downscaling with antialiasing (a no-op for ``scale == 1``).

    Args:
        images: ``(N, 3, H, W)`` in ``[0, 1]``.
        scale: factor in ``(0, 1]`` (0.5 halves both sides).

    Returns:
        ``(N, 3, round(H·scale), round(W·scale))``, clamped to ``[0, 1]``.

    Raises:
        ValueError: if ``scale`` is outside ``(0, 1]``.
    """
    if not 0 < float(scale) <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    if float(scale) == 1.0:
        return images
    size = (max(1, round(images.shape[-2] * scale)), max(1, round(images.shape[-1] * scale)))
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)


def mean_over_layers(distances: np.ndarray, layers: Sequence[str], chosen: Sequence[str]) -> np.ndarray:
    """Multi-layer distance: the mean of the chosen layers' columns (as ``PEDistance`` averages layers).

    Args:
        distances: ``(N, L)`` per-layer distances, columns in the order of ``layers``.
        layers: the column names (the backbone's taps).
        chosen: the layers to average (non-empty subset of ``layers``).

    Returns:
        ``(N,)`` float64.

    Raises:
        ValueError: on an empty or unknown choice or a column-count mismatch.
    """
    layers = list(layers)
    if distances.ndim != 2 or distances.shape[1] != len(layers):
        raise ValueError(f"distances must have shape (N, {len(layers)}), got {distances.shape}")
    if not chosen or any(layer not in layers for layer in chosen):
        raise ValueError(f"chosen must be a non-empty subset of {layers}, got {list(chosen)}")
    return distances[:, [layers.index(layer) for layer in chosen]].mean(axis=1)


def group_by_reference(records: Sequence[PairRecord]) -> dict[Path, list[int]]:
    """Indices of the records of each reference image, in order of first appearance."""
    groups: dict[Path, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[Path(record.ref_path)].append(i)
    return dict(groups)


@torch.inference_mode()
def evaluate_variants(
    backbone: Backbone,
    records: Sequence[PairRecord],
    variants: Mapping[Hashable, Variant],
    *,
    scale: float = 1.0,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str | None = None,
    all_sets: bool = False,
) -> dict[Hashable, np.ndarray]:
    """Per-image, per-layer distances of many configurations, one forward pass per image.

    Each reference is read and run through the network once, then every distorted image of it once; all variants
    are evaluated from those activations by the core's Eq. 1 kernel (:func:`set_distances`).

    Args:
        backbone: a loaded :class:`~pe_iqa.backbones.Backbone`; its taps are the columns of the result.
        records: pairs with ``dist_path`` and ``ref_path`` (e.g. ``LiveIndex.records``), shape ``(N,)``.
        variants: ``{key: Variant}``; every variant names channels (and scores, if any) for every tapped layer.
        scale: downscale both images by this factor first (bilinear, antialiased; see :func:`downscale`).
        device: where to compute (default: the backbone's device; the backbone is not moved).
        progress: show a progress bar over the images.
        desc: progress-bar label.
        all_sets: score every set of a layer at once (:func:`indicator_set_distances`: equal to float64 rounding,
            much faster for hundreds of sets of large feature maps) instead of set by set (:func:`set_distances`,
            bit-identical to the kernel's float64 result, the default and what the committed studies used).

    Returns:
        ``{key: (N, L) float64}``: row ``i`` is ``records[i]``, column ``k`` is ``backbone.layers[k]``.

    Raises:
        ValueError: if ``records`` or ``variants`` is empty, a variant misses a layer or has bad indices or
            scores, an image pair differs in size, or an image is smaller than the backbone accepts.
    """
    if not records:
        raise ValueError("records is empty")
    if not variants:
        raise ValueError("variants is empty")
    if not isinstance(backbone, Backbone):
        raise TypeError(f"backbone must be a pe_iqa Backbone, got {type(backbone).__name__}")
    run_device = torch.device(device) if device is not None else backbone.mean.device
    layers = list(backbone.layers)
    keys = list(variants)
    for key, variant in variants.items():
        if any(layer not in variant.channels or (variant.scores is not None and layer not in variant.scores)
               for layer in layers):
            raise ValueError(f"variant {key!r} must give channels (and scores, if any) for every layer {layers}")
    groups = {norm: [q for q, key in enumerate(keys) if variants[key].channel_norm == norm] for norm in (True, False)}
    sets = {(layer, norm): [variants[keys[q]].channel_set(layer) for q in rows]
            for layer in layers for norm, rows in groups.items() if rows}
    min_size = backbone.min_input_size
    result = np.full((len(keys), len(records), len(layers)), math.nan)

    def features(path: Path) -> dict[str, torch.Tensor]:
        image = downscale(read_image(path).to(run_device), scale)
        if min(image.shape[-2:]) < min_size:
            raise ValueError(f"{path} is {tuple(image.shape[-2:])} px after scaling; {backbone.spec.name} needs "
                             f">= {min_size}")
        return backbone(image)

    bar = tqdm(total=len(records), desc=desc or f"{backbone.spec.name} features", disable=not progress, unit="img")
    for ref_path, indices in group_by_reference(records).items():
        reference = features(ref_path)
        norms = {layer: reference_set_norms(reference[layer], sets[(layer, True)])
                 for layer in layers if all_sets and groups[True]
                 and reference[layer][0, 0].numel() * len(groups[True]) <= REFERENCE_NORMS_MAX}
        for i in indices:
            distorted = features(Path(records[i].dist_path))
            for k, layer in enumerate(layers):
                a, b = distorted[layer], reference[layer]
                if a.shape != b.shape:
                    raise ValueError(f"{records[i].dist_path} and its reference {ref_path} differ in size")
                for norm, rows in groups.items():
                    if rows:
                        result[rows, i, k] = (
                            indicator_set_distances(a, b, sets[(layer, norm)], norm,
                                                    reference_norms=norms.get(layer) if norm else None)
                            if all_sets else set_distances(a, b, sets[(layer, norm)], norm)).numpy()
            bar.update(1)
    bar.close()
    return {key: result[q] for q, key in enumerate(keys)}
