"""Scoring at scale: memory, speed and engine overhead of ``score --pairs`` over 10³–10⁶-row manifests, under 1, 2
and 4 ``torchrun`` processes; a kill at about half and a resume; merged output compared byte for byte.

The manifests list a few small random-bytes PNGs (``--images`` distorted and references, ``--size``² pixels) over
and over, the way a dataset manifest lists each reference's distortions. Every cell runs in fresh processes (plain
``python`` for 1 process, ``torchrun`` with gloo on CPU for more) through the public engine
(:func:`pe_iqa.scoring.score_pairs` with :func:`~pe_iqa.scoring.pairs.open_pairs_manifest` and ``--csv``); each
process reports:

* ``peak_rss_mib`` — its peak resident set (``VmHWM``) over the whole run: reading and checking the manifest,
  the model, scoring, and (process 0) the merge into the final CSV;
* ``engine_ms_per_row`` — the engine's own time per pair: the scoring loop's time not spent in the metric
  (``network``) or waiting for decoded pairs (``decode_wait``, which holds the decoding) per pair scored, plus the
  once-per-run stages per manifest row — reading and checking the manifest, the output checks, reading earlier
  results and (process 0) merging into the final CSV; the largest of the processes;
* ``rows_per_s`` — pairs of the manifest / the slowest process's scoring time.

``--metric`` picks what is computed: ``pe_alex`` (AlexNet: the network dominates) or ``mad`` (a mean absolute
difference, no network: what the engine and decoding alone cost, so that a 10⁶-row run fits in minutes on this
machine). ``--bounded-rows`` adds manifests of which only ``--bounded-scored`` rows name existing images (the rest
go through the whole engine as failed pairs: streamed, sharded, journaled, merged, but neither decoded nor scored).
``--kill ROWS:PROCESSES`` runs a kill cell: the processes are killed (SIGKILL to the group) once about half of the
pairs are in their journals, the run is resumed with ``--resume``, and its CSV is compared with an uninterrupted
single-process run's; ``scored_twice`` counts pairs journaled before the kill and scored again.

Usage::

    python -m benchmarks.scale --rows 1000 10000 100000 --processes 1 2 4 --metric mad \\
        --bounded-rows 1000000 --bounded-scored 10000 --kill 100000:1 10000:4 --out benchmarks/results --name scale_cpu
    python -m benchmarks.scale --quick --out /tmp/scale        # seconds: 200 rows, 1 and 2 processes
    python -m benchmarks.scale --device cuda ...               # GPU cells (torchrun puts rank r on cuda:r)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.process_memory import rss_status
from benchmarks.report import environment_info, markdown_table, write_report
from pe_iqa.env_options import env_number
from pe_iqa.safe_files import check_destination, write_image, write_text_atomic

__all__ = ["main", "run_cell", "write_manifest"]

_MIB = 2**20


def write_manifest(folder: Path, rows: int, images: int, size: int, scored: int | None = None) -> Path:
    """``folder/pairs_<rows>.csv`` over ``images`` distorted and ``images`` reference PNGs of random bytes (made
    once); row ``i`` pairs distorted ``i % images`` with reference ``(i // 10) % images``. With ``scored``, rows from
    ``scored`` on name a distorted file that does not exist (``pairs_<rows>_scored<scored>.csv``): they go through
    the whole engine (stream, shard, journal, merge) as failed pairs, without decoding or network."""
    rng = np.random.default_rng(0)
    for k in range(images):
        for kind in ("d", "r"):
            path = folder / f"{kind}{k}.png"
            if not path.exists():
                write_image(path, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    manifest = folder / (f"pairs_{rows}.csv" if scored is None else f"pairs_{rows}_scored{scored}.csv")
    if not manifest.exists():
        limit = rows if scored is None else scored
        lines = "".join(f"{'' if i < limit else 'missing/'}d{i % images}.png,r{(i // 10) % images}.png,{i}\n"
                        for i in range(rows))
        write_text_atomic(manifest, "distorted,reference,row\n" + lines)
    return manifest


def _mad_metric():
    from pe_iqa.scoring import ScoringMetric

    return ScoringMetric("mad", True, score=lambda d, r: (d - r).abs().mean(dim=(1, 2, 3)), valid_range=(0.0, 1.0))


def _worker(argv: Sequence[str]) -> int:
    """One process of a cell: score, then write this rank's measurements to ``--stats/rank<R>.json``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--stats", type=Path, required=True)
    parser.add_argument("--metric", default="mad")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    from pe_iqa.scoring import score_pairs
    from pe_iqa.scoring.pairs import open_pairs_manifest

    started = time.perf_counter()
    metric = _mad_metric() if args.metric == "mad" else args.metric
    source = open_pairs_manifest(args.manifest)  # every row read and checked once (counted in the engine's time)
    read_s = time.perf_counter() - started
    result = score_pairs(source, [metric], device=args.device, workers=args.workers,
                         batch_size=args.batch_size, csv_path=args.csv, resume=args.resume, progress=False)
    rank = int(env_number("RANK") or 0)
    memory = rss_status() or {}
    stats = {"rank": rank, "world_size": result.world_size, "score_s": result.score_s, "load_s": result.load_s,
             "wall_s": time.perf_counter() - started, "t_read": read_s, "scored_total": result.scored,
             "resumed": result.resumed,
             "n_pairs": result.n_pairs, "n_ok": result.n_ok, "peak_rss_bytes": memory.get("VmHWM", 0),
             **{f"t_{k}": v for k, v in result.timings.items()}}
    write_text_atomic(args.stats / f"rank{rank}.json", json.dumps(stats))
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(processes: int, arguments: list[str]) -> list[str]:
    if processes == 1:
        return [sys.executable, "-m", "benchmarks.scale", "_worker", *arguments]
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(processes),
            "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), "-m", "benchmarks.scale", "_worker",
            *arguments]


def _environment() -> dict[str, str]:
    """The cells' environment: one thread per process, and this checkout importable from any working folder."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}


def run_cell(manifest: Path, processes: int, csv_path: Path, metric: str, device: str, batch_size: int,
             resume: bool = False) -> dict:
    """Run one cell in fresh processes; returns the measurements of every rank and of the cell."""
    stats = Path(tempfile.mkdtemp(prefix="stats", dir=csv_path.parent))
    arguments = ["--manifest", str(manifest), "--csv", str(csv_path), "--stats", str(stats), "--metric", metric,
                 "--device", device, "--batch-size", str(batch_size), *(["--resume"] if resume else [])]
    started = time.perf_counter()
    done = subprocess.run(_command(processes, arguments), capture_output=True, text=True, env=_environment())
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cell {manifest.name} × {processes} failed ({done.returncode}): {done.stderr[-2000:]}")
    ranks = [json.loads((stats / f"rank{r}.json").read_text(encoding="utf-8")) for r in range(processes)]
    return _summarise(ranks, wall)


def _summarise(ranks: list[dict], wall: float) -> dict:
    n = ranks[0]["n_pairs"]
    slowest = max(r["score_s"] for r in ranks)
    own = []
    for r in ranks:
        scored_here = max(1, round(r["scored_total"] / len(ranks)))
        loop_overhead = r["t_loop"] - r["t_network"] - r["t_decode_wait"]
        once = r["t_read"] + r["t_check"] + r["t_resume"] + r.get("t_merge", 0.0)  # per process, over all rows
        own.append(1000 * (loop_overhead / scored_here + once / n))
    return {"rows": n, "processes": len(ranks), "rows_per_s": n / slowest if slowest else float("nan"),
            "peak_rss_mib_max": max(r["peak_rss_bytes"] for r in ranks) / _MIB,
            "peak_rss_mib_by_rank": "/".join(f"{r['peak_rss_bytes'] / _MIB:.0f}" for r in ranks),
            "engine_ms_per_row": max(own), "network_s": max(r["t_network"] for r in ranks),
            "decode_wait_s": max(r["t_decode_wait"] for r in ranks), "merge_s": ranks[0].get("t_merge", 0.0),
            "score_s": slowest, "wall_s": wall, "scored": ranks[0]["scored_total"],
            "resumed": ranks[0]["resumed"], "ok": ranks[0]["n_ok"]}


def _journal_rows(csv_path: Path) -> int:
    total = 0
    for journal in csv_path.parent.glob(csv_path.name + "*.partial"):
        with journal.open("rb") as handle:
            total += max(0, sum(1 for line in handle if line.endswith(b"\n")) - 1)
    return total


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (torchrun starts its workers in sessions of their own)."""
    import psutil

    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGKILL)


def kill_and_resume(manifest: Path, rows: int, processes: int, reference: Path, metric: str, device: str,
                    batch_size: int) -> dict:
    """Kill a run (SIGKILL to its process group) once about half the pairs are journaled, resume it, compare."""
    out = reference.parent / f"killed_{rows}_{processes}.csv"
    stats = Path(tempfile.mkdtemp(prefix="stats", dir=out.parent))
    arguments = ["--manifest", str(manifest), "--csv", str(out), "--stats", str(stats), "--metric", metric,
                 "--device", device, "--batch-size", str(batch_size)]
    process = subprocess.Popen(_command(processes, arguments), env=_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while process.poll() is None and _journal_rows(out) < rows // 2:
            time.sleep(0.05)
    finally:
        _kill_tree(process.pid)
        process.wait()
    at_kill = _journal_rows(out)
    resumed = run_cell(manifest, processes, out, metric, device, batch_size, resume=True)
    same = out.read_bytes() == reference.read_bytes()
    return {"rows": rows, "processes": processes, "journaled_at_kill": at_kill, "taken_on_resume": resumed["resumed"],
            "scored_on_resume": resumed["scored"], "scored_twice": max(0, at_kill - resumed["resumed"]),
            "taken_plus_scored": resumed["resumed"] + resumed["scored"], "resume_s": resumed["wall_s"],
            "same_bytes_as_uninterrupted": same}


def _machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores"


def measure(args: argparse.Namespace, scratch: Path) -> tuple[list[dict], list[dict]]:
    """Every cell of the grid, the bounded cells, then the kill cells."""
    cells, kills, singles = [], [], {}
    grid = [(rows, None) for rows in args.rows] + [(rows, args.bounded_scored) for rows in args.bounded_rows]
    for rows, scored in grid:
        manifest = write_manifest(scratch, rows, args.images, args.size, scored)
        for processes in args.processes:
            out = scratch / f"scores_{manifest.stem}_{processes}.csv"
            cell = {"scored_rows": rows if scored is None else scored,
                    **run_cell(manifest, processes, out, args.metric, args.device, args.batch_size)}
            single = singles.setdefault(manifest, out)
            cell["same_bytes_as_1_process"] = out.read_bytes() == single.read_bytes()
            cells.append(cell)
            print(json.dumps(cell), flush=True)
            if out != single:
                out.unlink()
    for rows, processes in args.kill:
        manifest = write_manifest(scratch, rows, args.images, args.size)
        reference = singles.get(manifest) or scratch / f"scores_{manifest.stem}_1.csv"
        if not reference.exists():
            run_cell(manifest, 1, reference, args.metric, args.device, args.batch_size)
        kill = kill_and_resume(manifest, rows, processes, reference, args.metric, args.device, args.batch_size)
        kills.append(kill)
        print(json.dumps(kill), flush=True)
    return cells, kills


def _kill_cell(text: str) -> tuple[int, int]:
    rows, _, processes = text.partition(":")
    return int(rows), int(processes or 1)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        return _worker(argv[1:])
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--metric", default="mad", help="mad (no network) or a preset such as pe_alex")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--images", type=int, default=4, help="distorted and reference images (each)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--kill", type=_kill_cell, nargs="*", default=[], metavar="ROWS:PROCESSES",
                        help="kill-and-resume cells, e.g. 100000:1 10000:4")
    parser.add_argument("--bounded-rows", type=int, nargs="*", default=[], metavar="ROWS",
                        help="manifests of which only --bounded-scored rows name existing images")
    parser.add_argument("--bounded-scored", type=int, default=10000)
    parser.add_argument("--quick", action="store_true", help="200 rows, 1 and 2 processes, a kill cell (seconds)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results folder (default: benchmarks/results; with --quick a new temporary folder)")
    parser.add_argument("--name", default="scale_cpu")
    parser.add_argument("--note", default="", help="a line about the machine (load, sharing) for the report")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.processes, args.kill, args.images, args.size = [200], [1, 2], [(200, 2)], 2, 16
        args.bounded_rows, args.bounded_scored = [400], 100
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="pe_iqa_scale_quick_")) if args.quick else Path("benchmarks/results")
    for suffix, kind in ((".md", "markdown"), (".csv", "csv")):
        check_destination(args.out / f"{args.name}{suffix}", what=f"--out {suffix} file", kind=kind)
    with tempfile.TemporaryDirectory(prefix="pe_iqa_scale_") as folder:
        cells, kills = measure(args, Path(folder))
    setup = (f"Machine: {_machine()}{'; ' + args.note if args.note else ''}. Images: {args.images} distorted and "
             f"{args.images} reference random-bytes PNGs of {args.size}×{args.size} pixels; metric {args.metric}; "
             f"batch {args.batch_size}; decoding in the scoring process (workers 0); OMP_NUM_THREADS=1 per process.")
    sections = [setup] + (["## Grid\n\n" + markdown_table(cells, digits=3)] if cells else [])
    if kills:
        sections.append("## Kill at about half, then --resume\n\n" + markdown_table(kills, digits=3))
    rows = [{"cell": "grid", **cell} for cell in cells] + [{"cell": "kill", **kill} for kill in kills]
    paths = write_report(args.name, args.out, rows, f"Scoring at scale ({args.metric}, {args.device})", sections,
                         environment_info(args.device, extra={"metric": args.metric, "image side": args.size}))
    print(paths)
    failed = [c for c in cells if not c["same_bytes_as_1_process"]] + [
        k for k in kills if not k["same_bytes_as_uninterrupted"] or k["scored_twice"]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
