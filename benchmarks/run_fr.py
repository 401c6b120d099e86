"""Full-reference benchmark on the datasets IQA people already have, in pyiqa's layouts, with one command.

For each dataset (pyiqa's keys: ``live``, ``livem``, ``csiq``, ``tid2008``, ``tid2013``, ``kadid10k``,
``pipal``, ``pieapp``) the labelled pairs are indexed by :func:`benchmarks.datasets.fr_sources.load_fr_dataset`
(paths and MOS/DMOS direction from the installed pyiqa's ``default_dataset_configs.yml``; LIVE's official
release is read too), scored by the scoring engine of ``pe-iqa score`` (:func:`pe_iqa.scoring.score_pairs`:
manifests, workers, reference reuse, resumable per-image CSV), and correlated with the human scores.

Outputs (``--out``, default ``benchmarks/results``; with ``--limit``, a smoke run, a new temporary folder unless
``--out`` names one, as the other quick modes; stem ``--name``, default ``fr``):

* ``<name>.md``: environment, one section per dataset with PLCC/SRCC/KRCC, the SRCC's 95 % bootstrap interval,
  the PLCC after the 5-parameter logistic, and **pyiqa's published PLCC/SRCC/KRCC** for the same metric beside
  ours (from ``benchmarks/results/pyiqa_fr_published.csv``, cited);
* ``<name>.csv``: one row per (dataset, metric) with every number;
* ``<name>_pyiqa_table.csv``: our numbers in the shape of pyiqa's ``tests/FR_benchmark_results.csv``;
* ``<name>_scores_<dataset>.csv``: the engine's per-image scores (``--resume`` continues an interrupted run);
* ``<file>.provenance.json`` next to each CSV: every metric's :class:`~pe_iqa.provenance.Provenance` record (a
  metric scored under different configurations for two datasets of one table is refused).

A dataset that is not where its layout puts it is skipped with one line naming what was expected where (exit
status 2 once the others are written); one that cannot be scored (a malformed meta-info file, an unreadable
folder) is reported the same way, exit status 1 once the others are written. With ``--reference-table``, a
disagreement beyond tolerance with the committed table is exit status 1 too (the tables are still written).
Usage::

    python -m benchmarks.run_fr --dataset tid2013 csiq live --root ./datasets \\
        --metrics pe_alex pe_vgg lpips dists ms_ssim [--device cuda] [--workers 4] [--limit 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.comparison import BENCHMARK_METRICS
from benchmarks.datasets.fr_sources import FRLayout, load_fr_dataset
from benchmarks.datasets.pyiqa_layouts import DatasetMissingError, FRRecord
from benchmarks.fr_table import (
    DEFAULT_PUBLISHED,
    comparison_sections,
    fr_row,
    load_published,
    published_source,
    pyiqa_shaped_rows,
    reference_table_check,
)
from benchmarks.report import ReportPaths, environment_info, write_csv, write_report
from pe_iqa.cli.errors import exit_status
from pe_iqa.env_options import check_environment
from pe_iqa.provenance import (
    Provenance,
    combine_records,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from pe_iqa.safe_files import DestinationError, OutputPlan, check_file_stem
from pe_iqa.scoring.metrics import MetricRegistry, ScoringMetric

__all__ = [
    "DEFAULT_METRICS",
    "FRRun",
    "MetricScores",
    "ScoringOptions",
    "check_run_name",
    "main",
    "run_fr",
    "score_with_engine",
]

DEFAULT_METRICS = ("pe_alex", "pe_vgg", "lpips", "dists", "ms_ssim", "ssim", "psnr")


@dataclass(frozen=True)
class ScoringOptions:
    """How the engine scores the pairs (passed through to :func:`pe_iqa.scoring.score_pairs`)."""

    device: str = "cpu"
    workers: int = 0
    batch_size: int = 1
    csv_path: Path | None = None
    resume: bool = False
    progress: bool = True


@dataclass
class MetricScores:
    """Scores of N pairs.

    Attributes:
        values: ``{metric: (N,) float64}``, NaN where a pair failed.
        lower_better: ``{metric: True for a distance}``.
        failures: one line per failed pair.
    """

    values: dict[str, np.ndarray]
    lower_better: dict[str, bool]
    failures: list[str] = field(default_factory=list)


def _run_errors() -> tuple[type[BaseException], ...]:
    from pe_iqa.safe_files import DestinationError
    from pe_iqa.scoring import JournalError, MetricUnavailableError

    return (MetricUnavailableError, DestinationError, JournalError)


PairScorer = Callable[[Sequence[FRRecord], Sequence[str], ScoringOptions], MetricScores]


def _build_metrics(names: Sequence[str], device: str, registry: MetricRegistry) -> list[ScoringMetric]:
    """Every metric built once, by the registry (wrong for every dataset if it fails: the run stops).

    Raises:
        MetricUnavailableError: a name the registry does not know, or a metric that cannot be built here
            (weights not available offline, …).
    """
    from pe_iqa.scoring import MetricUnavailableError

    registry.check(names)
    built = []
    for name in dict.fromkeys(names):
        try:
            built.append(registry.build(name, device))
        except Exception as error:
            raise MetricUnavailableError(
                f"metric {name!r} cannot be built here: {type(error).__name__}: {error}") from error
    return built


def score_with_engine(records: Sequence[FRRecord], metrics: Sequence[str], options: ScoringOptions, *,
                      registry: MetricRegistry = BENCHMARK_METRICS, built: dict | None = None) -> MetricScores:
    """Scores pairs with the engine of ``pe-iqa score``: the runner's only call into it.

    Args:
        records: the pairs (distorted, reference), each carried with its dataset, reference group and label.
        metrics: names of ``registry`` (pe-iqa presets, pyiqa's ``lpips``, ``ms_ssim`` …, the baselines ``l2``,
            ``tm_ssim``, ``tm_psnr``).
        options: device, workers, batch size, per-image CSV and resume.
        registry: the metric registry (default: the benchmarks', :data:`benchmarks.comparison.BENCHMARK_METRICS`).
        built: optional dict kept between calls (one per run): the metrics are built on the first call and
            reused for the next datasets instead of being loaded again.

    Returns:
        The :class:`MetricScores`, in the order of ``records``.

    Raises:
        MetricUnavailableError: a metric the registry cannot build; ValueError: an unwritable CSV path (from
            the engine).
    """
    from pe_iqa.scoring import ScorePair, score_pairs

    pairs = [ScorePair(distorted=r.dist_path, reference=r.ref_path,
                       extra={"dataset": r.dataset, "ref_name": r.ref_name, "label": repr(r.label)}) for r in records]
    key = (tuple(metrics), options.device)
    engine_metrics = built.get(key) if built is not None else None
    if engine_metrics is None:
        engine_metrics = _build_metrics(metrics, options.device, registry)
        if built is not None:
            built[key] = engine_metrics
    result = score_pairs(pairs, engine_metrics, device=options.device,
                         workers=options.workers, batch_size=options.batch_size, reuse_references=True,
                         csv_path=options.csv_path, resume=options.resume, progress=options.progress)
    values = {m: np.asarray(result.scores(m), dtype=np.float64) for m in result.metric_names}
    failures = [f"{pair.distorted}: {message}" for _, pair, message in result.failures]
    return MetricScores(values, {m: bool(v) for m, v in result.metric_directions.items()}, failures)


@dataclass
class FRRun:
    """What one run produced.

    Attributes:
        rows: one row per (dataset, metric) (see :data:`benchmarks.fr_table.FR_COLUMNS`).
        summaries: ``{dataset: index summary line}``.
        missing: ``{dataset: one-line reason}`` for datasets not found.
        errors: ``{dataset: one-line reason}`` for datasets that could not be scored (e.g. a malformed meta-info
            file); the other datasets' rows are kept.
        failures: per dataset, the engine's failed pairs.
        check: the comparison with a committed table (``--reference-table``), if asked.
        paths: written report files; ``seconds`` the wall time.
    """

    rows: list[dict] = field(default_factory=list)
    summaries: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    check: tuple[str, bool] | None = None
    paths: ReportPaths | None = None
    seconds: float = 0.0


#: Name parts that only pe-iqa's own file names use: a run's stem never contains them, so no run's table is
#: another run's per-image file (``--name fr_scores_live`` wrote ``fr_scores_live.csv`` over run ``fr``'s scores).
RESERVED_NAME_PARTS = ("_scores_", "_pyiqa_table")


def check_run_name(name: object) -> str:
    """``name`` if it can be a run's file stem: a plain stem (:func:`~pe_iqa.safe_files.check_file_stem`) holding
    none of :data:`RESERVED_NAME_PARTS`, so its files never collide with another run's in the same ``--out``.

    Raises:
        DestinationError: otherwise.
    """
    stem = check_file_stem(name, "--name")
    reserved = [part for part in RESERVED_NAME_PARTS if part in stem]
    if reserved:
        raise DestinationError(f"--name {stem!r} holds {reserved[0]!r}, which names another run's files "
                               f"(<name>_scores_<dataset>.csv, <name>_pyiqa_table.csv); choose another name")
    return stem


def _plan_outputs(out: Path, name: str, datasets: Sequence[str]) -> None:
    """Check every table and score file of the run inside ``out`` before any scoring (one writer's policy)."""
    plan = OutputPlan(within=out)
    plan.add(out / f"{name}.md", "report", "markdown")
    for table in (f"{name}.csv", f"{name}_pyiqa_table.csv", *(f"{name}_scores_{d}.csv" for d in datasets)):
        plan.add(out / table, "table", "csv")
    plan.ready()


def run_fr(
    datasets: Sequence[str],
    root: str | os.PathLike[str],
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    name: str = "fr",
    layout: FRLayout = "auto",
    scorer: PairScorer | None = None,
    registry: MetricRegistry = BENCHMARK_METRICS,
    options: ScoringOptions = ScoringOptions(),
    n_boot: int = 1000,
    limit: int | None = None,
    published_path: str | os.PathLike[str] = DEFAULT_PUBLISHED,
    reference_table: str | os.PathLike[str] | None = None,
    command: str | None = None,
    verbose: bool = True,
) -> FRRun:
    """Scores every dataset with every metric and writes the tables (see the module docstring).

    Args:
        datasets: pyiqa dataset keys.
        root: pyiqa's ``./datasets`` folder (or LIVE's official root).
        metrics: metric names understood by the scorer (the default scorer: names of ``registry``).
        out_dir: folder of the outputs (``None``: write nothing).
        name: output file stem.
        layout: ``"auto"``, ``"pyiqa"`` or ``"official"`` (LIVE).
        scorer: the scoring function (default: :func:`score_with_engine`, the engine of ``pe-iqa score``).
        registry: the metric registry of the default scorer (default: the benchmarks', with the baselines).
        options: scoring options; ``csv_path`` is set per dataset when ``out_dir`` is given.
        n_boot: bootstrap resamples of the SRCC intervals.
        limit: score only the first ``limit`` pairs of each dataset (smoke runs).
        published_path: pyiqa's published figures.
        reference_table: a committed ``metric,…,srocc,krcc,plcc,plcc_logistic5`` table to compare the first
            dataset's rows with.
        command: the command line recorded in the report (default: this process's arguments).
        verbose: print summaries and tables.

    Returns:
        An :class:`FRRun`.

    Raises:
        ValueError: if no dataset or metric is given, or ``limit`` < 1.
    """
    if not datasets or not metrics:
        raise ValueError("give at least one dataset and one metric")
    check_run_name(name)  # before anything is written: --name ../../escaped wrote outside --out
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    scorer = partial(score_with_engine, registry=registry, built={}) if scorer is None else scorer
    run_errors = _run_errors()
    start = time.perf_counter()
    run = FRRun()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _plan_outputs(out, name, datasets)
    for dataset in dict.fromkeys(datasets):
        try:
            index = load_fr_dataset(dataset, root, layout)
            records = list(index.records[:limit] if limit else index.records)
            summary = index.summary() + (f"; first {len(records)} scored (--limit)" if limit else "")
            if verbose:
                print(summary, flush=True)
            csv_path = out / f"{name}_scores_{dataset}.csv" if out is not None else options.csv_path
            scores = scorer(records, metrics, replace(options, csv_path=csv_path))
            failures, rows = list(scores.failures), []
            labels = np.array([r.label for r in records])
            for metric in metrics:
                if metric not in scores.values:
                    failures.append(f"{metric}: not scored")
                    continue
                rows.append(fr_row(dataset, metric, scores.values[metric], labels,
                                   lower_better_score=scores.lower_better[metric],
                                   lower_better_label=index.spec.lower_better, n_boot=n_boot))
        except DatasetMissingError as error:
            run.missing[dataset] = str(error)
            print(f"skipped: {error}", file=sys.stderr, flush=True)
            continue
        except run_errors:  # wrong for every dataset (a metric, the output folder): the run stops
            raise
        except Exception as error:  # this dataset only: the others are still scored and reported
            run.errors[dataset] = f"{dataset}: {type(error).__name__}: {error}"
            print(f"failed: {run.errors[dataset]}", file=sys.stderr, flush=True)
            continue
        run.summaries[dataset], run.failures[dataset] = summary, failures
        run.rows.extend(rows)
    published = load_published(published_path)
    sections = _sections(run, published, published_path)
    if reference_table is not None and run.rows:
        run.check = reference_table_check(run.rows, reference_table, str(run.rows[0]["dataset"]))
        sections.append("## Check against the committed table\n\n" + run.check[0])
    run.seconds = time.perf_counter() - start
    if verbose:
        print("\n\n".join(sections), flush=True)
    if out is not None and run.rows:
        env = environment_info(options.device, run.summaries, {
            "run time (s)": f"{run.seconds:.0f}", "bootstrap resamples": n_boot,
            "command": command or "python -m benchmarks.run_fr " + " ".join(sys.argv[1:])})
        records = _table_provenance(out, name, list(run.summaries))  # before any table is written: may refuse
        run.paths = write_report(name, out, run.rows, "Full-reference benchmark (pyiqa's table shape)", sections, env)
        write_csv(pyiqa_shaped_rows(run.rows, list(run.summaries)), out / f"{name}_pyiqa_table.csv")
        if records:
            for table in (run.paths.csv, out / f"{name}_pyiqa_table.csv"):
                write_sidecar(table, records, datasets=" ".join(run.summaries))
        if verbose:
            print(f"wrote {run.paths.markdown}, {run.paths.csv} and {out / f'{name}_pyiqa_table.csv'}", flush=True)
    return run


def _table_provenance(out: Path, name: str, datasets: Sequence[str]) -> dict[str, Provenance]:
    """Each metric's provenance record, from the per-image score files' sidecars; one record per metric.

    A metric whose record is missing for one of the datasets is unknown and left out (the table does not claim it).

    Raises:
        ProvenanceError: a metric was scored under different configurations for two datasets of one table.
    """
    records: dict[str, Provenance] = {}
    for index, dataset in enumerate(datasets):
        scores = out / f"{name}_scores_{dataset}.csv"
        found = read_sidecar(sidecar_path(scores))
        saved = found[0] if found else {}
        if index == 0:
            records = dict(saved)
        for metric in list(records):
            if combine_records(saved.get(metric), records[metric], str(scores),
                               "score the datasets of one table with the same options"):
                del records[metric]
    return records


def _sections(run: FRRun, published, published_path: str | os.PathLike[str]) -> list[str]:
    how = ("## How to read this\n\n"
           "PLCC (raw, as pyiqa publishes it), SRCC and KRCC are oriented: positive = the metric agrees with "
           "humans, whether it is a distance or a similarity and whether the dataset's score is a MOS or a DMOS "
           "(the direction is pyiqa's `lower_better` of the dataset). `SRCC 95% CI`: percentile bootstrap over "
           "the images. `PLCC (5PL)`: after the 5-parameter logistic (Sheikh et al. 2006). pyiqa's figures are "
           "its published ones on the full datasets; a partial copy (see the found/missing counts) is not "
           f"comparable to them cell by cell. Source of pyiqa's figures: {published_source(published_path)}")
    sections = [how, *comparison_sections(run.rows, published, run.summaries)]
    failures = {d: f for d, f in run.failures.items() if f}
    if failures:
        sections.append("## Failed pairs\n\n" + "\n".join(
            f"- {d}: {len(f)} failed, e.g. {f[0]}" for d, f in failures.items()))
    if run.missing:
        sections.append("## Not found\n\n" + "\n".join(f"- {line}" for line in run.missing.values()))
    if run.errors:
        sections.append("## Not scored (errors)\n\n" + "\n".join(f"- {line}" for line in run.errors.values()))
    return sections


def main(argv: Sequence[str] | None = None, registry: MetricRegistry = BENCHMARK_METRICS) -> int:
    """Command-line entry point: exit 0; 2 if a dataset was not found; 1 on any other error (one line) or when the
    ``--reference-table`` check fails.

    ``registry`` resolves ``--metrics`` (a test passes one with a planted metric added).
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_fr", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dataset", nargs="+", required=True,
                        help="pyiqa dataset keys, e.g. tid2013 csiq live (required)")
    parser.add_argument("--root", default="./datasets",
                        help="pyiqa's ./datasets folder, or LIVE's official release folder (default: %(default)s)")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS), metavar="METRIC",
                        help="pe-iqa presets and any metric `pe-iqa score` knows (pyiqa names) "
                             f"(default: {' '.join(DEFAULT_METRICS)})")
    parser.add_argument("--layout", choices=("auto", "pyiqa", "official"), default="auto",
                        help="dataset layout under --root: pyiqa's, LIVE's official release, or auto = whichever "
                             "is there (default: %(default)s)")
    parser.add_argument("--out", default=None,
                        help="folder for the tables and per-image score CSVs; with --limit (a smoke run) a new "
                             "temporary folder unless given (default: benchmarks/results)")
    parser.add_argument("--name", default="fr", help="output file stem (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=0,
                        help="image-decoding worker processes of the scoring engine (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="pairs per batch; mixed image sizes are split into same-size groups "
                             "(default: %(default)s)")
    parser.add_argument("--boot", type=int, default=1000,
                        help="bootstrap resamples of the SRCC confidence interval (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="score only the first N pairs of each dataset, a smoke run that writes to a new "
                             "temporary folder unless --out is given (default: all)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from the per-image score CSVs (default: off)")
    parser.add_argument("--reference-table", default=None, metavar="CSV",
                        help="committed table to check the first dataset against (default: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (default: shown)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        check_run_name(args.name)
    except ValueError as error:
        parser.error(str(error))  # exit status 2, before anything is written
    options = ScoringOptions(device=args.device, workers=args.workers, batch_size=args.batch_size,
                             resume=args.resume, progress=not args.no_progress)
    command = "python -m benchmarks.run_fr " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        check_environment()
        if args.out is None:  # a smoke run (--limit) never replaces the committed results by default
            args.out = tempfile.mkdtemp(prefix="pe_run_fr_") if args.limit is not None else "benchmarks/results"
        run = run_fr(args.dataset, args.root, args.metrics, out_dir=args.out, name=args.name, layout=args.layout,
                     registry=registry, options=options, n_boot=args.boot, limit=args.limit,
                     reference_table=args.reference_table, command=command)
    except Exception as error:  # a CLI user sees one line, not a traceback
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return exit_status(error)  # the command line's one exit table
    if run.errors:
        return 1
    if run.check is not None and not run.check[1]:
        print(f"error: the scores disagree with {args.reference_table} beyond tolerance (see the report)",
              file=sys.stderr)
        return 1
    return 2 if run.missing else 0


if __name__ == "__main__":
    sys.exit(main())
