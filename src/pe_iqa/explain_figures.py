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


def explanation_figure(explanation: Explanation, metric: PEDistance, distorted: torch.Tensor,
                       reference: torch.Tensor, n: int = 4, title: str = "") -> Figure:
    """The heat map over the image, and the ``n`` top channels' tuning curves and difference maps.

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
        ax_t.set_xlabel(f"orientation (degrees), {peak_frequency(ranking.config):.1f} cpd")
        ax_t.set_xticks([0, 45, 90, 135, 180])
        ax_d = figure.add_subplot(grid[3, column])
        difference = explanation.channel_maps[(contribution.layer, contribution.channel)]
        shown_map = ax_d.imshow(difference.cpu().numpy(), cmap=HEATMAP, vmin=0)
        _colorbar_beside(figure, ax_d, shown_map)
        ax_d.set_title("its weighted squared difference", fontsize=9)
        ax_d.axis("off")
    figure.suptitle(title or f"{metric.spec.describe()}: score {explanation.score:.4f}", fontsize=11)
    return figure
