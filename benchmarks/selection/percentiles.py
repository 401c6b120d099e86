"""Is PE's H-x better than a random x % of the channels? H's percentile among many random subsets, per cell.

A *cell* is (backbone, image scale, layer, x). In each cell the unit-normalised distance of H-x (the top x % by PE)
is scored against DMOS (SROCC) and ranked among ``n_random`` random subsets of the same size (fixed seeds 0…n−1,
:func:`benchmarks.channel_sets.random_channel_sets`): its **percentile** is the share of random subsets with a
lower SROCC (ties count half) and its one-sided **permutation p-value** ``(1 + #{random ≥ H}) / (n + 1)``.

Over the cells of one (backbone, scale) two combined tests are reported:

* the **binomial count** (primary): cells where H is above the 95th percentile of its random subsets, against the
  5 % expected by chance, one-sided ``P(Binomial(cells, .05) ≥ count)``;
* **Fisher's method** on the per-cell permutation p-values (``−2 Σ ln p ~ χ²(2·cells)``).

Both treat the cells as independent; they are not (the same 99 images in every cell, the x of one layer nested), so
both p-values are optimistic — a count near chance is evidence of no effect, a small p-value is weaker evidence of
one than it looks. H-x is also compared with L-x and F (:func:`benchmarks.protocols.bootstrap.compare_srocc`):
intervals resampling images and resampling references (5 references on the shared LIVE subset), and the exact
sign-flip test over references, whose smallest attainable two-sided p-value with 5 references is .0625.

Usage::

    python -m benchmarks.selection.percentiles [--root LIVE] [--configs alexnet:1 alexnet:0.5 vgg16:0.5 vgg16:1]
        [--random 100] [--boot 1000] [--out benchmarks/results] [--quick] [--cache DIR]

``--quick`` (6 images per reference, AlexNet at native size and ×0.5, x ∈ {10, 50}, 20 random subsets) writes to a
new temporary folder unless ``--out`` names one: it never replaces the committed results by default.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from benchmarks.datasets.live import DEFAULT_ROOT, LiveRecord, first_per_reference, load_live_index
from benchmarks.protocols.bootstrap import PairedBootstrap, compare_srocc
from benchmarks.protocols.correlation import safe_srocc
from benchmarks.report import environment_info, markdown_table, write_csv, write_text_atomic
from benchmarks.selection.distances import DEFAULT_PERCENTS, BackboneDistances, compute_backbone_distances, set_name
from pe_iqa.backbones import canonical_name, load_backbone
from pe_iqa.cli.errors import exit_status

__all__ = [
    "DEFAULT_CONFIGS",
    "PercentileStudy",
    "combined_tests",
    "main",
    "percentile_cells",
    "run_percentile_study",
    "write_percentile_outputs",
]

#: (backbone, image scale) of the full study: native and ×0.5 for both backbones (AlexNet first: cheapest).
DEFAULT_CONFIGS: tuple[tuple[str, float], ...] = (("alexnet", 1.0), ("alexnet", 0.5), ("vgg16", 0.5), ("vgg16", 1.0))
QUICK_CONFIGS: tuple[tuple[str, float], ...] = (("alexnet", 1.0), ("alexnet", 0.5))
QUICK_PERCENTS, QUICK_RANDOM, QUICK_BOOT, QUICK_PER_REF = (10.0, 50.0), 20, 200, 6
ABOVE = 0.95  # the percentile a cell must exceed to count in the binomial test


@dataclass
class PercentileStudy:
    """What one run produced: per-cell rows, combined rows and the run's facts."""

    cells: list[dict[str, object]]
    combined: list[dict[str, object]]
    n_random: int
    n_boot: int
    index_summary: str
    n_references: int
    timings: dict[str, float] = field(default_factory=dict)


def _resolution(dist: BackboneDistances, records: Sequence[LiveRecord]) -> str:
    """The image sizes as scored, e.g. ``"480×720/768×512"`` (every reference's size, scaled)."""
    from PIL import Image

    sizes = set()
    for path in {r.ref_path for r in records}:
        with Image.open(path) as image:
            sizes.add(image.size)
    return "/".join(sorted(f"{round(w * dist.scale)}×{round(h * dist.scale)}" for w, h in sizes))


def percentile_cells(dist: BackboneDistances, labels: np.ndarray, groups: Sequence[str],
                     image_boot: PairedBootstrap, reference_boot: PairedBootstrap,
                     resolution: str = "") -> list[dict[str, object]]:
    """One row per (layer, x) of one backbone and scale (unit-normalised distances, PE selector).

    Args:
        dist: distances with the ``pe`` selector and ``dist.seeds`` random subsets per x.
        labels: DMOS of every image, shape (N,).
        groups: reference of every image.
        image_boot: bootstrap over images; ``reference_boot``: over references (same labels).
        resolution: the images' size as scored, for the table (e.g. ``"768×512"``).

    Returns:
        Rows with ``h_srocc``, the random subsets' mean, sd, 95th percentile, H's ``percentile`` and
        ``perm_p``, and for H−L and H−F the difference, both intervals and the sign-flip p-value.
    """
    rows: list[dict[str, object]] = []
    for layer in dist.layers:
        full = dist.column("F", True, layer)
        for x in dist.percents:
            high = dist.column(set_name("H", x, "pe"), True, layer)
            h = safe_srocc(high, labels)
            random = np.array([safe_srocc(dist.column(set_name("R", x, seed=s), True, layer), labels)
                               for s in range(dist.seeds)])
            random = random[np.isfinite(random)]
            below, ties = float(np.sum(random < h)), float(np.sum(random == h))
            row: dict[str, object] = {
                "backbone": dist.backbone, "scale": dist.scale, "resolution": resolution, "layer": layer, "x": x,
                "channels": dist.sizes[set_name("H", x, "pe")][layer], "n_random": int(random.size),
                "h_srocc": h, "random_mean": float(random.mean()), "random_sd": float(random.std(ddof=1)),
                "random_p95": float(np.quantile(random, ABOVE)),
                "percentile": (below + ties / 2.0) / random.size,
                "perm_p": (1.0 + float(np.sum(random >= h))) / (random.size + 1.0),
            }
            for name, other in (("L", dist.column(set_name("L", x, "pe"), True, layer)), ("F", full)):
                c = compare_srocc(high, other, labels, image_boot, reference_boot, groups)
                row.update({
                    f"{name}_srocc": c.srocc_b, f"H-{name}": c.diff,
                    f"H-{name} image low": c.image_low, f"H-{name} image high": c.image_high,
                    f"H-{name} ref low": c.reference_low, f"H-{name} ref high": c.reference_high,
                    f"H-{name} sign-flip p": c.sign_flip_p, f"H-{name} refs H better": c.references_a_better,
                })
            rows.append(row)
    return rows


def combined_tests(cells: Sequence[dict[str, object]], n_references: int) -> list[dict[str, object]]:
    """Combined tests over the cells of each (backbone, scale): binomial count above the 95th percentile, Fisher.

    Returns:
        One row per (backbone, scale): cell count, cells above the 95th percentile and the binomial p-value,
        median percentile, Fisher's combined p, and the counts of H > L / H > F (point) and of reference-resampled
        intervals excluding 0 in either direction.
    """
    out: list[dict[str, object]] = []
    keys = list(dict.fromkeys((str(c["backbone"]), float(c["scale"])) for c in cells))  # type: ignore[arg-type]
    for backbone, scale in keys:
        group = [c for c in cells if c["backbone"] == backbone and float(c["scale"]) == scale]  # type: ignore[arg-type]
        n = len(group)
        above = sum(float(c["percentile"]) > ABOVE for c in group)  # type: ignore[arg-type]
        p_values = np.array([float(c["perm_p"]) for c in group])  # type: ignore[arg-type]
        fisher = float(stats.chi2.sf(-2.0 * np.log(p_values).sum(), 2 * n))
        row: dict[str, object] = {
            "backbone": backbone, "scale": scale, "resolution": group[0]["resolution"], "cells": n,
            "above p95": above, "binomial p": float(stats.binom.sf(above - 1, n, 1.0 - ABOVE)),
            "median percentile": statistics.median(float(c["percentile"]) for c in group),  # type: ignore[arg-type]
            "fisher p": fisher, "references": n_references,
        }
        for other in ("L", "F"):
            wins = sum(float(c[f"H-{other}"]) > 0 for c in group)  # type: ignore[arg-type]
            sig_win = sum(float(c[f"H-{other} ref low"]) > 0 for c in group)  # type: ignore[arg-type]
            sig_loss = sum(float(c[f"H-{other} ref high"]) < 0 for c in group)  # type: ignore[arg-type]
            img_win = sum(float(c[f"H-{other} image low"]) > 0 for c in group)  # type: ignore[arg-type]
            img_loss = sum(float(c[f"H-{other} image high"]) < 0 for c in group)  # type: ignore[arg-type]
            row[f"H>{other}"] = f"{wins}/{n} (ref {sig_win}+ / {sig_loss}−; image {img_win}+ / {img_loss}−)"
        out.append(row)
    return out


def _records(root: str | os.PathLike[str], quick: bool) -> tuple[list[LiveRecord], str]:
    index = load_live_index(root)
    records = list(index.records)
    if quick:
        records = first_per_reference(records, QUICK_PER_REF)
    return records, f"{index.summary()}; {len(records)} images used"


def _cache_file(cache_dir: Path, backbone: str, scale: float, records: Sequence[LiveRecord],
                percents: Sequence[float], n_random: int, weights: str) -> Path:
    """A cache file named by everything the distances depend on (images, sets, backbone, weights, scale)."""
    key = "|".join([backbone, weights, f"{scale:g}", ",".join(f"{x:g}" for x in percents), str(n_random),
                    *(f"{Path(r.dist_path).resolve()}>{Path(r.ref_path).resolve()}" for r in records)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"percentile_distances_{backbone}_x{scale:g}_{digest}.npz"


def _distances(net_name: str, scale: float, records: Sequence[LiveRecord], percents: Sequence[float], n_random: int,
               weights: str, cache_dir: Path | None, progress: bool) -> BackboneDistances:
    """Distances of H/L-x (PE), F and the random subsets; read from / written to ``cache_dir`` when given."""
    cache = _cache_file(cache_dir, net_name, scale, records, percents, n_random, weights) if cache_dir else None
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            layers = tuple(str(x) for x in data["layers"])
            sizes_arr, channels = data["sizes"], data["n_channels"]
            return BackboneDistances(
                backbone=net_name, layers=layers, scale=scale, selectors=("pe",), percents=tuple(percents),
                seeds=n_random, n_channels={layer: int(c) for layer, c in zip(layers, channels, strict=True)},
                sizes={n: {layer: int(s) for layer, s in zip(layers, row, strict=True)}
                       for n, row in zip(names, sizes_arr, strict=True)},
                norm={n: data["norm"][q] for q, n in enumerate(names)}, raw={}, seconds=float(data["seconds"]))
    net = load_backbone(net_name, weights=weights)
    dist = compute_backbone_distances(net, records, ("pe",), percents, n_random, scale, progress)
    if cache is not None:
        names = list(dist.norm)
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".partial.npz")
        np.savez_compressed(partial, names=np.array(names), layers=np.array(dist.layers),
                            sizes=np.array([[dist.sizes[n][layer] for layer in dist.layers] for n in names]),
                            n_channels=np.array([dist.n_channels[layer] for layer in dist.layers]),
                            norm=np.stack([dist.norm[n] for n in names]), seconds=dist.seconds)
        partial.replace(cache)
    return dist


def run_percentile_study(
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    configs: Sequence[tuple[str, float]] = DEFAULT_CONFIGS,
    *,
    n_random: int = 100,
    n_boot: int = 1000,
    percents: Sequence[float] = DEFAULT_PERCENTS,
    weights: str = "DEFAULT",
    quick: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> PercentileStudy:
    """Run the study on a LIVE copy (see the module docstring); nothing is written but the optional cache.

    Args:
        root: LIVE root (official or pyiqa layout).
        configs: ``(backbone, scale)`` pairs, scale in (0, 1].
        n_random: random subsets per cell (seeds 0…n−1; >= 20, the full study uses >= 100).
        n_boot: bootstrap resamples (both units).
        percents: the x values.
        weights: backbone weights tag (``"random"`` for smoke tests without pretrained weights).
        quick: 6 images per reference, x ∈ {10, 50}, at most 20 random subsets and 200 resamples.
        cache_dir: keep the per-image distances there (keyed by images, sets, weights and scale).
        progress: progress bars.

    Raises:
        ValueError: on an out-of-range argument or fewer than 2 references.
    """
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 2:
        raise ValueError(f"n_random must be an int >= 2, got {n_random!r}")
    if any(not 0 < float(s) <= 1 for _, s in configs):
        raise ValueError(f"every scale must be in (0, 1], got {list(configs)}")
    records, summary = _records(root, quick)
    if quick:
        percents, n_random, n_boot = QUICK_PERCENTS, min(n_random, QUICK_RANDOM), min(n_boot, QUICK_BOOT)
    groups = [r.ref_name for r in records]
    if len(set(groups)) < 2:
        raise ValueError(f"need images of at least 2 references; {summary}")
    labels = np.array([r.dmos for r in records])
    image_boot = PairedBootstrap(labels, n_boot=n_boot, seed=0)
    reference_boot = PairedBootstrap(labels, n_boot=n_boot, seed=0, groups=groups)
    cells: list[dict[str, object]] = []
    timings: dict[str, float] = {}
    for backbone, scale in configs:
        start = time.perf_counter()
        name = canonical_name(backbone)
        dist = _distances(name, float(scale), records, percents, n_random, weights,
                          Path(cache_dir) if cache_dir is not None else None, progress)
        cells += percentile_cells(dist, labels, groups, image_boot, reference_boot, _resolution(dist, records))
        timings[f"{name} ×{float(scale):g} (distances computed or read, cells)"] = time.perf_counter() - start
        if progress:
            print(f"{name} ×{float(scale):g}: {timings[next(reversed(timings))]:.0f} s", flush=True)
    return PercentileStudy(cells, combined_tests(cells, len(set(groups))), n_random, n_boot, summary,
                           len(set(groups)), timings)


_CELL_COLUMNS = ["backbone", "resolution", "layer", "x", "channels", "h_srocc", "random_mean", "random_p95",
                 "percentile", "perm_p", "L_srocc", "H-L", "H-L ref low", "H-L ref high", "H-L sign-flip p",
                 "F_srocc", "H-F", "H-F ref low", "H-F ref high", "H-F sign-flip p"]
_COMBINED_COLUMNS = ["backbone", "resolution", "cells", "above p95", "binomial p", "median percentile", "fisher p",
                     "H>L", "H>F"]


def _conclusion(study: PercentileStudy) -> str:
    """The table in words: per (backbone, resolution), whether H-x is distinguishable from random subsets."""
    lines = []
    for row in study.combined:
        p_value = float(row["binomial p"])  # type: ignore[arg-type]
        verdict = ("more often above the 95th percentile of random subsets than chance allows"
                   if p_value < 0.05 else "not distinguishable from random subsets of the same size")
        lines.append(f"- {row['backbone']} at {row['resolution']}: H-x is {verdict} — above the 95th percentile in "
                     f"{row['above p95']}/{row['cells']} cells (chance: {0.05 * int(row['cells']):.0f}; binomial "
                     f"p = {p_value:.2g}), median percentile {float(row['median percentile']):.2f}; "
                     f"H > L {row['H>L']}; H > F {row['H>F']}.")
    lines.append(f"- With {study.n_references} references the exact sign-flip test over references cannot go below "
                 f"p = {2 / 2 ** study.n_references:.3g} (two-sided): no single cell is significant by it at 5 %.")
    return "\n".join(lines)


def write_percentile_outputs(study: PercentileStudy, out_dir: str | os.PathLike[str], command: str,
                             name: str = "selection_percentiles") -> list[Path]:
    """Write ``<name>.csv`` (cells), ``<name>_combined.csv`` and ``<name>.md`` (environment, tables, reading)."""
    out = Path(out_dir)
    files = [write_csv(study.cells, out / f"{name}.csv"), write_csv(study.combined, out / f"{name}_combined.csv")]
    env = environment_info("cpu", {"LIVE": study.index_summary}, {
        "random subsets per cell": study.n_random, "bootstrap resamples (images; references)": study.n_boot,
        **{f"time: {k}": f"{v:.1f} s" for k, v in study.timings.items()}, "command": command})
    text = "\n\n".join([
        "# Is H-x better than random subsets of the same size? (PE selector, unit-normalised)",
        "## Environment\n\n" + markdown_table([{"key": k, "value": v} for k, v in env.items()]),
        "## How to read this\n\n" + (__doc__ or "").split("Usage::")[0].split("\n\n", 1)[1].strip(),
        f"## Combined over cells\n\n`H>L`, `H>F`: cells with a higher SROCC (point), then cells whose 95 % "
        f"interval resampling the {study.n_references} references (`ref`) or the images (`image`, shown for "
        "comparison only: images of one reference are not independent) excludes 0.\n\n"
        + markdown_table(study.combined, _COMBINED_COLUMNS, digits=3),
        "## Conclusion\n\n" + _conclusion(study),
        "## Every cell\n\n" + markdown_table(study.cells, _CELL_COLUMNS, digits=3),
    ]) + "\n"
    write_text_atomic(out / f"{name}.md", text)
    files.append(out / f"{name}.md")
    return files


def _config(text: str) -> tuple[str, float]:
    backbone, _, scale = text.partition(":")
    try:
        return backbone, float(scale or 1.0)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected backbone:scale, e.g. vgg16:0.5, got {text!r}") from error


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (see the module docstring); exit 2 on a usage error, 1 on any other error."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.selection.percentiles",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--configs", nargs="+", type=_config, default=None,
                        help="backbone:scale pairs (default alexnet:1 alexnet:0.5 vgg16:0.5 vgg16:1)")
    parser.add_argument("--random", type=int, default=100, help="random subsets per cell (default 100)")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default benchmarks/results; with --quick a new temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smoke run: few images, x in {10, 50}, 20 subsets")
    parser.add_argument("--cache", type=Path, default=None, help="keep per-image distances here for reruns")
    parser.add_argument("--weights", default="DEFAULT")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if args.random < 2 or args.boot < 1:
        parser.error("--random must be >= 2 and --boot >= 1")
    configs = args.configs or (QUICK_CONFIGS if args.quick else DEFAULT_CONFIGS)
    if any(not 0 < s <= 1 for _, s in configs):
        parser.error("every scale must be in (0, 1]")
    out = args.out or (Path(tempfile.mkdtemp(prefix="pe_percentiles_")) if args.quick else Path("benchmarks/results"))
    torch.set_num_threads(args.threads)
    command = "python -m benchmarks.selection.percentiles " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        study = run_percentile_study(args.root, configs, n_random=args.random, n_boot=args.boot,
                                     weights=args.weights, quick=args.quick, cache_dir=args.cache,
                                     progress=args.progress)
        files = write_percentile_outputs(study, out, command.strip())
    except Exception as error:  # a CLI user sees one line
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return exit_status(error)  # the command line's one exit table
    print(markdown_table(study.combined, _COMBINED_COLUMNS, digits=3))
    print(f"\nwrote {len(files)} files to {out}" + (" (quick)" if args.quick else ""))
    return 0 if all(math.isfinite(float(r["binomial p"])) for r in study.combined) else 1


if __name__ == "__main__":
    raise SystemExit(main())
