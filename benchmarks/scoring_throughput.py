"""End-to-end scoring speed from disk next to its bound, pyiqa's command line, reference reuse, and memory.

On the shared LIVE pairs (99 found pairs, 5 references, 768×512 and 480×720 BMPs) listed ``--repeat`` times in a
pairs manifest (default 6: 594 pairs), every cell runs in a fresh process, cells interleaved over ``--rounds``
rounds (medians reported):

* ``bound`` — ``pe_alex`` on in-memory tensors (every image decoded beforehand by the package's reader), one pair
  per call, both images through the network: what the network alone allows. ``bound_reuse``: the same with each
  reference's features computed once.
* ``engine`` — :func:`pe_iqa.scoring.score_pairs` from the manifest with the command line's defaults (workers
  ``auto``, batch 1 on CPU, reference reuse); ``engine_no_reuse``, ``engine_workers0``/``2`` vary one setting.
  Rate = pairs / scoring seconds (model loading excluded; worker start-up included).
* ``engine_lpips`` — pyiqa's ``lpips`` through the same engine.
* ``pyiqa_cli_lpips`` / ``pe_iqa_cli`` — the whole commands (``pyiqa lpips -t D -r R``; ``pe-iqa score --pairs``)
  on N and on N0 = 20 pairs; rate = (N − N0) / (T_N − T_N0), so start-up and model loading cancel out.
  pyiqa's CLI pairs folders by sorted name, so it gets folders of numbered symbolic links to the same files.
* ``memory`` — peak memory of the main process (growth over the loaded model, ``VmHWM`` reset after loading) and
  of each decoding worker (peak unique set size), on synthetic 512², 1024² and 2048² pairs.

Files are read from the page cache after the first round (the 104 files total 120 MB): "from disk" measures
decoding and the pipeline, not the drive. GPU cells (``--device cuda``) are not measured on this machine.

Usage::

    python -m benchmarks.scoring_throughput --root ../shared/data/LIVE --repeat 6 --rounds 3 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from benchmarks.datasets.live import DEFAULT_ROOT
from benchmarks.process_memory import reset_peak_rss, rss_status
from benchmarks.report import environment_info, markdown_table, write_report
from pe_iqa.image_io import read_pair
from pe_iqa.safe_files import write_image, write_text_atomic
from pe_iqa.scoring import ScorePair, read_pairs_manifest

__all__ = ["CELLS", "load_pairs_in_memory", "main", "run_cell", "write_live_manifest"]

CELLS = ("bound", "bound_reuse", "engine", "engine_no_reuse", "engine_workers0", "engine_workers2", "engine_lpips",
         "pyiqa_cli_lpips", "pe_iqa_cli")
_SMALL_N = 20
_MIB = 2**20


def load_pairs_in_memory(pairs: Sequence[ScorePair]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every pair as ``(distorted, reference)`` tensors read by the package's reader (each file decoded once)."""
    decoded: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
    out = []
    for pair in pairs:
        key = (str(pair.distorted), str(pair.reference))
        if key not in decoded:
            decoded[key] = read_pair(pair.distorted, pair.reference)
        out.append(decoded[key])
    return out


def write_live_manifest(root: Path, repeat: int, path: Path) -> int:
    """A pairs manifest of the LIVE pairs found under ``root``, listed ``repeat`` times; returns its length."""
    from benchmarks.datasets.live import load_live_index

    index = load_live_index(root)
    rows = [f"{record.dist_path},{record.ref_path},{record.dist_type}\n" for record in index.records]
    write_text_atomic(path, "distorted,reference,dist_type\n" + "".join(rows * repeat), what="scratch manifest")
    return len(rows) * repeat


class _MemorySampler:
    """Peak unique-set size of this process's children (the decoding workers), sampled every 0.2 s."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.worker_peak = 0
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(self.interval_s):
            for child in me.children():
                try:
                    self.worker_peak = max(self.worker_peak, child.memory_full_info().uss)
                except (psutil.Error, OSError):
                    pass

    def __enter__(self) -> _MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _bound(pairs: list[ScorePair], reuse: bool) -> dict:
    from pe_iqa import PEDistance

    metric = PEDistance("pe_alex", device="cpu", reduction="none")
    images = load_pairs_in_memory(pairs)
    keys = [str(p.reference) for p in pairs]
    with torch.inference_mode():
        metric(*images[0])  # warm-up
        cache: dict[str, list[torch.Tensor]] = {}
        start = time.perf_counter()
        for key, (dist, ref) in zip(keys, images, strict=True):
            if reuse:
                if key not in cache:
                    cache[key] = metric.features(ref)
                metric(dist, ref, target_features=cache[key])
            else:
                metric(dist, ref)
        elapsed = time.perf_counter() - start
    return {"pairs": len(pairs), "seconds": elapsed, "pairs_per_s": len(pairs) / elapsed}


def _engine(pairs: list[ScorePair], metric: str, workers: int | None, reuse: bool, csv_path: Path | None,
            memory: bool = False) -> dict:
    """Time :func:`score_pairs` with a metric built beforehand (its loading is not timed).

    Throughput cells warm up on the first two pairs (kernels for that image size) and run without the memory
    sampler (it would compete with the main thread); ``memory=True`` warms up on a tiny pair instead, so the
    growth of the peak resident set is what the image size costs, and samples the workers.
    """
    from pe_iqa.cli.score import default_workers
    from pe_iqa.scoring import build_metric, score_pairs

    workers = default_workers("cpu", len(pairs)) if workers is None else workers
    scorer = build_metric(metric, "cpu")
    warm_up = _tiny_pairs(csv_path.parent if csv_path else Path(tempfile.mkdtemp())) if memory else pairs[:2]
    score_pairs(warm_up, [scorer], workers=0, progress=False)
    rss_before = rss_status()["VmRSS"]
    reset_peak_rss()
    sampler = _MemorySampler() if memory else contextlib.nullcontext()
    with sampler:
        result = score_pairs(pairs, [scorer], workers=workers, batch_size=1, reuse_references=reuse,
                             csv_path=csv_path, progress=False)
    peak = rss_status()["VmHWM"]
    row = {"pairs": len(pairs), "seconds": result.score_s, "pairs_per_s": result.pairs_per_s, "workers": workers,
           "failed": len(result.failures), "main_peak_growth_mib": (peak - rss_before) / _MIB}
    if memory:
        row["worker_peak_uss_mib"] = sampler.worker_peak / _MIB
    return row


def _tiny_pairs(folder: Path) -> list[ScorePair]:
    import numpy as np

    for name, level in (("tiny_ref.png", 128), ("tiny_dist.png", 120)):
        if not (folder / name).is_file():  # written once per scratch folder (the same pixels every time)
            write_image(folder / name, np.full((64, 64, 3), level, np.uint8), what="scratch image")
    return [ScorePair(folder / "tiny_dist.png", folder / "tiny_ref.png")]


def _linked_folders(pairs: Sequence[ScorePair], folder: Path) -> tuple[Path, Path]:
    dist, ref = folder / "dist", folder / "ref"
    dist.mkdir(parents=True)
    ref.mkdir()
    for i, pair in enumerate(pairs):
        (dist / f"{i:06d}{pair.distorted.suffix}").symlink_to(pair.distorted.resolve())
        (ref / f"{i:06d}{pair.reference.suffix}").symlink_to(pair.reference.resolve())
    return dist, ref


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed: {done.stderr[-500:]}")
    return time.perf_counter() - start


def _command_rate(pairs: list[ScorePair], manifest: Path, which: str) -> dict:
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as scratch:
        times = {}
        for n in (_SMALL_N, len(pairs)):
            if which == "pyiqa_cli_lpips":
                dist, ref = _linked_folders(pairs[:n], Path(scratch) / str(n))
                command = [str(bin_dir / "pyiqa"), "lpips", "-t", str(dist), "-r", str(ref), "--device", "cpu"]
            else:
                subset = Path(scratch) / f"pairs{n}.csv"
                lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
                write_text_atomic(subset, "".join(lines[:n + 1]), what="scratch manifest")
                command = [str(bin_dir / "pe-iqa"), "score", "--pairs", str(subset), "--device", "cpu",
                           "--no-progress"]
            times[n] = _timed(command)
    big, small = times[len(pairs)], times[_SMALL_N]
    return {"pairs": len(pairs), "seconds": big, "seconds_small": small,
            "pairs_per_s": (len(pairs) - _SMALL_N) / (big - small)}


def run_cell(cell: str, manifest: Path, scratch: Path) -> dict:
    """Measure one cell in this process (see the module docstring)."""
    pairs = read_pairs_manifest(manifest)
    if cell in ("bound", "bound_reuse"):
        return _bound(pairs, reuse=cell == "bound_reuse")
    if cell.startswith("engine"):
        workers = {"engine_workers0": 0, "engine_workers2": 2}.get(cell)
        metric = "lpips" if cell == "engine_lpips" else "pe_alex"
        csv_path = scratch / f"{cell}.csv" if cell in ("engine", "engine_no_reuse") else None
        return _engine(pairs, metric, workers, reuse=cell != "engine_no_reuse", csv_path=csv_path)
    if cell in ("pyiqa_cli_lpips", "pe_iqa_cli"):
        return _command_rate(pairs, manifest, cell)
    raise ValueError(f"unknown cell {cell!r}; one of {CELLS}")


def _memory_rows(scratch: Path, threads: int | None) -> list[dict]:
    import numpy as np

    rows = []
    for side in (512, 1024, 2048):
        folder = scratch / f"mem{side}"
        folder.mkdir(exist_ok=True)
        lines = ["distorted,reference\n"]
        rng = np.random.default_rng(side)
        for r in range(2):
            ref = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            write_image(folder / f"r{r}.bmp", ref, "BMP", what="scratch image")
            for d in range(4):
                noisy = np.clip(ref.astype(np.int16) + rng.integers(-20, 21, ref.shape), 0, 255).astype(np.uint8)
                write_image(folder / f"d{r}{d}.bmp", noisy, "BMP", what="scratch image")
                lines.append(f"d{r}{d}.bmp,r{r}.bmp\n")
        write_text_atomic(folder / "pairs.csv", "".join(lines), what="scratch manifest")
        result = _child("engine_memory", folder / "pairs.csv", scratch, threads)
        megapixels = side * side / 1e6
        rows.append({"side": side, "megapixels": megapixels, **result,
                     "main_mib_per_mp": result["main_peak_growth_mib"] / megapixels})
    return rows


def _child(cell: str, manifest: Path, scratch: Path, threads: int | None = None) -> dict:
    out = scratch / f"{cell}.json"
    command = [sys.executable, "-m", "benchmarks.scoring_throughput", "--cell", cell, "--manifest", str(manifest),
               "--scratch", str(scratch), "--json", str(out)]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # also what the pe-iqa / pyiqa commands of a cell inherit
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"cell {cell} failed:\n{done.stderr[-2000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


def _identical(scratch: Path) -> tuple[int, int]:
    if not (scratch / "engine.csv").is_file() or not (scratch / "engine_no_reuse.csv").is_file():
        return 0, 0
    with_reuse = (scratch / "engine.csv").read_text(encoding="utf-8").splitlines()
    without = (scratch / "engine_no_reuse.csv").read_text(encoding="utf-8").splitlines()
    return sum(a == b for a, b in zip(with_reuse[1:], without[1:], strict=True)), len(with_reuse) - 1


def _report(results: dict[str, list[dict]], memory: list[dict], identical: tuple[int, int], n_pairs: int,
            out: Path, rounds: int, threads: int | None) -> None:
    median = {cell: statistics.median(r["pairs_per_s"] for r in rows) for cell, rows in results.items()}
    nan = float("nan")
    for cell in CELLS:
        median.setdefault(cell, nan)
    labels = {
        "bound": "pe_alex on in-memory tensors (bound; both images through the network)",
        "bound_reuse": "pe_alex on in-memory tensors, reference features computed once",
        "engine": "**pe-iqa engine from disk, defaults** (workers auto, batch 1, reference reuse)",
        "engine_no_reuse": "pe-iqa engine from disk, --no-reuse",
        "engine_workers0": "pe-iqa engine from disk, --workers 0",
        "engine_workers2": "pe-iqa engine from disk, --workers 2",
        "engine_lpips": "pyiqa lpips through the pe-iqa engine",
        "pyiqa_cli_lpips": "pyiqa's command line, lpips (`pyiqa lpips -t D -r R`)",
        "pe_iqa_cli": "`pe-iqa score --pairs` command, defaults (start-up excluded by difference)",
    }
    rows = [{"measurement": labels[cell], "pairs/s": median[cell],
             "runs": ", ".join(f"{r['pairs_per_s']:.1f}" for r in results[cell]),
             "vs bound": median[cell] / median["bound"], "vs pyiqa lpips CLI": median[cell] / median["pyiqa_cli_lpips"]}
            for cell in CELLS if cell in results]
    engine = results.get("engine") or [{"workers": None}]
    workers = engine[0].get("workers")
    summary = [
        f"- pairs: {n_pairs} (the 99 shared LIVE pairs × {n_pairs // 99}), {rounds} interleaved rounds, medians",
        f"- **end to end / bound: {median['engine'] / median['bound']:.2f}** (goal ≥ 0.9; like for like without "
        f"reuse: {median['engine_no_reuse'] / median['bound']:.2f}; with reuse against the reuse bound: "
        f"{median['engine'] / median['bound_reuse']:.2f}). The bound is one process; the default engine adds a "
        f"decoding process, which on a shared machine also wins it a larger share of the cores. In one process "
        f"(--workers 0, reuse) against the reuse bound: {median['engine_workers0'] / median['bound_reuse']:.2f}",
        f"- **end to end / pyiqa's lpips command line: {median['engine'] / median['pyiqa_cli_lpips']:.2f}×** "
        f"(goal ≥ 2×); the two whole commands: {median['pe_iqa_cli'] / median['pyiqa_cli_lpips']:.2f}×",
        f"- **reference reuse: {median['engine'] / median['engine_no_reuse']:.2f}× faster** (goal ≥ 1.5×), scores "
        f"identical in {identical[0]} of {identical[1]} CSV rows",
        f"- workers auto = {workers} on this machine ({os.cpu_count()} cores); torch threads per process: "
        f"{threads or 'torch default'}",
    ]
    memory_rows = [{"image": f"{m['side']}×{m['side']} ({m['megapixels']:.2f} MP)",
                    "main process peak growth (MiB)": m["main_peak_growth_mib"],
                    "MiB per megapixel": m["main_mib_per_mp"],
                    "peak per decoding worker (USS, MiB)": m["worker_peak_uss_mib"]} for m in memory]
    cell = "not measured"
    gpu = "\n".join(["| device | batch | 512² fp32 | 512² fp16 | 1080p fp32 | 1080p fp16 |",
                     "| --- | --- | --- | --- | --- | --- |",
                     *(f"| cuda | {b} | {cell} | {cell} | {cell} | {cell} |" for b in (1, 16, 64))])
    sections = [
        "## Throughput (pairs/s, higher is better)", "\n".join(summary), markdown_table(rows, digits=2),
        "## Memory (pe_alex, engine with 1 decoding worker, batch 1, reference reuse)",
        "Peak resident memory of the main process above its state after loading the metric and scoring one tiny "
        "pair; the decoding worker's peak unique set size (memory it does not share with the main process). "
        "8 pairs (2 references × 4 distortions) of random-pixel images per size.",
        markdown_table(memory_rows, digits=1),
        "## GPU (not measured: no GPU on this machine)", gpu,
        "Run `python -m benchmarks.scoring_throughput --device cuda` where a GPU is available.",
    ]
    flat = [{"cell": cell, **r} for cell, rs in results.items() for r in rs] + [{"cell": "memory", **m}
                                                                               for m in memory]
    write_report("scoring_cpu", out, flat, "Scoring at scale: end-to-end throughput on CPU", sections,
                 environment_info("cpu", extra={"load average": " ".join(f"{v:.2f}" for v in os.getloadavg())}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="LIVE root (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--device", default="cpu", choices=["cpu"], help="GPU cells are not implemented here yet")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in every cell (default: torch's own; 1 on a shared machine)")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cell:  # a child process: one measurement (OMP_NUM_THREADS set by the parent)
        manifest, scratch = Path(args.manifest), Path(args.scratch)
        if args.cell == "engine_memory":
            result = _engine(read_pairs_manifest(manifest), "pe_alex", 1, True, scratch / "memory.csv", memory=True)
        else:
            result = run_cell(args.cell, manifest, scratch)
        write_text_atomic(args.json, json.dumps(result), what="cell result", kind="json")
        return 0
    from tqdm.auto import tqdm

    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        manifest = scratch / "live_pairs.csv"
        n_pairs = write_live_manifest(Path(args.root), args.repeat, manifest)
        results: dict[str, list[dict]] = {cell: [] for cell in args.cells}
        with tqdm(total=args.rounds * len(args.cells), desc="cells", file=sys.stderr) as bar:
            for _ in range(args.rounds):
                for cell in args.cells:
                    results[cell].append(_child(cell, manifest, scratch, args.threads))
                    bar.set_postfix_str(f"{cell} {results[cell][-1]['pairs_per_s']:.1f}/s")
                    bar.update()
        identical = _identical(scratch)
        memory = _memory_rows(scratch, args.threads)
        _report(results, memory, identical, n_pairs, Path(args.out), args.rounds, args.threads)
    print((Path(args.out) / "scoring_cpu.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
