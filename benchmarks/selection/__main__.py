"""Command line of the selection study: ``python -m benchmarks.selection [--root LIVE] [--out DIR] [--quick]``.

Writes ``selection_srocc.csv`` (every set), ``selection_comparisons.csv`` (every comparison with its CI),
``selection_win_counts.csv``, ``selection_cv_folds.csv``, ``selection_cv_summary.csv``, ``selection_report.md``
(environment, timings and all tables) and, per backbone, ``selection_srocc_vs_x_<backbone>.png`` and
``selection_differences_<backbone>.png``.

Usage::

    TORCH_HOME=$(realpath ../shared/torch_home) HF_HUB_OFFLINE=1 python -m benchmarks.selection \\
        [--root ../shared/data/LIVE] [--backbones alexnet vgg16] [--seeds 20] [--boot 1000] \\
        [--out benchmarks/results] [--quick] [--vgg-scale 0.5] [--no-lpips]

``--quick`` writes to a new temporary folder unless ``--out`` names one: a smoke run never replaces the committed
results in ``benchmarks/results`` unless asked to.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from benchmarks.datasets.live import DEFAULT_ROOT
from benchmarks.report import markdown_table
from benchmarks.selection.comparisons import COMPARISONS
from benchmarks.selection.report import write_outputs
from benchmarks.selection.study import run_selection_study


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--backbones", nargs="+", default=["alexnet", "vgg16"])
    parser.add_argument("--seeds", type=int, default=20, help="random subsets per x (default 20)")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default benchmarks/results; with --quick a new temporary folder)")
    parser.add_argument("--quick", action="store_true", help="6 images per reference, x in {10, 50}, few seeds")
    parser.add_argument("--vgg-scale", type=float, default=0.5, help="image downscaling for VGG-16 (default 0.5)")
    parser.add_argument("--weights", default="DEFAULT", help="backbone weights tag ('random' for smoke tests)")
    parser.add_argument("--chromatic-backbones", nargs="*", default=["alexnet"],
                        help="backbones evaluated with the chromatic scores (default: alexnet)")
    parser.add_argument("--no-lpips", action="store_true", help="skip pyiqa lpips")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.boot < 1:
        parser.error("--seeds and --boot must be positive")
    if not 0 < args.vgg_scale <= 1:
        parser.error("--vgg-scale must be in (0, 1]")
    out = args.out or (Path(tempfile.mkdtemp(prefix="pe_selection_")) if args.quick else Path("benchmarks/results"))
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        study = run_selection_study(
            args.root, args.backbones, seeds=args.seeds, n_boot=args.boot, weights=args.weights,
            vgg_scale=args.vgg_scale, chromatic_backbones=args.chromatic_backbones, lpips=not args.no_lpips,
            quick=args.quick, progress=args.progress,
        )
    command = "python -m benchmarks.selection " + " ".join(argv if argv is not None else sys.argv[1:])
    files = write_outputs(study, out, command.strip())
    print(markdown_table(study.wins_total, ["backbone", "selector", *COMPARISONS]))
    print()
    print(markdown_table(study.cv_summary, ["method", "fold mean", "fold sd", "pooled", "pooled mapped",
                                            "configs chosen"], digits=3))
    print(f"\nwrote {len(files)} files to {out} in {study.timings['total']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
