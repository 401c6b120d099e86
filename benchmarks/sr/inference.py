"""Inference over the few held-out SR images: image-level t-intervals and exact sign-flip tests, matched-PSNR curves.

With 5 held-out images (and 3 seeds) a percentile bootstrap is too narrow: it cannot produce values outside the
range of the few per-image differences. Here each paired difference (same seed, same image) is averaged over the
seeds, giving **one difference per image**; these are summarised by the Student-t interval over images and the
exact sign-flip test (all ``2**n`` sign patterns; with 5 images the smallest two-sided p-value is 2/32 = .0625),
:mod:`benchmarks.protocols.bootstrap`.

The perception–distortion comparison is made at **matched PSNR**: on every (seed, image), each loss's trade-off
curve (L2 at α = 1, then its runs in decreasing α) is interpolated linearly at that image's L2 PSNR plus an offset
(−0.1, −0.25, −0.5 dB). An interpolated value is **supported by runs** only when the target PSNR lies within
``support_db`` (default 0.2 dB) of a run of that curve; otherwise it crosses a gap with no run in it (a denser α
grid, ``python -m benchmarks.sr.run --alphas 0.1,0.2,…,0.9``, closes such gaps) and the comparison is reported as
"not supported by runs" instead of a number.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..protocols.bootstrap import sign_flip_test, t_interval
from .evaluate import HIGHER_BETTER
from .losses import VARIANTS

__all__ = ["DEFAULT_OFFSETS", "MATCHED_PAIRS", "image_level_rows", "matched_offset_rows", "plot_matched_offsets"]

DEFAULT_OFFSETS: tuple[float, ...] = (-0.1, -0.25, -0.5)
#: (loss, against) compared at matched PSNR: PE-weighted / PE H-x against all channels of the same family.
MATCHED_PAIRS: tuple[tuple[str, str], ...] = (("cx_pe", "cx_f"), ("cx_h", "cx_f"), ("eq1_pe", "eq1_f"))


def _label(variant: str) -> str:
    return VARIANTS[variant].label if variant in VARIANTS else variant


def _by_key(results: Sequence[Mapping]) -> dict[tuple[str, float], dict[int, Mapping]]:
    by_key: dict[tuple[str, float], dict[int, Mapping]] = {}
    for result in results:
        by_key.setdefault((result["variant"], float(result["alpha"])), {})[int(result["seed"])] = result
    return by_key


def _summary(per_image: np.ndarray) -> dict[str, object]:
    """t-interval, exact sign-flip test and counts of one difference per image."""
    low, high, p_t = t_interval(per_image) if per_image.size >= 2 else (math.nan, math.nan, math.nan)
    flip = sign_flip_test(per_image)
    return {"diff": float(per_image.mean()), "t low": low, "t high": high, "t p": p_t, "sign-flip p": flip.p_value,
            "images": int(per_image.size), "images higher": int(np.sum(per_image > 0))}


def image_level_rows(results: Sequence[Mapping], metrics: Sequence[str], images: Sequence[str],
                     comparisons: Sequence[tuple[str, str]]) -> list[dict]:
    """Paired differences (variant − against, same seed and image) averaged over seeds: one per image.

    Returns:
        One row per (comparison, α, metric) with the mean difference, the t-interval over images and its p-value,
        the exact sign-flip p-value, and how many images have a higher value (``better`` says what higher means).
    """
    by_key = _by_key(results)
    rows = []
    for variant, against in comparisons:
        for alpha in sorted({a for v, a in by_key if v == variant}, reverse=True):
            base = (against, alpha) if (against, alpha) in by_key else (against, 1.0)
            if base not in by_key:
                continue
            seeds = sorted(set(by_key[(variant, alpha)]) & set(by_key[base]))
            if not seeds:
                continue
            for metric in metrics:
                diff = np.array([[by_key[(variant, alpha)][s]["images"][im][metric]
                                  - by_key[base][s]["images"][im][metric] for im in images] for s in seeds])
                rows.append({"comparison": f"{_label(variant)} − {_label(against)}", "alpha": alpha,
                             "metric": metric, "higher is": "better" if HIGHER_BETTER.get(metric) else "worse",
                             "seeds": len(seeds), **_summary(diff.mean(axis=0))})
    return rows


def _interpolate(curve: Sequence[tuple[float, float]], target: float, support_db: float) -> tuple[float, bool]:
    """``y`` where the polyline first reaches ``x = target`` and whether a run lies within ``support_db`` of it."""
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if min(x0, x1) <= target <= max(x0, x1) and x0 != x1:
            nearest = min(abs(x - target) for x, _ in curve)
            return y0 + (target - x0) * (y1 - y0) / (x1 - x0), nearest <= support_db
    return math.nan, False


def matched_offset_rows(results: Sequence[Mapping], images: Sequence[str],
                        pairs: Sequence[tuple[str, str]] = MATCHED_PAIRS, offsets: Sequence[float] = DEFAULT_OFFSETS,
                        perceptions: Sequence[str] = ("lpips", "dists"), support_db: float = 0.2) -> list[dict]:
    """Perceptual error of two losses at matched PSNR, per image, at several offsets from L2's PSNR.

    Per (seed, image), each loss's curve runs through L2 (α = 1) and the loss's runs in decreasing α in the
    (PSNR, perception) plane and is interpolated at the image's L2 PSNR + offset. Per image the values are averaged
    over seeds; the difference (loss − against) per image is summarised by its mean, t-interval and exact
    sign-flip p-value. ``supported`` is the share of (seed, image) interpolations of both curves that lie within
    ``support_db`` of a run; a row with a share below 1 is "not supported by runs" (its numbers are kept in the CSV
    but not stated as a result).
    """
    by_key = _by_key(results)
    base_runs = by_key.get(("l2", 1.0), {})
    rows = []
    for variant, against in pairs:
        alphas = {v: sorted((a for k, a in by_key if k == v), reverse=True) for v in (variant, against)}
        if not all(alphas.values()):
            continue
        for offset in offsets:
            for perception in perceptions:
                values: dict[str, np.ndarray] = {}
                supported: list[bool] = []
                for loss in (variant, against):
                    grid = np.full((len(base_runs), len(images)), math.nan)
                    for i, (seed, base) in enumerate(sorted(base_runs.items())):
                        runs = [by_key[(loss, a)][seed] for a in alphas[loss] if seed in by_key[(loss, a)]]
                        for j, image in enumerate(images):
                            curve = [(r["images"][image]["psnr"], r["images"][image][perception])
                                     for r in (base, *runs)]
                            grid[i, j], ok = _interpolate(curve, curve[0][0] + offset, support_db)
                            supported.append(ok)
                    values[loss] = np.nanmean(grid, axis=0) if np.isfinite(grid).any(axis=0).all() else grid[0]
                share = float(np.mean(supported)) if supported else 0.0
                diff = values[variant] - values[against]
                row: dict[str, object] = {
                    "comparison": f"{_label(variant)} − {_label(against)}", "psnr offset (dB)": offset,
                    "metric": perception, "loss value": float(np.mean(values[variant])),
                    "against value": float(np.mean(values[against])), "supported": share,
                    "verdict": "" if share == 1.0 else "not supported by runs",
                }
                if np.all(np.isfinite(diff)):
                    row.update(_summary(diff))
                else:
                    row.update({"diff": math.nan, "verdict": "not reached by every curve"})
                rows.append(row)
    return rows


def plot_matched_offsets(rows: Sequence[Mapping], path, metric: str = "lpips"):
    """Difference (loss − against) of ``metric`` at matched PSNR vs the offset, t-interval bars; unsupported hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pe_iqa.plotting import save_figure

    chosen = [r for r in rows if r["metric"] == metric and math.isfinite(float(r.get("diff", math.nan)))]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, comparison in enumerate(dict.fromkeys(str(r["comparison"]) for r in chosen)):
        pts = [r for r in chosen if r["comparison"] == comparison]
        x = np.array([float(r["psnr offset (dB)"]) for r in pts]) + 0.012 * (k - 1)
        y = np.array([float(r["diff"]) for r in pts])
        err = np.array([[float(r["diff"]) - float(r["t low"]), float(r["t high"]) - float(r["diff"])] for r in pts]).T
        line = ax.errorbar(x, y, yerr=err, marker="o", capsize=3, ls="-", label=comparison)
        for xi, yi, r in zip(x, y, pts, strict=True):
            if r["verdict"]:
                ax.plot(xi, yi, "o", mfc="white", mec=line[0].get_color(), ms=9)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("PSNR offset from L2 (dB)")
    ax.set_ylabel(f"{metric} difference at matched PSNR (< 0: loss better)")
    ax.set_title("×4 SR, 5 held-out images: 95 % t-interval over images; hollow = not supported by runs", fontsize=9)
    ax.grid(alpha=0.3)
    if chosen:  # a legend of nothing warns "No artists with labels found"
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, f"no finite {metric} difference at matched PSNR", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path
