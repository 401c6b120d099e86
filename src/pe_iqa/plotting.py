"""Figures of a PE analysis: tuning curves of the most and least efficacious channels, PE histograms, filters.

:func:`plot_layer` draws, for one layer's :class:`~pe_iqa.analysis.ranking.ChannelRanking`, the figure of the paper's
Fig. 2–3: the frequency tuning ``a(f)`` (log frequency axis, the CSF on a twin axis) and the orientation
tuning ``a(θ)`` of the top-n and bottom-n channels, and a histogram of PE over the layer's channels (log
scale, with the number of channels whose PE is exactly 0). For the first layer of a network the RGB filters
of those channels can be added (:func:`input_filters`), with their :func:`filter_chromaticity`: the paper
observes that high-PE channels of the first layers are achromatic mid-frequency filters and low-PE ones are
coloured.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot, no GUI backend, no global state; matplotlib
is imported only when a figure is made and comes with the ``plots`` extra) and
written by :func:`save_figure` with the Agg renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .analysis.csf import get_csf
from .analysis.ranking import ChannelRanking
from .analysis.tuning import peak_frequency
from .backbones import Backbone
from .safe_files import write_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "MAX_FIGURE_PIXELS",
    "ChromaticitySummary",
    "chromaticity_summary",
    "filter_chromaticity",
    "input_filters",
    "new_figure",
    "pe_histogram_edges",
    "plot_layer",
    "require_matplotlib",
    "save_figure",
    "top_bottom_channels",
]

_TOP_COLOURS = ("#b2182b", "#e66101", "#d6604d", "#f4a582", "#fdb863", "#8c510a")
_BOTTOM_COLOURS = ("#2166ac", "#4393c3", "#5e3c99", "#92c5de", "#01665e", "#35978f")
_HEADROOM = 1.6


def require_matplotlib() -> None:
    """Check that matplotlib, which only the figures need (the ``plots`` extra), can be imported.

    Call it before any work whose result is a figure, so a missing matplotlib is one line at the start.

    Raises:
        ImportError: naming the extra that installs it.
    """
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError as error:
        raise ImportError(f"figures need matplotlib, which is not installed ({error}): "
                          f"pip install 'pe-iqa[plots]'") from None


def new_figure(**options) -> Figure:
    """A :class:`matplotlib.figure.Figure` (object API: no pyplot, no GUI backend, no global state).

    Raises:
        ImportError: matplotlib is not installed (see :func:`require_matplotlib`).
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(**options)


def top_bottom_channels(ranking: ChannelRanking, n: int) -> tuple[list[int], list[int]]:
    """The ``n`` most and ``n`` least efficacious channels of a ranking.

    Args:
        ranking: a layer's ranking.
        n: channels per group, ``>= 1`` (clamped to half the layer so the groups do not overlap).

    Returns:
        ``(top, bottom)`` channel indices; ``top[0]`` is the best channel, ``bottom[0]`` the worst.

    Raises:
        ValueError: if ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    n = max(1, min(n, ranking.n_channels // 2))
    order = ranking.order().tolist()
    return order[:n], order[::-1][:n]


def input_filters(backbone: Backbone, layer: str) -> torch.Tensor | None:
    """RGB filters of the convolution feeding ``layer``, when it is the network's first (RGB-input) conv.

    The filters are returned in image space: each input-channel slice is divided by the backbone's
    normalisation std, so a filter's colour is the colour of ``[0, 1]`` RGB input it responds to.

    Args:
        backbone: a loaded backbone.
        layer: a layer name of the backbone.

    Returns:
        ``(M, 3, h, w)`` float32 filters, or ``None`` if ``layer`` is not the first tap of the network or
        its channels are not those of an RGB-input convolution.
    """
    if layer != next(iter(backbone.spec.taps)):
        return None
    conv = next((m for m in backbone.extractor.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.in_channels != 3 or conv.groups != 1:
        return None
    weights = conv.weight.detach().float().cpu()
    return weights / backbone.std.detach().float().cpu().view(1, 3, 1, 1)


def filter_chromaticity(filters: torch.Tensor) -> torch.Tensor:
    """How coloured each RGB filter is: mean over pixels of the std across R, G, B, over the filter's std.

    0 for an achromatic filter (equal R, G and B weights at every pixel); larger for colour-opponent or
    single-colour filters. Scale-invariant.

    Args:
        filters: ``(K, 3, h, w)``.

    Returns:
        ``(K,)`` float64, ``>= 0`` (0 for an all-zero filter).

    Raises:
        ValueError: if ``filters`` is not ``(K, 3, h, w)``.
    """
    if filters.ndim != 4 or filters.shape[1] != 3:
        raise ValueError(f"filters must have shape (K, 3, h, w), got {tuple(filters.shape)}")
    values = filters.detach().to("cpu", torch.float64)
    across_rgb = values.std(dim=1, unbiased=False).mean(dim=(1, 2))  # (K,)
    total = values.flatten(1).std(dim=1, unbiased=False)
    return torch.where(total > 0, across_rgb / total.clamp_min(1e-300), torch.zeros_like(total))


@dataclass(frozen=True)
class ChromaticitySummary:
    """How coloured a first layer's filters are, by PE (the paper: high-PE channels are achromatic).

    Attributes:
        chromaticity: :func:`filter_chromaticity` of every filter, ``(M,)``.
        high_mean: mean over the H-10 channels; ``high_count`` their number.
        low_mean: mean over the L-10 channels; ``low_count`` their number.
        all_mean: mean over every channel.
        spearman: rank correlation of PE with chromaticity over the layer.
    """

    chromaticity: torch.Tensor
    high_mean: float
    high_count: int
    low_mean: float
    low_count: int
    all_mean: float
    spearman: float


def chromaticity_summary(ranking: ChannelRanking, filters: torch.Tensor) -> ChromaticitySummary:
    """Chromaticity of a first layer's filters overall, in H-10 and L-10, and its rank correlation with PE.

    Args:
        ranking: the layer's ranking.
        filters: its ``(M, 3, h, w)`` RGB filters (:func:`input_filters`).
    """
    from scipy.stats import spearmanr

    chroma = filter_chromaticity(filters)
    high, low = ranking.select("high", 10.0), ranking.select("low", 10.0)
    return ChromaticitySummary(chroma, float(chroma[high].mean()), len(high), float(chroma[low].mean()), len(low),
                               float(chroma.mean()), float(spearmanr(ranking.pe.numpy(), chroma.numpy()).statistic))


def _normalised(curve: torch.Tensor, scale: float) -> list[float]:
    return (curve / scale).tolist() if scale > 0 else curve.tolist()


def _channel_scale(ranking: ChannelRanking, channel: int) -> float:
    tuning = ranking.tuning
    both = torch.cat([tuning.response_f[channel], tuning.response_theta[channel]])
    return float(both.abs().max())


def _tuning_panels(ax_f, ax_t, ranking: ChannelRanking, top: list[int], bottom: list[int]) -> None:
    tuning = ranking.tuning
    freqs = tuning.frequencies.tolist()
    degrees = torch.rad2deg(tuning.orientations).tolist()
    for group, colours, style, label in ((top, _TOP_COLOURS, "-", "top"), (bottom, _BOTTOM_COLOURS, "--", "bottom")):
        for i, channel in enumerate(group):
            scale = _channel_scale(ranking, channel)
            colour = colours[i % len(colours)]
            name = f"{label} {i + 1}: ch {channel} (PE {float(ranking.pe[channel]):.2g})"
            ax_f.plot(freqs, _normalised(tuning.response_f[channel], scale), style, color=colour, lw=1.6,
                      label=name)
            ax_t.plot(degrees, _normalised(tuning.response_theta[channel], scale), style, color=colour, lw=1.6)
    ax_f.set_xscale("log")
    ax_f.set_xlabel("radial grating frequency f (cycles/degree)")
    ax_f.set_ylabel("response a(f) / channel max")
    ax_f.set_title("frequency tuning")
    csf_axis = ax_f.twinx()
    csf = get_csf(ranking.config.csf)(tuning.frequencies).tolist()
    csf_axis.fill_between(freqs, 0, csf, color="0.6", alpha=0.2, lw=0)
    csf_axis.plot(freqs, csf, color="0.45", lw=1.0, label=f"CSF ({ranking.config.csf})")
    csf_axis.set_ylabel("contrast sensitivity (CSF)", color="0.4")
    csf_axis.tick_params(axis="y", colors="0.4")
    csf_axis.set_ylim(0, max(csf) * _HEADROOM)
    ax_f.set_ylim(min(-0.05, ax_f.get_ylim()[0]), _HEADROOM)  # curves peak at 1: room above for the legends
    ax_t.set_ylim(min(-0.05, ax_t.get_ylim()[0]), 1.1)
    ax_f.set_yticks([tick for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if tick >= ax_f.get_ylim()[0]])
    csf_axis.set_yticks([tick for tick in csf_axis.get_yticks() if 0 <= tick <= max(csf) * 1.05])
    ax_f.set_zorder(csf_axis.get_zorder() + 1)
    ax_f.patch.set_visible(False)
    ax_f.legend(fontsize=7, loc="upper left", ncols=2, framealpha=0.85)
    csf_axis.legend(fontsize=7, loc="upper right", framealpha=0.85)
    ax_t.set_xlabel(f"grating orientation θ (degrees), at {peak_frequency(ranking.config):.1f} cpd")
    ax_t.set_ylabel("response a(θ) / channel max")
    ax_t.set_title("orientation tuning")
    ax_t.set_xticks([0, 45, 90, 135, 180])


def pe_histogram_edges(values: torch.Tensor, bins: int = 30) -> np.ndarray:
    """Log-spaced float64 bin edges that contain every positive value (the extremes included).

    Args:
        values: PE values; only the positive ones are binned (PE = 0 cannot sit on a log axis).
        bins: number of bins.

    Returns:
        ``(bins + 1,)`` increasing edges from the smallest to the largest positive value.

    Raises:
        ValueError: if no value is positive.
    """
    positive = values.detach().to("cpu", torch.float64)
    positive = positive[positive > 0].numpy()
    if positive.size == 0:
        raise ValueError("no positive values to bin")
    low, high = float(positive.min()), float(positive.max())
    if high <= low:
        low, high = low / 2, high * 2
    edges = np.logspace(np.log10(low), np.log10(high), bins + 1)
    edges[0], edges[-1] = low, high  # exactly: rounding in log10/exp must not drop the extremes
    return edges


def _histogram_panel(ax, ranking: ChannelRanking) -> None:
    pe = ranking.pe
    zeros = int((pe == 0).sum())
    if bool((pe > 0).any()):
        positive = pe[pe > 0].to(torch.float64).numpy()
        ax.hist(positive, bins=pe_histogram_edges(pe), color="0.35")
        ax.set_xscale("log")
        cut = float(ranking.pe[ranking.select("high", 10.0)].min())
        if cut > 0:
            ax.axvline(cut, color=_TOP_COLOURS[0], ls="--", lw=1.2, label="H-10 threshold")
            ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel("perceptual efficacy PE (log scale)")
    ax.set_ylabel("channels")
    ax.set_title("PE histogram")
    ax.text(0.98, 0.97, f"PE = 0: {zeros} of {ranking.n_channels} channels", transform=ax.transAxes,
            ha="right", va="top", fontsize=8, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})


def _filter_image(kernel: torch.Tensor, scale: float) -> list:
    # zero weight → mid grey; the same scale for every shown filter so contrasts compare across panels
    image = (kernel / (2.0 * scale) + 0.5).clamp(0.0, 1.0) if scale > 0 else torch.full_like(kernel, 0.5)
    return image.permute(1, 2, 0).numpy()


def _filter_panels(figure: Figure, grid, filters: torch.Tensor, top: list[int], bottom: list[int]) -> None:
    chroma = filter_chromaticity(filters)
    shown = top + bottom
    scale = float(filters[shown].abs().max())
    n = len(top)
    cells = grid.subgridspec(1, 2 * n + 1, width_ratios=[1.0] * n + [0.25] + [1.0] * n, wspace=0.15)
    for i, channel in enumerate(shown):
        where = "top" if i < n else "bottom"
        rank = i + 1 if i < n else i - n + 1
        ax = figure.add_subplot(cells[0, i if i < n else i + 1])
        ax.imshow(_filter_image(filters[channel], scale), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{where} {rank}: ch {channel}\nchromaticity {float(chroma[channel]):.2f}", fontsize=8)
        colour = _TOP_COLOURS[0] if i < n else _BOTTOM_COLOURS[0]
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(2)


def plot_layer(
    ranking: ChannelRanking,
    n: int = 4,
    filters: torch.Tensor | None = None,
    weights_label: str | None = None,
) -> Figure:
    """Tuning curves of the top-n and bottom-n channels of a layer and its PE histogram (paper Fig. 2–3).

    Args:
        ranking: the layer's ranking (:func:`~pe_iqa.analysis.ranking_lookup.get_ranking`).
        n: channels shown per group (clamped to half the layer).
        filters: optional ``(M, 3, h, w)`` RGB filters of the layer (:func:`input_filters`); when given, a
            second row shows those of the shown channels with their :func:`filter_chromaticity`.
        weights_label: how to name the weights in the title (e.g. the tag ``"DEFAULT"`` or ``"random"``); default:
            the weights fingerprint.

    Returns:
        The figure (save it with :func:`save_figure`).

    Raises:
        ValueError: if ``n < 1`` or ``filters`` does not have one filter per channel.

    References:
        Perceptual Efficacy channel selection for deep-feature distances (the paper this package
        implements), Fig. 2–3.
    """
    top, bottom = top_bottom_channels(ranking, n)
    if filters is not None and (filters.ndim != 4 or filters.shape[:2] != (ranking.n_channels, 3)):
        raise ValueError(
            f"filters must have shape ({ranking.n_channels}, 3, h, w) for layer {ranking.layer}, "
            f"got {tuple(filters.shape)}"
        )
    figure = new_figure(figsize=(16, 7.6 if filters is not None else 5.0), layout="constrained")
    outer = figure.add_gridspec(2 if filters is not None else 1, 1,
                                height_ratios=[5.0, 2.6] if filters is not None else [1.0])
    row = outer[0].subgridspec(1, 3, width_ratios=[1.25, 1.0, 0.9])
    ax_f, ax_t, ax_h = (figure.add_subplot(row[0, i]) for i in range(3))
    _tuning_panels(ax_f, ax_t, ranking, top, bottom)
    _histogram_panel(ax_h, ranking)
    if filters is not None:
        _filter_panels(figure, outer[1], filters, top, bottom)
    figure.suptitle(
        f"{ranking.backbone} {ranking.layer}: top-{len(top)} (solid) vs bottom-{len(bottom)} (dashed) channels "
        f"by {ranking.score_name} — {ranking.n_channels} channels, weights {weights_label or ranking.weights_id}",
        fontsize=11,
    )
    return figure


#: Largest PNG written (pixels); a figure of 16×7.6 inches at dpi 1000 has 1.2e8.
MAX_FIGURE_PIXELS = 200_000_000


def save_figure(figure: Figure, path: str | Path, dpi: int = 100, metadata: dict[str, str] | None = None) -> Path:
    """Write a figure as PNG (Agg renderer) atomically (:func:`~pe_iqa.safe_files.write_figure`: the destination
    is checked; a figure drawn earlier is replaced, any other image kept).

    Args:
        figure: the figure.
        path: output file (``.png``); its folder is created if needed.
        dpi: resolution, ``>= 10``.
        metadata: PNG text chunks to store (e.g. the provenance of a distance map).

    Returns:
        The written path.

    Raises:
        ValueError: if ``dpi < 10`` or the image would exceed :data:`MAX_FIGURE_PIXELS`.
        OSError: if the folder cannot be written (an existing file is then left as it was).
    """
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 10:
        raise ValueError(f"dpi must be an integer >= 10, got {dpi!r}")
    width, height = (float(v) * dpi for v in figure.get_size_inches())
    if width * height > MAX_FIGURE_PIXELS:
        raise ValueError(f"dpi {dpi} would render a {width:.0f}×{height:.0f} image ({width * height / 1e6:.0f} "
                         f"megapixels, limit {MAX_FIGURE_PIXELS / 1e6:.0f}); lower the dpi")
    return write_figure(figure, path, dpi=dpi, metadata=metadata, what="figure")
