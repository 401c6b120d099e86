"""Why is this image worse? Where two images differ (distance maps) and which selected channels say so.

A PE distance is a sum over the selected channels of every compared layer (:mod:`pe_iqa.feature_distance`), so a
pair's score splits exactly into one contribution per channel::

    score = Σ_k Σ_{m ∈ S_k} c_km,     c_km = λ_k · w_km · mean_{h,w} (φ_m(x) − φ_m(y))²

where ``λ_k`` is layer ``k``'s share of the score, from the same combination as the score
(:func:`~pe_iqa.feature_distance.combine_layers`): ``1 / (number of layers)``, or ``layer_weights``.

:func:`explain_pair` returns, for one (distorted, reference) pair, the score, its distance maps
(:meth:`pe_iqa.PEDistance.maps`), every selected channel's contribution joined with what the PE analysis measured of
that channel (PE, μ1, μ2, its rank by PE, preferred frequency and orientation from the stored tuning curves) and the
channels' own difference maps. The figures (the heat map over the image, the top channels' tuning curves and
difference maps) are drawn by :mod:`pe_iqa.explain_figures`.

What it cannot say: a contribution is the channel's share of *this* distance, not evidence that humans see the
difference there; channels that respond to colour or texture can carry a difference that is invisible, and the maps
are upsampled from the layers' coarse grids (AlexNet relu3 has one position per 16 pixels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch

from .distance import PEDistance
from .distance_maps import DistanceMaps, upsample_map
from .feature_distance import channel_errors, combine_layers

if TYPE_CHECKING:
    pass

__all__ = ["ChannelContribution", "Explanation", "explain_pair"]


@dataclass(frozen=True)
class ChannelContribution:
    """One selected channel's part of a pair's distance, and what the PE analysis measured of it.

    Attributes:
        layer: the layer.
        channel: the channel index in the layer.
        contribution: its part of the score (contributions of all selected channels sum to the score).
        share: ``contribution / score`` (0 when the score is 0).
        pe: its Perceptual Efficacy.
        mu1: frequency sensitivity ``μ1``.
        mu2: orientation selectivity ``μ2``.
        pe_rank: its rank by PE in the layer (1 = most efficacious).
        preferred_frequency: the radial grating frequency (cycles/degree) it responds to most.
        preferred_orientation: the grating orientation (degrees, at the CSF peak frequency) it responds to most.
    """

    layer: str
    channel: int
    contribution: float
    share: float
    pe: float
    mu1: float
    mu2: float
    pe_rank: int
    preferred_frequency: float
    preferred_orientation: float

    def as_dict(self) -> dict[str, float | int | str]:
        """A plain row (for CSV/JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class Explanation:
    """The explanation of one pair's distance.

    Attributes:
        score: the distance.
        maps: the pair's :class:`~pe_iqa.distance_maps.DistanceMaps` (batch of one).
        contributions: every selected channel, largest contribution first.
        channel_maps: ``{(layer, channel): (H, W)}`` the squared difference of the channel's (normalised) features,
            weighted as in the distance and upsampled to the image, for the channels in ``contributions[:top]``.
    """

    score: float
    maps: DistanceMaps
    contributions: tuple[ChannelContribution, ...]
    channel_maps: dict[tuple[str, int], torch.Tensor]


@torch.no_grad()
def explain_pair(metric: PEDistance, distorted: torch.Tensor, reference: torch.Tensor, top: int = 10) -> Explanation:
    """Distance maps and per-channel contributions of one (distorted, reference) pair.

    Args:
        metric: the distance (e.g. ``PEDistance("pe_alex")``).
        distorted: ``(1, C, H, W)`` in ``[0, data_range]``.
        reference: same shape.
        top: how many of the largest contributions get their own difference map, ``>= 1``.

    Returns:
        An :class:`Explanation`; its contributions sum to its score (to float rounding).

    Raises:
        ValueError: a batch of more than one pair, ``top < 1``, or invalid images (as :class:`~pe_iqa.PEDistance`).

    Example:
        >>> import torch
        >>> metric = PEDistance(weights="random", layers=["relu1"], top_percent=25)
        >>> x = torch.rand(1, 3, 64, 64)
        >>> why = explain_pair(metric, x.clamp(0.3, 0.7), x, top=3)
        >>> abs(sum(c.contribution for c in why.contributions) - why.score) < 1e-6
        True
    """
    if distorted.shape[0] != 1:
        raise ValueError(f"explain one pair at a time, got a batch of {distorted.shape[0]}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be an integer >= 1, got {top!r}")
    preds_feats, target_feats = metric.pair_features(distorted, reference, None)
    size = (int(distorted.shape[-2]), int(distorted.shape[-1]))
    maps = metric.maps_from_features(preds_feats, target_feats, size)
    score = float(maps.scores[0])
    # each layer's share of the score, from the same combination as the score (mean, or ``layer_weights``)
    weights = None if metric.layer_weights is None else metric.layer_weights.detach().cpu()
    layer_shares = combine_layers(torch.eye(len(metric.layers), dtype=torch.float64), weights)
    rows, sources = [], []
    for head, a, b, layer_share in zip(metric.heads, preds_feats, target_feats, layer_shares.tolist(), strict=True):
        ranking = metric.rankings[head.layer]
        rank_of = torch.empty(ranking.n_channels, dtype=torch.long)
        rank_of[ranking.order()] = torch.arange(1, ranking.n_channels + 1)
        tuning = ranking.tuning
        contributions = (channel_errors(a, b)[0] * head.channel_weights.to(a.dtype)).double() * layer_share
        for j, channel in enumerate(head.channels.tolist()):
            rows.append(ChannelContribution(
                layer=head.layer, channel=channel, contribution=float(contributions[j]),
                share=float(contributions[j]) / score if score > 0 else 0.0,
                pe=float(ranking.pe[channel]), mu1=float(ranking.mu1[channel]), mu2=float(ranking.mu2[channel]),
                pe_rank=int(rank_of[channel]),
                preferred_frequency=float(tuning.frequencies[int(tuning.response_f[channel].argmax())]),
                preferred_orientation=float(torch.rad2deg(tuning.orientations[int(tuning.response_theta[channel]
                                                                                    .argmax())])),
            ))
            sources.append((a[0, j], b[0, j], float(head.channel_weights[j]) * layer_share))
    order = sorted(range(len(rows)), key=lambda i: -rows[i].contribution)
    channel_maps = {}
    for i in order[:top]:
        a_channel, b_channel, weight = sources[i]
        native = ((a_channel - b_channel).pow(2) * weight)[None]
        channel_maps[(rows[i].layer, rows[i].channel)] = upsample_map(native, size)[0]
    return Explanation(score, maps, tuple(rows[i] for i in order), channel_maps)
