"""From a :class:`~pe_iqa.spec.DistanceSpec` (or a given network) to the network and, per layer, the selected channels.

:func:`resolve` is the one place where a spec becomes something that can be run: it loads the backbone (or takes the
one given, analysed as it is — never reloaded by name) and, per layer, takes the selected channels and their weights
from the selections the package ships (:func:`~pe_iqa.selections.shipped_selection`, keyed by the network's weights
fingerprint, the layer, the analysis configuration, the score and the selection options). Only for a key the package
does not ship (another backbone, fine-tuned or random weights, another configuration, score or selection) does it
load the PE analysis (:mod:`pe_iqa.analysis`: rankings from the shipped or cached tuning curves, or measured), select
the channels (H-x / L-x / F) and compute their weights (:func:`~pe_iqa.feature_distance.channel_weights`). The
distance module, the losses, the distance maps and the benchmarks all start here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .backbones import Backbone, network_for
from .feature_distance import channel_weights
from .selections import SelectionKey, shipped_selection
from .spec import DistanceSpec

if TYPE_CHECKING:
    from .analysis.ranking import ChannelRanking

__all__ = ["ResolvedDistance", "ResolvedLayer", "resolve", "selection_key"]


@dataclass(frozen=True)
class ResolvedLayer:
    """One compared layer of a resolved distance.

    Attributes:
        name: the layer name.
        channels: the selected channel indices, ``(K,)`` int64, sorted.
        channel_weights: their weights, ``(K,)`` float32 (:func:`~pe_iqa.feature_distance.channel_weights`; not
            the network's weights, :attr:`~pe_iqa.spec.DistanceSpec.weights`, nor the layers',
            :attr:`~pe_iqa.spec.DistanceSpec.layer_weights`).
        ranking: the layer's channel ranking when the analysis was run to select them (``None`` for a shipped
            selection; :func:`rankings_of` gives it on demand).
    """

    name: str
    channels: torch.Tensor
    channel_weights: torch.Tensor
    ranking: ChannelRanking | None = None


@dataclass(frozen=True)
class ResolvedDistance:
    """A spec made runnable: the network and the selected channels of every compared layer.

    Attributes:
        spec: the specification (for a given network: its backbone name, weights tag and taps filled in).
        backbone: the network (whole: every channel of every tap).
        weights_id: the fingerprint of its weights when the channels were selected.
        layers: one :class:`ResolvedLayer` per compared layer, shallow to deep.
    """

    spec: DistanceSpec
    backbone: Backbone
    weights_id: str
    layers: tuple[ResolvedLayer, ...]


def selection_key(spec: DistanceSpec, weights_id: str, layer: str) -> SelectionKey:
    """The key of one layer's selection under ``spec`` for a network with weights fingerprint ``weights_id``."""
    return SelectionKey(spec.backbone, weights_id, layer, spec.config.key(), spec.score, spec.subset,
                        spec.top_percent, spec.channel_norm, spec.weighting)


def rankings_of(spec: DistanceSpec, backbone: Backbone | None = None,
                device: torch.device | str | None = None) -> dict[str, ChannelRanking]:
    """The channel rankings of ``spec``'s layers (loads the PE analysis).

    Args:
        spec: the distance.
        backbone: the whole network the distance was resolved with, if given; else ``spec.backbone`` is loaded by
            name with ``spec.weights``.
        device: where to load and measure.
    """
    from .analysis.ranking_lookup import get_rankings  # the analysis, loaded on demand

    return get_rankings(backbone if backbone is not None else spec.backbone, spec.layers, weights=spec.weights,
                        score=spec.score, config=spec.config, device=device)


def resolve(spec: DistanceSpec, backbone: Backbone | None = None,
            device: torch.device | str | None = None) -> ResolvedDistance:
    """Load (or take) the network of ``spec`` and select each layer's channels.

    Args:
        spec: the distance.
        backbone: optional loaded :class:`~pe_iqa.backbones.Backbone` to use (shared, not copied) instead of
            loading ``spec.backbone``; its name and weights tag replace the spec's, and ``spec.layers`` must be among
            its taps. Its selections are those of the weights it holds now.
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
    weights_id = net.weights_id
    shipped = {layer: shipped_selection(selection_key(spec, weights_id, layer)) for layer in spec.layers}
    if all(selection is not None for selection in shipped.values()):
        layers = tuple(ResolvedLayer(name, selection.channels, selection.channel_weights)
                       for name, selection in shipped.items())
        return ResolvedDistance(spec, net, weights_id, layers)
    rankings = rankings_of(spec, net, device)
    resolved = []
    for name, ranking in rankings.items():
        channels = ranking.select(spec.subset, spec.top_percent)
        scores = ranking.score[channels] if spec.weighting == "pe" else None
        resolved.append(ResolvedLayer(name, channels, channel_weights(len(channels), spec.channel_norm, scores),
                                      ranking))
    return ResolvedDistance(spec, net, weights_id, tuple(resolved))
