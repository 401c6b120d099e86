"""The paper's channel-selection experiments on any full-reference dataset, with one command.

Per backbone and layer, the unit-normalised (and raw) Eq. 1 distances of ``F``, ``H-x`` and ``L-x`` for every
selector (PE and the control scores: μ1, μ2, magnitude, …) and of random-x subsets are scored against the
dataset's human scores (SROCC), and H-x is compared with L-x, F and the random-x mean with 95 % paired-bootstrap
intervals (resampling references, each with all its images; resampling images beside), as the LIVE selection study
does (:mod:`benchmarks.selection`). A
leave-one-reference-out cross-validation of the configuration choice (reference groups from the meta-info
file's ``ref_name``) closes the report.

This module is a thin layer over the selection study's public functions (:mod:`benchmarks.selection`:
``compute_backbone_distances``, ``PairedBootstrap``, ``Scorer``, ``srocc_rows``, ``compare_selectors``,
``win_counts``, ``cross_validate``); it feeds them records of
:func:`benchmarks.datasets.fr_sources.load_fr_dataset`, whose ``dmos`` attribute is the human score oriented
lower-is-better (a MOS is negated), the orientation the study expects of LIVE's DMOS. Correlations are
therefore positive when the metric agrees with humans on MOS and DMOS datasets alike.

Usage::

    python -m benchmarks.run_fr_selection --dataset tid2013 --root ./datasets [--backbones alexnet vgg16]
        [--seeds 20] [--boot 1000] [--percents 5 10 25 50] [--per-ref 20] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.datasets.fr_sources import FRLayout, load_fr_dataset
from benchmarks.datasets.live import select_quick_records
from benchmarks.datasets.pyiqa_layouts import DatasetMissingError, FRIndex, FRRecord
from benchmarks.report import environment_info, markdown_table, write_csv, write_text_atomic
from benchmarks.selection import (
    COMPARISONS,
    DEFAULT_PERCENTS,
    SELECTOR_NAMES,
    SELECTORS,
    PairedBootstrap,
    Scorer,
    compare_selectors,
    compute_backbone_distances,
    cross_validate,
    srocc_rows,
    win_counts,
)
from pe_iqa.backbones import load_backbone
from pe_iqa.cli.errors import exit_status
from pe_iqa.safe_files import DestinationError, OutputPlan, check_file_stem

__all__ = ["SelectionRun", "main", "run_fr_selection", "select_per_reference"]


def select_per_reference(records: Sequence[FRRecord], per_ref: int) -> list[FRRecord]:
    """At most ``per_ref`` records of each reference, distortion types taken in turn, in meta-info order.

    The choice is :func:`benchmarks.datasets.live.select_quick_records`' over every reference, kept in input order.
    """
    chosen = {id(record) for record in select_quick_records(records, n_refs=len(records), per_ref=per_ref)}
    return [record for record in records if id(record) in chosen]


@dataclass
class SelectionRun:
    """What one run produced (rows as written to the CSV files).

    Attributes:
        index: the dataset index; ``records`` the images used; ``labels`` their oriented labels (lower = better).
        dists: the study's ``BackboneDistances`` per backbone.
        srocc, comparisons, wins_total, wins_by_layer, cv: the result rows.
        timings: seconds per stage; ``files`` the written outputs.
    """

    index: FRIndex
    records: list[FRRecord]
    labels: np.ndarray
    dists: list = field(default_factory=list)
    srocc: list[dict] = field(default_factory=list)
    comparisons: list[dict] = field(default_factory=list)
    wins_total: list[dict] = field(default_factory=list)
    wins_by_layer: list[dict] = field(default_factory=list)
    cv: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def run_fr_selection(
    dataset: str,
    root: str | os.PathLike[str],
    backbones: Sequence[str] = ("alexnet",),
    *,
    layout: FRLayout = "auto",
    selectors: Sequence[str] | None = None,
    percents: Sequence[float] | None = None,
    seeds: int = 20,
    n_boot: int = 1000,
    weights: str = "DEFAULT",
    vgg_scale: float = 0.5,
    per_ref: int | None = None,
    with_cv: bool = True,
    progress: bool = False,
) -> SelectionRun:
    """Runs the selection experiments on one dataset (see the module docstring); nothing is written.

    Args:
        dataset: pyiqa's dataset key.
        root: pyiqa's ``./datasets`` (or LIVE's official root).
        backbones: backbones whose taps are evaluated.
        layout: dataset layout (``"auto"``, ``"pyiqa"``, ``"official"``).
        selectors: efficacy scores ranking the channels (default: the study's ``SELECTORS`` that are registered).
        percents: the x values (default: the study's).
        seeds: random subsets per x.
        n_boot: paired-bootstrap resamples.
        weights: backbone weights tag (``"random"`` for smoke tests).
        vgg_scale: image downscaling for VGG backbones, in (0, 1].
        per_ref: at most this many images per reference (smaller runs), or all.
        with_cv: add the leave-one-reference-out CV of the configuration choice.
        progress: print progress lines.

    Returns:
        A :class:`SelectionRun`.

    Raises:
        DatasetMissingError: if the dataset is not where its layout puts it.
        ValueError: on fewer than 3 images or bad arguments.
    """
    start = time.perf_counter()
    index = load_fr_dataset(dataset, root, layout)
    records = select_per_reference(index.records, per_ref) if per_ref else list(index.records)
    if len(records) < 3:
        raise ValueError(f"need at least 3 labelled images; {index.summary()}")
    selectors = [s for s in (selectors or SELECTORS) if s in SELECTOR_NAMES]
    percents = tuple(float(x) for x in (percents or DEFAULT_PERCENTS))
    labels = np.array([r.dmos for r in records], dtype=np.float64)  # oriented lower-is-better
    boot = PairedBootstrap(labels, n_boot=n_boot, seed=0)
    groups = [r.ref_name for r in records]
    # references resampled (each with all its images) for the significance marks, when there are at least 2
    reference_boot = PairedBootstrap(labels, n_boot=n_boot, seed=0, groups=groups) if len(set(groups)) >= 2 else None
    run = SelectionRun(index=index, records=records, labels=labels)
    dists = run.dists
    for name in backbones:
        t0 = time.perf_counter()
        net = load_backbone(name, weights=weights)
        scale = vgg_scale if net.spec.name.startswith("vgg") else 1.0
        dist = compute_backbone_distances(net, records, selectors, percents, seeds, scale, progress)
        dists.append(dist)
        scorer = Scorer(dist, labels, boot, reference_boot)
        run.srocc += srocc_rows(dist, scorer)
        run.comparisons += compare_selectors(dist, scorer)
        run.timings[net.spec.name] = time.perf_counter() - t0
    run.wins_total = win_counts(run.comparisons, by_layer=False)
    run.wins_by_layer = win_counts(run.comparisons, by_layer=True)
    if with_cv and len(set(groups)) >= 2:
        t0 = time.perf_counter()
        run.cv, _ = cross_validate(dists, labels, groups, None, boot)
        run.timings["cross-validation"] = time.perf_counter() - t0
    run.timings["total"] = time.perf_counter() - start
    return run


def _pe_table(run: SelectionRun, backbone: str, channel_norm: bool) -> str:
    rows = [r for r in run.srocc if r["backbone"] == backbone and r["channel_norm"] == channel_norm]
    table = []
    for layer in dict.fromkeys(r["layer"] for r in rows):
        here = [r for r in rows if r["layer"] == layer]
        entry: dict[str, object] = {"layer": layer}
        full = next(r for r in here if r["selector"] == "F")
        entry["F"] = f"{full['srocc']:.3f} [{full['ci_low']:.3f}, {full['ci_high']:.3f}]"
        for r in here:
            if r["selector"] == "pe":
                entry[f"{r['subset']}-{r['x']:g}"] = f"{r['srocc']:.3f}"
            elif r["selector"] == "random":
                entry[f"R-{r['x']:g}"] = f"{r['srocc']:.3f}±{r.get('random_sd', math.nan):.3f}"
        table.append(entry)
    return markdown_table(table)


_TABLES = ("srocc", "comparisons", "win_counts", "cv")


def plan_selection_outputs(out: str | os.PathLike[str], name: str) -> Path:
    """Check (before any work) every file :func:`write_selection_outputs` writes: a plain ``name``, inside ``out``,
    no image in the way; create ``out``.

    Raises:
        DestinationError: otherwise.
    """
    check_file_stem(name, "--name")
    folder = Path(out)
    plan = OutputPlan(within=folder)
    plan.add(folder / f"{name}.md", "report", "markdown")
    for table in _TABLES:
        plan.add(folder / f"{name}_{table}.csv", "table", "csv")
    plan.ready()
    return folder


def write_selection_outputs(run: SelectionRun, out: str | os.PathLike[str], name: str, command: str = "") -> list[Path]:
    """Writes ``<name>_srocc.csv``, ``<name>_comparisons.csv``, ``<name>_win_counts.csv``, ``<name>_cv.csv`` and
    ``<name>.md`` into ``out``; returns the paths."""
    folder = plan_selection_outputs(out, name)
    tables = dict(zip(_TABLES, (run.srocc, run.comparisons, run.wins_by_layer + run.wins_total, run.cv), strict=True))
    files = [write_csv(rows, folder / f"{name}_{table}.csv", within=folder) for table, rows in tables.items()
             if rows or table != "cv"]
    extra = {f"time: {k}": f"{v:.1f} s" for k, v in run.timings.items()}
    extra["images used"] = len(run.records)
    env = environment_info("cpu", {run.index.dataset: run.index.summary()}, extra)
    lines = [f"# Channel selection on {run.index.dataset}: H-x vs L-x, F and random-x", "",
             f"Command: `{command}`" if command else "", "",
             "SROCC against the human scores, oriented: positive = agrees with humans (MOS and DMOS alike). "
             "Win cells: `point wins/n (significant wins+ / significant losses−)`; significant = the 95 % "
             "paired-bootstrap interval of the SROCC difference excludes 0.", "",
             "## Environment", "", markdown_table([{"key": k, "value": v} for k, v in env.items()]), "",
             "## Win counts per selector (all layers and x)", "",
             markdown_table(run.wins_total, ["backbone", "selector", *COMPARISONS]), "",
             "## Win counts per layer (over x)", "",
             markdown_table(run.wins_by_layer, ["backbone", "layer", "selector", *COMPARISONS]), ""]
    for backbone in dict.fromkeys(r["backbone"] for r in run.srocc):
        for norm in (True, False):
            lines += [f"## {backbone}: PE selection, {'unit-normalised' if norm else 'raw Eq. 1'} (SROCC; F with its "
                      "95 % bootstrap interval; R = random mean ± sd over seeds)", "", _pe_table(run, backbone, norm),
                      ""]
    if run.cv:
        lines += ["## Leave-one-reference-out cross-validation of the configuration choice", "",
                  markdown_table(run.cv, ["method", "candidates", "fold mean", "fold sd", "pooled mapped",
                                          "configs chosen"], digits=3), ""]
    path = write_text_atomic(folder / f"{name}.md", "\n".join(lines), what="report", kind="markdown", within=folder)
    run.files = [*files, path]
    return run.files


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: exit 0, 2 if the dataset was not found or an output cannot be written (checked
    before any work), 1 on another error (one line)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_fr_selection",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dataset", required=True, help="pyiqa dataset key, e.g. tid2013")
    parser.add_argument("--root", default="./datasets")
    parser.add_argument("--layout", choices=("auto", "pyiqa", "official"), default="auto")
    parser.add_argument("--backbones", nargs="+", default=["alexnet"])
    parser.add_argument("--selectors", nargs="+", default=None)
    parser.add_argument("--percents", type=float, nargs="+", default=None)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--weights", default="DEFAULT")
    parser.add_argument("--vgg-scale", type=float, default=0.5)
    parser.add_argument("--per-ref", type=int, default=None, help="at most N images per reference")
    parser.add_argument("--no-cv", action="store_true", help="skip the leave-one-reference-out CV")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default=None, help="output stem (default selection_<dataset>)")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        plan_selection_outputs(args.out, args.name or f"selection_{args.dataset}")
    except DestinationError as error:  # before any work: --name ../escaped, an image in the way
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        run = run_fr_selection(args.dataset, args.root, args.backbones, layout=args.layout, selectors=args.selectors,
                               percents=args.percents, seeds=args.seeds, n_boot=args.boot, weights=args.weights,
                               vgg_scale=args.vgg_scale, per_ref=args.per_ref, with_cv=not args.no_cv,
                               progress=args.progress)
        command = "python -m benchmarks.run_fr_selection " + " ".join(argv if argv is not None else sys.argv[1:])
        files = write_selection_outputs(run, args.out, args.name or f"selection_{args.dataset}", command.strip())
    except DatasetMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # one line for a CLI user
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return exit_status(error)  # the command line's one exit table
    print(markdown_table(run.wins_total, ["backbone", "selector", *COMPARISONS]))
    print(f"\nwrote {len(files)} files to {args.out} in {run.timings['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
