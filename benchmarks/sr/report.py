"""Summaries of the SR runs: CSVs, bootstrap tables (seeds × held-out images) and the perception–distortion plot.

Intervals are 95 % percentile bootstraps that resample seeds and held-out images independently (two-level,
2000 replicates): with 3 seeds and 5 images they are wide and honest rather than tight. Differences between
two losses are paired (same seed, same image) before resampling.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pe_iqa.plotting import save_figure

from ..report import markdown_table
from .evaluate import HIGHER_BETTER
from .losses import VARIANTS

__all__ = ["bootstrap_mean", "comparison_rows", "image_rows", "matched_distortion_rows", "plot_perception_distortion",
           "run_rows", "summary_rows"]

#: paired comparisons reported: (variant, against)
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("cx_pe", "cx_f"), ("cx_h", "cx_f"), ("eq1_pe", "eq1_f"), ("cx_f", "l2"), ("cx_pe", "l2"), ("eq1_f", "l2"),
    ("eq1_pe", "l2"),
)


def bootstrap_mean(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a ``(seeds, images)`` array and its 95 % two-level percentile-bootstrap interval."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    n_seeds, n_images = values.shape
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    images = rng.integers(0, n_images, size=(n_boot, n_images))
    replicates = values[seeds[:, :, None], images[:, None, :]].mean(axis=(1, 2))
    low, high = np.percentile(replicates, [2.5, 97.5])
    return float(values.mean()), float(low), float(high)


def _key(result: Mapping) -> tuple[str, float]:
    return result["variant"], float(result["alpha"])


def image_rows(results: Sequence[Mapping]) -> list[dict]:
    """One row per (run, held-out image)."""
    rows = []
    for result in results:
        for image, scores in result["images"].items():
            rows.append({"variant": result["variant"], "alpha": result["alpha"], "seed": result["seed"],
                         "image": image, **scores})
    return rows


def run_rows(results: Sequence[Mapping], metrics: Sequence[str]) -> list[dict]:
    """One row per run: image-mean metrics, the balancing constants and timings."""
    rows = []
    for result in results:
        per_image = list(result["images"].values())
        row = {"variant": result["variant"], "alpha": result["alpha"], "seed": result["seed"]}
        row.update({m: float(np.mean([s[m] for s in per_image])) for m in metrics})
        training = result.get("training") or {}
        row.update({"l2_0": training.get("l2_0"), "x_0": training.get("x_0"),
                    "channels": training.get("channels"), "effective_channels": training.get("effective_channels"),
                    "train_seconds": training.get("train_seconds"), "eval_seconds": result.get("eval_seconds")})
        rows.append(row)
    return rows


def _grid(results: Sequence[Mapping], key: tuple[str, float], metric: str,
          images: Sequence[str]) -> tuple[list[int], np.ndarray]:
    chosen = sorted((r for r in results if _key(r) == key), key=lambda r: r["seed"])
    grid = np.array([[r["images"][im][metric] for im in images] for r in chosen], dtype=np.float64)
    return [r["seed"] for r in chosen], grid.reshape(len(chosen), len(images))


def _alpha_text(variant: str, alpha: float) -> str:
    return f"{alpha:g}" if variant in VARIANTS else "–"


def _label(variant: str) -> str:
    return VARIANTS[variant].label if variant in VARIANTS else variant


def summary_rows(results: Sequence[Mapping], metrics: Sequence[str], images: Sequence[str]) -> list[dict]:
    """Mean and bootstrap interval of every metric per (loss, α), ordered as the variants are."""
    order = {name: i for i, name in enumerate(["bicubic", "pretrained", *VARIANTS])}
    keys = sorted({_key(r) for r in results}, key=lambda k: (order.get(k[0], 99), -k[1]))
    rows = []
    for key in keys:
        seeds, _ = _grid(results, key, metrics[0], images)
        row = {"loss": _label(key[0]), "alpha": _alpha_text(*key), "seeds": len(seeds)}
        for metric in metrics:
            mean, low, high = bootstrap_mean(_grid(results, key, metric, images)[1])
            row[metric] = mean
            row[f"{metric}_ci"] = f"[{low:.4g}, {high:.4g}]"
        rows.append(row)
    return rows


def comparison_rows(results: Sequence[Mapping], metrics: Sequence[str], images: Sequence[str]) -> list[dict]:
    """Paired differences (variant − against) per α present for both, with bootstrap intervals and a verdict."""
    by_key = {_key(r) for r in results}
    rows = []
    for variant, against in COMPARISONS:
        for alpha in sorted({a for v, a in by_key if v == variant}, reverse=True):
            base_key = (against, alpha) if (against, alpha) in by_key else (against, 1.0)
            if base_key not in by_key:
                continue
            row = {"comparison": f"{_label(variant)} − {_label(against)}", "alpha": _alpha_text(variant, alpha)}
            for metric in metrics:
                seeds_a, a = _grid(results, (variant, alpha), metric, images)
                seeds_b, b = _grid(results, base_key, metric, images)
                common = sorted(set(seeds_a) & set(seeds_b))
                diff = a[[seeds_a.index(s) for s in common]] - b[[seeds_b.index(s) for s in common]]
                mean, low, high = bootstrap_mean(diff)
                better = (mean > 0) == HIGHER_BETTER.get(metric, False)
                significant = not (low <= 0 <= high) if not math.isnan(low) else False
                row[metric] = mean
                row[f"{metric}_ci"] = f"[{low:.3g}, {high:.3g}]" + (
                    (" better" if better else " worse") if significant else "")
            rows.append(row)
    return rows


def _along_curve(points: Sequence[tuple[float, float]], target: float) -> float:
    """``y`` where the polyline ``points`` (in α order) first reaches ``x = target``, linearly interpolated."""
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if min(x0, x1) <= target <= max(x0, x1) and x0 != x1:
            return y0 + (target - x0) * (y1 - y0) / (x1 - x0)
    return math.nan


def _segment_span(points: Sequence[tuple[float, float]], target: float) -> float:
    """Length in ``x`` of the first segment of the polyline that contains ``target``."""
    for (x0, _), (x1, _) in itertools.pairwise(points):
        if min(x0, x1) <= target <= max(x0, x1) and x0 != x1:
            return abs(x1 - x0)
    return math.nan


def matched_distortion_rows(results: Sequence[Mapping], images: Sequence[str], distortion: str = "psnr",
                            perceptions: Sequence[str] = ("lpips", "dists"),
                            offsets: Sequence[float] = (-0.1, -0.25, -0.5), support_db: float = 0.2) -> list[dict]:
    """Perceptual error of each loss at a matched distortion: the trade-off curve compared at equal PSNR.

    Per seed, each loss's curve runs through the image-mean points L2 (α = 1), α = 0.9, 0.5, 0.1 … in the
    (distortion, perception) plane; it is interpolated linearly at ``distortion = L2's + offset``. Rows give
    the mean and sd over the seeds whose curve reaches that distortion (``n``), and ``runs within`` the number of
    those seeds where a run of the curve lies within ``support_db`` of the target; a row where that is not every
    seed is interpolated across a gap with no run in it (``gap``: the widest such segment, in dB).
    """
    if not results:
        return []
    by_key: dict[tuple[str, float], dict[int, Mapping]] = {}
    for result in results:
        by_key.setdefault(_key(result), {})[result["seed"]] = result

    def mean_of(result: Mapping, metric: str) -> float:
        return float(np.mean([result["images"][im][metric] for im in images]))

    rows = []
    for variant in [v for v in VARIANTS if v != "l2"]:
        alphas = sorted((a for v, a in by_key if v == variant), reverse=True)
        if not alphas:
            continue
        for offset in offsets:
            row = {"loss": _label(variant), distortion: f"L2 {offset:+g}"}
            for perception in perceptions:
                values, within, gaps = [], 0, [0.0]
                for seed, base in by_key.get(("l2", 1.0), {}).items():
                    curve = [(mean_of(base, distortion), mean_of(base, perception))]
                    curve += [(mean_of(by_key[(variant, a)][seed], distortion),
                               mean_of(by_key[(variant, a)][seed], perception))
                              for a in alphas if seed in by_key[(variant, a)]]
                    target = curve[0][0] + offset
                    values.append(_along_curve(curve, target))
                    if not math.isnan(values[-1]):
                        if min(abs(x - target) for x, _ in curve) <= support_db:
                            within += 1
                        else:
                            gaps.append(_segment_span(curve, target))
                found = [v for v in values if not math.isnan(v)]
                row[perception] = float(np.mean(found)) if found else math.nan
                row[f"{perception} sd"] = float(np.std(found, ddof=1)) if len(found) > 1 else math.nan
                row[f"{perception} n"] = len(found)
                row[f"{perception} runs within {support_db:g} dB"] = within
                row[f"{perception} gap"] = max(gaps)
            rows.append(row)
    return rows


def table_markdown(rows: Sequence[Mapping], metrics: Sequence[str], first: Sequence[str],
                   differences: bool = False) -> str:
    """Markdown table with ``value [low, high]`` cells (one more decimal for ``differences``)."""
    shown = []
    for row in rows:
        cells = {k: row[k] for k in first}
        for metric in metrics:
            value = row[metric]
            digits = (2 if metric == "psnr" else 4) + int(differences)
            sign = "+" if differences and value > 0 else ""
            cells[metric] = f"{sign}{value:.{digits}f} {row[f'{metric}_ci']}" if not math.isnan(value) else "–"
        shown.append(cells)
    arrows = {m: f"{m} {'↑' if HIGHER_BETTER.get(m) else '↓'}" for m in metrics}
    return markdown_table(shown, [*first, *metrics], headers=arrows)


def plot_perception_distortion(run_table: Sequence[Mapping], path: Path,
                               pairs: Sequence[tuple[str, str]] = (("psnr", "lpips"), ("ssim", "dists"))) -> Path:
    """One panel per (distortion, perception) pair: a marker per (loss, α) at the seed mean, ± seed sd."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [p for p in pairs if all(m in run_table[0] for m in p)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.2 * len(pairs), 5.0), squeeze=False)
    styles = {"bicubic": ("k", "x"), "pretrained": ("grey", "+"), "l2": ("black", "o"), "cx_f": ("tab:blue", "s"),
              "cx_pe": ("tab:orange", "s"), "cx_h": ("tab:green", "s"), "eq1_f": ("tab:purple", "^"),
              "eq1_pe": ("tab:red", "^")}
    keys = sorted({(r["variant"], float(r["alpha"])) for r in run_table}, key=lambda k: (k[0], -k[1]))
    for ax, (x_metric, y_metric) in zip(axes[0], pairs, strict=True):
        seen = set()
        for variant, alpha in keys:
            rows = [r for r in run_table if (r["variant"], float(r["alpha"])) == (variant, alpha)]
            xs, ys = np.array([r[x_metric] for r in rows]), np.array([r[y_metric] for r in rows])
            color, marker = styles.get(variant, ("tab:gray", "o"))
            label = _label(variant) if variant not in seen else None
            seen.add(variant)
            ax.errorbar(xs.mean(), ys.mean(), xerr=xs.std(ddof=1) if len(xs) > 1 else None,
                        yerr=ys.std(ddof=1) if len(ys) > 1 else None, color=color, marker=marker, ls="none",
                        capsize=2, label=label)
            if variant in VARIANTS and variant != "l2":
                ax.annotate(f"{alpha:g}", (xs.mean(), ys.mean()), fontsize=7, xytext=(3, 3),
                            textcoords="offset points", color=color)
        means = {k: (np.mean([r[x_metric] for r in run_table if (r["variant"], float(r["alpha"])) == k]),
                     np.mean([r[y_metric] for r in run_table if (r["variant"], float(r["alpha"])) == k]))
                 for k in keys}
        for variant in dict.fromkeys(v for v, _ in keys):
            if variant in VARIANTS and variant != "l2":  # the loss's trade-off curve, starting from L2 (α = 1)
                curve = [means[k] for k in [("l2", 1.0), *sorted((k for k in keys if k[0] == variant),
                                                                 key=lambda k: -k[1])] if k in means]
                ax.plot(*zip(*curve, strict=True), color=styles.get(variant, ("tab:gray",))[0], lw=0.8, alpha=0.5)
        ax.set_xlabel(f"{x_metric} ({'higher' if HIGHER_BETTER[x_metric] else 'lower'} = less distortion)")
        ax.set_ylabel(f"{y_metric} ({'higher' if HIGHER_BETTER[y_metric] else 'lower'} = better perceived)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("×4 SR, held-out images: perception–distortion (numbers = α; lines from L2 through α = 0.9…0.1; "
                 "bars = ±1 sd over seeds)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path
