"""Cross-validated choice of a configuration: the candidate space and leave-one-reference-out CV of the study.

Candidates = backbone × contiguous layer window (single layers up to all five) × selector (every score's H-x, and F)
× x × channel_norm on/off; in each fold the configuration with the best SROCC on the training references is tested
on the held-out one (:func:`benchmarks.cross_validation.leave_one_group_out`). Fixed configurations (the package
default ``pe_alex``, F at its layer, F over all five layers, the ``pe_vgg`` preset, pyiqa ``lpips``) are evaluated
on the same folds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.channel_sets import mean_over_layers
from benchmarks.cross_validation import CrossValidationResult, leave_one_group_out
from benchmarks.protocols.bootstrap import PairedBootstrap
from benchmarks.protocols.correlation import rowwise_srocc
from benchmarks.selection.distances import BackboneDistances, format_percent, set_name
from pe_iqa.presets import PRESETS
from pe_iqa.spec import DistanceSpec

__all__ = ["Candidate", "build_candidates", "cross_validate", "layer_windows"]


def layer_windows(layers: Sequence[str]) -> list[tuple[str, ...]]:
    """Every contiguous window of ``layers``: single layers, then pairs, …, then all of them."""
    layers = tuple(layers)
    return [layers[i:i + n] for n in range(1, len(layers) + 1) for i in range(len(layers) - n + 1)]


def _window_label(window: Sequence[str]) -> str:
    return window[0] if len(window) == 1 else f"{window[0]}..{window[-1]}"


@dataclass(frozen=True)
class Candidate:
    """One configuration of the cross-validation space.

    Attributes:
        backbone: canonical backbone name.
        layers: the compared layers (a contiguous window of the backbone's taps).
        selector: the efficacy score choosing H-x, or ``"F"`` for all channels.
        percent: x (``None`` for F).
        channel_norm: unit-normalise the selected channels.
        scale: image downscaling factor the backbone ran at.
        channels: channels compared per layer.
    """

    backbone: str
    layers: tuple[str, ...]
    selector: str
    percent: float | None
    channel_norm: bool
    scale: float
    channels: tuple[int, ...]

    @property
    def name(self) -> str:
        """E.g. ``"alexnet relu3 pe H-10 norm"`` (with ``@0.5`` when the images were downscaled)."""
        subset = "F" if self.percent is None else f"{self.selector} H-{format_percent(self.percent)}"
        scale = "" if self.scale == 1.0 else f"@{self.scale:g}"
        return f"{self.backbone}{scale} {_window_label(self.layers)} {subset} {'norm' if self.channel_norm else 'raw'}"

    @property
    def set_name(self) -> str:
        """Name of its channel set in :class:`BackboneDistances`."""
        return "F" if self.percent is None else set_name("H", self.percent, self.selector)


def build_candidates(dists: Sequence[BackboneDistances]) -> tuple[list[Candidate], np.ndarray]:
    """The cross-validation space: backbone × layer window × (selector H-x or F) × channel_norm.

    Args:
        dists: one :class:`BackboneDistances` per backbone (same images in the same order).

    Returns:
        ``(candidates, values)`` with ``values`` of shape (K, N): the distance of candidate k on image n
        (the mean over its layers, as ``PEDistance`` averages layers). The order is backbone, window,
        selector (F first, then the selectors' order), x, normalised before raw; it breaks ties in the CV.
    """
    candidates: list[Candidate] = []
    rows: list[np.ndarray] = []
    for dist in dists:
        for window in layer_windows(dist.layers):
            options = [("F", None)] + [(s, x) for s in dist.selectors for x in dist.percents]
            for selector, x in options:
                for norm in (True, False):
                    cand = Candidate(dist.backbone, window, selector, x, norm, dist.scale, ())
                    channels = tuple(dist.sizes[cand.set_name][layer] for layer in window)
                    cand = Candidate(dist.backbone, window, selector, x, norm, dist.scale, channels)
                    candidates.append(cand)
                    rows.append(mean_over_layers(dist.distances(cand.set_name, norm), dist.layers, window))
    return candidates, np.stack(rows)



def _preset_candidate(spec: DistanceSpec, scale: float) -> Candidate:
    """The candidate a preset's spec stands for (F when it keeps every channel)."""
    full = spec.subset == "all"
    return Candidate(spec.backbone, spec.layers, "F" if full else spec.score, None if full else spec.top_percent,
                     spec.channel_norm, scale, ())


def _fold_rows(method: str, cv: CrossValidationResult, candidates: Sequence[Candidate] | None) -> list[dict]:
    rows = []
    for fold in cv.folds:
        row: dict[str, object] = {"method": method, "held_out": fold.held_out, "chosen": fold.chosen_name,
                                  "train_srocc": fold.train_srocc, "test_srocc": fold.test_srocc,
                                  "n_train": fold.n_train, "n_test": fold.n_test}
        if candidates is not None:
            cand = candidates[fold.chosen]
            row.update({"deepest_layer": cand.layers[-1], "deepest_channels": cand.channels[-1],
                        "total_channels": sum(cand.channels)})
        rows.append(row)
    return rows


def cross_validate(
    dists: Sequence[BackboneDistances], labels: np.ndarray, groups: Sequence[str], lpips: np.ndarray | None,
    boot: PairedBootstrap,
) -> tuple[list[dict], list[dict]]:
    """Leave-one-reference-out CV of every candidate space and fixed configuration.

    Args:
        dists: the backbones' distances (same images, same order).
        labels: DMOS (or any label oriented like the distances: higher = worse), shape (N,).
        groups: the reference of every image, length N.
        lpips: pyiqa lpips values of the images, or ``None``.
        boot: the study's paired bootstrap (for the intervals of the differences to ``pe_alex``).

    Returns:
        ``(summary rows, fold rows)``.
    """
    candidates, values = build_candidates(dists)
    spaces: dict[str, np.ndarray] = {"CV: all candidates": np.ones(len(candidates), dtype=bool)}
    if len(dists) > 1:
        for dist in dists:
            spaces[f"CV: {dist.backbone} only"] = np.array([c.backbone == dist.backbone for c in candidates])
    spaces["CV: PE H-x only (any backbone/layers/x/norm)"] = np.array([c.selector == "pe" for c in candidates])
    spaces["CV: alexnet PE H-x (layers, x, norm)"] = np.array(
        [c.backbone == "alexnet" and c.selector == "pe" for c in candidates])
    spaces["CV: alexnet relu3 PE H-x (x, norm)"] = np.array(
        [c.backbone == "alexnet" and c.layers == ("relu3",) and c.selector == "pe" for c in candidates])

    fixed: dict[str, np.ndarray] = {}
    by_name = {c.name: k for k, c in enumerate(candidates)}
    default = PRESETS["pe_alex"]
    named = {"fixed: pe_alex (package default)": _preset_candidate(default, 1.0),
             f"fixed: F {'+'.join(default.layers)} norm": _preset_candidate(default.replace(subset="all"), 1.0)}
    alex = next((d for d in dists if d.backbone == "alexnet" and d.scale == 1.0), None)
    if alex is not None:
        named["fixed: F relu1..relu5 norm (LPIPS layers, unlearned)"] = Candidate(
            "alexnet", tuple(alex.layers), "F", None, True, 1.0, ())
    for preset in ("pe_vgg",):
        spec = PRESETS[preset]
        dist = next((d for d in dists if d.backbone == spec.backbone), None)
        if dist is not None and spec.subset == "high":
            named[f"fixed: {preset} preset (images at this run's VGG scale)"] = _preset_candidate(spec, dist.scale)
    config_names: dict[str, str] = {}
    for label, cand in named.items():
        if cand.name in by_name:
            fixed[label] = values[by_name[cand.name]]
            config_names[label] = cand.name
    if lpips is not None:
        fixed["fixed: pyiqa lpips"] = lpips
        config_names["fixed: pyiqa lpips"] = "pyiqa lpips (LPIPS v0.1 AlexNet, full size)"

    summary, folds = [], []
    results: dict[str, CrossValidationResult] = {}
    for label, keep in spaces.items():
        if not keep.any():
            continue
        chosen_from = [c for c, k in zip(candidates, keep, strict=True) if k]
        cv = leave_one_group_out(values[keep], labels, groups, [c.name for c in chosen_from])
        results[label] = cv
        folds += _fold_rows(label, cv, chosen_from)
        full_sample = rowwise_srocc(values[keep], labels)
        in_sample = int(np.argmax(np.where(np.isfinite(full_sample), full_sample, -np.inf)))
        picks = Counter(f.chosen_name for f in cv.folds)
        summary.append(_summary_row(label, cv, int(keep.sum()), ", ".join(f"{n} ×{c}" for n, c in picks.items()),
                                    chosen_from[in_sample].name, float(full_sample[in_sample])))
    for label, vector in fixed.items():
        cv = leave_one_group_out(vector, labels, groups, [config_names[label]])
        results[label] = cv
        folds += _fold_rows(label, cv, None)
        summary.append(_summary_row(label, cv, 1, config_names[label], "", math.nan))

    reference = results.get("fixed: pe_alex (package default)")
    for row in summary:
        cv = results[str(row["method"])]
        if reference is None or cv is reference:
            continue
        diff_folds = cv.test_sroccs - reference.test_sroccs
        row["folds better than pe_alex"] = int(np.sum(diff_folds > 0))
        row["mean fold diff vs pe_alex"] = float(np.nanmean(diff_folds))
        boot_diff = boot.sroccs(cv.mapped_predictions) - boot.sroccs(reference.mapped_predictions)
        low, high = boot.interval(boot_diff)
        row["pooled mapped diff vs pe_alex"] = cv.pooled_mapped_srocc - reference.pooled_mapped_srocc
        row["diff ci_low"], row["diff ci_high"] = low, high
    return summary, folds


def _summary_row(label: str, cv: CrossValidationResult, n_candidates: int, picks: str, best_name: str,
                 best_srocc: float) -> dict[str, object]:
    return {"method": label, "candidates": n_candidates, "fold mean": cv.mean_test_srocc,
            "fold sd": cv.std_test_srocc, "pooled": cv.pooled_srocc, "pooled mapped": cv.pooled_mapped_srocc,
            "configs chosen": picks, "in-sample best": best_name, "in-sample best srocc": best_srocc}
