"""The ``pe-iqa`` command line: rank channels by PE, plot the analysis, score images, run pyiqa's CLI.

Subcommands::

    pe-iqa score -t DIST -r REF [METRIC ...]     score distorted images against references (default pe_alex)
    pe-iqa score --sample pe_alex lpips ssim      score the bundled sample (one image, six distortions)
    pe-iqa rank BACKBONE [--layers ...]           PE ranking of each layer's channels (table, JSON or CSV)
    pe-iqa plot BACKBONE [--layers ...]           tuning curves, PE histograms and first-layer filters (PNG)
    pe-iqa pyiqa ARGS ...                         pyiqa's own command line with the pe metrics registered

Results go to standard output; progress, timings and model-loading messages to standard error. Bad input
(missing file, unknown backbone, layer or metric) ends with a one-line message and exit status 1 (2 for
malformed command lines); set ``PE_IQA_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from . import __version__
from .presets import PRESETS

__all__ = ["SAMPLE_DIR", "build_parser", "main"]

#: The bundled sample scored by ``pe-iqa score --sample`` (``distorted/`` and ``reference/`` PNGs).
SAMPLE_DIR = Path(__file__).with_name("sample")

_PYIQA_MISSING = "metric {name!r} is not a pe-iqa preset ({presets}); other metrics come from pyiqa: pip install pyiqa"


class CommandError(Exception):
    """A user-facing error of the command line (printed without a traceback)."""


# ---------------------------------------------------------------------------------------------- helpers


def _device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise CommandError(f"--device must be a torch device such as 'cpu' or 'cuda:0', got {name!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return device


def _info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _format_value(value: float) -> str:
    return f"{value:.6f}" if math.isfinite(value) else str(value)


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for i, line in enumerate([header, *rows]):
        cells = [str(c).ljust(w) if j == 0 or (i == 0 and not rows) else str(c).rjust(w)
                 for j, (c, w) in enumerate(zip(line, widths, strict=True))]
        print(indent + "  ".join(cells).rstrip())


# ---------------------------------------------------------------------------------------------- rank


def _ranking_rows(rankings: dict) -> list[dict]:
    rows = []
    for layer, ranking in rankings.items():
        for rank, channel in enumerate(ranking.order().tolist(), start=1):
            rows.append({
                "backbone": ranking.backbone, "weights_id": ranking.weights_id, "layer": layer, "rank": rank,
                "channel": channel, "score": float(ranking.score[channel]), "pe": float(ranking.pe[channel]),
                "mu1": float(ranking.mu1[channel]), "mu2": float(ranking.mu2[channel]),
            })
    return rows


def _write_rankings(path: Path, rankings: dict, weights: str) -> None:
    rows = _ranking_rows(rankings)
    first = next(iter(rankings.values()))
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return
    document = {
        "pe_iqa_version": __version__,
        "backbone": first.backbone,
        "weights": weights,
        "weights_id": first.weights_id,
        "score": first.score_name,
        "config": dataclasses.asdict(first.config),
        "config_key": first.config.key(),
        "layers": {
            layer: [{k: row[k] for k in ("rank", "channel", "score", "pe", "mu1", "mu2")}
                    for row in rows if row["layer"] == layer]
            for layer in rankings
        },
    }
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def _cmd_rank(args: argparse.Namespace) -> int:
    from .rankings import get_rankings

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        raise CommandError(f"--out must end in .json or .csv, got {args.out!r}")
    if args.top < 1:
        raise CommandError(f"--top must be >= 1, got {args.top}")
    start = time.perf_counter()
    rankings = get_rankings(args.backbone, args.layers, weights=args.weights, score=args.score,
                            device=_device(args.device), use_cache=not args.no_cache, progress=True)
    elapsed = time.perf_counter() - start
    extra = [] if args.score == "pe" else ["score"]
    for layer, ranking in rankings.items():
        print(f"{ranking.backbone} {layer}: {ranking.n_channels} channels ranked by {ranking.score_name} "
              f"(weights {args.weights}, id {ranking.weights_id}; analysis {ranking.config.key()})")
        n = min(args.top, ranking.n_channels // 2) if 2 * args.top < ranking.n_channels else None
        if n is None:  # the whole layer fits: list every channel once
            order = ranking.order().tolist()
            entries = [("top" if r <= ranking.n_channels // 2 else "bottom", r, c)
                       for r, c in enumerate(order, start=1)]
        else:
            entries = [(row["where"], row["rank"], row["channel"]) for row in ranking.table(max(n, 1))]
        header = ["", "rank", "channel", *extra, "PE", "mu1", "mu2"]
        rows = []
        for where, rank, channel in entries:
            scores = [f"{float(ranking.score[channel]):.4g}"] if extra else []
            rows.append([where, str(rank), str(channel), *scores, f"{float(ranking.pe[channel]):.4g}",
                         f"{float(ranking.mu1[channel]):.4g}", f"{float(ranking.mu2[channel]):.4g}"])
        _print_table(header, rows, indent="  ")
        zeros = int((ranking.pe == 0).sum())
        print(f"  channels with PE = 0: {zeros} of {ranking.n_channels}\n")
    source = "measured or loaded from cache" if not args.no_cache else "measured (cache not used)"
    print(f"ranked {len(rankings)} layer(s) in {elapsed:.2f} s ({source})")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_rankings(out, rankings, args.weights)
        print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------------------------------- plot


def _chromaticity_report(layer: str, ranking, filters: torch.Tensor, top: list[int], bottom: list[int]) -> None:
    from scipy.stats import spearmanr

    from .plotting import filter_chromaticity

    chroma = filter_chromaticity(filters)
    print(f"  {layer} filter chromaticity (mean over pixels of the RGB std, over the filter's std; 0 = grey):")
    for where, channels in (("top", top), ("bottom", bottom)):
        values = ", ".join(f"ch {c}: {float(chroma[c]):.2f}" for c in channels)
        print(f"    {where:<6} {values}")
    high, low = ranking.select("high", 10.0), ranking.select("low", 10.0)
    rho = spearmanr(ranking.pe.numpy(), chroma.numpy()).statistic
    print(f"    mean: H-10 ({len(high)} ch) {float(chroma[high].mean()):.3f}, L-10 ({len(low)} ch) "
          f"{float(chroma[low].mean()):.3f}, all {ranking.n_channels} {float(chroma.mean()):.3f}; "
          f"Spearman(PE, chromaticity) = {rho:.3f}")


def _cmd_plot(args: argparse.Namespace) -> int:
    from .backbones import load_backbone
    from .plotting import input_filters, plot_layer, save_figure, top_bottom_channels
    from .rankings import get_rankings

    if args.n < 1:
        raise CommandError(f"--n must be >= 1, got {args.n}")
    if args.dpi < 10:
        raise CommandError(f"--dpi must be >= 10, got {args.dpi}")
    device = _device(args.device)
    start = time.perf_counter()
    net = load_backbone(args.backbone, args.layers, weights=args.weights, device=device)
    rankings = get_rankings(net, list(net.layers), score=args.score, device=device,
                            use_cache=not args.no_cache, progress=True)
    out_dir = Path(args.out_dir)
    safe = net.spec.name.replace(":", "-").replace("/", "-")
    for layer, ranking in rankings.items():
        filters = input_filters(net, layer)
        if filters is not None and filters.shape[0] != ranking.n_channels:
            filters = None
        figure = plot_layer(ranking, args.n, filters, weights_label=args.weights)
        path = save_figure(figure, out_dir / f"{safe}_{layer}_{args.score}.png", dpi=args.dpi)
        print(f"{path}")
        if filters is not None:
            top, bottom = top_bottom_channels(ranking, args.n)
            _chromaticity_report(layer, ranking, filters, top, bottom)
    print(f"plotted {len(rankings)} layer(s) in {time.perf_counter() - start:.2f} s")
    return 0


# ---------------------------------------------------------------------------------------------- score


@dataclasses.dataclass
class _Metric:
    name: str
    lower_better: bool
    needs_reference: bool
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _pyiqa_metric(name: str, device: torch.device) -> _Metric:
    try:
        import pyiqa
    except ImportError:
        raise CommandError(_PYIQA_MISSING.format(name=name, presets=", ".join(PRESETS))) from None
    known = set(pyiqa.list_models())
    if name not in known:
        raise CommandError(
            f"unknown metric {name!r}: neither a pe-iqa preset ({', '.join(PRESETS)}) nor a pyiqa "
            f"metric (list them with `pe-iqa pyiqa -ls`)"
        )
    with contextlib.redirect_stdout(sys.stderr):  # pyiqa prints "Loading pretrained model ..."
        metric = pyiqa.create_metric(name, device=device)
    needs_reference = getattr(metric, "metric_mode", "FR") != "NR"
    fn = metric if needs_reference else (lambda dist, ref: metric(dist))
    return _Metric(name, bool(metric.lower_better), needs_reference, fn)


def _load_metric(name: str, device: torch.device) -> _Metric:
    if name in PRESETS:
        from .distance import PEDistance

        return _Metric(name, True, True, PEDistance(name, device=device))
    return _pyiqa_metric(name, device)


def _display_names(pairs: list[tuple[Path, Path]], target: Path, ref: Path) -> tuple[list[str], list[str]]:
    def names(paths: list[Path], root: Path) -> list[str]:
        return [p.name if root.is_dir() else str(p) for p in paths]

    return names([d for d, _ in pairs], target), names([r for _, r in pairs], ref)


def _cmd_score(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .image_io import pair_images, read_pair

    if args.sample:
        if args.target or args.ref:
            raise CommandError("give either --sample or -t DIST -r REF, not both")
        target, ref = SAMPLE_DIR / "distorted", SAMPLE_DIR / "reference"
        args.verbose = True
    elif not args.target or not args.ref:
        raise CommandError("give the distorted images with -t DIST and the references with -r REF "
                           "(files or folders), or --sample for the bundled sample")
    else:
        target, ref = Path(args.target), Path(args.ref)
    names = list(dict.fromkeys(args.metrics or ["pe_alex"]))
    pairs = pair_images(target, ref)
    device = _device(args.device)

    start = time.perf_counter()
    metrics = [_load_metric(name, device) for name in names]
    loaded = time.perf_counter()
    scores: dict[str, list[float]] = {m.name: [] for m in metrics}
    bar = tqdm(pairs, desc="scoring", unit="pair", disable=len(pairs) < 8, file=sys.stderr, leave=False)
    with torch.inference_mode():
        for dist_path, ref_path in bar:
            dist, reference = read_pair(dist_path, ref_path)
            dist, reference = dist.to(device), reference.to(device)
            for metric in metrics:
                scores[metric.name].append(float(metric.fn(dist, reference).reshape(-1)[0]))
    done = time.perf_counter()
    _info(f"loaded {len(metrics)} metric(s) in {loaded - start:.2f} s; scored {len(pairs)} pair(s) on {device} "
          f"in {done - loaded:.2f} s")

    dist_names, ref_names = _display_names(pairs, target, ref)
    same = dist_names == ref_names
    label = ["image"] if same else ["distorted", "reference"]
    means = {name: sum(values) / len(values) for name, values in scores.items()}
    rows = []
    if args.verbose:
        for i in range(len(pairs)):
            keys = [dist_names[i]] if same else [dist_names[i], ref_names[i]]
            rows.append([*keys, *(_format_value(scores[name][i]) for name in names)])
    mean_keys = [f"mean ({len(pairs)} pairs)"] + ([] if same else [""])
    rows.append([*mean_keys, *(_format_value(means[name]) for name in names)])
    if args.sample:
        print(f"bundled sample {SAMPLE_DIR}: one reference, each distortion mild (_1) and strong (_2)")
    _print_table([*label, *names], rows)
    lower = [m.name for m in metrics if m.lower_better]
    higher = [m.name for m in metrics if not m.lower_better]
    print("; ".join(part for part in (
        f"lower = better: {', '.join(lower)}" if lower else "",
        f"higher = better: {', '.join(higher)}" if higher else "",
    ) if part))
    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["distorted", "reference", *names])
            for i, (dist_path, ref_path) in enumerate(pairs):
                writer.writerow([str(dist_path), str(ref_path), *(repr(scores[name][i]) for name in names)])
        _info(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------------------------- pyiqa


def _run_pyiqa(arguments: list[str]) -> int:
    try:
        import pe_iqa_pyiqa
    except ImportError as error:
        if getattr(error, "name", None) == "pyiqa":
            raise CommandError("`pe-iqa pyiqa` needs pyiqa: pip install pyiqa") from None
        raise CommandError(
            "`pe-iqa pyiqa` needs the pe_iqa_pyiqa plugin (installed with pe-iqa from plugins/pe_iqa_pyiqa; "
            f"reinstall pe-iqa with: pip install 'pe-iqa[pyiqa]'): {error}"
        ) from None
    try:
        from pyiqa import pyiqa_cmd
    except ImportError:
        raise CommandError("`pe-iqa pyiqa` needs pyiqa: pip install pyiqa") from None
    pe_iqa_pyiqa.register()
    saved = sys.argv
    sys.argv = ["pe-iqa pyiqa", *arguments]
    try:
        pyiqa_cmd.main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = saved
    return 0


# ---------------------------------------------------------------------------------------------- parser

_EXAMPLES = {
    "score": """examples:
  pe-iqa score --sample pe_alex lpips ssim            the bundled sample, three metrics
  pe-iqa score -t distorted/ -r reference/ -v         folders paired by sorted file name
  pe-iqa score -t out.png -r ref.png pe_alex pe_vgg psnr --csv scores.csv

metrics: pe-iqa presets ({presets}) use the pe-iqa core; any other name
(lpips, dists, ssim, psnr, ... ) is computed by pyiqa (pip install pyiqa).""",
    "rank": """examples:
  pe-iqa rank alexnet                                 every default layer, top/bottom 5 channels
  pe-iqa rank vgg16 --layers relu3_3 --top 10 --out vgg_relu3_3.json
  pe-iqa rank resnet18 --weights random --no-cache --out ranks.csv""",
    "plot": """examples:
  pe-iqa plot alexnet --layers relu1 relu2 --out-dir figures
  pe-iqa plot vgg16 --layers relu1_1 relu3_3 --n 3""",
}


def _add_backbone_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("backbone", help="backbone name: alexnet, vgg16, squeezenet1_1, resnet18, ..., "
                                         "or timm:<model>")
    parser.add_argument("--layers", nargs="+", metavar="LAYER",
                        help="layers to analyse (default: the backbone's default layers)")
    parser.add_argument("--weights", default="DEFAULT",
                        help="DEFAULT (ImageNet), random[:SEED], a torchvision weight name, or a .pth/.safetensors "
                             "file (default: %(default)s)")
    parser.add_argument("--score", default="pe", help="efficacy score ranking the channels: pe, mu1, mu2, "
                                                      "magnitude, ... (default: %(default)s)")
    parser.add_argument("--device", default=None, help="torch device for measurements (default: cuda if "
                                                       "available, else cpu)")
    parser.add_argument("--no-cache", action="store_true",
                        help="measure afresh instead of reading cached or shipped rankings (and write nothing)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pe-iqa`` (the ``pyiqa`` subcommand is dispatched before parsing)."""
    parser = argparse.ArgumentParser(
        prog="pe-iqa",
        description="Perceptual Efficacy (PE) channel selection for deep-feature image-quality distances.",
        epilog="run `pe-iqa COMMAND --help` for the options of a command",
    )
    parser.add_argument("--version", action="version",
                        version=f"pe-iqa {__version__} (torch {torch.__version__}, python {sys.version.split()[0]})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    formatter = argparse.RawDescriptionHelpFormatter

    score = commands.add_parser(
        "score", help="score distorted images against references", formatter_class=formatter,
        description="Score distorted images against their references (full-reference metrics).",
        epilog=_EXAMPLES["score"].format(presets=", ".join(PRESETS)),
    )
    score.add_argument("metrics", nargs="*", metavar="METRIC", help="metrics to compute (default: pe_alex)")
    score.add_argument("-t", "--target", metavar="DIST", help="distorted image file or folder")
    score.add_argument("-r", "--ref", metavar="REF", help="reference image file or folder (folders are paired "
                                                          "by sorted file name)")
    score.add_argument("--sample", action="store_true", help="score the bundled sample (implies -v)")
    score.add_argument("-v", "--verbose", action="store_true", help="print every pair's scores, not only the means")
    score.add_argument("--csv", metavar="FILE", help="write one row per pair with a column per metric")
    score.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    score.set_defaults(func=_cmd_score)

    rank = commands.add_parser(
        "rank", help="rank a backbone's channels by perceptual efficacy", formatter_class=formatter,
        description="Rank the channels of each layer by perceptual efficacy and print the top and bottom ones.",
        epilog=_EXAMPLES["rank"],
    )
    _add_backbone_options(rank)
    rank.add_argument("--top", type=int, default=5, metavar="N", help="channels shown from each end "
                                                                      "(default: %(default)s)")
    rank.add_argument("--out", metavar="FILE", help="write every channel's ranking to FILE.json or FILE.csv")
    rank.set_defaults(func=_cmd_rank)

    plot = commands.add_parser(
        "plot", help="plot tuning curves, PE histograms and first-layer filters", formatter_class=formatter,
        description="Plot, per layer, the frequency and orientation tuning of the top-n and bottom-n channels "
                    "(CSF overlaid), the PE histogram and, for the first layer, the channels' RGB filters.",
        epilog=_EXAMPLES["plot"],
    )
    _add_backbone_options(plot)
    plot.add_argument("--n", type=int, default=4, help="channels shown per group (default: %(default)s)")
    plot.add_argument("--out-dir", default="pe_iqa_figures", help="folder for the PNGs (default: %(default)s)")
    plot.add_argument("--dpi", type=int, default=100, help="PNG resolution (default: %(default)s)")
    plot.set_defaults(func=_cmd_plot)

    commands.add_parser(
        "pyiqa", add_help=False, help="pyiqa's command line with the pe metrics registered "
                                      "(e.g. pe-iqa pyiqa pe_alex lpips -t DIST -r REF)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pe-iqa`` command line.

    Args:
        argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on bad input or a failed command, 2 on a malformed command line.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command = arguments[0] if arguments else None
    try:
        if command == "pyiqa":
            return _run_pyiqa(arguments[1:])
        try:
            args = parser.parse_args(arguments)
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
        if args.command is None:
            parser.print_help()
            return 2
        return args.func(args)
    except KeyboardInterrupt:
        _info("interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (CommandError, ValueError, TypeError, OSError, ImportError, RuntimeError) as error:
        if os.environ.get("PE_IQA_DEBUG"):
            raise
        _info(f"pe-iqa {command or ''}: error: {error}".replace("  ", " "))
        return 1


if __name__ == "__main__":
    sys.exit(main())
