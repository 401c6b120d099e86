"""Speed and memory of the PE metric next to LPIPS and DISTS, and the cost of a PE ranking.

Compares, in one run and on the same random inputs, the default PE metric (``pe_alex``: AlexNet relu3 H-10),
TorchMetrics ``LearnedPerceptualImagePatchSimilarity(net_type="alex")`` and pyiqa's ``lpips`` (LPIPS v0.1,
AlexNet), ``lpips-vgg`` and ``dists``, for every image size × batch size:

* **images/s** — ``batch / median`` call time over ``--repeats`` timed calls after ``--warmup`` untimed ones,
  all under ``torch.inference_mode()`` (evaluation use), inputs already on the device;
* **peak memory** — the growth of memory during the calls over what the loaded metric and its inputs hold:
  on the CPU the peak resident set size (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` after
  loading, so loading peaks do not hide it; ``ru_maxrss`` growth where that is unavailable), on CUDA
  ``torch.cuda.max_memory_allocated``;
* the ratio of each cell's images/s to LPIPS-alex's (pyiqa ``lpips``; TorchMetrics' if pyiqa's is missing).

Every (metric, size, batch) cell runs in a fresh subprocess, so memory peaks and caches of one metric do not
leak into another. Also timed (each in a fresh process): a PE ranking measured from scratch per backbone
(``--rank-backbones``; ``vgg16`` takes ~80 s on 2 CPU cores) and loading the cached ranking (shipped with the
package or in the user cache) after ``clear_memory_cache()``.

Results: ``<out>/throughput_<device>.csv`` (one row per cell / ranking timing) and ``.md`` (environment, tables);
the Markdown tables are printed too. Timings are only meaningful on an otherwise idle machine (the report
records the load average): with other processes on the cores, multi-threaded CPU inference slows down by
an order of magnitude (threads wait at every barrier for a descheduled sibling) — there, ``--threads 1``
still gives usable relative numbers.

Usage::

    python -m benchmarks.throughput [--sizes 256 512] [--batches 1 16] [--device cpu] [--repeats 5]
        [--warmup 1] [--metrics pe_alex tm_lpips_alex lpips lpips-vgg dists] [--threads N]
        [--rank-backbones alexnet [vgg16]] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import torch
from tqdm.auto import tqdm

from benchmarks.process_memory import maxrss_bytes, reset_peak_rss, rss_status
from benchmarks.report import environment_info, markdown_table, write_report

__all__ = ["DEFAULT_METRICS", "REFERENCE_METRICS", "main", "measure_cell", "measure_ranking", "run_benchmark"]

#: The metrics compared by default (``tm_lpips_alex`` is TorchMetrics' LPIPS; the others pyiqa's or ours).
DEFAULT_METRICS: tuple[str, ...] = ("pe_alex", "tm_lpips_alex", "lpips", "lpips-vgg", "dists")
#: LPIPS-alex implementations the ratios refer to, in order of preference.
REFERENCE_METRICS: tuple[str, ...] = ("lpips", "tm_lpips_alex")
_LABELS = {
    "pe_alex": "PE (pe_alex: AlexNet relu3 H-10)",
    "tm_lpips_alex": "LPIPS-alex (TorchMetrics)",
    "lpips": "LPIPS-alex (pyiqa)",
    "lpips-vgg": "LPIPS-vgg (pyiqa)",
    "dists": "DISTS (pyiqa)",
}
_WORKER_FLAG = "--worker-job"
_MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------- in the worker


def _build_metric(name: str, device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The metric as ``fn(distorted, reference)`` on ``[0, 1]`` images (raises if it cannot be built here)."""
    if name == "tm_lpips_alex":
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        module = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True).to(device)

        def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            value = module(x, y)  # the public forward (batch mean); reset so state does not accumulate
            module.reset()
            return value

        return fn
    from benchmarks.comparison import BENCHMARK_METRICS, metric_values

    metric = BENCHMARK_METRICS.build(name, device)  # pe-iqa presets via PEDistance, pyiqa's via create_metric
    return partial(metric_values, metric)


def measure_cell(metric: str, size: int, batch: int, device: str, repeats: int, warmup: int,
                 threads: int | None = None) -> dict:
    """Time one metric on one (size, batch) in this process.

    Args:
        metric: a name of :data:`DEFAULT_METRICS` or any name of :data:`benchmarks.comparison.BENCHMARK_METRICS`.
        size: image side in pixels (square images).
        batch: images per call.
        device: ``"cpu"`` or ``"cuda[:i]"``.
        repeats: timed calls (the median is reported), ``>= 1``.
        warmup: untimed calls before, ``>= 0``.
        threads: CPU threads for torch (``None``: torch's default).

    Returns:
        A result row: ``images_per_s``, ``median_ms``, ``peak_mem_mib`` (growth during the calls),
        ``mem_method``, ``build_s``, ``status``.
    """
    if threads:
        torch.set_num_threads(threads)
    run_device = torch.device(device)
    row: dict = {"kind": "throughput", "metric": metric, "size": size, "batch": batch, "device": str(run_device),
                 "threads": torch.get_num_threads()}
    start = time.perf_counter()
    try:
        fn = _build_metric(metric, run_device)
    except Exception as error:  # offline weights, missing package …
        return {**row, "status": f"unavailable: {type(error).__name__}: {error}"}
    row["build_s"] = time.perf_counter() - start
    generator = torch.Generator().manual_seed(size * 1000 + batch)
    x = torch.rand(batch, 3, size, size, generator=generator).to(run_device)
    y = torch.rand(batch, 3, size, size, generator=generator).to(run_device)
    cuda = run_device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(run_device)

    if cuda:
        sync()
        torch.cuda.reset_peak_memory_stats(run_device)
        base = torch.cuda.memory_allocated(run_device)
        row["mem_method"] = "cuda max_memory_allocated growth"
    else:
        before = rss_status()
        if before is not None and reset_peak_rss():
            base = before["VmRSS"]
            row["mem_method"] = "peak RSS (VmHWM) growth"
        else:
            base = maxrss_bytes()
            row["mem_method"] = "ru_maxrss growth (hides peaks below the loading peak)"
    times = []
    try:
        with torch.inference_mode():
            for index in range(warmup + repeats):
                sync()
                tic = time.perf_counter()
                fn(x, y)
                sync()
                if index >= warmup:
                    times.append(time.perf_counter() - tic)
    except Exception as error:  # e.g. out of memory
        return {**row, "status": f"failed: {type(error).__name__}: {error}"}
    if cuda:
        peak = torch.cuda.max_memory_allocated(run_device) - base
    elif row["mem_method"].startswith("peak RSS"):
        peak = (rss_status() or {"VmHWM": base})["VmHWM"] - base
    else:
        peak = maxrss_bytes() - base
    median = statistics.median(times)
    return {**row, "status": "ok", "images_per_s": batch / median, "median_ms": median * 1e3,
            "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3, "peak_mem_mib": max(peak, 0) / _MIB,
            "repeats": repeats, "warmup": warmup}


def measure_ranking(backbone: str, cached: bool, device: str, threads: int | None = None) -> dict:
    """Time a PE ranking of ``backbone``'s default layers in this process.

    Args:
        backbone: backbone name (its ImageNet weights).
        cached: ``True`` times loading the stored ranking (user cache, else shipped) after
            :func:`~pe_iqa.analysis.ranking_lookup.clear_memory_cache`; ``False`` measures it afresh
            (``use_cache=False``).
        device: where a measurement runs.
        threads: CPU threads for torch.

    Returns:
        A result row with ``load_backbone_s`` and ``ranking_s`` (and ``memory_hit_s`` when cached).
    """
    from pe_iqa.analysis.ranking_lookup import SHIPPED_DIR, clear_memory_cache, get_rankings
    from pe_iqa.analysis.tuning import AnalysisConfig
    from pe_iqa.analysis.tuning_cache import TuningKey, default_cache_dir
    from pe_iqa.backbones import load_backbone

    if threads:
        torch.set_num_threads(threads)
    row: dict = {"kind": "ranking cached" if cached else "ranking fresh", "metric": backbone,
                 "device": device, "threads": torch.get_num_threads()}
    try:
        start = time.perf_counter()
        net = load_backbone(backbone, device=device)
        row["load_backbone_s"] = time.perf_counter() - start
        if cached:
            keys = [TuningKey(net.spec.name, net.weights_id, layer, AnalysisConfig().key()) for layer in net.layers]
            user = all((default_cache_dir() / key.filename()).is_file() for key in keys)
            shipped = all((SHIPPED_DIR / key.filename()).is_file() for key in keys)
            row["source"] = "user cache" if user else "shipped" if shipped else "none (measured)"
            clear_memory_cache()
        start = time.perf_counter()
        rankings = get_rankings(net, use_cache=cached, device=device)
        row["ranking_s"] = time.perf_counter() - start
        if cached:
            start = time.perf_counter()
            get_rankings(net, device=device)
            row["memory_hit_s"] = time.perf_counter() - start
    except Exception as error:
        return {**row, "status": f"failed: {type(error).__name__}: {error}"}
    row["layers"] = " ".join(rankings)
    row["channels"] = sum(r.n_channels for r in rankings.values())
    return {**row, "status": "ok"}


def _worker(job: dict) -> dict:
    if job["kind"] == "throughput":
        return measure_cell(job["metric"], job["size"], job["batch"], job["device"], job["repeats"], job["warmup"],
                            job.get("threads"))
    return measure_ranking(job["backbone"], job["cached"], job["device"], job.get("threads"))


# ---------------------------------------------------------------------------------------------- orchestration


def _run_in_subprocess(job: dict, timeout: float) -> dict:
    """Run one job in a fresh interpreter (``python -m benchmarks.throughput --worker-job JSON``)."""
    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "benchmarks.throughput", _WORKER_FLAG, json.dumps(job)]
    try:
        done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**job, "status": f"failed: timed out after {timeout:g} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {**job, "status": f"failed: exit code {done.returncode}: {tail}"}


def _cell(size: int, batch: int) -> str:
    return f"{size}×{size}, batch {batch}"


def _throughput_tables(rows: list[dict], sizes: Sequence[int], batches: Sequence[int],
                       metrics: Sequence[str]) -> tuple[str, str, str]:
    cells = [(s, b) for s in sizes for b in batches]
    found = {(r["metric"], r["size"], r["batch"]): r for r in rows if r.get("kind") == "throughput"}
    reference = next((m for m in REFERENCE_METRICS
                      if m in metrics and any(found.get((m, s, b), {}).get("status") == "ok" for s, b in cells)), None)
    speed_rows, memory_rows, notes = [], [], []
    for metric in metrics:
        speed: dict = {"metric": _LABELS.get(metric, metric)}
        memory: dict = {"metric": _LABELS.get(metric, metric)}
        for size, batch in cells:
            row = found.get((metric, size, batch), {})
            key = _cell(size, batch)
            if row.get("status") != "ok":
                speed[key] = memory[key] = "n/a"
                notes.append(f"- {metric} at {key}: {row.get('status', 'not run')}")
                continue
            ref = found.get((reference, size, batch), {}) if reference else {}
            ratio = row["images_per_s"] / ref["images_per_s"] if ref.get("status") == "ok" else math.nan
            row["ratio_vs_lpips_alex"] = ratio
            speed[key] = f"{row['images_per_s']:.3g}" + ("" if math.isnan(ratio) else f" ({ratio:.2f}×)")
            memory[key] = f"{row['peak_mem_mib']:.0f}"
        speed_rows.append(speed)
        memory_rows.append(memory)
    columns = ["metric", *(_cell(s, b) for s, b in cells)]
    reference_label = _LABELS.get(reference, reference) if reference else "none available"
    speed_text = (f"## Images per second\n\nMedian over the timed calls; in brackets the ratio to "
                  f"{reference_label} in the same cell (higher = faster).\n\n"
                  + markdown_table(speed_rows, columns))
    memory_text = ("## Peak memory during a call (MiB)\n\nGrowth over the loaded metric and its inputs "
                   f"({_memory_method(rows)}).\n\n" + markdown_table(memory_rows, columns))
    return speed_text, memory_text, "\n".join(dict.fromkeys(notes))


def _memory_method(rows: list[dict]) -> str:
    methods = sorted({r["mem_method"] for r in rows if r.get("kind") == "throughput" and r.get("mem_method")})
    return "; ".join(methods) or "not measured"


def _ranking_table(rows: list[dict]) -> str:
    ranking_rows = []
    for row in rows:
        if not row.get("kind", "").startswith("ranking"):
            continue
        ok = row.get("status") == "ok"
        ranking_rows.append({
            "backbone": row["metric"],
            "what": ("load stored ranking (" + row.get("source", "?") + ")") if row["kind"] == "ranking cached"
            else "measure afresh (use_cache=False)",
            "ranking (s)": row.get("ranking_s", math.nan) if ok else row["status"],
            "load_backbone (s)": row.get("load_backbone_s", math.nan),
            "memory hit (s)": row.get("memory_hit_s", math.nan),
            "channels": row.get("channels", ""),
        })
    if not ranking_rows:
        return ""
    return ("## PE ranking\n\nAll default layers of the backbone with ImageNet weights, default analysis "
            "(336 grating images of 224 px); each timing in a fresh process.\n\n"
            + markdown_table(ranking_rows, digits=3))


def run_benchmark(
    sizes: Sequence[int] = (256, 512),
    batches: Sequence[int] = (1, 16),
    device: str = "cpu",
    metrics: Sequence[str] = DEFAULT_METRICS,
    repeats: int = 5,
    warmup: int = 1,
    threads: int | None = None,
    rank_backbones: Sequence[str] = ("alexnet",),
    cached_backbones: Sequence[str] = ("alexnet", "vgg16"),
    out: str | Path = "benchmarks/results",
    timeout: float = 1800.0,
    progress: bool = True,
) -> tuple[list[dict], str]:
    """Run every cell and ranking timing in fresh subprocesses and write the report.

    Args:
        sizes: square image sides.
        batches: batch sizes.
        device: ``"cpu"`` or ``"cuda[:i]"``.
        metrics: metric names (see :data:`DEFAULT_METRICS`).
        repeats: timed calls per cell.
        warmup: untimed calls per cell before timing.
        threads: CPU threads for torch in the workers (``None``: torch's default, all cores).
        rank_backbones: backbones whose ranking is measured afresh.
        cached_backbones: backbones whose stored ranking load is timed.
        out: output folder.
        timeout: seconds allowed per subprocess.
        progress: show a progress bar.

    Returns:
        ``(rows, markdown)``: all result rows and the Markdown text written to ``throughput_<device>.md``.

    Raises:
        ValueError: on non-positive sizes, batches or repeats, or a negative warmup.
    """
    if min(sizes) < 1 or min(batches) < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"sizes, batches and repeats must be >= 1 and warmup >= 0, got sizes={list(sizes)}, "
                         f"batches={list(batches)}, repeats={repeats}, warmup={warmup}")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    jobs: list[dict] = [
        {"kind": "throughput", "metric": m, "size": s, "batch": b, "device": device, "repeats": repeats,
         "warmup": warmup, "threads": threads}
        for s in sizes for b in batches for m in metrics
    ]
    jobs += [{"kind": "ranking", "backbone": b, "cached": True, "device": device, "threads": threads}
             for b in cached_backbones]
    jobs += [{"kind": "ranking", "backbone": b, "cached": False, "device": device, "threads": threads}
             for b in rank_backbones]
    rows = []
    bar = tqdm(jobs, desc="throughput", unit="job", disable=not progress)
    for job in bar:
        label = (f"{job['metric']} {_cell(job['size'], job['batch'])}" if job["kind"] == "throughput"
                 else f"ranking {job['backbone']} {'cached' if job['cached'] else 'fresh'}")
        bar.set_postfix_str(label)
        rows.append(_run_in_subprocess(job, timeout))
    speed, memory, notes = _throughput_tables(rows, sizes, batches, metrics)
    sections = [speed, memory, _ranking_table(rows)]
    if notes:
        sections.append("## Not measured\n\n" + notes)
    device_name = torch.device(device)
    extra = {
        "repeats / warm-up calls": f"{repeats} / {warmup}",
        "worker torch threads": str(threads or torch.get_num_threads()),
        "load average at start": " / ".join(f"{v:.2f}" for v in load_before) if load_before else "n/a",
        "command": "python -m benchmarks.throughput " + " ".join(sys.argv[1:]),
    }
    env = environment_info(device_name if device_name.type != "cuda" or torch.cuda.is_available() else "cpu",
                           extra=extra)
    paths = write_report(f"throughput_{device_name.type}", out, rows,
                         f"Throughput and memory: PE vs LPIPS / DISTS ({device})", [s for s in sections if s], env)
    return rows, paths.markdown.read_text(encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [_WORKER_FLAG]:
        print("RESULT " + json.dumps(_worker(json.loads(argv[1]))), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square image sides (px)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16], help="batch sizes")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS),
                        help="pe_alex, tm_lpips_alex, lpips, lpips-vgg, dists, other pe presets or pyiqa names")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per cell (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per cell before timing")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--rank-backbones", nargs="*", default=["alexnet"],
                        help="backbones whose PE ranking is measured afresh (vgg16: ~80 s on 2 cores); none: skip")
    parser.add_argument("--cached-backbones", nargs="*", default=["alexnet", "vgg16"],
                        help="backbones whose stored ranking load is timed")
    parser.add_argument("--out", default="benchmarks/results", help="output folder")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per subprocess")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    try:
        _, markdown = run_benchmark(args.sizes, args.batches, args.device, args.metrics, args.repeats, args.warmup,
                                    args.threads, args.rank_backbones, args.cached_backbones, args.out,
                                    args.timeout, args.progress)
    except ValueError as error:
        parser.error(str(error))
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
