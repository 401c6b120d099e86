"""Why is this image worse? Where two images differ (distance maps) and which selected channels say so.

A PE distance is a sum over the selected channels of every compared layer (:mod:`pe_iqa.feature_distance`), so a
pair's score splits exactly into one contribution per channel::

    score = mean_k Σ_{m ∈ S_k} c_km,     c_km = w_km · mean_{h,w} (φ_m(x) − φ_m(y))²  /  (number of layers)

:func:`explain_pair` returns, for one (distorted, reference) pair, the score, its distance maps
(:meth:`pe_iqa.PEDistance.maps`), every selected channel's contribution joined with what the PE analysis measured of
that channel (PE, μ1, μ2, its rank by PE, preferred frequency and orientation from the stored tuning curves) and the
channels' own difference maps. :func:`explanation_figure` draws the heat map over the image and the top channels'
tuning curves and difference maps.

What it cannot say: a contribution is the channel's share of *this* distance, not evidence that humans see the
difference there; channels that respond to colour or texture can carry a difference that is invisible, and the maps
are upsampled from the layers' coarse grids (AlexNet relu3 has one position per 16 pixels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch

from .csf import get_csf
from .distance import DistanceMaps, PEDistance, upsample_map
from .feature_distance import channel_errors
from .plotting import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ChannelContribution", "Explanation", "draw_heatmap", "explain_pair", "explanation_figure", "map_figure"]

#: Perceptually uniform colour map of the distance heat maps.
HEATMAP = "magma"


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
        maps: the pair's :class:`~pe_iqa.distance.DistanceMaps` (batch of one).
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
    n_layers = len(metric.layers)
    rows, sources = [], []
    for head, a, b in zip(metric.heads, preds_feats, target_feats, strict=True):
        ranking = metric.rankings[head.layer]
        rank_of = torch.empty(ranking.n_channels, dtype=torch.long)
        rank_of[ranking.order()] = torch.arange(1, ranking.n_channels + 1)
        tuning = ranking.tuning
        contributions = (channel_errors(a, b)[0] * head.weights.to(a.dtype)).double() / n_layers
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
            sources.append((a[0, j], b[0, j], float(head.weights[j])))
    order = sorted(range(len(rows)), key=lambda i: -rows[i].contribution)
    channel_maps = {}
    for i in order[:top]:
        a_channel, b_channel, weight = sources[i]
        native = ((a_channel - b_channel).pow(2) * weight)[None]
        channel_maps[(rows[i].layer, rows[i].channel)] = upsample_map(native, size)[0]
    return Explanation(score, maps, tuple(rows[i] for i in order), channel_maps)


def _as_image(images: torch.Tensor) -> torch.Tensor:
    """``(1, C, H, W)`` in [0, 1] → ``(H, W, 3)`` for imshow."""
    image = images[0].detach().float().cpu()
    return (image.expand(3, -1, -1) if image.shape[0] == 1 else image).permute(1, 2, 0).clamp(0, 1)


def draw_heatmap(figure: Figure, ax, image: torch.Tensor, distance_map: torch.Tensor, label: str) -> None:
    """Draw a distance map over a grey version of ``image`` with a colour bar of the distance scale.

    Args:
        figure: the figure holding ``ax``.
        ax: a matplotlib axis.
        image: ``(1, C, H, W)`` in ``[0, 1]``.
        distance_map: ``(H, W)`` per-position distances.
        label: the colour bar's label.
    """
    ax.imshow(_as_image(image).mean(dim=2).numpy(), cmap="gray", vmin=0, vmax=1)
    values = distance_map.detach().float().cpu()
    heat = ax.imshow(values.numpy(), cmap=HEATMAP, alpha=0.65, vmin=0, vmax=float(values.max()) or 1.0)
    _colorbar_beside(figure, ax, heat, label)
    ax.axis("off")


def _colorbar_beside(figure: Figure, ax, image, label: str = "") -> None:
    """A colour bar exactly as tall as the drawn image, right of it (in the axis' own coordinates, which follow
    the image's aspect): ``figure.colorbar(ax=ax)`` sizes it by the axis' slot, so beside a wide image it rose
    above the image into the title."""
    figure.colorbar(image, cax=ax.inset_axes((1.03, 0.0, 0.05, 1.0)), label=label)


def map_figure(maps: DistanceMaps, reference: torch.Tensor, title: str, index: int = 0) -> Figure:
    """One pair's combined distance map over its reference (what ``pe-iqa score --maps`` writes).

    Args:
        maps: :meth:`pe_iqa.PEDistance.maps` of a batch.
        reference: the batch's references, ``(N, C, H, W)`` in ``[0, 1]``.
        title: the figure title (e.g. the pair's file names).
        index: the pair in the batch.
    """
    height, width = maps.combined.shape[-2:]
    figure = new_figure(figsize=(6.4, 6.4 * height / width + 0.6), layout="constrained")
    ax = figure.add_subplot()
    draw_heatmap(figure, ax, reference[index:index + 1], maps.combined[index], "distance per position")
    ax.set_title(f"{title}\nscore {float(maps.scores[index]):.4f} (the map's mean)", fontsize=9)
    return figure


def explanation_figure(explanation: Explanation, metric: PEDistance, distorted: torch.Tensor,
                       reference: torch.Tensor, n: int = 4, title: str = "") -> Figure:
    """The heat map over the image, and the ``n`` top channels' tuning curves and difference maps.

    Args:
        explanation: from :func:`explain_pair`.
        metric: the distance it explains (for the rankings' tuning curves and the CSF).
        distorted: the distorted image, ``(1, C, H, W)`` in ``[0, 1]``.
        reference: the reference image.
        n: channels shown (at most the number with a difference map).
        title: figure title (default: the metric and the score).

    Returns:
        The figure (write it with :func:`pe_iqa.plotting.save_figure`).
    """
    shown = [c for c in explanation.contributions if (c.layer, c.channel) in explanation.channel_maps][:max(1, n)]
    figure = new_figure(figsize=(3.6 * max(3, len(shown)), 3.3 * 4), layout="constrained")
    from matplotlib import colormaps  # present: new_figure checked
    grid = figure.add_gridspec(4, max(3, len(shown)))
    for column, (image, label) in enumerate(((distorted, "distorted"), (reference, "reference"))):
        ax = figure.add_subplot(grid[0, column])
        ax.imshow(_as_image(image).numpy())
        ax.set_title(label)
        ax.axis("off")
    ax = figure.add_subplot(grid[0, 2])
    draw_heatmap(figure, ax, reference, explanation.maps.combined[0], "distance per position")
    ax.set_title(f"where they differ\n(mean = score {explanation.score:.4f})")
    colours = colormaps["tab10"]
    for column, contribution in enumerate(shown):
        ranking = metric.rankings[contribution.layer]
        tuning, colour = ranking.tuning, colours(column % 10)
        label = (f"{contribution.layer} ch {contribution.channel}: {100 * contribution.share:.1f} % of the score\n"
                 f"PE rank {contribution.pe_rank}/{ranking.n_channels}")
        ax_f = figure.add_subplot(grid[1, column])
        response = tuning.response_f[contribution.channel]
        scale = float(response.abs().max()) or 1.0
        ax_f.plot(tuning.frequencies.numpy(), (response / scale).numpy(), color=colour, lw=1.8)
        csf = get_csf(ranking.config.csf)(tuning.frequencies)
        ax_f.plot(tuning.frequencies.numpy(), (csf / csf.max()).numpy(), color="0.6", lw=1, ls="--", label="CSF")
        ax_f.set_xscale("log")
        ax_f.set_xlabel("frequency (cycles/degree)")
        ax_f.set_title(label, fontsize=9)
        ax_f.legend(fontsize=7, loc="lower center")
        ax_t = figure.add_subplot(grid[2, column])
        response = tuning.response_theta[contribution.channel]
        scale = float(response.abs().max()) or 1.0
        ax_t.plot(torch.rad2deg(tuning.orientations).numpy(), (response / scale).numpy(), color=colour, lw=1.8)
        ax_t.set_xlabel(f"orientation (degrees), {ranking.config.peak_frequency():.1f} cpd")
        ax_t.set_xticks([0, 45, 90, 135, 180])
        ax_d = figure.add_subplot(grid[3, column])
        difference = explanation.channel_maps[(contribution.layer, contribution.channel)]
        shown_map = ax_d.imshow(difference.cpu().numpy(), cmap=HEATMAP, vmin=0)
        _colorbar_beside(figure, ax_d, shown_map)
        ax_d.set_title("its weighted squared difference", fontsize=9)
        ax_d.axis("off")
    figure.suptitle(title or f"{metric.spec.describe()}: score {explanation.score:.4f}", fontsize=11)
    return figure
