"""``pe-iqa explain``: where a distorted image differs from its reference, and which channels say so."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from .errors import UsageError
from .output import format_value, info, parse_device, print_table

__all__ = ["add_parser", "run"]

EXAMPLES = """examples:
  pe-iqa explain -t out.png -r ref.png                      the 10 channels carrying most of the pe_alex score
  pe-iqa explain -t out.png -r ref.png pe_vgg --top 5 --figure why.png --csv channels.csv
  pe-iqa explain --sample blur_2 --figure why.png           a pair of the bundled sample

The score splits exactly into one contribution per selected channel; each row joins a channel's share with what
the PE analysis measured of it (PE, its rank by PE in the layer, preferred frequency and orientation)."""


def add_parser(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    from .choices import DEFAULT_METRIC, PRESET_NAMES

    parser = commands.add_parser(
        "explain", help="where two images differ and which channels carry the distance", parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Explain one pair's PE distance: its distance map and the channels that carry it.",
    )
    parser.add_argument("metric", nargs="?", default=DEFAULT_METRIC, choices=sorted(PRESET_NAMES),
                        help=f"the PE preset (default: {DEFAULT_METRIC})")
    parser.add_argument("-t", "--target", metavar="DIST", help="the distorted image file")
    parser.add_argument("-r", "--ref", metavar="REF", help="the reference image file")
    parser.add_argument("--sample", metavar="NAME", help="a pair of the bundled sample instead (e.g. blur_2)")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="channels listed (default: %(default)s)")
    parser.add_argument("--csv", metavar="FILE", help="write every selected channel's row to FILE.csv")
    parser.add_argument("--json", metavar="FILE", help="write the score and every channel's row to FILE.json")
    parser.add_argument("--figure", metavar="FILE.png", help="write the heat map and the top channels' tuning "
                                                              "curves and difference maps")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.set_defaults(func=run)


def _inputs(args: argparse.Namespace) -> tuple[Path, Path]:
    from .score import SAMPLE_DIR

    if args.sample:
        if args.target or args.ref:
            raise UsageError("give either --sample NAME or -t DIST -r REF, not both")
        dist, ref = SAMPLE_DIR / "distorted" / f"{args.sample}.png", SAMPLE_DIR / "reference" / f"{args.sample}.png"
        if not dist.is_file():
            names = sorted(p.stem for p in (SAMPLE_DIR / "distorted").glob("*.png"))
            raise UsageError(f"--sample {args.sample}: the bundled sample has {', '.join(names)}")
        return dist, ref
    if not args.target or not args.ref:
        raise UsageError("give the distorted image with -t DIST and its reference with -r REF (or --sample NAME)")
    return Path(args.target), Path(args.ref)


def run(args: argparse.Namespace) -> int:
    """Print the top channels (stdout); write the CSV/JSON/figure asked for (checked before any work)."""
    import torch

    from ..distance import PEDistance
    from ..explain import explain_pair
    from ..explain_figures import explanation_figure
    from ..image_io import read_pair
    from ..plotting import require_matplotlib, save_figure
    from ..safe_files import OutputPlan, atomic_write

    if args.top < 1:
        raise UsageError(f"--top must be >= 1, got {args.top}")
    distorted, reference = _inputs(args)
    outputs = {"--csv": (args.csv, "csv"), "--json": (args.json, "json"), "--figure": (args.figure, "png")}
    plan = OutputPlan([distorted, reference])  # every output checked, none sharing a path, before any is created
    for option, (path, kind) in outputs.items():
        if path is not None:
            plan.add(path, option, kind)
    plan.ready()
    if args.figure:
        require_matplotlib()
    device = parse_device(args.device)
    dist, ref = (t.to(device) for t in read_pair(distorted, reference))
    metric = PEDistance(args.metric, device=device)
    with torch.no_grad():
        why = explain_pair(metric, dist, ref, top=args.top)
    print(f"{args.metric} ({metric.spec.describe()}): score {format_value(why.score)} for {distorted} vs {reference}")
    rows = [[c.layer, str(c.channel), f"{100 * c.share:.1f} %", format_value(c.contribution), str(c.pe_rank),
             f"{c.pe:.3g}", f"{c.preferred_frequency:.1f}", f"{c.preferred_orientation:.0f}"]
            for c in why.contributions[:args.top]]
    print_table(["layer", "channel", "share", "contribution", "PE rank", "PE", "pref. cpd", "pref. deg"], rows)
    shown = sum(c.share for c in why.contributions[:args.top])
    print(f"these {len(rows)} of {len(why.contributions)} channels carry {100 * shown:.1f} % of the score")
    records = [c.as_dict() for c in why.contributions]
    if args.csv:
        with atomic_write(args.csv, what="--csv", kind="csv", inputs=plan.inputs) as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        info(f"wrote {args.csv}")
    if args.json:
        with atomic_write(args.json, what="--json", kind="json", inputs=plan.inputs) as handle:
            json.dump({"metric": args.metric, "spec": metric.spec.describe(), "distorted": str(distorted),
                       "reference": str(reference), "score": why.score, "channels": records}, handle, indent=1)
        info(f"wrote {args.json}")
    if args.figure:
        save_figure(explanation_figure(why, metric, dist, ref, n=min(4, args.top)), args.figure)
        info(f"wrote {args.figure}")
    return 0
