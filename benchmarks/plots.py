"""Benchmark figures (small PNGs): SROCC vs x per layer, H−L differences, distance-vs-DMOS scatter.

Figures are drawn with matplotlib's object API (no pyplot state, no global backend change). The SROCC tables
passed in are ``{layer: {set name: SROCC}}`` with set names ``"F"``, ``"H-x"`` and ``"L-x"`` (as
:func:`benchmarks.channel_sets.standard_channel_sets` names them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from benchmarks.protocols.correlation import fit_logistic, srocc
from pe_iqa.safe_files import write_figure

__all__ = ["plot_high_minus_low", "plot_logistic_scatter", "plot_srocc_vs_percent"]

_DPI = 80
SroccTable = Mapping[str, Mapping[str, float]]


def _set_name(prefix: str, percent: float) -> str:
    return f"{prefix}-{float(percent):g}"


def _save(fig: Figure, path: str | Path) -> Path:
    return write_figure(fig, path, dpi=_DPI, bbox_inches="tight", what="benchmark figure")


def plot_srocc_vs_percent(table: SroccTable, percents: Sequence[float], path: str | Path, title: str = "") -> Path:
    """One panel per layer: SROCC of H-x and L-x against x, with F as a horizontal line.

    Args:
        table: ``{layer: {"F": s, "H-5": s, "L-5": s, ...}}``.
        percents: the x values, in plotting order.
        path: output PNG.
        title: figure title.

    Returns:
        The PNG path.

    Raises:
        ValueError: if ``table`` or ``percents`` is empty.
    """
    if not table or not percents:
        raise ValueError("table and percents must be non-empty")
    layers = list(table)
    fig = Figure(figsize=(2.2 * len(layers) + 0.6, 2.6))
    axes = fig.subplots(1, len(layers), sharey=True, squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        row = table[layer]
        xs = list(percents)
        ax.plot(xs, [row.get(_set_name("H", x), math.nan) for x in xs], "o-", color="tab:red", label="H-x")
        ax.plot(xs, [row.get(_set_name("L", x), math.nan) for x in xs], "s--", color="tab:blue", label="L-x")
        if "F" in row:
            ax.axhline(row["F"], color="0.3", lw=1, label="F")
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{x:g}" for x in xs])
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("x (% channels)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("SROCC", fontsize=8)
    axes[0][-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_high_minus_low(table: SroccTable, percents: Sequence[float], path: str | Path, title: str = "") -> Path:
    """Grouped bars: SROCC(H-x) − SROCC(L-x) per layer, one bar per x (positive = PE selection helps).

    Arguments, result and errors as :func:`plot_srocc_vs_percent` (``F`` is not needed in ``table``).
    """
    if not table or not percents:
        raise ValueError("table and percents must be non-empty")
    layers = list(table)
    width = 0.8 / len(percents)
    fig = Figure(figsize=(1.1 * len(layers) + 1.5, 2.6))
    ax = fig.subplots()
    positions = np.arange(len(layers))
    for j, x in enumerate(percents):
        diff = [table[layer].get(_set_name("H", x), math.nan) - table[layer].get(_set_name("L", x), math.nan)
                for layer in layers]
        ax.bar(positions + (j - (len(percents) - 1) / 2) * width, diff, width, label=f"x={x:g}")
    ax.axhline(0, color="0.2", lw=0.8)
    ax.set_xticks(positions)
    ax.set_xticklabels(layers, fontsize=8)
    ax.set_ylabel("SROCC(H-x) − SROCC(L-x)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, ncol=len(percents))
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_logistic_scatter(
    distances: Sequence[float] | np.ndarray,
    dmos: Sequence[float] | np.ndarray,
    path: str | Path,
    title: str = "",
    groups: Sequence[str] | None = None,
) -> Path:
    """Scatter of metric distance vs DMOS with the fitted 5-parameter logistic (Sheikh et al. 2006).

    Args:
        distances: metric values, shape ``(N,)``.
        dmos: DMOS, shape ``(N,)``.
        path: output PNG.
        title: figure title (the SROCC is appended).
        groups: optional label per point (e.g. distortion type), coloured separately.

    Returns:
        The PNG path.

    References:
        H. R. Sheikh, M. F. Sabir, A. C. Bovik, IEEE TIP 15(11), 2006 (5-parameter logistic).
    """
    x = np.asarray(distances, dtype=np.float64)
    y = np.asarray(dmos, dtype=np.float64)
    fit = fit_logistic(x, y, "5param")
    fig = Figure(figsize=(4.2, 3.2))
    ax = fig.subplots()
    if groups is not None:
        labels = np.asarray(groups)
        for name in dict.fromkeys(labels.tolist()):
            mask = labels == name
            ax.scatter(x[mask], y[mask], s=12, label=str(name), alpha=0.8)
        ax.legend(fontsize=7)
    else:
        ax.scatter(x, y, s=12, alpha=0.8)
    grid = np.linspace(x.min(), x.max(), 200)
    ax.plot(grid, fit.predict(grid), color="k", lw=1.2)
    ax.set_xlabel("distance", fontsize=8)
    ax.set_ylabel("DMOS", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title} (SROCC {abs(srocc(x, y)):.3f})".strip(), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
