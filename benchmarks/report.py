"""Benchmark reports: ``<out>/<name>.csv`` (all rows) and ``<out>/<name>.md`` (environment + tables).

The Markdown starts with the environment the numbers were measured in (date, package versions, device, CPU
threads, machine load, git commit, dataset found/missing counts), so a result file is self-describing.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from pe_iqa.safe_files import atomic_write, check_file_stem, write_text_atomic

__all__ = ["ReportPaths", "environment_info", "format_value", "markdown_table", "write_csv", "write_report",
           "write_text_atomic"]

_PACKAGES = ("pe-iqa", "torch", "torchvision", "numpy", "scipy", "pyiqa", "torchmetrics", "lpips", "timm",
             "matplotlib")


@dataclass(frozen=True)
class ReportPaths:
    """Files written by :func:`write_report`."""

    csv: Path
    markdown: Path


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit(folder: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def environment_info(
    device: torch.device | str = "cpu",
    datasets: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """What the numbers were measured on.

    Args:
        device: the device the benchmark ran on.
        datasets: ``{dataset: summary line}``, e.g. ``{"LIVE": index.summary()}`` (found/missing counts).
        extra: further ``{key: value}`` entries (e.g. resolution choices, run time).

    Returns:
        An ordered ``{key: value}`` dictionary of strings.
    """
    device = torch.device(device)
    info: dict[str, str] = {
        "date (UTC)": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device) if device.type != "cuda" else f"{device} ({torch.cuda.get_device_name(device)})",
        "cpu": _cpu_model(),
        "cpu cores (os.cpu_count)": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
    }
    if hasattr(os, "getloadavg"):
        info["load average (1/5/15 min)"] = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    for package in _PACKAGES:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    info["git commit"] = _git_commit(Path(__file__).resolve().parent)
    for name, summary in (datasets or {}).items():
        info[f"dataset {name}"] = summary
    for key, value in (extra or {}).items():
        info[str(key)] = str(value)
    return info


def format_value(value: object, digits: int = 4) -> str:
    """A table cell: floats with ``digits`` decimals (``nan`` as ``–``), bools as on/off, others as str."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and (abs(value) < 10 ** (-digits) or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    digits: int = 4,
) -> str:
    """A GitHub-flavoured Markdown table.

    Args:
        rows: the rows, as dictionaries.
        columns: the keys to show, in order (default: the first row's keys).
        headers: optional display names ``{key: header}``.
        digits: decimals of floats.

    Returns:
        The table text (empty string for no rows).
    """
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    headers = headers or {}
    lines = [
        "| " + " | ".join(headers.get(c, c) for c in columns) + " |",
        "|" + "|".join(" --- " for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(c, ""), digits) for c in columns) + " |")
    return "\n".join(lines)


def write_csv(rows: Sequence[Mapping[str, object]], path: str | Path, columns: Sequence[str] | None = None,
              within: str | Path | None = None) -> Path:
    """Write rows to a CSV file (columns: ``columns`` or the union of the rows' keys in first-seen order) through the
    one writer (:func:`~pe_iqa.safe_files.atomic_write`: never onto an image, never outside ``within``)."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    path = Path(path)
    with atomic_write(path, what="benchmark table", kind="csv", within=within) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return path


def write_report(
    name: str,
    out_dir: str | Path,
    rows: Sequence[Mapping[str, object]],
    title: str,
    sections: Sequence[str],
    environment: Mapping[str, str],
) -> ReportPaths:
    """Write ``<out_dir>/<name>.csv`` (every row) and ``<out_dir>/<name>.md`` (title, environment, sections).

    Args:
        name: file stem, e.g. ``"live"``.
        out_dir: output folder (created).
        rows: the result rows for the CSV.
        title: Markdown title.
        sections: Markdown blocks (headings, tables, text) written after the environment, in order.
        environment: from :func:`environment_info`.

    Returns:
        The two paths.

    Raises:
        ValueError: if ``name`` is empty or contains a path separator.
    """
    check_file_stem(name, "name")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(rows, out / f"{name}.csv", within=out)
    env_rows = [{"key": k, "value": v} for k, v in environment.items()]
    text = [f"# {title}", "", "## Environment", "", markdown_table(env_rows, ["key", "value"]), ""]
    for section in sections:
        text += [section.rstrip(), ""]
    md_path = write_text_atomic(out / f"{name}.md", "\n".join(text), what="benchmark report", kind="markdown",
                                within=out)
    return ReportPaths(csv_path, md_path)
