"""The paper's LIVE experiments: PE channel selection per layer, controls, and existing metrics, in one run.

For each backbone (AlexNet, VGG-16) every image goes through the network once (:mod:`benchmarks.channel_sets`,
the core's Eq. 1 kernel) and these distances are scored against DMOS (SROCC, KRCC, PLCC, PLCC and RMSE after the
5-parameter logistic):

* channel sets F, H-x, L-x for x ∈ {5, 10, 25, 50};
* channel normalisation on (LPIPS-style) and off (raw Eq. 1); uniform or PE-proportional channel weights;
* single layers and multi-layer prefixes relu1..relu_k (the five-layer prefix is LPIPS's layer set).

In the same run the comparison metrics (:mod:`benchmarks.comparison`, the metric registry of ``pe-iqa score``
with the benchmarks' baselines: the ``pe_alex`` default preset,
pyiqa's ``lpips``, ``lpips-vgg``, ``dists``, ``ssim``, ``ms_ssim``, ``psnr``, TorchMetrics SSIM/PSNR, L2)
score the same images, each timed per image. VGG-based metrics (PE on VGG-16, ``lpips-vgg``, ``dists``) run on
images downscaled by ``--vgg-scale`` (default 0.5, antialiased): VGG-16 at LIVE's native 768×512 costs several
seconds per image on a CPU. Results: ``<out>/<name>.csv`` (the grid), ``<out>/<name>_comparison.csv``,
``<out>/<name>.md`` and PNGs.

Usage::

    python -m benchmarks.run_live [--root ../shared/data/LIVE] [--backbones alexnet vgg16]
        [--out benchmarks/results] [--compare/--no-compare] [--quick] [--vgg-scale 0.5]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.channel_sets import (
    Variant,
    downscale,
    evaluate_variants,
    mean_over_layers,
    selected_scores,
    standard_channel_sets,
)
from benchmarks.command_line import run_or_exit_status
from benchmarks.comparison import (
    BENCHMARK_METRICS,
    DEFAULT_COMPARISON_METRICS,
    build_available,
    runs_on_vgg16,
    score_one_by_one,
    time_interleaved,
)
from benchmarks.datasets.live import DEFAULT_ROOT, LiveIndex, LiveRecord, load_live_index, select_quick_records
from benchmarks.plots import plot_high_minus_low, plot_logistic_scatter, plot_srocc_vs_percent
from benchmarks.protocols.correlation import LogisticFitWarning, evaluate_scores
from benchmarks.report import ReportPaths, environment_info, markdown_table, write_csv, write_report
from pe_iqa.analysis.ranking_lookup import get_rankings
from pe_iqa.backbones import canonical_name, load_backbone
from pe_iqa.image_io import read_image
from pe_iqa.presets import PRESETS
from pe_iqa.scoring.metrics import MetricRegistry, ScoringMetric

__all__ = ["LiveRun", "main", "run_live"]

DEFAULT_PERCENTS = (5.0, 10.0, 25.0, 50.0)
QUICK_PERCENTS = (10.0, 50.0)
QUICK_METRICS = ("pe_alex", "psnr", "l2")
#: LPIPS's layer set per backbone (Zhang et al. 2018).
LPIPS_LAYERS = {
    "alexnet": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "vgg16": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
}
_WEIGHTINGS = ("uniform", "pe")
_SCORE_KEYS = ("srocc", "krcc", "plcc", "plcc_logistic5", "rmse_logistic5")


@dataclass
class LiveRun:
    """Everything one run produced.

    Attributes:
        grid: one row per (backbone, layer set, channel set, channel_norm, weighting) with its correlations.
        comparison: one row per comparison metric (correlations, direction, seconds per image).
        summaries: per backbone, the H>L / H>F counts (see :func:`_counts`).
        unavailable: comparison metrics that could not be built here, with the reason.
        paths: the written CSV/Markdown files; ``figures`` the PNGs.
        seconds: wall time of the whole run.
    """

    grid: list[dict] = field(default_factory=list)
    comparison: list[dict] = field(default_factory=list)
    summaries: dict[str, list[dict]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    paths: ReportPaths | None = None
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _layer_sets(layers: Sequence[str], backbone: str) -> list[tuple[str, tuple[str, ...]]]:
    """Single layers, then prefixes of two or more layers, labelled (the LPIPS set is marked)."""
    out = [(layer, (layer,)) for layer in layers]
    for k in range(2, len(layers) + 1):
        prefix = tuple(layers[:k])
        label = f"{prefix[0]}..{prefix[-1]}"
        if prefix == LPIPS_LAYERS.get(backbone):
            label += " (LPIPS set)"
        out.append((label, prefix))
    return out


def _correlations(scores: np.ndarray, dmos: np.ndarray, higher_is_better: bool, maxfev: int) -> dict[str, float]:
    """SROCC, KRCC, PLCC and the 5-parameter-logistic PLCC and RMSE (:func:`evaluate_scores`, without the
    4-parameter fit: the grid has hundreds of rows)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LogisticFitWarning)
        result = evaluate_scores(scores, dmos, higher_is_better, False, maxfev=maxfev, logistic4=False)
    return {key: getattr(result, key) for key in _SCORE_KEYS}


def _evaluate_backbone(name: str, records: Sequence[LiveRecord], dmos: np.ndarray, *, weights: str, scale: float,
                       percents: Sequence[float], device: torch.device, progress: bool, maxfev: int
                       ) -> tuple[list[dict], dict[tuple[str, bool, str], np.ndarray], tuple[str, ...], float]:
    net = load_backbone(name, weights=weights, device=device)
    rankings = get_rankings(net, progress=progress)
    sets = standard_channel_sets(rankings, percents)
    variants = {
        (set_name, norm, weighting): Variant(channels, norm,
                                             selected_scores(rankings, channels) if weighting == "pe" else None)
        for set_name, channels in sets.items() for norm in (True, False) for weighting in _WEIGHTINGS
    }
    start = time.perf_counter()
    distances = evaluate_variants(net, records, variants, scale=scale, device=device, progress=progress,
                                  desc=f"{name} ×{len(variants)} variants")
    engine_seconds = time.perf_counter() - start
    rows = []
    for label, chosen in _layer_sets(net.layers, net.spec.name):
        for (set_name, norm, weighting), values in distances.items():
            subset, _, percent = set_name.partition("-")
            rows.append({
                "backbone": net.spec.name, "weights": weights, "scale": scale, "layer_set": label,
                "layers": "+".join(chosen), "n_layers": len(chosen), "set": set_name, "subset": subset,
                "percent": float(percent) if percent else math.nan, "channel_norm": norm, "weighting": weighting,
                "n": len(values), **_correlations(mean_over_layers(values, net.layers, chosen), dmos, False, maxfev),
            })
    return rows, distances, net.layers, engine_seconds


def _table(rows: Sequence[dict], backbone: str, norm: bool, weighting: str) -> dict[str, dict[str, float]]:
    """``{layer set label: {set name: SROCC}}`` for one backbone and setting."""
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["backbone"] == backbone and row["channel_norm"] == norm and row["weighting"] == weighting:
            table.setdefault(row["layer_set"], {})[row["set"]] = row["srocc"]
    return table


def _counts(table: dict[str, dict[str, float]], percents: Sequence[float]) -> dict[str, tuple[int, int, int]]:
    """Per layer set: (#x with H-x > L-x, #x with H-x > F, #x compared)."""
    out = {}
    for label, row in table.items():
        h_l = sum(row[f"H-{x:g}"] > row[f"L-{x:g}"] for x in percents)
        h_f = sum(row[f"H-{x:g}"] > row["F"] for x in percents)
        out[label] = (h_l, h_f, len(percents))
    return out


def _srocc_section(rows: Sequence[dict], backbone: str, percents: Sequence[float], norm: bool, weighting: str,
                   scale: float) -> str:
    table = _table(rows, backbone, norm, weighting)
    columns = ["F", *[f"H-{x:g}" for x in percents], *[f"L-{x:g}" for x in percents]]
    counts = _counts(table, percents)
    body = []
    for label, row in table.items():
        h_l, h_f, n = counts[label]
        body.append({"layers": label, **{c: row[c] for c in columns}, "H>L": f"{h_l}/{n}", "H>F": f"{h_f}/{n}"})
    setting = f"channel_norm {'on' if norm else 'off (raw Eq. 1)'}, {weighting} weights"
    where = "native resolution" if scale == 1 else f"images downscaled ×{scale:g} (antialiased)"
    return (f"### {backbone}: SROCC, {setting} ({where})\n\n"
            + markdown_table(body, ["layers", *columns, "H>L", "H>F"], digits=3))


def _count_summary(rows: Sequence[dict], backbones: Sequence[str], percents: Sequence[float]) -> list[dict]:
    out = []
    for backbone in backbones:
        for norm in (True, False):
            for weighting in _WEIGHTINGS:
                counts = _counts(_table(rows, backbone, norm, weighting), percents)
                single = [c for label, c in counts.items() if ".." not in label]
                multi = [c for label, c in counts.items() if ".." in label]
                out.append({
                    "backbone": backbone, "channel_norm": norm, "weighting": weighting,
                    "single: H>L": f"{sum(c[0] for c in single)}/{sum(c[2] for c in single)}",
                    "single: H>F": f"{sum(c[1] for c in single)}/{sum(c[2] for c in single)}",
                    "multi: H>L": f"{sum(c[0] for c in multi)}/{sum(c[2] for c in multi)}",
                    "multi: H>F": f"{sum(c[1] for c in multi)}/{sum(c[2] for c in multi)}",
                })
    return out


def _load_pairs(records: Sequence[LiveRecord], scale: float, device: torch.device
                ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    refs: dict[Path, torch.Tensor] = {}
    pairs = []
    for record in records:
        if record.ref_path not in refs:
            refs[record.ref_path] = downscale(read_image(record.ref_path), scale).to(device)
        pairs.append((downscale(read_image(record.dist_path), scale).to(device), refs[record.ref_path]))
    return pairs


def _compare(metric_names: Sequence[str | ScoringMetric], registry: MetricRegistry, records: Sequence[LiveRecord],
             dmos: np.ndarray, vgg_scale: float, device: torch.device, progress: bool, maxfev: int,
             timing_pairs: int) -> tuple[list[dict], dict[str, str]]:
    metrics, unavailable = build_available(metric_names, device, registry)
    pairs_by_scale: dict[float, list] = {}
    rows, scored = [], []
    for metric in metrics:
        scale = vgg_scale if runs_on_vgg16(metric.name) else 1.0
        if scale not in pairs_by_scale:
            pairs_by_scale[scale] = _load_pairs(records, scale, device)
        try:
            values, _ = score_one_by_one(metric, pairs_by_scale[scale], progress=progress)
        except Exception as error:  # e.g. ms_ssim on images that are too small
            unavailable[metric.name] = f"failed: {type(error).__name__}: {error}"
            continue
        scored.append((metric, pairs_by_scale[scale]))
        rows.append({
            "metric": metric.name, "source": metric.source, "lower_better": metric.lower_better, "scale": scale,
            "n": len(values), **_correlations(values, dmos, not metric.lower_better, maxfev),
        })
    if scored:
        seconds = time_interleaved(scored, timing_pairs, progress=progress)
        for row in rows:
            row["sec_per_image"] = seconds[row["metric"]]
    return rows, unavailable


def run_live(
    root: str | Path = DEFAULT_ROOT,
    backbones: Sequence[str] = ("alexnet", "vgg16"),
    out_dir: str | Path | None = "benchmarks/results",
    *,
    compare: bool = True,
    quick: bool = False,
    weights: str = "DEFAULT",
    vgg_scale: float = 0.5,
    percents: Sequence[float] | None = None,
    metrics: Sequence[str | ScoringMetric] | None = None,
    registry: MetricRegistry = BENCHMARK_METRICS,
    device: torch.device | str = "cpu",
    name: str | None = None,
    logistic_maxfev: int | None = None,
    timing_pairs: int = 10,
    progress: bool = True,
    verbose: bool = True,
) -> LiveRun:
    """Run the LIVE benchmark and write its report.

    Args:
        root: LIVE Release 2 root (official layout or pyiqa's; see :func:`~benchmarks.datasets.live.load_live_index`).
        backbones: backbones whose layers are evaluated (``"alexnet"``, ``"vgg16"``, …).
        out_dir: folder for the CSV/Markdown/PNG files (``None``: write nothing).
        compare: also score the comparison metrics on the same images.
        quick: smoke path: a few images of two references, x ∈ {10, 50}, cheap comparison metrics.
        weights: backbone weights tag for the PE grid (``"random"`` for tests; presets always use their own).
        vgg_scale: downscale factor for VGG-16-based evaluations, in ``(0, 1]``.
        percents: the x values (default 5, 10, 25, 50; quick: 10, 50).
        metrics: comparison metrics, names of ``registry`` or :class:`~pe_iqa.scoring.metrics.ScoringMetric`
            objects (default :data:`~benchmarks.comparison.DEFAULT_COMPARISON_METRICS`; quick: ``pe_alex``,
            ``psnr``, ``l2``).
        registry: the metric registry names are built by (default: the benchmarks').
        device: where to compute.
        name: output file stem (default ``"live"``, ``"live_quick"`` with ``quick``).
        logistic_maxfev: function-evaluation budget per start of the logistic fits (default 5000; quick: 400).
        timing_pairs: image pairs timed per comparison metric, round-robin across metrics
            (:func:`~benchmarks.comparison.time_interleaved`).
        progress: show progress bars.
        verbose: print the summary tables.

    Returns:
        A :class:`LiveRun`.

    Raises:
        FileNotFoundError: if the LIVE root or its labels are missing.
        ValueError: if no labelled image was found or an option is invalid.
    """
    started = time.perf_counter()
    if not 0 < vgg_scale <= 1:
        raise ValueError(f"vgg_scale must be in (0, 1], got {vgg_scale}")
    if not backbones:
        raise ValueError("backbones must name at least one backbone")
    device = torch.device(device)
    index: LiveIndex = load_live_index(root)
    if not index.records:
        raise ValueError(f"no labelled LIVE image found under {root}: {index.summary()}")
    records = select_quick_records(index.records) if quick else list(index.records)
    percents = tuple(float(x) for x in (percents or (QUICK_PERCENTS if quick else DEFAULT_PERCENTS)))
    metric_names = list(metrics) if metrics is not None else list(QUICK_METRICS if quick else
                                                                   DEFAULT_COMPARISON_METRICS)
    name = name or ("live_quick" if quick else "live")
    maxfev = logistic_maxfev or (400 if quick else 5000)
    dmos = np.array([r.dmos for r in records])
    if verbose:
        print(index.summary() + f"; scoring {len(records)} images", flush=True)

    run = LiveRun()
    scales, engine_times, default_distances = {}, {}, None
    for backbone in backbones:
        scale = vgg_scale if canonical_name(backbone) == "vgg16" else 1.0
        rows, distances, layers, seconds = _evaluate_backbone(
            backbone, records, dmos, weights=weights, scale=scale, percents=percents, device=device,
            progress=progress, maxfev=maxfev)
        run.grid += rows
        scales[rows[0]["backbone"]] = scale
        engine_times[rows[0]["backbone"]] = seconds
        default = PRESETS["pe_alex"]
        key = (f"H-{default.top_percent:g}", default.channel_norm, default.weighting)
        if rows[0]["backbone"] == default.backbone and key in distances:
            default_distances = mean_over_layers(distances[key], layers, default.layers)
    if compare and metric_names:
        run.comparison, run.unavailable = _compare(metric_names, registry, records, dmos, vgg_scale, device,
                                                   progress, maxfev, timing_pairs)
    run.summaries = {"counts": _count_summary(run.grid, list(scales), percents)}
    run.seconds = time.perf_counter() - started

    sections = _sections(run, scales, engine_times, percents, len(records))
    if verbose:
        print("\n\n".join(sections), flush=True)
    if out_dir is not None:
        out = Path(out_dir)
        env = environment_info(device, {"LIVE": index.summary()}, {
            "images scored": len(records) if not quick else f"{len(records)} (quick subset)",
            "resolution": ", ".join(f"{b}: {'native' if s == 1 else f'×{s:g} (antialiased bilinear)'}"
                                    for b, s in scales.items()),
            "run time (s)": f"{run.seconds:.0f}",
            "command": "python -m benchmarks.run_live " + " ".join(sys.argv[1:]) if sys.argv else "run_live()",
        })
        run.figures = _figures(run, out, name, scales, percents, default_distances, dmos, records)
        figure_md = "\n".join(f"![{p.stem}]({p.name})" for p in run.figures)
        run.paths = write_report(name, out, run.grid, "LIVE benchmark: PE channel selection and existing metrics",
                                 [*sections, "## Figures\n\n" + figure_md], env)
        if run.comparison:
            write_csv(run.comparison, out / f"{name}_comparison.csv")
        if verbose:
            print(f"wrote {run.paths.csv}, {run.paths.markdown} and {len(run.figures)} figures "
                  f"({run.seconds:.0f} s)", flush=True)
    return run


def _sections(run: LiveRun, scales: dict[str, float], engine_times: dict[str, float], percents: Sequence[float],
              n_images: int) -> list[str]:
    out = [
        "## How to read this\n\n"
        "SROCC/KRCC/PLCC are oriented so that positive = agrees with humans (distances vs DMOS, both lower = "
        "better). F = all channels, H-x / L-x = the x % highest / lowest PE channels of each layer. "
        "Multi-layer rows average the per-layer distances (relu1..relu_k prefixes; the five-layer prefix is "
        "LPIPS's layer set). H>L / H>F count the x values where H-x beats L-x / F. Every number in the "
        f"grid comes from one forward pass per image ({n_images} images)."
    ]
    for backbone, scale in scales.items():
        out.append(f"## {backbone}\n\nEngine time: {engine_times[backbone]:.1f} s for {n_images} images "
                   f"(all {len(percents) * 2 + 1} channel sets × 2 normalisations × 2 weightings).")
        for norm, weighting in ((True, "uniform"), (False, "uniform"), (True, "pe"), (False, "pe")):
            out.append(_srocc_section(run.grid, backbone, percents, norm, weighting, scale))
        detail = [r for r in run.grid if r["backbone"] == backbone and r["channel_norm"]
                  and r["weighting"] == "uniform" and r["set"] in {"F", f"H-{percents[0]:g}", "H-10"}]
        out.append(f"### {backbone}: all statistics, channel_norm on, uniform weights\n\n" + markdown_table(
            detail, ["layer_set", "set", "srocc", "krcc", "plcc", "plcc_logistic5", "rmse_logistic5"], digits=3))
    out.append("## Summary: how often H-x beats L-x and F\n\n" + markdown_table(run.summaries["counts"]))
    best = sorted(run.grid, key=lambda r: -r["srocc"] if not math.isnan(r["srocc"]) else math.inf)[:10]
    out.append("## Ten best configurations (SROCC)\n\n" + markdown_table(
        best, ["backbone", "layer_set", "set", "channel_norm", "weighting", "srocc", "krcc", "plcc_logistic5"],
        digits=4))
    if run.comparison:
        out.append(
            "## Comparison with existing metrics (same images, same run)\n\n"
            "`sec_per_image`: median wall time of one call on one (distorted, reference) pair (both images "
            "through the network), timed round-robin across the metrics on the same pairs so that they share the "
            "machine's load (a shared machine: compare ratios, not absolutes). `scale` < 1: images downscaled "
            "before the metric (VGG-based metrics).\n\n"
            + markdown_table(run.comparison, ["metric", "source", "lower_better", "scale", "n", *_SCORE_KEYS,
                                              "sec_per_image"], digits=4))
        times = {row["metric"]: row["sec_per_image"] for row in run.comparison}
        if "pe_alex" in times and "lpips" in times:
            out.append(f"Default metric `pe_alex`: {times['pe_alex']:.3f} s per image vs pyiqa `lpips` "
                       f"{times['lpips']:.3f} s ({times['lpips'] / times['pe_alex']:.1f}× the throughput), same "
                       "images and resolution, timed interleaved.")
    if run.unavailable:
        out.append("Not evaluated: " + "; ".join(f"`{k}` ({v})" for k, v in run.unavailable.items()))
    return out


def _figures(run: LiveRun, out: Path, name: str, scales: dict[str, float], percents: Sequence[float],
             default_distances: np.ndarray | None, dmos: np.ndarray, records: Sequence[LiveRecord]) -> list[Path]:
    figures = []
    for backbone in scales:
        table = _table(run.grid, backbone, True, "uniform")
        singles = {label: row for label, row in table.items() if ".." not in label}
        figures.append(plot_srocc_vs_percent(singles, percents, out / f"{name}_{backbone}_srocc_vs_x.png",
                                             f"LIVE, {backbone}: SROCC vs x (channel_norm on)"))
        figures.append(plot_high_minus_low(singles, percents, out / f"{name}_{backbone}_h_minus_l.png",
                                           f"LIVE, {backbone}: H-x minus L-x"))
    if default_distances is not None:
        default = PRESETS["pe_alex"]
        label = (f"{default.backbone} {'+'.join(default.layers)} H-{default.top_percent:g}"
                 f"{' norm' if default.channel_norm else ''}")
        figures.append(plot_logistic_scatter(default_distances, dmos, out / f"{name}_default_scatter.png",
                                             f"default ({label})", [r.dist_type for r in records]))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_live", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(DEFAULT_ROOT),
                        help="LIVE Release 2 root (default: $PE_IQA_LIVE_ROOT or ../shared/data/LIVE)")
    parser.add_argument("--backbones", nargs="+", default=["alexnet", "vgg16"])
    parser.add_argument("--out", default="benchmarks/results", help="output folder")
    parser.add_argument("--name", default=None, help="output file stem (default live, or live_quick)")
    parser.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True,
                        help="also score the comparison metrics (pyiqa, TorchMetrics, L2, pe_alex)")
    parser.add_argument("--metrics", nargs="+", default=None, help="comparison metrics (see benchmarks.comparison)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (8 images, x in {10, 50})")
    parser.add_argument("--weights", default="DEFAULT", help="backbone weights for the PE grid")
    parser.add_argument("--vgg-scale", type=float, default=0.5, help="downscale factor for VGG-16 (default 0.5)")
    parser.add_argument("--percents", type=float, nargs="+", default=None)
    parser.add_argument("--timing-pairs", type=int, default=10, help="pairs timed per comparison metric")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    return run_or_exit_status(lambda: run_live(
        args.root, args.backbones, args.out, compare=args.compare, quick=args.quick, weights=args.weights,
        vgg_scale=args.vgg_scale, percents=args.percents, metrics=args.metrics, device=args.device, name=args.name,
        timing_pairs=args.timing_pairs, progress=args.progress))


if __name__ == "__main__":
    sys.exit(main())
