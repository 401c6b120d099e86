"""The LIVE comparison table with every resolution stated and reference-resampled intervals of the differences.

Per-image scores come from the scoring engine (``python -m benchmarks.run_fr``: ``<name>_scores_live.csv`` with
its ``<name>.csv`` giving each metric's direction), at native size; VGG-based metrics can also be scored on images
downscaled ×``scale`` here (:func:`score_downscaled`, the comparison metrics of :mod:`benchmarks.comparison` on
antialiased downscaled images, as ``run_live`` does), written to ``live_scores_x<scale>.csv``. Every metric is a row
**per resolution**; nothing is compared across resolutions without saying so.

Each row gives the SROCC against DMOS with two 95 % intervals (bootstrap over images; bootstrap over the references,
:class:`benchmarks.protocols.bootstrap.PairedBootstrap`). Its difference to the baseline (``pe_alex`` at native size)
is stated first at the level of references, the unit that is independent: per reference, the metric's
within-reference SROCC minus pe_alex's; their mean with a 95 % t-interval (``G − 1`` degrees of freedom; the
**primary interval**), the exact sign-flip p-values over references, two-sided (the pre-specified test; with 5
references never below 2/32 = .0625) and one-sided in each direction (1/32 = .031 when all 5 references agree), and
the number of references on which the metric is higher. The pooled SROCC difference with its reference- and
image-bootstrap intervals follows as **secondary** columns (with 5 references the reference bootstrap has about 126
distinct resamples and comes out too narrow; images of one reference are not independent). A difference is called
significant only when the primary interval excludes 0.

Usage::

    python -m benchmarks.live_table --scores benchmarks/results/live_fr_scores_live.csv \\
        benchmarks/results/live_fr_classic_scores_live.csv --downscaled dists lpips-vgg pe_vgg --scale 0.5 \\
        [--metrics vif fsim …] [--root ../shared/data/LIVE] [--out benchmarks/results] [--name live_table]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.datasets.live import DEFAULT_ROOT, LiveRecord, load_live_index
from benchmarks.protocols.bootstrap import PairedBootstrap, compare_srocc
from benchmarks.protocols.correlation import safe_srocc
from benchmarks.report import environment_info, markdown_table, write_csv, write_text_atomic
from pe_iqa.cli.errors import exit_status
from pe_iqa.provenance import Provenance, combine_records, read_sidecar, sidecar_path, write_sidecar
from pe_iqa.safe_files import DestinationError, OutputPlan, check_file_stem
from pe_iqa.scoring.output import file_sha256

__all__ = ["load_engine_scores", "load_score_files", "main", "score_downscaled", "table_rows"]

BASELINE = ("pe_alex", 1.0)


def load_engine_scores(scores_csv: str | os.PathLike[str], records: Sequence[LiveRecord]
                       ) -> dict[tuple[str, float], tuple[np.ndarray, bool]]:
    """Per-image scores of a ``run_fr`` score CSV, in ``records`` order, with each metric's direction.

    The directions are read from the run's summary table beside it (``<name>.csv`` for ``<name>_scores_live.csv``,
    column ``lower_better``).

    Returns:
        ``{(metric, 1.0): (values (N,), lower_better)}``.

    Raises:
        ValueError: if a record has no score, a score is not finite or the summary table is missing a metric.
    """
    path = Path(scores_csv)
    summary = path.with_name(path.name.replace("_scores_live.csv", ".csv"))
    with summary.open(newline="", encoding="utf-8") as handle:
        lower = {row["metric"]: row["lower_better"] == "True" for row in csv.DictReader(handle)}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = {Path(row["distorted"]).name + "|" + Path(row["distorted"]).parent.name: row
                for row in csv.DictReader(handle)}
    out: dict[tuple[str, float], tuple[np.ndarray, bool]] = {}
    for metric, lower_better in lower.items():
        values = []
        for record in records:
            row = rows.get(record.dist_path.name + "|" + record.dist_path.parent.name)
            if row is None or row.get(metric) in (None, ""):
                raise ValueError(f"{path}: no {metric} score for {record.dist_name}")
            values.append(float(row[metric]))
        array = np.array(values)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{path}: non-finite {metric} scores")
        out[(metric, 1.0)] = (array, lower_better)
    return out


def load_score_files(paths: Sequence[str | os.PathLike[str]], records: Sequence[LiveRecord]
                     ) -> dict[tuple[str, float], tuple[np.ndarray, bool]]:
    """:func:`load_engine_scores` of several score files; a metric carried by two files must have been scored alike.

    Each file's provenance sidecar (``<file>.provenance.json``, written by ``run_fr``) holds its metrics' records;
    when two files carry the same metric, :func:`~pe_iqa.provenance.combine_records` compares them (the later file's
    values are used when they agree).

    Raises:
        ProvenanceError: two files carry a metric scored under different configurations, or one of them has no
            record for it (unknown: it cannot be told apart).
    """
    scores: dict[tuple[str, float], tuple[np.ndarray, bool]] = {}
    held: dict[str, tuple[Path, Provenance | None]] = {}
    for path in map(Path, paths):
        found = read_sidecar(sidecar_path(path))
        saved = found[0] if found else {}
        loaded = load_engine_scores(path, records)
        for metric, _ in loaded:
            if metric in held:
                first_path, first = held[metric]
                remedy = f"give only one of {first_path} and {path} for {metric}, or score both alike"
                if first is None:  # the earlier file's record is unknown
                    combine_records(None, saved.get(metric) or Provenance(metric, kind="unrecorded"),
                                    str(first_path), remedy, refuse_unknown=True)
                else:
                    combine_records(saved.get(metric), first, str(path), remedy, refuse_unknown=True)
            held[metric] = (path, saved.get(metric))
        scores.update(loaded)
    return scores


def score_downscaled(metrics: Sequence[str], records: Sequence[LiveRecord], scale: float, out_csv: Path,
                     device: str = "cpu", progress: bool = True) -> dict[tuple[str, float], tuple[np.ndarray, bool]]:
    """Score ``metrics`` on images downscaled by ``scale`` and write ``out_csv`` with its provenance sidecar.

    An earlier ``out_csv`` is reused only when it holds these metrics for these images at this scale and its sidecar
    holds, for every metric, the record of the metric as built now (:func:`~pe_iqa.provenance.combine_records`);
    a file without one, or with a partial one, is unknown and scored again; another configuration is refused.
    """
    from benchmarks.comparison import BENCHMARK_METRICS

    built = {name: BENCHMARK_METRICS.build(name, device) for name in metrics}
    current = {name: metric.record().with_options(scale=scale) for name, metric in built.items()}
    if out_csv.exists():
        with out_csv.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        have = [m for m in metrics if rows and f"{m}" in rows[0]]
        found = read_sidecar(sidecar_path(out_csv))
        unknown = combine_records(found[0] if found else None, current, str(out_csv),
                                  "delete it to score the downscaled images again")
        if found and found[1].get("csv_sha256") != file_sha256(out_csv):
            unknown = f"{out_csv} changed after its provenance file was written"
        if not unknown and len(have) == len(metrics) and \
                [r["dist_name"] for r in rows] == [r.dist_name for r in records] and \
                all(float(r["scale"]) == scale for r in rows):
            return {(m, scale): (np.array([float(r[m]) for r in rows]), rows[0][f"{m} lower_better"] == "True")
                    for m in metrics}
    from benchmarks.channel_sets import downscale
    from benchmarks.comparison import score_one_by_one
    from pe_iqa.image_io import read_image

    refs: dict[Path, object] = {}
    pairs = []
    for record in records:
        if record.ref_path not in refs:
            refs[record.ref_path] = downscale(read_image(record.ref_path), scale).to(device)
        pairs.append((downscale(read_image(record.dist_path), scale).to(device), refs[record.ref_path]))
    out: dict[tuple[str, float], tuple[np.ndarray, bool]] = {}
    for name in metrics:
        metric = built[name]
        values, _ = score_one_by_one(metric, pairs, warmup=False, progress=progress)
        out[(name, scale)] = (values, metric.lower_better)
    table = [{"dist_name": r.dist_name, "ref_name": r.ref_name, "scale": scale,
              **{m: out[(m, scale)][0][i] for m in metrics},
              **{f"{m} lower_better": out[(m, scale)][1] for m in metrics}} for i, r in enumerate(records)]
    write_csv(table, out_csv)
    write_sidecar(out_csv, current, csv_sha256=file_sha256(out_csv))
    return out


def table_rows(scores: Mapping[tuple[str, float], tuple[np.ndarray, bool]], records: Sequence[LiveRecord],
               resolution: Mapping[float, str], n_boot: int = 1000,
               baseline: tuple[str, float] = BASELINE) -> list[dict[str, object]]:
    """One row per (metric, scale): SROCC with both intervals; difference to ``baseline`` by references (mean
    within-reference difference, t-interval, sign-flip p two- and one-sided) and pooled (both bootstraps).

    ``significant (references)`` is the primary t-interval excluding 0.
    """
    dmos = np.array([r.dmos for r in records])
    groups = [r.ref_name for r in records]
    image_boot = PairedBootstrap(-dmos, n_boot=n_boot, seed=0)
    reference_boot = PairedBootstrap(-dmos, n_boot=n_boot, seed=0, groups=groups)

    def oriented(key: tuple[str, float]) -> np.ndarray:
        values, lower_better = scores[key]
        return -values if lower_better else values  # higher = better, as -DMOS

    base = oriented(baseline)
    rows = []
    for key in sorted(scores, key=lambda k: -safe_srocc(oriented(k), -dmos)):
        x = oriented(key)
        row: dict[str, object] = {
            "metric": key[0], "scale": key[1], "resolution": resolution[key[1]], "n": len(x),
            "srocc": safe_srocc(x, -dmos),
        }
        for boot in (image_boot, reference_boot):
            low, high = boot.interval(boot.sroccs(x))
            row[f"srocc {boot.unit} low"], row[f"srocc {boot.unit} high"] = low, high
        if key != baseline:
            c = compare_srocc(x, base, -dmos, image_boot, reference_boot, groups)
            row.update({"diff to baseline": c.diff, "diff image low": c.image_low, "diff image high": c.image_high,
                        "diff ref low": c.reference_low, "diff ref high": c.reference_high,
                        "sign-flip p": c.sign_flip_p, "refs higher": c.references_a_better,
                        "significant (references)": c.significant,
                        "within-ref diff": c.within_diff, "within-ref t low": c.t_low, "within-ref t high": c.t_high,
                        "within-ref t p": c.t_p, "sign-flip p higher": c.sign_flip_p_greater,
                        "sign-flip p lower": c.sign_flip_p_less})
        rows.append(row)
    return rows


_PRIMARY = "− pe_alex by reference [t 95 %]"
_SHOWN = ["metric", "resolution", "srocc", "srocc 95% CI (images)", "srocc 95% CI (references)", _PRIMARY,
          "sign-flip p (2-sided)", "p (1-sided, higher)", "p (1-sided, lower)", "refs higher",
          "pooled − pe_alex [ref. bootstrap]", "[image bootstrap]"]


def _bracket(low: float, high: float, signed: bool = True) -> str:
    return f"[{low:+.3f}, {high:+.3f}]" if signed else f"[{low:.3f}, {high:.3f}]"


def _shown(row: Mapping[str, object]) -> dict[str, object]:
    """A table row as the Markdown shows it: intervals as ``est [low, high]`` text."""
    r: dict[str, float] = {k: v for k, v in row.items() if isinstance(v, float)}
    out: dict[str, object] = {
        **row, "srocc 95% CI (images)": _bracket(r["srocc image low"], r["srocc image high"], False),
        "srocc 95% CI (references)": _bracket(r["srocc reference low"], r["srocc reference high"], False)}
    if "diff to baseline" not in row:
        return {**out, _PRIMARY: "baseline"}
    return {**out, _PRIMARY: f"{r['within-ref diff']:+.3f} " + _bracket(r["within-ref t low"], r["within-ref t high"]),
            "sign-flip p (2-sided)": r["sign-flip p"], "p (1-sided, higher)": r["sign-flip p higher"],
            "p (1-sided, lower)": r["sign-flip p lower"],
            "pooled − pe_alex [ref. bootstrap]": f"{r['diff to baseline']:+.3f} "
                                                 + _bracket(r["diff ref low"], r["diff ref high"]),
            "[image bootstrap]": _bracket(r["diff image low"], r["diff image high"])}


def _resolutions(records: Sequence[LiveRecord], scales: Sequence[float]) -> dict[float, str]:
    sizes = set()
    for record in {r.ref_path: r for r in records}.values():
        with Image.open(record.ref_path) as image:
            sizes.add(image.size)
    out = {}
    for scale in scales:
        shown = sorted({f"{round(w * scale)}×{round(h * scale)}" for w, h in sizes})
        out[scale] = ("native " if scale == 1.0 else f"×{scale:g} ") + "/".join(shown)
    return out


def _plan_outputs(args: argparse.Namespace) -> None:
    """Check every file this run writes (inside ``--out``, not an input, not an image) and create ``--out``."""
    check_file_stem(args.name, "--name")
    plan = OutputPlan(inputs=args.scores, within=args.out)
    plan.add(args.out / f"{args.name}.csv", "table", "csv")
    plan.add(args.out / f"{args.name}.md", "report", "markdown")
    if args.downscaled:
        plan.add(args.out / f"live_scores_x{args.scale:g}.csv", "downscaled scores", "csv")
    plan.ready()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring): exit 2 with one line when an output cannot be written
    (checked before any work), 1 with one line on another error."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live_table", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--scores", nargs="+", type=Path, required=True, help="run_fr *_scores_live.csv files")
    parser.add_argument("--downscaled", nargs="*", default=[], help="metrics also scored on downscaled images")
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--metrics", nargs="*", default=None,
                        help="rows to keep (default: every metric of the score files)")
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--name", default="live_table")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    if not 0 < args.scale < 1:
        parser.error("--scale must be in (0, 1)")
    try:
        _plan_outputs(args)
    except DestinationError as error:  # before any scoring: --name ../escaped, an image in the way, --out a file
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        index = load_live_index(args.root)
        records = list(index.records)
        scores = load_score_files(args.scores, records)
        if args.downscaled:
            scores.update(score_downscaled(args.downscaled, records, args.scale,
                                           args.out / f"live_scores_x{args.scale:g}.csv", progress=args.progress))
        if args.metrics:
            missing = sorted({m for m in args.metrics} - {m for m, _ in scores})
            if missing or BASELINE not in scores:
                raise ValueError(f"no scores for {missing or [BASELINE[0]]}")
            scores = {k: v for k, v in scores.items() if k[0] in args.metrics or k == BASELINE}
        rows = table_rows(scores, records, _resolutions(records, [1.0, args.scale]), n_boot=args.boot)
    except Exception as error:  # a CLI user sees one line
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return exit_status(error)  # the command line's one exit table
    write_csv(rows, args.out / f"{args.name}.csv")
    n_refs = len({r.ref_name for r in records})
    env = environment_info("cpu", {"LIVE": index.summary()}, {
        "bootstrap resamples": args.boot,
        "command": "python -m benchmarks.live_table " + " ".join(argv if argv is not None else sys.argv[1:])})
    shown = [_shown(r) for r in rows]
    text = "\n\n".join([
        f"# LIVE: every metric at a stated resolution, with reference-resampled intervals ({len(records)} images, "
        f"{n_refs} references)",
        "## Environment\n\n" + markdown_table([{"key": k, "value": v} for k, v in env.items()]),
        "## How to read this\n\n" + (__doc__ or "").split("\n\n")[1].replace("\n", " ") + " "
        + (__doc__ or "").split("\n\n")[2].replace("\n", " ")
        + f" With {n_refs} references the reference bootstrap has few distinct resamples; read it with the "
          "sign-flip p-value.",
        "## Table\n\n" + markdown_table(shown, _SHOWN, digits=3),
    ]) + "\n"
    write_text_atomic(args.out / f"{args.name}.md", text, what="report", kind="markdown", within=args.out)
    print(markdown_table(shown, ["metric", "resolution", "srocc", _PRIMARY, "sign-flip p (2-sided)"], digits=3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
