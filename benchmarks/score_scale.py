"""What PE distances look like: typical values of the presets next to LPIPS, on LIVE pairs and on extreme pairs.

Reports, for every preset (and pyiqa ``lpips`` when available): the range and quartiles over the LIVE pairs, an image
against a flat grey field, black against white, an image against its negative, and the same pair at several
``top_percent`` values (with unit-normalised channels the value no longer shrinks as ``1/|S|``). Written to
``<out>/score_scale.md`` for the README's "What the numbers mean".

Usage::

    python -m benchmarks.score_scale [--root ../shared/data/LIVE] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from benchmarks.datasets.live import DEFAULT_ROOT, load_live_index
from benchmarks.report import markdown_table, write_text_atomic
from pe_iqa import PRESETS, PEDistance
from pe_iqa.image_io import read_image

__all__ = ["main", "score_scale"]


def _metrics() -> dict[str, object]:
    metrics: dict[str, object] = {name: PEDistance(name, reduction="none") for name in PRESETS}
    try:
        import pyiqa

        metrics["lpips (pyiqa)"] = pyiqa.create_metric("lpips", device="cpu")
    except Exception as error:  # offline without the LPIPS weights, or pyiqa not installed
        print(f"lpips not available: {error}", file=sys.stderr)
    return metrics


@torch.inference_mode()
def score_scale(root: Path) -> tuple[list[dict], list[dict], str]:
    """``(rows per metric, rows of the top_percent sweep, the reference of the extreme pairs)``; see the module
    docstring."""
    index = load_live_index(root)
    records = list(index.records)
    metrics = _metrics()
    refs = {r.ref_path: read_image(r.ref_path) for r in records}
    image = refs[records[0].ref_path]
    grey = torch.full_like(image, float(image.mean()))
    black, white = torch.zeros(1, 3, 256, 256), torch.ones(1, 3, 256, 256)
    rows = []
    for name, metric in metrics.items():
        live = np.array([float(metric(read_image(r.dist_path), refs[r.ref_path])) for r in records])
        rows.append({
            "metric": name, "LIVE min": live.min(), "LIVE 25 %": np.quantile(live, 0.25),
            "LIVE median": np.median(live), "LIVE 75 %": np.quantile(live, 0.75), "LIVE max": live.max(),
            "image vs flat grey": float(metric(grey, image)), "black vs white": float(metric(black, white)),
            "image vs its negative": float(metric(1 - image, image)),
        })
    record = records[0]
    dist, ref = read_image(record.dist_path), refs[record.ref_path]
    sweep = []
    for x in (5.0, 10.0, 25.0, 50.0, 100.0):
        row = {"top_percent": x}
        for norm in (True, False):
            metric = PEDistance("pe_alex", top_percent=x, channel_norm=norm, reduction="none")
            row["unit-normalised" if norm else "raw Eq. 1"] = float(metric(dist, ref))
        sweep.append(row)
    return rows, sweep, record.ref_name


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    rows, sweep, reference = score_scale(args.root)
    text = ("# What PE distances look like\n\n"
            "Values of each metric (lower = more similar, 0 for identical images) on the shared LIVE pairs and on "
            "extreme pairs; the LIVE reference `" + reference + "` is the "
            "image of the extreme pairs.\n\n" + markdown_table(rows, digits=3) +
            "\n\n## pe_alex at several x on one LIVE pair\n\n" + markdown_table(sweep, digits=4) + "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "score_scale.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
