"""From a :class:`~pe_iqa.spec.DistanceSpec` (or a given network) to the network and, per layer, the selected channels.

:func:`resolve` is the one place where a spec becomes something that can be run: it loads the backbone (or takes the
one given, analysed as it is — never reloaded by name), gets the layers' rankings (:mod:`pe_iqa.ranking_lookup`),
selects the channels (H-x / L-x / F) and computes their weights (:func:`~pe_iqa.feature_distance.channel_weights`).
The distance module, the losses, the distance maps and the benchmarks all start here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .backbones import Backbone
from .feature_distance import channel_weights
from .ranking import ChannelRanking
from .ranking_lookup import get_rankings, network_for
from .spec import DistanceSpec

__all__ = ["ResolvedDistance", "ResolvedLayer", "resolve"]


@dataclass(frozen=True)
class ResolvedLayer:
    """One compared layer of a resolved distance.

    Attributes:
        name: the layer name.
        ranking: its channel ranking.
        channels: the selected channel indices, ``(K,)`` int64, sorted.
        weights: their weights, ``(K,)`` float32 (see :func:`~pe_iqa.feature_distance.channel_weights`).
    """

    name: str
    ranking: ChannelRanking
    channels: torch.Tensor
    weights: torch.Tensor


@dataclass(frozen=True)
class ResolvedDistance:
    """A spec made runnable: the network and the selected channels of every compared layer.

    Attributes:
        spec: the specification (for a given network: its backbone name, weights tag and taps filled in).
        backbone: the network (whole: every channel of every tap).
        layers: one :class:`ResolvedLayer` per compared layer, shallow to deep.
    """

    spec: DistanceSpec
    backbone: Backbone
    layers: tuple[ResolvedLayer, ...]


def resolve(spec: DistanceSpec, backbone: Backbone | None = None,
            device: torch.device | str | None = None) -> ResolvedDistance:
    """Load (or take) the network of ``spec`` and select each layer's channels.

    Args:
        spec: the distance.
        backbone: optional loaded :class:`~pe_iqa.backbones.Backbone` to use (shared, not copied) instead of
            loading ``spec.backbone``; its name and weights tag replace the spec's, and ``spec.layers`` must be among
            its taps. Its rankings are those of the weights it holds now.
        device: where to load the network (a given backbone stays where it is).

    Raises:
        ValueError: a given backbone that does not tap the spec's layers, or was pruned.
    """
    if backbone is not None:
        if not isinstance(backbone, Backbone):
            raise TypeError(f"backbone must be a name or a pe_iqa Backbone, got {type(backbone).__name__}")
        layers = spec.layers if spec.backbone == backbone.spec.name else backbone.layers
        spec = spec.replace(backbone=backbone.spec.name, layers=layers, weights=backbone.weights)
    net, _ = network_for(backbone if backbone is not None else spec.backbone, spec.layers, spec.weights, device)
    rankings = get_rankings(net, spec.layers, score=spec.score, config=spec.config, device=device)
    layers = []
    for name, ranking in rankings.items():
        channels = ranking.select(spec.subset, spec.top_percent)
        scores = ranking.score[channels] if spec.weighting == "pe" else None
        layers.append(ResolvedLayer(name, ranking, channels, channel_weights(len(channels), spec.channel_norm, scores)))
    return ResolvedDistance(spec, net, tuple(layers))
