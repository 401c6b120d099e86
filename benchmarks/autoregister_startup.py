"""What ``pe_iqa_pyiqa.pth`` costs an interpreter that never imports pyiqa (goal: under 5 ms).

Three measurements, each over ``--runs`` fresh interpreters (medians), with byte-code caching on (as after
``pip install``, which compiles the modules; ``PYTHONDONTWRITEBYTECODE`` is removed for the children):

* **the .pth line itself**: ``python -S`` (no site processing), then the time to run the installed line
  (import :mod:`pe_iqa_pyiqa_autoregister`, install its finder) — what ``site`` adds at start-up — as CPU time
  (robust to other processes on a shared machine) and wall time;
* ``-X importtime`` of the hook module during a normal start (Python's own accounting of its import);
* **the finder on later imports**: the finder sits first on ``sys.meta_path`` and answers ``None`` to every other
  module; the extra time of importing ``torch`` (≈1,800 modules) with the finder installed vs. removed.

Usage::

    python -m benchmarks.autoregister_startup [--runs 30] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.report import environment_info, markdown_table, write_report

__all__ = ["main"]

_PTH_TIMER = """
import sys, time
sys.path.insert(0, {folder!r})
line = {line!r}
start, cpu = time.perf_counter(), time.process_time()
exec(line)
print((time.process_time() - cpu) * 1e3, (time.perf_counter() - start) * 1e3)
"""

_IMPORT_TIMER = """
import sys, time
import pe_iqa_pyiqa_autoregister as hook
if {remove}:
    hook.uninstall()
start = time.perf_counter()
import torch
print((time.perf_counter() - start) * 1e3, len(sys.modules))
"""


def _pth_line() -> str:
    from pe_iqa_pyiqa_autoregister.build_pth import PTH_LINE

    return PTH_LINE


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(arguments: list[str]) -> str:
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, check=True,
                          env=_environment()).stdout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    import pe_iqa_pyiqa_autoregister

    folder = str(Path(pe_iqa_pyiqa_autoregister.__file__).parent.parent)
    timer = ["-S", "-c", _PTH_TIMER.format(folder=folder, line=_pth_line())]
    _run(timer)  # writes the byte code once
    timings = [tuple(map(float, _run(timer).split())) for _ in range(args.runs)]
    pth_ms, pth_wall_ms = [cpu for cpu, _ in timings], [wall for _, wall in timings]
    importtime_us = []
    for _ in range(args.runs):
        stderr = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True,
                                check=True, env=_environment()).stderr
        line = next((ln for ln in stderr.splitlines() if ln.rstrip().endswith("pe_iqa_pyiqa_autoregister")), None)
        if line is not None:
            importtime_us.append(int(line.split("|")[1]))
    with_finder, without_finder = [], []
    modules = 0
    for _ in range(max(5, args.runs // 3)):  # alternate, so load changes hit both alike
        out = _run(["-c", _IMPORT_TIMER.format(remove=False)]).split()
        with_finder.append(float(out[0]))
        modules = int(out[1])
        without_finder.append(float(_run(["-c", _IMPORT_TIMER.format(remove=True)]).split()[0]))
    import timeit

    finder = pe_iqa_pyiqa_autoregister._Finder()
    per_call_ns = min(timeit.repeat(lambda: finder.find_spec("numpy.core"), number=20_000, repeat=5)) / 20_000 * 1e9
    rows = [
        {"measurement": "running the .pth line (import hook module + install finder), CPU time", "median ms":
         statistics.median(pth_ms), "max ms": max(pth_ms), "runs": len(pth_ms)},
        {"measurement": "the same, wall time (includes waiting for a core on a shared machine)", "median ms":
         statistics.median(pth_wall_ms), "max ms": max(pth_wall_ms), "runs": len(pth_wall_ms)},
        {"measurement": "-X importtime of the hook module at start-up", "median ms":
         statistics.median(importtime_us) / 1e3 if importtime_us else float("nan"),
         "max ms": max(importtime_us) / 1e3 if importtime_us else float("nan"), "runs": len(importtime_us)},
        {"measurement": f"finder answering another module: per call × {modules} modules of import torch",
         "median ms": per_call_ns * modules / 1e6, "max ms": float("nan"), "runs": 5},
        {"measurement": f"import torch ({modules} modules) with the finder minus without (A/B, noisy)",
         "median ms": statistics.median(with_finder) - statistics.median(without_finder),
         "max ms": float("nan"), "runs": len(with_finder)},
    ]
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    verdict = ("under" if statistics.median(pth_ms) < 5 else "OVER") + " the 5 ms goal"
    sections = [
        "## Start-up cost of the pyiqa autoregister hook",
        f"The .pth line costs a median {statistics.median(pth_ms):.2f} ms of CPU ({verdict}). The finder's later "
        f"cost is one string comparison per imported module ({per_call_ns:.0f} ns); importing torch with and "
        f"without it differs by {rows[4]['median ms']:.1f} ms, noise next to a "
        f"{statistics.median(without_finder):.0f} ms import. The machine's load average was {load}.",
        markdown_table(rows, digits=3),
    ]
    write_report("autoregister_startup", args.out, rows, "pyiqa autoregister hook: interpreter start-up cost",
                 sections, environment_info("cpu"))
    print((Path(args.out) / "autoregister_startup.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
