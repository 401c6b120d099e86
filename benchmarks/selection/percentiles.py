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
both p-values are optimistic: a small p-value is weaker evidence of an effect than it looks, and a count near chance
says that H-x is not *distinguishable* from random subsets on these images — not that PE has no effect (20
dependent cells have little power for a small one). H-x is also compared with L-x and F
(:func:`benchmarks.protocols.bootstrap.compare_srocc`): intervals resampling images and resampling references (5
references on the shared LIVE subset; with 5 the reference bootstrap is too narrow), and the exact two-sided
sign-flip test over references, whose smallest attainable p-value with 5 references is .0625 (one-sided, for a
direction fixed in advance: 1/32 = .031).

``--all-sets`` (for VGG-16 at native resolution) scores all channel sets of a layer at once
(:func:`benchmarks.channel_sets.indicator_set_distances`, three products of the per-position features with the
channels × sets indicator matrix; equal to the per-set kernel to float64 rounding); ``--append`` adds such a row to
the committed files and keeps the rows computed set by set byte-identical.

Usage::

    python -m benchmarks.selection.percentiles [--root LIVE] [--configs alexnet:1 alexnet:0.5 vgg16:0.5 vgg16:1]
        [--random 100] [--boot 1000] [--out benchmarks/results] [--quick] [--cache DIR] [--all-sets] [--append]

``--quick`` (6 images per reference, AlexNet at native size and ×0.5, x ∈ {10, 50}, 20 random subsets) writes to a
new temporary folder unless ``--out`` names one: it never replaces the committed results by default.
"""

from __future__ import annotations

import argparse
import csv
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
from benchmarks.selection.percentile_cache import (
    assemble_shards,
    cache_file,
    load_distances,
    save_distances,
    shard_records,
)
from pe_iqa.backbones import canonical_name, load_backbone
from pe_iqa.cli.errors import exit_status

__all__ = [
    "DEFAULT_CONFIGS",
    "PercentileStudy",
    "append_to_earlier",
    "combined_tests",
    "main",
    "percentile_cells",
    "read_earlier_rows",
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


def _distances(net_name: str, scale: float, records: Sequence[LiveRecord], percents: Sequence[float], n_random: int,
               weights: str, cache_dir: Path | None, progress: bool, all_sets: bool = False,
               shards: int = 0) -> BackboneDistances:
    """Distances of H/L-x (PE), F and the random subsets; read from / written to ``cache_dir`` when given (and
    assembled from ``shards`` shard caches there, :mod:`benchmarks.selection.percentile_cache`)."""
    cache = cache_file(cache_dir, net_name, scale, records, percents, n_random, weights) if cache_dir else None
    if cache is not None and cache.exists():
        return load_distances(cache, net_name, scale, percents, n_random)
    if cache is not None and shards:
        dist = assemble_shards(cache.parent, net_name, scale, records, percents, n_random, weights, shards)
        if dist is None:
            raise ValueError(f"--shards {shards}: not every shard cache of {net_name} ×{scale:g} is in {cache.parent}")
        save_distances(dist, cache)
        return dist
    net = load_backbone(net_name, weights=weights)
    dist = compute_backbone_distances(net, records, ("pe",), percents, n_random, scale, progress, all_sets=all_sets)
    if cache is not None:
        save_distances(dist, cache)
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
    all_sets: bool = False,
    shards: int = 0,
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
        all_sets: score all channel sets of a layer at once (:func:`benchmarks.channel_sets.indicator_set_distances`,
            equal to the per-set kernel to float64 rounding); the VGG-16 native row was computed this way.
        shards: assemble each configuration's distances from this many shard caches in ``cache_dir``
            (``--shard K/N`` runs) when its full cache is not there.

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
                          Path(cache_dir) if cache_dir is not None else None, progress, all_sets, shards)
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
    lines.append(f"- With {study.n_references} references the exact two-sided sign-flip test over references cannot "
                 f"go below p = {2 / 2 ** study.n_references:.3g}: no single cell is significant by it at 5 %; "
                 f"one-sided (a direction fixed in advance) the floor is {1 / 2 ** study.n_references:.3g}.")
    return "\n".join(lines)


def _typed(text: str) -> object:
    """A CSV field as :func:`~benchmarks.report.write_csv` wrote it, back to its int, float or text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_earlier_rows(out_dir: str | os.PathLike[str], name: str = "selection_percentiles",
                      ) -> tuple[list[dict[str, object]], list[dict[str, object]], str]:
    """The cells, combined rows and environment text of a committed study, to append a configuration to.

    Ints and floats read back from their ``repr`` are the same numbers, so rewritten rows are byte-identical.

    Returns:
        ``(cells, combined, environment markdown)``; empty when ``<name>.csv`` does not exist.
    """
    out = Path(out_dir)
    if not (out / f"{name}.csv").exists():
        return [], [], ""
    tables = []
    for stem in (name, f"{name}_combined"):
        with open(out / f"{stem}.csv", newline="", encoding="utf-8") as handle:
            tables.append([{k: _typed(v) for k, v in row.items()} for row in csv.DictReader(handle)])
    text = (out / f"{name}.md").read_text(encoding="utf-8") if (out / f"{name}.md").exists() else ""
    environment = text.split("## Environment\n\n", 1)[-1].split("\n\n## ", 1)[0] if "## Environment" in text else ""
    return tables[0], tables[1], environment


def append_to_earlier(study: PercentileStudy, out_dir: str | os.PathLike[str],
                      name: str = "selection_percentiles") -> str:
    """Put a committed study's rows before ``study``'s (in place) and return its environment text.

    Raises:
        ValueError: if a (backbone, scale) of ``study`` is already among the committed rows.
    """
    cells, combined, environment = read_earlier_rows(out_dir, name)
    done = {(str(c["backbone"]), float(c["scale"])) for c in combined}  # type: ignore[arg-type]
    again = sorted(done & {(str(c["backbone"]), float(c["scale"])) for c in study.combined})  # type: ignore[arg-type]
    if again:
        raise ValueError(f"--append: {again} already in {Path(out_dir) / name}.csv; remove those rows first")
    study.cells[:0], study.combined[:0] = cells, combined
    return environment


def write_percentile_outputs(study: PercentileStudy, out_dir: str | os.PathLike[str], command: str,
                             name: str = "selection_percentiles", earlier_environment: str = "") -> list[Path]:
    """Write ``<name>.csv`` (cells), ``<name>_combined.csv`` and ``<name>.md`` (environment, tables, reading).

    ``earlier_environment``: the environment table of the rows appended to (:func:`append_to_earlier`), kept
    beside this run's.
    """
    out = Path(out_dir)
    files = [write_csv(study.cells, out / f"{name}.csv"), write_csv(study.combined, out / f"{name}_combined.csv")]
    env = environment_info("cpu", {"LIVE": study.index_summary}, {
        "random subsets per cell": study.n_random, "bootstrap resamples (images; references)": study.n_boot,
        **{f"time: {k}": f"{v:.1f} s" for k, v in study.timings.items()}, "command": command})
    text = "\n\n".join([
        "# Is H-x better than random subsets of the same size? (PE selector, unit-normalised)",
        ("## Environment (rows added by the last run)\n\n" if earlier_environment else "## Environment\n\n")
        + markdown_table([{"key": k, "value": v} for k, v in env.items()]),
        *(["## Environment of the earlier rows\n\n" + earlier_environment] if earlier_environment else []),
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


def _fill_shard(args: argparse.Namespace, configs: Sequence[tuple[str, float]]) -> int:
    """``--shard K/N``: compute one shard's distances into ``--cache``; nothing else is written."""
    try:
        shard, _, shards = str(args.shard).partition("/")
        if args.cache is None:
            raise ValueError("--shard needs --cache")
        records, _ = _records(args.root, args.quick)
        part = shard_records(records, int(shard), int(shards))
        percents, n_random = (QUICK_PERCENTS, min(args.random, QUICK_RANDOM)) if args.quick else (DEFAULT_PERCENTS,
                                                                                                   args.random)
        for backbone, scale in configs:
            _distances(canonical_name(backbone), float(scale), part, percents, n_random, args.weights, args.cache,
                       args.progress, args.all_sets)
    except Exception as error:  # a CLI user sees one line
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"shard {args.shard}: distances of {len(part)} images in {args.cache}")
    return 0


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
    parser.add_argument("--all-sets", action="store_true",
                        help="score all channel sets of a layer at once (indicator-matrix products)")
    parser.add_argument("--append", action="store_true",
                        help="add the configurations' rows to the study already in --out, keeping its rows")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="only fill --cache with the distances of every N-th reference from the K-th (0-based)")
    parser.add_argument("--shards", type=int, default=0, metavar="N",
                        help="assemble missing distances from N --shard caches in --cache")
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
    if args.shard is not None:
        return _fill_shard(args, configs)
    command = "python -m benchmarks.selection.percentiles " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        study = run_percentile_study(args.root, configs, n_random=args.random, n_boot=args.boot,
                                     weights=args.weights, quick=args.quick, cache_dir=args.cache,
                                     progress=args.progress, all_sets=args.all_sets, shards=args.shards)
        earlier = append_to_earlier(study, out) if args.append else ""
        files = write_percentile_outputs(study, out, command.strip(), earlier_environment=earlier)
    except Exception as error:  # a CLI user sees one line
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return exit_status(error)  # the command line's one exit table
    print(markdown_table(study.combined, _COMBINED_COLUMNS, digits=3))
    print(f"\nwrote {len(files)} files to {out}" + (" (quick)" if args.quick else ""))
    return 0 if all(math.isfinite(float(r["binomial p"])) for r in study.combined) else 1


if __name__ == "__main__":
    raise SystemExit(main())
