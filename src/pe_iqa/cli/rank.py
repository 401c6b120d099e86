"""``pe-iqa rank BACKBONE``: the PE ranking of each layer's channels (table on stdout, ``--out`` JSON or CSV)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import CommandError, UsageError, usage_errors
from .output import info, parse_device, print_table

__all__ = ["add_backbone_options", "add_parser", "check_backbone_options", "loading_weights", "run"]

EXAMPLES = """examples:
  pe-iqa rank alexnet                                 every default layer, top/bottom 5 channels
  pe-iqa rank vgg16 --layers relu3_3 --top 10 --out vgg_relu3_3.json
  pe-iqa rank alexnet --layers all
  pe-iqa rank resnet18 --weights random --no-cache --out ranks.csv"""


def add_backbone_options(parser: argparse.ArgumentParser) -> None:
    """Options ``rank`` and ``plot`` share."""
    parser.add_argument("backbone", help="backbone name: alexnet, vgg16, squeezenet1_1, resnet18, ..., "
                                         "or timm:<model>")
    parser.add_argument("--layers", nargs="+", metavar="LAYER",
                        help="layers to analyse, or 'all' (default: the backbone's default layers; list them with "
                             "`pe-iqa layers BACKBONE`)")
    parser.add_argument("--weights", default="DEFAULT",
                        help="DEFAULT (ImageNet), random[:SEED], a torchvision weight name, or a .pth/.safetensors "
                             "file (default: %(default)s)")
    parser.add_argument("--score", default="pe", help="efficacy score ranking the channels: pe, mu1, mu2, "
                                                      "magnitude, ... (default: %(default)s)")
    parser.add_argument("--device", default=None, help="torch device for measurements (default: cuda if "
                                                       "available, else cpu)")
    parser.add_argument("--no-cache", action="store_true",
                        help="measure afresh instead of reading cached or shipped rankings (and write nothing)")


def check_backbone_options(args: argparse.Namespace) -> None:
    """Refuse, as a wrong command line (exit status 2), a backbone, layer, weights tag or score that does not
    exist, before any network is built or measured.

    Raises:
        UsageError: naming what is accepted.
    """
    from ..analysis_config import SCORE_NAMES
    from ..backbones import backbone_spec, check_weights

    with usage_errors():
        spec = backbone_spec(args.backbone)
        if args.layers and args.layers != ["all"]:
            spec.check_layers(args.layers)
        check_weights(spec, args.weights)
    if args.score not in SCORE_NAMES:
        raise UsageError(f"--score must be one of {sorted(SCORE_NAMES)}, got {args.score!r}")


class _HeldDownloadNotice:
    """A standard stream, except that torch hub's ``Downloading: …`` line (which it prints on standard output) is
    held back until something else is written (the download's progress bar: the connection worked), and then goes
    to standard error. Offline, the user sees the one-line error, not a download that never was, and a table on
    standard output never holds the line."""

    def __init__(self, stream, held: list[str], stderr) -> None:
        self.stream, self.held, self.stderr = stream, held, stderr

    def write(self, text: str) -> int:
        if text.startswith("Downloading: "):
            self.held[:] = [text]
            return len(text)
        if self.held:
            self.stderr.write(self.held.pop())
        return self.stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def _command_line_wording(message: str) -> str:
    """A weights error as the command line's options say it (``--weights random``, not ``weights='random'``)."""
    message = message.replace(" (loaded with pretrained_cfg_overlay=dict(file=...))", "")
    return re.sub(r"\bweights='([^']*)'", r"--weights \1", message)


@contextlib.contextmanager
def loading_weights() -> Iterator[None]:
    """Around anything that may download a backbone's weights: offline, one line naming ``--weights random``.

    Raises:
        CommandError: the weights are neither cached nor downloadable (exit status 1).
    """
    from ..backbones import WeightsNotFoundError

    held: list[str] = []
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (_HeldDownloadNotice(stream, held, saved[1]) for stream in saved)
    try:
        yield
    except WeightsNotFoundError as error:
        held.clear()  # the download did not happen: do not claim it
        raise CommandError(_command_line_wording(str(error))) from None
    finally:
        sys.stdout, sys.stderr = saved
        if held:
            saved[1].write(held.pop())


def chosen_layers(args: argparse.Namespace) -> list[str] | None:
    """``--layers`` as given, every layer of the backbone for ``all``, or ``None`` for its default layers."""
    if args.layers == ["all"]:
        from ..backbones import list_layers

        return list(list_layers(args.backbone))
    return args.layers


def add_parser(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "rank", help="rank a backbone's channels by perceptual efficacy", parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Rank the channels of each layer by perceptual efficacy and print the top and bottom ones.",
    )
    add_backbone_options(parser)
    parser.add_argument("--top", type=int, default=5, metavar="N", help="channels shown from each end "
                                                                        "(default: %(default)s)")
    parser.add_argument("--out", metavar="FILE", help="write every channel's ranking to FILE.json or FILE.csv")
    parser.set_defaults(func=run)


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
    from .. import __version__
    from ..safe_files import atomic_write

    rows = _ranking_rows(rankings)
    first = next(iter(rankings.values()))
    with atomic_write(path) as handle:
        if path.suffix.lower() == ".csv":
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
        handle.write(json.dumps(document, indent=1) + "\n")


def run(args: argparse.Namespace) -> int:
    """Rank, print the table (stdout), report timing and written files (stderr)."""
    from ..analysis.ranking_lookup import get_rankings
    from ..safe_files import check_destination

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        raise UsageError(f"--out must end in .json or .csv, got {args.out!r}")
    if args.top < 1:
        raise UsageError(f"--top must be >= 1, got {args.top}")
    check_backbone_options(args)
    device = parse_device(args.device)
    if out is not None:
        check_destination(out, [args.weights] if Path(args.weights).suffix else [], "--out",
                          kind=out.suffix.lower().lstrip("."))
    start = time.perf_counter()
    with loading_weights():
        rankings = get_rankings(args.backbone, chosen_layers(args), weights=args.weights, score=args.score,
                                device=device, use_cache=not args.no_cache, progress=True)
    elapsed = time.perf_counter() - start
    extra = [] if args.score == "pe" else ["score"]
    for layer, ranking in rankings.items():
        print(f"{ranking.backbone} {layer}: {ranking.n_channels} channels ranked by {ranking.score_name} "
              f"(weights {args.weights}, id {ranking.weights_id}; analysis {ranking.config.key()})")
        if 2 * args.top >= ranking.n_channels:  # the whole layer fits: list every channel once
            order = ranking.order().tolist()
            entries = [("top" if r <= ranking.n_channels // 2 else "bottom", r, c)
                       for r, c in enumerate(order, start=1)]
        else:
            entries = [(row["where"], row["rank"], row["channel"]) for row in ranking.table(args.top)]
        header = ["", "rank", "channel", *extra, "PE", "mu1", "mu2"]
        rows = []
        for where, rank, channel in entries:
            scores = [f"{float(ranking.score[channel]):.4g}"] if extra else []
            rows.append([where, str(rank), str(channel), *scores, f"{float(ranking.pe[channel]):.4g}",
                         f"{float(ranking.mu1[channel]):.4g}", f"{float(ranking.mu2[channel]):.4g}"])
        print_table(header, rows, indent="  ")
        zeros = int((ranking.pe == 0).sum())
        print(f"  channels with PE = 0: {zeros} of {ranking.n_channels}\n")
    source = "measured or loaded from cache" if not args.no_cache else "measured (cache not used)"
    info(f"ranked {len(rankings)} layer(s) in {elapsed:.2f} s ({source})")
    if out is not None:
        _write_rankings(out, rankings, args.weights)
        info(f"wrote {out}")
    return 0
