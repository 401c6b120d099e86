"""Evaluation engine: per-layer PE distances of MANY channel subsets from one forward pass per image.

Scoring a grid of configurations (F, H-x, L-x for several x, random subsets, other scores, channel
normalisation on/off, uniform or score-proportional channel weights) with :class:`~pe_iqa.distance.PEDistance`
would run the network once per configuration and image. Here each image goes through the backbone **once**
(each reference once for all its distorted images) and every configuration is evaluated from the same
activations. The result is, per configuration, an ``(N, L)`` array of per-layer distances ``d_k`` (Eq. 1 of
the paper); a multi-layer distance is the mean of its layers' columns (:func:`mean_over_layers`), exactly as
:class:`~pe_iqa.distance.PEDistance` averages layers.

For a layer with activations ``a`` (distorted) and ``b`` (reference) of shape ``(C, P)`` (``P = H·W``
positions), a channel set ``S`` with weights ``w`` (summing to 1) gives::

    raw  (channel_norm=False):  d = Σ_{c∈S} w_c · mean_p (a_cp − b_cp)²
    norm (channel_norm=True):   d = mean_p Σ_{c∈S} w_c (a_cp/n_a(p) − b_cp/n_b(p))²,
                                n_a(p) = sqrt(Σ_{c∈S} a_cp² + ε²) + ε,  ε = 1e-10

The raw form needs only the per-channel mean squared difference (one ``(C,)`` vector per layer and pair), so
any number of weightings of any number of sets costs one weighted sum each. The normalised form is computed
once per distinct channel set (its per-channel mean squared difference of normalised features), then weighted
per variant. Everything is computed in float64 from the float32 activations, over chunks of positions
(bounded memory), and reproduces :class:`~pe_iqa.distance.PEDistance` to float32 rounding.

Typical use (the selection study: random subsets, other scores, cross-validation over layer combinations)::

    net = load_backbone("alexnet")                      # all five taps
    rankings = get_rankings(net)
    sets = standard_channel_sets(rankings, (5, 10, 25, 50))            # {"F": {...}, "H-5": {...}, ...}
    sets |= {f"rand-10-s{s}": random_channel_sets(rankings, 10, seed=s) for s in range(20)}
    d = pair_layer_distances(net, live_index.records, sets, channel_norm=True)   # {name: (N, 5)}
    srocc(mean_over_layers(d["H-10"], net.layers, ["relu3"]), dmos)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import functional as tvf
from tqdm.auto import tqdm

from pe_iqa.backbones import Backbone
from pe_iqa.ranking import ChannelRanking

__all__ = [
    "DistanceVariant",
    "PairRecord",
    "downscale",
    "evaluate_variants",
    "load_image",
    "mean_over_layers",
    "pair_layer_distances",
    "random_channel_sets",
    "score_weights",
    "standard_channel_sets",
]

_NORM_EPS = 1e-10  # as pe_iqa.distance
_CHUNK_ELEMENTS = 1 << 22  # (channels × positions) float64 elements per block

ChannelSet = Mapping[str, torch.Tensor]


class PairRecord(Protocol):
    """Anything with a distorted and a reference image path (e.g. :class:`benchmarks.datasets.live.LiveRecord`)."""

    dist_path: Path
    ref_path: Path


@dataclass(frozen=True)
class DistanceVariant:
    """One distance configuration evaluated by :func:`evaluate_variants`.

    Attributes:
        channels: per layer, the selected channel indices, ``{layer: (K,) int64}``; must name every tapped layer.
        channel_norm: unit-normalise the selected channels at each position (LPIPS-style) before comparing.
        weights: per layer, non-negative channel weights aligned with ``channels`` (``(K,)``, rescaled to sum
            to 1); ``None`` = uniform ``1/K`` (exactly Eq. 1).
    """

    channels: ChannelSet
    channel_norm: bool = True
    weights: ChannelSet | None = None


def standard_channel_sets(
    rankings: Mapping[str, ChannelRanking], percents: Sequence[float] = (5, 10, 25, 50)
) -> dict[str, dict[str, torch.Tensor]]:
    """The paper's subsets for every ranked layer: ``F`` and ``H-x``, ``L-x`` for each ``x`` in ``percents``.

    Args:
        rankings: ``{layer: ChannelRanking}`` (e.g. from :func:`pe_iqa.registry.get_rankings`).
        percents: the values of ``x``, each in ``(0, 100]``.

    Returns:
        ``{"F": {layer: idx}, "H-5": {...}, "L-5": {...}, ...}`` with indices as
        :meth:`~pe_iqa.ranking.ChannelRanking.select` returns them (so identical to ``PEDistance``'s).

    Raises:
        ValueError: if ``rankings`` is empty or a percent is out of range.
    """
    if not rankings:
        raise ValueError("rankings must hold at least one layer")
    sets: dict[str, dict[str, torch.Tensor]] = {"F": {k: r.select("all") for k, r in rankings.items()}}
    for x in percents:
        if not 0 < float(x) <= 100:
            raise ValueError(f"percents must lie in (0, 100], got {x}")
        sets[f"H-{float(x):g}"] = {k: r.select("high", float(x)) for k, r in rankings.items()}
        sets[f"L-{float(x):g}"] = {k: r.select("low", float(x)) for k, r in rankings.items()}
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


def score_weights(
    rankings: Mapping[str, ChannelRanking], channel_sets: Mapping[str, ChannelSet]
) -> dict[str, dict[str, torch.Tensor]]:
    """Channel weights proportional to the ranking score, as ``PEDistance(weighting="pe")``.

    Args:
        rankings: ``{layer: ChannelRanking}`` whose ``score`` gives the weights.
        channel_sets: ``{name: {layer: idx}}``.

    Returns:
        ``{name: {layer: (K,) float32}}`` summing to 1 per layer (uniform where the scores sum to 0).
    """
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name, channels in channel_sets.items():
        out[name] = {}
        for layer, idx in channels.items():
            scores = rankings[layer].score[idx].to(torch.float32)
            total = scores.sum()
            out[name][layer] = scores / total if float(total) > 0 else torch.full_like(scores, 1.0 / scores.numel())
    return out


def load_image(path: str | Path) -> torch.Tensor:
    """An image file as float32 RGB in ``[0, 1]``, shape ``(1, 3, H, W)``."""
    with Image.open(path) as img:
        return tvf.to_tensor(img.convert("RGB")).unsqueeze(0)


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


class _LayerPlan:
    """The variants of one layer: raw ones as a ``(R, C)`` weight matrix, normalised ones grouped by channel set."""

    def __init__(self, layer: str, n_channels: int, variants: Sequence[DistanceVariant], names: Sequence[str]):
        raw_rows: list[int] = []
        raw_weights: list[torch.Tensor] = []
        #: per distinct channel set of the normalised variants: (indices, [(variant row, weights (K,))])
        self.norm_sets: dict[tuple[int, ...], tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]] = {}
        for row, (name, variant) in enumerate(zip(names, variants, strict=True)):
            idx = variant.channels[layer].to(torch.long).cpu().reshape(-1)
            if idx.numel() == 0:
                raise ValueError(f"channel set {name!r} layer {layer!r}: expected a non-empty (K,) index tensor")
            if int(idx.min()) < 0 or int(idx.max()) >= n_channels or idx.unique().numel() != idx.numel():
                raise ValueError(
                    f"channel set {name!r} layer {layer!r}: indices must be distinct and in [0, {n_channels})"
                )
            if variant.weights is None:
                w = torch.full((idx.numel(),), 1.0 / idx.numel(), dtype=torch.float64)
            else:
                w = variant.weights[layer].to(torch.float64).cpu().reshape(-1)
                if w.numel() != idx.numel() or not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                    raise ValueError(
                        f"weights of {name!r} layer {layer!r} must be {idx.numel()} finite non-negative values"
                    )
                if not float(w.sum()) > 0:
                    raise ValueError(f"weights of {name!r} layer {layer!r} sum to 0")
                w = w / w.sum()
            if variant.channel_norm:
                self.norm_sets.setdefault(tuple(idx.tolist()), (idx, []))[1].append((row, w))
            else:
                dense = torch.zeros(n_channels, dtype=torch.float64)
                dense[idx] = w
                raw_rows.append(row)
                raw_weights.append(dense)
        self.raw_rows = raw_rows
        self.raw_weights = torch.stack(raw_weights) if raw_weights else torch.zeros(0, n_channels, dtype=torch.float64)
        self.n_variants = len(names)

    def to(self, device: torch.device) -> _LayerPlan:
        self.raw_weights = self.raw_weights.to(device)
        self.norm_sets = {
            key: (idx.to(device), [(row, w.to(device)) for row, w in uses])
            for key, (idx, uses) in self.norm_sets.items()
        }
        return self

    def distances(self, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        """Distances of every variant for one pair, ``(V,)`` float64, from ``(C, P)`` float32 activations.

        Computed in float64 with elementwise operations only (small float64 matrix products are pathologically
        slow on a busy multi-threaded CPU), over chunks of positions to bound memory.
        """
        out = np.empty(self.n_variants)
        positions = a.shape[1]
        if self.raw_rows:
            per_channel = torch.zeros(a.shape[0], dtype=torch.float64, device=a.device)
            step = max(1, _CHUNK_ELEMENTS // a.shape[0])
            for start in range(0, positions, step):
                diff = a[:, start:start + step].double() - b[:, start:start + step].double()
                per_channel += diff.pow(2).sum(dim=1)
            values = (self.raw_weights * (per_channel / positions)).sum(dim=1)
            out[self.raw_rows] = values.cpu().numpy()
        for idx, uses in self.norm_sets.values():
            a_sel, b_sel = a.index_select(0, idx), b.index_select(0, idx)
            per_channel = torch.zeros(idx.numel(), dtype=torch.float64, device=a.device)
            step = max(1, _CHUNK_ELEMENTS // idx.numel())
            for start in range(0, positions, step):
                ac, bc = a_sel[:, start:start + step].double(), b_sel[:, start:start + step].double()
                ac = ac / (torch.sqrt(ac.pow(2).sum(dim=0, keepdim=True) + _NORM_EPS**2) + _NORM_EPS)
                bc = bc / (torch.sqrt(bc.pow(2).sum(dim=0, keepdim=True) + _NORM_EPS**2) + _NORM_EPS)
                per_channel += (ac - bc).pow(2).sum(dim=1)
            per_channel /= positions
            for row, w in uses:
                out[row] = float((w * per_channel).sum())
        return out


def _group_by_reference(records: Sequence[PairRecord]) -> dict[Path, list[int]]:
    groups: dict[Path, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[Path(record.ref_path)].append(i)
    return groups


@torch.inference_mode()
def evaluate_variants(
    backbone: Backbone,
    records: Sequence[PairRecord],
    variants: Mapping[str, DistanceVariant],
    *,
    scale: float = 1.0,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> dict[str, np.ndarray]:
    """Per-image, per-layer distances of many configurations, one forward pass per image.

    Each reference is loaded and run through the network once, then every distorted image of it once; all
    variants are evaluated from those activations.

    Args:
        backbone: a loaded :class:`~pe_iqa.backbones.Backbone`; its taps are the columns of the result.
        records: pairs with ``dist_path`` and ``ref_path`` (e.g. ``LiveIndex.records``), shape ``(N,)``.
        variants: ``{name: DistanceVariant}``; every variant names channels for every tapped layer.
        scale: downscale both images by this factor first (bilinear, antialiased; see :func:`downscale`).
        device: where to compute (default: the backbone's device; the backbone is not moved).
        progress: show a progress bar over the images.
        desc: progress-bar label.

    Returns:
        ``{name: (N, L) float64}``: row ``i`` is ``records[i]``, column ``k`` is ``backbone.layers[k]``.

    Raises:
        ValueError: if ``records`` or ``variants`` is empty, a variant misses a layer or has bad indices or
            weights, an image pair differs in size, or an image is smaller than the backbone accepts.
    """
    if not records:
        raise ValueError("records is empty")
    if not variants:
        raise ValueError("variants is empty")
    if not isinstance(backbone, Backbone):
        raise TypeError(f"backbone must be a pe_iqa Backbone, got {type(backbone).__name__}")
    run_device = torch.device(device) if device is not None else backbone.mean.device
    layers = list(backbone.layers)
    names = list(variants)
    for name, variant in variants.items():
        missing = [layer for layer in layers if layer not in variant.channels]
        if missing or (variant.weights is not None and any(layer not in variant.weights for layer in layers)):
            raise ValueError(f"variant {name!r} must give channels (and weights, if any) for every layer {layers}")
    channel_counts = backbone.channels()
    plans = [
        _LayerPlan(layer, channel_counts[layer], list(variants.values()), names).to(run_device) for layer in layers
    ]
    min_size = backbone.min_input_size
    result = np.full((len(names), len(records), len(layers)), math.nan)

    def features(path: Path) -> list[torch.Tensor]:
        image = downscale(load_image(path).to(run_device), scale)
        if min(image.shape[-2:]) < min_size:
            raise ValueError(f"{path} is {tuple(image.shape[-2:])} px after scaling; {backbone.spec.name} needs "
                             f">= {min_size}")
        out = backbone(image)
        return [out[layer][0].flatten(1) for layer in layers]  # (C, P) each

    bar = tqdm(total=len(records), desc=desc or f"{backbone.spec.name} features", disable=not progress,
               unit="img")
    for ref_path, indices in _group_by_reference(records).items():
        ref_feats = features(ref_path)
        for i in indices:
            dist_feats = features(Path(records[i].dist_path))
            for k, (plan, a, b) in enumerate(zip(plans, dist_feats, ref_feats, strict=True)):
                if a.shape != b.shape:
                    raise ValueError(f"{records[i].dist_path} and its reference {ref_path} differ in size")
                result[:, i, k] = plan.distances(a, b)
            bar.update(1)
    bar.close()
    return {name: result[j] for j, name in enumerate(names)}


def pair_layer_distances(
    backbone: Backbone,
    records: Sequence[PairRecord],
    channel_sets: Mapping[str, ChannelSet],
    channel_norm: bool = True,
    weights: Mapping[str, ChannelSet] | None = None,
    *,
    scale: float = 1.0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Per-image, per-layer distances of named channel sets (one normalisation setting).

    ``pair_layer_distances(net, recs, {"H-10": sets})["H-10"].mean(axis=1)`` equals
    ``PEDistance(net, subset="high", top_percent=10, reduction="none")(dist, ref)`` image by image.

    Args:
        backbone: a loaded :class:`~pe_iqa.backbones.Backbone`; its taps are the result's columns.
        records: pairs with ``dist_path`` and ``ref_path``, shape ``(N,)``.
        channel_sets: ``{name: {layer: (K,) int64}}`` (e.g. :func:`standard_channel_sets`,
            :func:`random_channel_sets`, or rankings by other scores).
        channel_norm: unit-normalise the selected channels per position (LPIPS-style) or compare raw (Eq. 1).
        weights: optional ``{name: {layer: (K,)}}`` channel weights for some sets (e.g. :func:`score_weights`
            for ``weighting="pe"``); sets not named here are weighted uniformly.
        scale: downscale factor applied to both images (see :func:`downscale`).
        device: where to compute (default: the backbone's device).
        progress: show a progress bar.

    Returns:
        ``{name: (N, L) float64}`` with columns in the order of ``backbone.layers``.

    Raises:
        ValueError: see :func:`evaluate_variants`.
    """
    weights = weights or {}
    unknown = [name for name in weights if name not in channel_sets]
    if unknown:
        raise ValueError(f"weights names sets {unknown} that are not in channel_sets")
    variants = {
        name: DistanceVariant(channels, bool(channel_norm), weights.get(name))
        for name, channels in channel_sets.items()
    }
    return evaluate_variants(backbone, records, variants, scale=scale, device=device, progress=progress)
