"""Figures of distances and explanations (matplotlib): heat maps over images, the top channels' tuning curves.

:func:`map_figure` draws one pair's combined distance map (``pe-iqa score --maps``); :func:`explanation_figure`
draws an :class:`~pe_iqa.explain.Explanation` (``pe-iqa explain``). The numbers come from :mod:`pe_iqa.explain` and
:meth:`pe_iqa.PEDistance.maps`; this module only draws them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .analysis.csf import get_csf
from .analysis.tuning import peak_frequency
from .distance import PEDistance
from .distance_maps import DistanceMaps
from .explain import Explanation
from .plotting import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["HEATMAP", "draw_heatmap", "explanation_figure", "map_figure"]

#: Perceptually uniform colour map of the distance heat maps.
HEATMAP = "magma"


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


def _grey(image: torch.Tensor) -> torch.Tensor:
    """``(1, C, H, W)`` in [0, 1] → ``(H, W)`` grey levels."""
    return _as_image(image).mean(dim=2)


def _tuning_axis(ax, x: torch.Tensor, response: torch.Tensor, colour, xlabel: str, ylabel: str,
                 top: float = 1.08) -> None:
    """One channel's tuning curve, scaled to its peak (curves end at 1: an axis reaching ``top`` > 1.3 leaves a
    band above them free for a legend)."""
    scale = float(response.abs().max()) or 1.0
    ax.plot(x.numpy(), (response / scale).numpy(), color=colour, lw=1.8, label="channel")
    ax.set_ylim(min(-0.05, float((response / scale).min()) - 0.05), top)
    ax.set_yticks([0, 0.5, 1])
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)


def explanation_figure(explanation: Explanation, metric: PEDistance, distorted: torch.Tensor,
                       reference: torch.Tensor, n: int = 4, title: str = "") -> Figure:
    """The heat map over the image, and the ``n`` top channels' tuning curves and difference maps.

    The top row holds the two images and the heat map, spread over the figure's width; below, one column per
    channel: its frequency tuning (with the CSF), its orientation tuning (both scaled to their peak, labelled on
    the first column, legends above the curves) and its weighted squared difference over the greyed reference.

    Args:
        explanation: from :func:`~pe_iqa.explain.explain_pair`.
        metric: the distance it explains (for the rankings' tuning curves and the CSF).
        distorted: the distorted image, ``(1, C, H, W)`` in ``[0, 1]``.
        reference: the reference image.
        n: channels shown (at most the number with a difference map).
        title: figure title (default: the metric and the score).

    Returns:
        The figure (write it with :func:`pe_iqa.plotting.save_figure`).
    """
    shown = [c for c in explanation.contributions if (c.layer, c.channel) in explanation.channel_maps][:max(1, n)]
    columns = max(3, len(shown))
    figure = new_figure(figsize=(3.6 * columns, 3.3 * 4), layout="constrained")
    from matplotlib import colormaps  # present: new_figure checked
    grid = figure.add_gridspec(4, columns)
    top = grid[0, :].subgridspec(1, 3)  # three panels over the whole width: no empty slot beside them
    for column, (image, label) in enumerate(((distorted, "distorted"), (reference, "reference"))):
        ax = figure.add_subplot(top[0, column])
        ax.imshow(_as_image(image).numpy())
        ax.set_title(label)
        ax.axis("off")
    ax = figure.add_subplot(top[0, 2])
    draw_heatmap(figure, ax, reference, explanation.maps.combined[0], "distance per position")
    ax.set_title(f"where they differ\n(mean = score {explanation.score:.4f})")
    colours = colormaps["tab10"]
    grey = _grey(reference).numpy()
    for column, contribution in enumerate(shown):
        ranking = metric.rankings[contribution.layer]
        tuning, colour = ranking.tuning, colours(column % 10)
        label = (f"{contribution.layer} ch {contribution.channel}: {100 * contribution.share:.1f} % of the score\n"
                 f"PE rank {contribution.pe_rank}/{ranking.n_channels}")
        ylabel = "response (1 = its peak)" if column == 0 else ""
        ax_f = figure.add_subplot(grid[1, column])
        _tuning_axis(ax_f, tuning.frequencies, tuning.response_f[contribution.channel], colour,
                     "frequency (cycles/degree)", ylabel, top=1.45)
        csf = get_csf(ranking.config.csf)(tuning.frequencies)
        ax_f.plot(tuning.frequencies.numpy(), (csf / csf.max()).numpy(), color="0.6", lw=1, ls="--", label="CSF")
        ax_f.set_xscale("log")
        ax_f.set_title(label, fontsize=9)
        ax_f.legend(fontsize=7, loc="upper center", ncol=2, frameon=False)  # above the curves (they end at 1)
        ax_t = figure.add_subplot(grid[2, column])
        _tuning_axis(ax_t, torch.rad2deg(tuning.orientations), tuning.response_theta[contribution.channel], colour,
                     f"orientation (degrees), {peak_frequency(ranking.config):.1f} cpd", ylabel)
        ax_t.set_xticks([0, 45, 90, 135, 180])
        ax_d = figure.add_subplot(grid[3, column])
        difference = explanation.channel_maps[(contribution.layer, contribution.channel)].detach().float().cpu()
        extent = (0, grey.shape[1], grey.shape[0], 0)  # the map over the image, whatever its resolution
        ax_d.imshow(grey, cmap="gray", vmin=0, vmax=1, extent=extent)
        shown_map = ax_d.imshow(difference.numpy(), cmap=HEATMAP, vmin=0, alpha=0.65, extent=extent)
        _colorbar_beside(figure, ax_d, shown_map)
        ax_d.set_title("its weighted squared difference", fontsize=9)
        ax_d.axis("off")
    figure.suptitle(title or f"{metric.spec.describe()}: score {explanation.score:.4f}", fontsize=11)
    return figure
