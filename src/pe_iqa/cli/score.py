"""``pe-iqa score``: a thin layer over :func:`pe_iqa.scoring.score_pairs` (inputs, table, summary, exit status)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EXIT_FAILED, UsageError
from .output import format_value, info, parse_device, plural, print_table

if TYPE_CHECKING:
    import torch

__all__ = ["SAMPLE_DIR", "add_parser", "default_workers", "run"]

#: The bundled sample scored by ``pe-iqa score --sample`` (``distorted/`` and ``reference/`` PNGs).
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample"
_LISTED_FAILURES = 10

EXAMPLES = """examples:
  pe-iqa score --sample pe_alex lpips ssim            the bundled sample, three metrics
  pe-iqa score -t distorted/ -r reference/ -v         folders paired by sorted file name
  pe-iqa score -t out.png -r ref.png pe_alex pe_vgg psnr --csv scores.csv
  pe-iqa score --pairs pairs.csv pe_alex lpips --csv scores.csv --workers 4 --resume
  pe-iqa score --pairs meta_info_LIVEIQADataset.csv --root datasets/LIVE --csv live.csv
  torchrun --nproc-per-node 4 -m pe_iqa score --pairs pairs.csv --device cuda --csv scores.csv
  pe-iqa score -t distorted/ -r reference/ --maps maps/   a heat map of where each pair differs

inputs: -t/-r take files or folders (paired by sorted name; a warning names differing names);
--pairs takes a CSV with distorted,reference columns (paths relative to the CSV; other columns are
copied to the output) or a pyiqa meta-info file (ref_name,dist_name,mos; paths relative to --root).

metrics: pe-iqa presets ({presets}) use the pe-iqa core; any other name
(lpips, dists, ssim, psnr, ...) is computed by pyiqa: pip install 'pe-iqa[pyiqa]'.

exit status: 0 every pair scored; 1 some pair failed (its error is in the CSV's error column) or the
run failed; 2 the command line is wrong. Under torchrun, failed pairs leave the status 0 (torchrun
reports any other status as a crash); the summary says how many failed."""


def default_workers(device: torch.device | str = "cpu", n_pairs: int | None = None) -> int:
    """Decoding processes for ``--workers auto``.

    Decoding runs beside the network only on cores the network does not use: on CPU the cores of this process's
    share (torchrun splits the machine) minus torch's threads; on a GPU all but one core of the share. At most 4
    (a worker decodes ≈100 LIVE-size pairs/s), and none for fewer than 64 pairs (starting one costs ≈0.5 s).
    """
    import torch

    from ..env_options import env_number

    if n_pairs is not None and n_pairs < 64:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cores // int(env_number("LOCAL_WORLD_SIZE") or 1))
    busy = torch.get_num_threads() if torch.device(device).type == "cpu" else 1
    return max(0, min(4, share - busy))


def _count(text: str, name: str, low: int) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be an integer or 'auto', got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {value}")
    return value


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"--reference-cache-mb must be a number of megabytes >= 0, got {text!r}")
    return value


def add_parser(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    from .choices import ALPHA_POLICIES, PRESET_NAMES

    parser = commands.add_parser(
        "score", help="score distorted images against references", parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score distorted images against their references (full-reference metrics).",
        epilog=EXAMPLES.format(presets=", ".join(PRESET_NAMES)),
    )
    parser.add_argument("metrics", nargs="*", metavar="METRIC", help="metrics to compute (default: pe_alex)")
    source = parser.add_argument_group("inputs (one of)")
    source.add_argument("-t", "--target", metavar="DIST", help="distorted image file or folder")
    source.add_argument("-r", "--ref", metavar="REF", help="reference image file or folder (folders are paired "
                                                           "by sorted file name)")
    source.add_argument("--pairs", metavar="FILE.csv", help="pairs manifest or pyiqa meta-info file")
    source.add_argument("--root", metavar="DIR", help="folder the --pairs paths start from (default: the "
                                                      "manifest's folder)")
    source.add_argument("--sample", action="store_true", help="score the bundled sample (implies -v)")
    output = parser.add_argument_group("output")
    output.add_argument("-v", "--verbose", action="store_true", help="print every pair's scores, not only the means")
    output.add_argument("--csv", metavar="FILE", help="write one row per pair (streamed while scoring, final "
                                                      "file in input order)")
    output.add_argument("--resume", action="store_true", help="continue an interrupted run of the same --csv")
    output.add_argument("--maps", metavar="DIR", help="write a distance-map overlay per pair into DIR (PNG named "
                                                      "after the pair; existing maps are kept: resumable)")
    output.add_argument("--maps-metric", metavar="PRESET", help="the PE preset drawn by --maps (default: the first "
                                                                 "PE preset among the metrics)")
    output.add_argument("--no-progress", action="store_true", help="no progress bar")
    run_options = parser.add_argument_group("how")
    run_options.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu; "
                                                            "under torchrun cuda means cuda:LOCAL_RANK)")
    run_options.add_argument("--workers", type=lambda t: _count(t, "--workers", 0), default=None, metavar="N",
                             help="processes decoding images (default: auto = cores the network leaves free, "
                                  "at most 4)")
    run_options.add_argument("--batch-size", type=lambda t: _count(t, "--batch-size", 1), default=None,
                             metavar="N", help="pairs per batch (default: auto = 1 on CPU, 16 on GPUs)")
    run_options.add_argument("--no-reuse", action="store_true", help="encode every reference again (slower; "
                                                                     "same scores)")
    run_options.add_argument("--reference-cache-mb", type=_megabytes, default=1024.0, metavar="MB",
                             help="memory for cached reference features (default: %(default)g)")
    run_options.add_argument("--alpha", choices=ALPHA_POLICIES, default="error",
                             help="images with transparent pixels: error (default), drop the alpha channel (as "
                                  "pyiqa), or composite over white/black")
    parser.set_defaults(func=run)


def _pairs(args: argparse.Namespace):
    from ..scoring import pairs_from_paths
    from ..scoring.pairs import open_pairs_manifest

    given = [name for name, value in (("--sample", args.sample), ("--pairs", args.pairs),
                                      ("-t/-r", args.target or args.ref)) if value]
    if len(given) > 1:
        raise UsageError(f"give one input: {' or '.join(given)}, not both")
    if args.root and not args.pairs:
        raise UsageError("--root goes with --pairs")
    if args.sample:
        return pairs_from_paths(SAMPLE_DIR / "distorted", SAMPLE_DIR / "reference"), []
    if args.pairs:
        return open_pairs_manifest(args.pairs, root=args.root), [Path(args.pairs)]  # a stream: any number of rows
    if not args.target or not args.ref:
        raise UsageError("give the distorted images with -t DIST and the references with -r REF (files or "
                         "folders), a pairs manifest with --pairs FILE.csv, or --sample for the bundled sample")
    return pairs_from_paths(args.target, args.ref), []


def _display_names(pairs) -> tuple[list[str], list[str]]:
    """How the ``-v`` table names the distorted and reference files, both columns the same way: base names when
    no base name stands for two different files (a reference shared by many pairs is one file), else the paths."""
    def unambiguous(paths: list[Path]) -> bool:
        return len({p.name for p in paths}) == len(set(paths))

    distorted, reference = [p.distorted for p in pairs], [p.reference for p in pairs]
    if unambiguous(distorted) and unambiguous(reference):
        return [p.name for p in distorted], [p.name for p in reference]
    return [str(p) for p in distorted], [str(p) for p in reference]


def _print_results(result, verbose: bool, sample: bool) -> None:
    names = result.metric_names
    # a streamed manifest (no rows kept) is shown with both key columns
    dist_names, ref_names = _display_names(result.pairs) if result.pairs is not None else ([], [None])
    same = dist_names == ref_names
    keys_header = ["image"] if same else ["distorted", "reference"]
    flag = verbose and bool(result.n_failed)  # a last column marks failed pairs
    rows = []
    if verbose:
        for index in range(len(result.pairs)):
            keys = [dist_names[index]] if same else [dist_names[index], ref_names[index]]
            values = [format_value(v) for v in result.table.row_values(index)]
            rows.append([*keys, *values, *(["failed" if index in result.table.errors else ""] if flag else [])])
    total, ok = result.n_pairs, result.n_ok
    label = f"mean ({plural(total, 'pair')})" if ok == total else f"mean ({ok} of {plural(total, 'pair')})"
    means = result.means()
    rows.append([label, *([] if same else [""]), *(format_value(means[name]) for name in names),
                 *([""] if flag else [])])
    if sample:
        print(f"bundled sample {SAMPLE_DIR}: one reference, each distortion mild (_1) and strong (_2)")
    print_table([*keys_header, *names, *([""] if flag else [])], rows)
    lower = [name for name in names if result.metric_directions[name]]
    higher = [name for name in names if not result.metric_directions[name]]
    print("; ".join(part for part in (
        f"lower = better: {', '.join(lower)}" if lower else "",
        f"higher = better: {', '.join(higher)}" if higher else "",
    ) if part))


def _summary_line(result) -> str:
    """One line saying how many pairs scored and failed, how fast and where; counts and verbs agree.

    ``scored 6 pairs in 1.20 s, 5.0 pairs/s on cpu``; ``scored 2 of 3 pairs in …; 1 pair failed and is left out
    of the means``; ``no pair scored: the only pair failed (0.02 s on cpu)``. The speed counts the pairs that
    scored in this run (not failures, not pairs taken from an earlier run).
    """
    total, ok, failed = result.n_pairs, result.n_ok, result.n_failed
    new_ok = max(0, ok - result.resumed)
    processes = f" by {result.world_size} processes" if result.world_size > 1 else ""
    where = f" (see the error column of {result.csv_path})" if result.csv_path else ""
    if total and ok == 0:
        who = "the only pair" if total == 1 else f"all {total} pairs"
        return f"no pair scored: {who} failed{where} ({result.score_s:.2f} s on {result.device}{processes})"
    speed = f", {new_ok / result.score_s:.1f} pairs/s" if new_ok and result.score_s > 0 else ""
    resumed = f" ({result.resumed} taken from the earlier run)" if result.resumed else ""
    count = f"{ok} of {plural(total, 'pair')}" if failed else plural(total, "pair")
    line = f"scored {count}{resumed} in {result.score_s:.2f} s{speed} on {result.device}{processes}"
    if failed:
        verb = "failed and is" if failed == 1 else "failed and are"
        line += f"; {plural(failed, 'pair')} {verb} left out of the means{where}"
    return line


def _summary(result, listed_live: bool) -> None:
    failures = result.failures
    info(_summary_line(result))
    if failures:
        if not listed_live:
            for index, pair, message in failures[:_LISTED_FAILURES]:
                info(f"  pair {index} ({pair.distorted} | {pair.reference}): {message}")
            if result.n_failed > _LISTED_FAILURES:
                info(f"  ... and {result.n_failed - _LISTED_FAILURES} more")
    if result.csv_path is not None:
        info(f"wrote {result.csv_path}")


def _maps_metric(args: argparse.Namespace, names: list[str]) -> str | None:
    """The preset drawn by ``--maps`` (checked before any scoring)."""
    from ..presets import PRESETS

    if args.maps is not None and not args.maps.strip():
        raise UsageError("--maps is empty; give the folder to write the maps into")
    if not args.maps:
        if args.maps_metric:
            raise UsageError("--maps-metric goes with --maps DIR")
        return None
    chosen = args.maps_metric or next((name for name in names if name in PRESETS), None)
    if chosen not in PRESETS:
        raise UsageError(f"--maps draws a PE preset ({', '.join(PRESETS)}); give one among the metrics or "
                         f"--maps-metric, got {chosen!r}")
    return chosen


def _write_maps(args: argparse.Namespace, pairs, result, metric_name: str, device: torch.device) -> int:
    """Draw the maps of the pairs that scored; returns how many failed."""
    from ..distance import PEDistance
    from ..scoring.maps import write_distance_maps

    failed = {index for index, _, _ in result.failures}
    report = write_distance_maps(pairs, PEDistance(metric_name, device=device), args.maps, skip=failed,
                                 alpha=args.alpha)
    info(f"maps ({metric_name}): wrote {plural(report.written, 'map')} to {args.maps}"
         + (f" ({report.redrawn} redrawn: made by another metric or from a changed image)" if report.redrawn else "")
         + (f", kept {report.skipped} up to date or not scored" if report.skipped else ""))
    for index, message in report.failures[:_LISTED_FAILURES]:
        info(f"  map of pair {index} failed: {message}")
    return len(report.failures)


def _failures_before_loading(args: argparse.Namespace, pairs, names: list[str], device) -> int | None:
    """Report the pairs whose headers show they cannot be scored before any metric loads (about 8 s earlier).

    When no pair can be scored, only PE presets are asked for and nothing is to be written, the run ends here
    with the report it would have ended with (exit status 1); otherwise the failures are named now, and the
    engine reports them again in the table, summary and CSV as usual. Returns the exit status, or ``None`` to go on.
    """
    from ..presets import PRESETS
    from ..scoring.engine import ScoringResult
    from ..scoring.output import ScoreTable
    from ..scoring.resume import RunSummary
    from .precheck import header_failures

    failures = header_failures(pairs, args.alpha)
    if not failures:
        return None
    first = min(failures)
    if len(failures) < len(pairs) or args.csv or args.maps or not set(names) <= set(PRESETS):
        info(f"{plural(len(failures), 'pair')} of {len(pairs)} cannot be scored (first: pair {first} "
             f"({pairs[first].distorted} | {pairs[first].reference}): {failures[first]}); loading the metrics")
        return None
    table, summary = ScoreTable(len(pairs), names), RunSummary(names)
    for index, pair in enumerate(pairs):
        message = failures[index]
        table.record(index, [None] * len(names), message)
        summary.add(index, str(pair.distorted), str(pair.reference), [None] * len(names), message)
    result = ScoringResult(pairs=list(pairs), metric_names=names, metric_directions=dict.fromkeys(names, True),
                           summary=summary, table=table, device=str(device))
    _print_results(result, args.verbose, sample=False)
    _summary(result, listed_live=False)
    return EXIT_FAILED


def run(args: argparse.Namespace) -> int:
    """Score, print the means table (stdout) and a summary (stderr); exit status 1 if any pair failed."""
    from ..presets import DEFAULT_METRIC
    from ..scoring import check_metric_names, score_pairs
    from ..scoring.distributed import launch_rank

    names = list(dict.fromkeys(args.metrics or [DEFAULT_METRIC]))
    device = parse_device(args.device)  # the environment was checked before (program.check_environment)
    pairs, protect = _pairs(args)
    check_metric_names(names)
    maps_metric = _maps_metric(args, names)
    if maps_metric:
        from ..plotting import require_matplotlib

        require_matplotlib()  # before scoring, not once per map
    if args.maps:
        from ..scoring.maps import check_maps_folder

        check_maps_folder(args.maps, args.csv)  # before any scoring: a folder under a file, /proc, the --csv
    rank, world_size = launch_rank()
    main_process = rank == 0
    workers = default_workers(device, len(pairs)) if args.workers is None else args.workers
    batch_size = args.batch_size or (1 if device.type == "cpu" else 16)
    progress = not args.no_progress
    if world_size == 1 and not args.pairs and not args.sample:  # files named on the command line: check them now
        early = _failures_before_loading(args, pairs, names, device)
        if early is not None:
            return early
    result = score_pairs(
        pairs, names, device=device, workers=workers, batch_size=batch_size, reuse_references=not args.no_reuse,
        csv_path=args.csv, resume=args.resume, progress=progress, alpha=args.alpha,
        reference_cache_mb=args.reference_cache_mb, protect=protect,
        collect=bool(args.verbose or args.sample or maps_metric),  # else only counts and means: any number of rows
    )
    map_failures = _write_maps(args, result.pairs, result, maps_metric, device) if maps_metric else 0
    failed = bool(result.n_failed or map_failures)
    # torchrun reports any non-zero status as a crash (a ChildFailedError banner): failed pairs, reported in the
    # summary and the CSV's error column, leave every process with status 0 there
    status = EXIT_FAILED if failed and world_size == 1 else 0
    if not main_process:
        return status
    info(f"loaded {plural(len(names), 'metric')} in {result.load_s:.2f} s")
    _print_results(result, args.verbose or args.sample, args.sample)
    _summary(result, listed_live=progress)
    if failed and world_size > 1:
        info("exit status 0 under torchrun (it reports any other status as a crash): the failed pairs are listed "
             "above" + (" and in the CSV's error column" if result.csv_path else ""))
    return status
