"""BAPPS benchmark runner: 2AFC score per subset (64×64 patches) and JND mAP, for PE presets and other metrics.

Reads the official layout of the LPIPS repository's ``scripts/download_dataset.sh`` (see
:mod:`benchmarks.datasets.bapps`); missing subsets are reported and skipped. Each metric is scored as LPIPS's
``test_dataset_model.py`` does: ``d0 = d(ref, p0)``, ``d1 = d(ref, p1)``, 2AFC agreement with the human
judgements (:func:`~benchmarks.protocols.two_afc.two_afc_score`), and on the JND pairs the average precision
of retrieving "same" pairs by increasing distance (:func:`~benchmarks.protocols.jnd.jnd_map`). Directions
come from each metric (:class:`~pe_iqa.scoring.metrics.ScoringMetric`), so similarity scores (SSIM, PSNR) are
handled correctly.

Usage::

    python -m benchmarks.run_bapps --root /path/to/PerceptualSimilarity [--metrics pe_alex lpips ...]
        [--out benchmarks/results] [--name bapps] [--batch-size 50]

References:
    R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness of Deep Features
    as a Perceptual Metric". CVPR 2018 (BAPPS, 2AFC and JND protocols).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.command_line import run_or_exit_status
from benchmarks.comparison import BENCHMARK_METRICS, build_available, metric_values
from benchmarks.datasets import bapps
from benchmarks.protocols.jnd import jnd_map
from benchmarks.protocols.two_afc import two_afc_score
from benchmarks.report import ReportPaths, environment_info, markdown_table, write_report
from pe_iqa.scoring.metrics import MetricRegistry, ScoringMetric

__all__ = ["DEFAULT_BAPPS_METRICS", "BappsRun", "main", "run_bapps"]

#: Metrics scored by default (``ms_ssim`` is left out: it needs images larger than the 64×64 patches).
DEFAULT_BAPPS_METRICS: tuple[str, ...] = (
    "pe_alex", "pe_vgg", "pe_alex_f", "lpips", "lpips-vgg", "dists", "ssim", "psnr", "l2",
)


@dataclass
class BappsRun:
    """What :func:`run_bapps` produced.

    Attributes:
        rows: one row per (metric, task, subset) with ``score`` (2AFC score or JND mAP), ``n`` and
            ``sec_per_pair``; plus a ``subset="mean"`` row per metric and task (unweighted mean over subsets).
        indexes: the 2AFC and JND :class:`~benchmarks.datasets.bapps.BappsIndex` found (absent tasks omitted).
        unavailable: metrics that could not be built or failed, with the reason.
        paths: the written report files (``None`` without ``out_dir``).
    """

    rows: list[dict] = field(default_factory=list)
    indexes: dict[str, bapps.BappsIndex] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    paths: ReportPaths | None = None

    def score(self, metric: str, task: str, subset: str) -> float:
        """The score of one metric on one task (``"2afc"``/``"jnd"``) and subset (or ``"mean"``).

        Raises:
            KeyError: if there is no such row.
        """
        for row in self.rows:
            if (row["metric"], row["task"], row["subset"]) == (metric, task, subset):
                return float(row["score"])
        raise KeyError(f"no result for metric={metric!r}, task={task!r}, subset={subset!r}")


def _load_indexes(root: str | Path, twoafc_subsets: Sequence[str] | None,
                  jnd_subsets: Sequence[str] | None) -> tuple[dict[str, bapps.BappsIndex], list[str]]:
    indexes: dict[str, bapps.BappsIndex] = {}
    notes = []
    for task, loader, subsets in (("2afc", bapps.load_bapps_2afc, twoafc_subsets),
                                  ("jnd", bapps.load_bapps_jnd, jnd_subsets)):
        if subsets is not None and len(subsets) == 0:
            continue
        try:
            indexes[task] = loader(root, subsets)
        except FileNotFoundError as error:
            notes.append(f"{task}: {error}")
    if not indexes:
        raise FileNotFoundError("no BAPPS data found: " + "; ".join(notes))
    return indexes, notes


def _score_metric(metric: ScoringMetric, indexes: dict[str, bapps.BappsIndex], load_size: int, batch_size: int,
                  device: torch.device, progress: bool) -> list[dict]:
    def distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # LPIPS order d(ref, p) → (distorted, ref)
        return metric_values(metric, y, x)

    rows = []
    for task, index in indexes.items():
        scores = []
        for subset, records in index.records.items():
            dataset = (bapps.TwoAFCDataset if task == "2afc" else bapps.JNDDataset)(records, load_size)
            loader = bapps.make_bapps_loader(dataset, batch_size=batch_size)
            loader = tqdm(loader, desc=f"{metric.name} {task}/{subset}", disable=not progress, leave=False)
            start = time.perf_counter()
            if task == "2afc":
                d0, d1, judge = bapps.collect_2afc_distances(loader, distance, device)
                score, n_pairs = two_afc_score(d0, d1, judge, lower_is_better=metric.lower_better), 2 * len(d0)
            else:
                d, same = bapps.collect_jnd_distances(loader, distance, device)
                score, n_pairs = jnd_map(d, same, lower_is_better=metric.lower_better), len(d)
            seconds = time.perf_counter() - start
            scores.append(score)
            rows.append({"metric": metric.name, "source": metric.source, "lower_better": metric.lower_better,
                         "task": task, "subset": subset, "n": len(records), "score": score,
                         "sec_per_pair": seconds / n_pairs})
        rows.append({"metric": metric.name, "source": metric.source, "lower_better": metric.lower_better,
                     "task": task, "subset": "mean", "n": sum(len(r) for r in index.records.values()),
                     "score": float(np.mean(scores)), "sec_per_pair": float("nan")})
    return rows


def run_bapps(
    root: str | Path,
    metrics: Sequence[str | ScoringMetric] = DEFAULT_BAPPS_METRICS,
    *,
    registry: MetricRegistry = BENCHMARK_METRICS,
    twoafc_subsets: Sequence[str] | None = None,
    jnd_subsets: Sequence[str] | None = None,
    load_size: int = 64,
    batch_size: int = 50,
    device: torch.device | str = "cpu",
    out_dir: str | Path | None = "benchmarks/results",
    name: str = "bapps",
    progress: bool = True,
    verbose: bool = True,
) -> BappsRun:
    """Score metrics on BAPPS 2AFC (per subset) and JND (mAP) and write the report.

    Args:
        root: folder holding ``dataset/2afc`` and/or ``dataset/jnd`` (or the ``dataset`` folder).
        metrics: names of ``registry`` or :class:`~pe_iqa.scoring.metrics.ScoringMetric` objects.
        registry: the metric registry names are built by (default: the benchmarks', see
            :mod:`benchmarks.comparison`).
        twoafc_subsets: 2AFC validation subsets (default all six); ``[]`` skips 2AFC.
        jnd_subsets: JND subsets (default both); ``[]`` skips JND.
        load_size: patch side after loading (64, as LPIPS).
        batch_size: patches per batch.
        device: where to compute.
        out_dir: report folder (``None``: write nothing).
        name: report file stem.
        progress: show progress bars.
        verbose: print the summary table.

    Returns:
        A :class:`BappsRun`.

    Raises:
        FileNotFoundError: if neither 2AFC nor JND data is found under ``root``.
        ValueError: on an unknown subset or metric name.
    """
    started = time.perf_counter()
    device = torch.device(device)
    indexes, notes = _load_indexes(root, twoafc_subsets, jnd_subsets)
    if verbose:
        for index in indexes.values():
            print(index.summary(), flush=True)
    built, unavailable = build_available(metrics, device, registry)
    run = BappsRun(indexes=indexes, unavailable=unavailable)
    for metric in tqdm(built, desc="metrics", disable=not progress):
        try:
            run.rows += _score_metric(metric, indexes, load_size, batch_size, device, progress)
        except Exception as error:  # one failing metric (e.g. a too-small input) must not stop the others
            run.unavailable[metric.name] = f"failed: {type(error).__name__}: {error}"
    sections = _sections(run, notes)
    if verbose:
        print("\n\n".join(sections), flush=True)
    if out_dir is not None:
        env = environment_info(device, {f"BAPPS {t}": i.summary() for t, i in indexes.items()},
                               {"patch size": f"{load_size}×{load_size}",
                                "run time (s)": f"{time.perf_counter() - started:.0f}"})
        run.paths = write_report(name, out_dir, run.rows, "BAPPS benchmark: 2AFC and JND", sections, env)
    return run


def _sections(run: BappsRun, notes: Sequence[str]) -> list[str]:
    out = ["2AFC: fraction of human judgements the metric agrees with (LPIPS `score_2afc_dataset`); JND: mAP "
           "of retrieving pairs judged 'same' by increasing distance (LPIPS `score_jnd_dataset`). "
           "`mean` = unweighted mean over the subsets found. `sec_per_pair`: wall time per distance."]
    metrics = list(dict.fromkeys(row["metric"] for row in run.rows))
    for task, title in (("2afc", "2AFC score"), ("jnd", "JND mAP")):
        if task not in run.indexes:
            continue
        subsets = [*run.indexes[task].records, "mean"]
        table = []
        for metric in metrics:
            cells = {r["subset"]: r["score"] for r in run.rows if r["metric"] == metric and r["task"] == task}
            times = [r["sec_per_pair"] for r in run.rows if r["metric"] == metric and r["task"] == task
                     and r["subset"] != "mean"]
            if cells:
                table.append({"metric": metric, **cells, "sec_per_pair": float(np.mean(times))})
        out.append(f"## {title}\n\n" + markdown_table(table, ["metric", *subsets, "sec_per_pair"]))
        missing = run.indexes[task].missing_subsets
        if missing:
            out.append(f"{title}: subsets not found (skipped): {', '.join(missing)}")
    if notes:
        out.append("Not found: " + "; ".join(notes))
    if run.unavailable:
        out.append("Not evaluated: " + "; ".join(f"`{k}` ({v})" for k, v in run.unavailable.items()))
    return out


def main(argv: Sequence[str] | None = None, registry: MetricRegistry = BENCHMARK_METRICS) -> int:
    """Command-line entry point (see the module docstring); ``registry`` resolves ``--metrics``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_bapps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="PerceptualSimilarity checkout (holding dataset/) or dataset/")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_BAPPS_METRICS))
    parser.add_argument("--twoafc-subsets", nargs="*", default=None)
    parser.add_argument("--jnd-subsets", nargs="*", default=None)
    parser.add_argument("--load-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="bapps")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    return run_or_exit_status(lambda: run_bapps(
        args.root, args.metrics, registry=registry, twoafc_subsets=args.twoafc_subsets, jnd_subsets=args.jnd_subsets,
        load_size=args.load_size, batch_size=args.batch_size, device=args.device, out_dir=args.out, name=args.name,
        progress=args.progress))


if __name__ == "__main__":
    sys.exit(main())
