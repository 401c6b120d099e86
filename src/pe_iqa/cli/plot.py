"""``pe-iqa plot BACKBONE``: tuning curves, PE histograms and first-layer filters per layer (PNG files)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CommandError, UsageError
from .output import info, parse_device
from .rank import add_backbone_options, check_backbone_options, chosen_layers, loading_weights

if TYPE_CHECKING:
    import torch

__all__ = ["MAX_DPI", "add_parser", "run"]

EXAMPLES = """examples:
  pe-iqa plot alexnet --layers relu1 relu2 --out-dir figures
  pe-iqa plot vgg16 --layers relu1_1 relu3_3 --n 3"""

#: Largest ``--dpi`` accepted (print quality is 300–600).
MAX_DPI = 1200


def add_parser(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "plot", help="plot tuning curves, PE histograms and first-layer filters", parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Plot, per layer, the frequency and orientation tuning of the top-n and bottom-n channels "
                    "(CSF overlaid), the PE histogram and, for the first layer, the channels' RGB filters.",
    )
    add_backbone_options(parser)
    parser.add_argument("--n", type=int, default=4, help="channels shown per group (default: %(default)s)")
    parser.add_argument("--out-dir", default="pe_iqa_figures", help="folder for the PNGs (default: %(default)s)")
    parser.add_argument("--dpi", type=int, default=100, help=f"PNG resolution, 10..{MAX_DPI} (default: %(default)s)")
    parser.set_defaults(func=run)


def _chromaticity_report(layer: str, ranking, filters: torch.Tensor, top: list[int], bottom: list[int]) -> None:
    from ..plotting import chromaticity_summary

    summary = chromaticity_summary(ranking, filters)
    print(f"  {layer} filter chromaticity (mean over pixels of the RGB std, over the filter's std; 0 = grey):")
    for where, channels in (("top", top), ("bottom", bottom)):
        values = ", ".join(f"ch {c}: {float(summary.chromaticity[c]):.2f}" for c in channels)
        print(f"    {where:<6} {values}")
    print(f"    mean: H-10 ({summary.high_count} ch) {summary.high_mean:.3f}, L-10 ({summary.low_count} ch) "
          f"{summary.low_mean:.3f}, all {ranking.n_channels} {summary.all_mean:.3f}; "
          f"Spearman(PE, chromaticity) = {summary.spearman:.3f}")


def run(args: argparse.Namespace) -> int:
    """Plot each layer (files and timings on stderr; the chromaticity report on stdout)."""
    from ..analysis.ranking_lookup import get_rankings
    from ..backbones import load_backbone
    from ..plotting import input_filters, plot_layer, require_matplotlib, save_figure, top_bottom_channels
    from ..safe_files import check_destination, path_safe_name

    if args.n < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}")
    if not 10 <= args.dpi <= MAX_DPI:
        raise UsageError(f"--dpi must be within 10..{MAX_DPI}, got {args.dpi}")
    check_backbone_options(args)
    require_matplotlib()  # before any measurement: a missing extra is one line
    device = parse_device(args.device)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is a file, not a folder")
    check_destination(out_dir / ".pe_iqa_write_check", what="--out-dir")
    start = time.perf_counter()
    with loading_weights():
        net = load_backbone(args.backbone, chosen_layers(args), weights=args.weights, device=device)
    rankings = get_rankings(net, list(net.layers), score=args.score, device=device,
                            use_cache=not args.no_cache, progress=True)
    safe = path_safe_name(net.spec.name)
    for layer, ranking in rankings.items():
        filters = input_filters(net, layer)
        if filters is not None and filters.shape[0] != ranking.n_channels:
            filters = None
        figure = plot_layer(ranking, args.n, filters, weights_label=args.weights)
        path = out_dir / f"{safe}_{layer}_{args.score}.png"
        try:
            save_figure(figure, path, args.dpi)
        except ValueError as error:  # an image too large for its dpi
            raise CommandError(f"--dpi: {error}") from None
        info(f"wrote {path}")
        if filters is not None:
            top, bottom = top_bottom_channels(ranking, args.n)
            _chromaticity_report(layer, ranking, filters, top, bottom)
    info(f"plotted {len(rankings)} layer(s) in {time.perf_counter() - start:.2f} s")
    return 0
