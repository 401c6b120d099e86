"""Full-reference benchmark tables in the shape of pyiqa's, with pyiqa's published figures beside ours.

pyiqa publishes one table, ``tests/FR_benchmark_results.csv``: a row per metric and, per dataset, one cell
``"PLCC/SRCC/KRCC"`` (PLCC without any logistic correction). :func:`pyiqa_shaped_rows` writes our numbers in
exactly that shape; :func:`fr_row` adds what pyiqa's table lacks: the PLCC after the 5-parameter logistic
(Sheikh et al. 2006) with its RMSE, and a percentile-bootstrap 95 % interval of the SRCC (resampling images).

Correlations are *oriented*: positive when the metric agrees with humans, whatever the directions of the metric
(distance or similarity) and of the labels (MOS or DMOS). pyiqa's published figures are positive for the same
reason (agreeing metrics), so the two are comparable cell by cell.

pyiqa's figures are read from ``benchmarks/results/pyiqa_fr_published.csv`` (cited data: repository, path and
commit in its header comment lines; see :func:`load_published`).
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.protocols.bootstrap import bootstrap_srocc_ci
from benchmarks.protocols.correlation import LogisticFitWarning, evaluate_scores
from benchmarks.report import markdown_table

__all__ = [
    "DEFAULT_PUBLISHED",
    "PublishedFigures",
    "comparison_sections",
    "fr_row",
    "load_published",
    "published_source",
    "pyiqa_shaped_rows",
    "reference_table_check",
]

DEFAULT_PUBLISHED = Path(__file__).resolve().parent / "results" / "pyiqa_fr_published.csv"
FR_COLUMNS = ("dataset", "metric", "n", "n_failed", "plcc", "srcc", "krcc", "srcc_ci_low", "srcc_ci_high",
              "plcc_logistic5", "rmse_logistic5", "lower_better")


@dataclass(frozen=True)
class PublishedFigures:
    """pyiqa's published figures for one (dataset, metric)."""

    dataset: str
    metric: str
    plcc: float
    srcc: float
    krcc: float


def load_published(path: str | os.PathLike[str] = DEFAULT_PUBLISHED) -> dict[tuple[str, str], PublishedFigures]:
    """pyiqa's published figures, ``{(dataset, metric): PublishedFigures}`` (``#`` lines are the citation).

    Raises:
        FileNotFoundError: if the file is absent.
        ValueError: if a row is malformed.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    out = {}
    for row in csv.DictReader(lines):
        try:
            figures = PublishedFigures(row["dataset"], row["metric"], float(row["plcc"]), float(row["srcc"]),
                                       float(row["krcc"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: malformed row {row}") from error
        out[(figures.dataset, figures.metric)] = figures
    return out


def published_source(path: str | os.PathLike[str] = DEFAULT_PUBLISHED) -> str:
    """The citation of the published figures: the file's ``#`` comment lines joined into one paragraph."""
    with open(path, encoding="utf-8") as handle:
        return " ".join(line.lstrip("#").strip() for line in handle if line.startswith("#"))


def fr_row(
    dataset: str,
    metric: str,
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[float] | np.ndarray,
    *,
    lower_better_score: bool,
    lower_better_label: bool,
    n_boot: int = 1000,
    seed: int = 0,
    maxfev: int = 5000,
) -> dict[str, object]:
    """All numbers of one (dataset, metric) cell: pyiqa's three plus the logistic PLCC and an SRCC interval.

    Pairs whose score is not finite (a failed image) are left out and counted in ``n_failed``.

    Args:
        dataset: dataset key.
        metric: metric name.
        scores: metric values, shape (N,).
        labels: subjective scores, shape (N,).
        lower_better_score: True for a distance.
        lower_better_label: True for a DMOS.
        n_boot: bootstrap resamples of the SRCC interval.
        seed: bootstrap seed.
        maxfev: function-evaluation budget per start of the logistic fits.

    Returns:
        A row with the keys of :data:`FR_COLUMNS` (correlations NaN when fewer than 5 pairs scored).

    Example:
        >>> row = fr_row("toy", "dist", [1, 2, 3, 4, 5, 6], [10, 20, 35, 30, 50, 60],
        ...              lower_better_score=True, lower_better_label=True, n_boot=50)
        >>> round(row["srcc"], 4), row["n"]
        (0.9429, 6)
    """
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"scores and labels must be (N,) arrays of one length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    row: dict[str, object] = {"dataset": dataset, "metric": metric, "n": int(ok.sum()),
                              "n_failed": int((~ok).sum()), "lower_better": lower_better_score}
    if ok.sum() < 5:
        row.update({k: math.nan for k in FR_COLUMNS if k not in row})
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LogisticFitWarning)
        result = evaluate_scores(x[ok], y[ok], higher_is_better_score=not lower_better_score,
                                 higher_is_better_label=not lower_better_label, maxfev=maxfev, logistic4=False)
    interval = bootstrap_srocc_ci(x[ok], y[ok], higher_is_better_score=not lower_better_score,
                                  higher_is_better_label=not lower_better_label, n_boot=n_boot, seed=seed)
    row.update({"plcc": result.plcc, "srcc": result.srocc, "krcc": result.krcc, "srcc_ci_low": interval.low,
                "srcc_ci_high": interval.high, "plcc_logistic5": result.plcc_logistic5,
                "rmse_logistic5": result.rmse_logistic5})
    return row


def _cell(plcc: float, srcc: float, krcc: float) -> str:
    return "/".join("–" if math.isnan(v) else f"{v:.4f}" for v in (plcc, srcc, krcc))


def pyiqa_shaped_rows(rows: Sequence[Mapping[str, object]], datasets: Sequence[str]) -> list[dict[str, str]]:
    """Our rows in the shape of pyiqa's ``FR_benchmark_results.csv``: ``Metric name``, ``<dataset>(PLCC/SRCC/KRCC)``.

    Example:
        >>> pyiqa_shaped_rows([{"dataset": "live", "metric": "psnr", "plcc": .8, "srcc": .81, "krcc": .6}], ["live"])
        [{'Metric name': 'psnr', 'live(PLCC/SRCC/KRCC)': '0.8000/0.8100/0.6000'}]
    """
    metrics = list(dict.fromkeys(str(r["metric"]) for r in rows))
    by_key = {(str(r["dataset"]), str(r["metric"])): r for r in rows}
    out = []
    for metric in metrics:
        entry = {"Metric name": metric}
        for dataset in datasets:
            r = by_key.get((dataset, metric))
            entry[f"{dataset}(PLCC/SRCC/KRCC)"] = (
                _cell(float(r["plcc"]), float(r["srcc"]), float(r["krcc"])) if r is not None else "")
        out.append(entry)
    return out


def comparison_sections(rows: Sequence[Mapping[str, object]], published: Mapping[tuple[str, str], PublishedFigures],
                        summaries: Mapping[str, str]) -> list[str]:
    """One Markdown section per dataset: our numbers, the SRCC interval and pyiqa's published figures beside them.

    Args:
        rows: rows of :func:`fr_row`.
        published: from :func:`load_published`.
        summaries: ``{dataset: one-line index summary}`` (found/missing counts, direction).

    Returns:
        Markdown blocks.
    """
    sections = []
    for dataset in dict.fromkeys(str(r["dataset"]) for r in rows):
        table = []
        for r in (r for r in rows if r["dataset"] == dataset):
            pub = published.get((dataset, str(r["metric"])))
            srcc = float(r["srcc"])
            table.append({
                "metric": r["metric"], "n": r["n"], "PLCC": r["plcc"], "SRCC": r["srcc"],
                "SRCC 95% CI": ("–" if math.isnan(float(r["srcc_ci_low"])) else
                                f"[{float(r['srcc_ci_low']):.3f}, {float(r['srcc_ci_high']):.3f}]"),
                "KRCC": r["krcc"], "PLCC (5PL)": r["plcc_logistic5"],
                "pyiqa PLCC/SRCC/KRCC": _cell(pub.plcc, pub.srcc, pub.krcc) if pub else "–",
                "SRCC − pyiqa": f"{srcc - pub.srcc:+.4f}" if pub and not math.isnan(srcc) else "–",
            })
        failed = sum(int(r["n_failed"]) for r in rows if r["dataset"] == dataset)
        note = f"\n\n{failed} metric values failed and were left out (see the scores CSV)." if failed else ""
        sections.append(f"## {dataset}\n\n{summaries.get(dataset, '')}\n\n" + markdown_table(table) + note)
    return sections


def reference_table_check(rows: Sequence[Mapping[str, object]], reference_csv: str | os.PathLike[str], dataset: str,
                          tolerance: float = 5e-4, scale: float = 1.0) -> tuple[str, bool]:
    """Compares our rows of one dataset with a committed table (``metric,…,srocc,krcc,plcc,plcc_logistic5``).

    Only metrics present in both are compared, on SRCC, KRCC, PLCC and the 5-parameter-logistic PLCC. The image
    scale is part of the key: a committed row with a ``scale`` column other than ``scale`` (e.g. a VGG metric
    measured on ×0.5 images, while ``run_fr`` scores at native size) is a different protocol and is listed as not
    compared, never compared across resolutions.

    Returns:
        ``(markdown text, every compared metric within tolerance and at least one compared)``.
    """
    with open(reference_csv, encoding="utf-8", newline="") as handle:
        reference = {row["metric"]: row for row in csv.DictReader(handle)}
    pairs = {"srcc": "srocc", "krcc": "krcc", "plcc": "plcc", "plcc_logistic5": "plcc_logistic5"}
    table, ok, other_protocol = [], True, []
    for r in (r for r in rows if r["dataset"] == dataset and str(r["metric"]) in reference):
        ref = reference[str(r["metric"])]
        if ref.get("scale") not in (None, "") and not math.isclose(float(ref["scale"]), scale):
            other_protocol.append(f"{r['metric']} (committed at ×{float(ref['scale']):g}, ours at ×{scale:g})")
            continue
        entry: dict[str, object] = {"metric": r["metric"]}
        for ours, theirs in pairs.items():
            diff = float(r[ours]) - float(ref[theirs])
            ok &= abs(diff) <= tolerance
            entry[ours] = f"{float(r[ours]):.4f} ({float(ref[theirs]):.4f}, {diff:+.1e})"
        table.append(entry)
    header = (f"Ours (committed {Path(reference_csv).name}, difference) for the metrics both compute at the same "
              f"image scale; tolerance {tolerance:g}: {'all within' if ok and table else 'NOT all within'}.\n\n")
    if other_protocol:
        header += f"Not compared (different image scale): {', '.join(other_protocol)}.\n\n"
    return header + markdown_table(table), ok and bool(table)
