"""Comparisons of the selection study: SROCC of every set with bootstrap CIs, H-x vs L-x / F / random-x, win counts.

Win counts (per backbone, layer and selector, over the x values): H-x vs L-x, H-x vs F and H-x vs the mean of the
random-x SROCCs, each as a point win (SROCC difference > 0) and as a significant win (the 95 % paired-bootstrap
interval of the difference excludes 0, :class:`~benchmarks.protocols.bootstrap.PairedBootstrap`). Two bootstraps are
run, the same resamples for every configuration, recomputing both SROCCs of a comparison on each resample (for H vs
random: H's SROCC minus the mean over seeds of the random sets' SROCCs on the same resample): one resampling images
(``ci_low``/``ci_high``) and, when the scorer has one, one resampling references, each with all its images
(``ref_ci_low``/``ref_ci_high``). Significance (``sig_win``/``sig_loss``) uses the reference intervals when they are
there: images of one reference are not independent. Both cover sampling only; the seed-to-seed spread of random
subsets is reported beside them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.protocols.bootstrap import PairedBootstrap
from benchmarks.protocols.correlation import safe_srocc
from benchmarks.selection.distances import BackboneDistances, set_name

__all__ = ["COMPARISONS", "Scorer", "compare_selectors", "selector_label", "selector_variants", "srocc_rows",
           "win_counts"]

COMPARISONS = ("H-L", "H-F", "H-random")


@dataclass
class _Scored:
    """Point SROCC and bootstrap SROCCs of one (set, norm, layer)."""

    point: float
    boot: np.ndarray
    ref_boot: np.ndarray | None = None


class Scorer:
    """Memoised SROCC and bootstrap SROCCs of the columns of a :class:`~benchmarks.selection.BackboneDistances`."""

    def __init__(self, dist: BackboneDistances, labels: np.ndarray, boot: PairedBootstrap,
                 reference_boot: PairedBootstrap | None = None) -> None:
        self.dist, self.labels, self.boot, self.reference_boot = dist, labels, boot, reference_boot
        self._cache: dict[tuple[str, bool, str], _Scored] = {}

    def __call__(self, name: str, channel_norm: bool, layer: str) -> _Scored:
        key = (name, channel_norm, layer)
        if key not in self._cache:
            values = self.dist.column(name, channel_norm, layer)
            ref = self.reference_boot.sroccs(values) if self.reference_boot is not None else None
            self._cache[key] = _Scored(safe_srocc(values, self.labels), self.boot.sroccs(values), ref)
        return self._cache[key]

    def random(self, percent: float, channel_norm: bool, layer: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Point SROCCs of every seed (S,), and the bootstrap SROCCs of their mean over images and references (B,)."""
        scored = [self(set_name("R", percent, seed=s), channel_norm, layer) for s in range(self.dist.seeds)]
        points = np.array([s.point for s in scored])
        ref = np.mean([s.ref_boot for s in scored], axis=0) if self.reference_boot is not None else None
        return points, np.mean([s.boot for s in scored], axis=0), ref


def selector_variants(dist: BackboneDistances) -> list[tuple[str, bool]]:
    """(selector, channel_norm) pairs of the tables: every selector normalised, and PE raw."""
    return [(s, True) for s in dist.selectors] + ([("pe", False)] if "pe" in dist.selectors else [])


def srocc_rows(dist: BackboneDistances, scorer: Scorer) -> list[dict[str, object]]:
    """One row per (layer, selector, subset, x, channel_norm): SROCC with its bootstrap CI (random: over seeds)."""
    rows: list[dict[str, object]] = []
    base = {"backbone": dist.backbone, "scale": dist.scale}
    for layer in dist.layers:
        for norm in (True, False):
            s = scorer("F", norm, layer)
            low, high = scorer.boot.interval(s.boot)
            rows.append({**base, "layer": layer, "selector": "F", "subset": "F", "x": 100.0, "channel_norm": norm,
                         "channels": dist.n_channels[layer], "srocc": s.point, "ci_low": low, "ci_high": high})
        for selector, norm in selector_variants(dist):
            for subset in ("H", "L"):
                for x in dist.percents:
                    name = set_name(subset, x, selector)
                    s = scorer(name, norm, layer)
                    low, high = scorer.boot.interval(s.boot)
                    rows.append({**base, "layer": layer, "selector": selector, "subset": subset, "x": x,
                                 "channel_norm": norm, "channels": dist.sizes[name][layer], "srocc": s.point,
                                 "ci_low": low, "ci_high": high})
        for norm in (True, False):
            for x in dist.percents:
                points, _, _ = scorer.random(x, norm, layer)
                rows.append({**base, "layer": layer, "selector": "random", "subset": "R", "x": x,
                             "channel_norm": norm, "channels": dist.sizes[set_name("R", x, seed=0)][layer],
                             "srocc": float(np.nanmean(points)), "ci_low": math.nan, "ci_high": math.nan,
                             "random_sd": float(np.nanstd(points, ddof=1)) if points.size > 1 else math.nan,
                             "random_min": float(np.nanmin(points)), "random_max": float(np.nanmax(points)),
                             "n_seeds": int(points.size)})
    return rows


def compare_selectors(dist: BackboneDistances, scorer: Scorer) -> list[dict[str, object]]:
    """H-x vs L-x, F and the random-x mean for every layer, selector and x, with paired-bootstrap CIs.

    Returns:
        One row per comparison: ``h_srocc``, ``other_srocc``, ``diff`` (H minus other), ``ci_low``, ``ci_high``
        (images resampled), ``ref_ci_low``, ``ref_ci_high`` (references resampled, when the scorer has a reference
        bootstrap), ``point_win`` (diff > 0), ``sig_win`` / ``sig_loss`` (the interval of ``sig_unit`` excludes 0
        above / below); H vs random rows also carry ``random_sd`` and ``seeds_beaten`` (fraction of random seeds
        with a lower SROCC than H).
    """
    rows: list[dict[str, object]] = []
    for layer in dist.layers:
        for selector, norm in selector_variants(dist):
            for x in dist.percents:
                high = scorer(set_name("H", x, selector), norm, layer)
                low_set = scorer(set_name("L", x, selector), norm, layer)
                full = scorer("F", norm, layer)
                points, random_boot, random_ref = scorer.random(x, norm, layer)
                others = {
                    "H-L": (low_set.point, low_set.boot, low_set.ref_boot, {}),
                    "H-F": (full.point, full.boot, full.ref_boot, {}),
                    "H-random": (float(np.nanmean(points)), random_boot, random_ref, {
                        "random_sd": float(np.nanstd(points, ddof=1)) if points.size > 1 else math.nan,
                        "seeds_beaten": float(np.mean(points < high.point)),
                    }),
                }
                for comparison, (other, other_boot, other_ref, extra) in others.items():
                    diff = high.point - other
                    ci_low, ci_high = scorer.boot.interval(high.boot - other_boot)
                    row = {
                        "backbone": dist.backbone, "layer": layer, "selector": selector, "channel_norm": norm,
                        "x": x, "comparison": comparison, "h_srocc": high.point, "other_srocc": other,
                        "diff": diff, "ci_low": ci_low, "ci_high": ci_high,
                        "point_win": bool(diff > 0), "sig_win": bool(ci_low > 0), "sig_loss": bool(ci_high < 0),
                    }
                    if scorer.reference_boot is not None and high.ref_boot is not None and other_ref is not None:
                        ref_low, ref_high = scorer.reference_boot.interval(high.ref_boot - other_ref)
                        row.update({"ref_ci_low": ref_low, "ref_ci_high": ref_high, "sig_win": bool(ref_low > 0),
                                    "sig_loss": bool(ref_high < 0), "sig_unit": "reference",
                                    "image_sig_win": bool(ci_low > 0), "image_sig_loss": bool(ci_high < 0)})
                    else:
                        row["sig_unit"] = "image"
                    rows.append({**row, **extra})
    return rows


def selector_label(selector: str, channel_norm: bool) -> str:
    return selector if channel_norm else f"{selector} (raw)"


def win_counts(comparisons: Sequence[Mapping[str, object]], by_layer: bool) -> list[dict[str, object]]:
    """Counts of point wins, significant wins and significant losses per selector (and layer).

    Args:
        comparisons: rows of :func:`compare_selectors`.
        by_layer: count per (backbone, layer, selector) over x; otherwise per (backbone, selector) over
            layers and x.

    Returns:
        One row per group with, for each comparison ``C`` in :data:`COMPARISONS`, ``C n``, ``C wins``,
        ``C sig wins`` and ``C sig losses``, and a compact ``C`` cell ``"wins/n (sig+ / sig−)"``.
    """
    groups: dict[tuple, dict[str, list]] = {}
    for row in comparisons:
        key = (row["backbone"], row["layer"] if by_layer else "all",
               selector_label(str(row["selector"]), bool(row["channel_norm"])))
        groups.setdefault(key, defaultdict(list))[str(row["comparison"])].append(row)
    out = []
    for (backbone, layer, selector), by_comparison in groups.items():
        entry: dict[str, object] = {"backbone": backbone, "layer": layer, "selector": selector}
        for comparison in COMPARISONS:
            items = by_comparison.get(comparison, [])
            wins = sum(bool(r["point_win"]) for r in items)
            sig = sum(bool(r["sig_win"]) for r in items)
            loss = sum(bool(r["sig_loss"]) for r in items)
            entry.update({f"{comparison} n": len(items), f"{comparison} wins": wins,
                          f"{comparison} sig wins": sig, f"{comparison} sig losses": loss,
                          comparison: f"{wins}/{len(items)} ({sig}+ / {loss}−)"})
        out.append(entry)
    return out
