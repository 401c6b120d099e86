"""What building the default metric costs: ``PEDistance("pe_alex")`` vs torchvision's AlexNet with its weights.

Each round starts two fresh interpreters, interleaved (one per case, in alternating order), that import ``torch``
and then time, on the wall clock:

* ``pe_alex``: ``from pe_iqa import PEDistance; PEDistance("pe_alex")`` (importing the package included);
* ``torchvision``: ``import torchvision; torchvision.models.alexnet(weights="DEFAULT")`` (the same weight file,
  loaded from ``$TORCH_HOME``).

Goal: the median ratio pe_alex / torchvision ≤ 1.5. The pe_alex interpreter also reports the **import closure** of
``PEDistance``: the ``pe_iqa`` modules loaded after building the metric (files and lines) and whether any module of
the PE analysis (:mod:`pe_iqa.analysis`) was among them (it must not be: a preset runs from the shipped selections).

Usage::

    python -m benchmarks.construction_time [--rounds 15] [--out benchmarks/results] [--quick]

``--quick`` (3 rounds) writes ``construction_time_quick.{csv,md}``, never the committed results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.report import environment_info, markdown_table, write_report

__all__ = ["GOAL_RATIO", "main", "measure_round"]

#: The issue's goal: building the default metric takes at most this multiple of building torchvision's AlexNet.
GOAL_RATIO = 1.5
QUICK_ROUNDS = 3

_CASES = {
    "pe_alex": """
import json, sys, time
import torch
start = time.perf_counter()
from pe_iqa import PEDistance
metric = PEDistance("pe_alex")
elapsed = time.perf_counter() - start
files = sorted({m.__file__ for name, m in list(sys.modules.items())
                if (name == "pe_iqa" or name.startswith("pe_iqa.")) and getattr(m, "__file__", None)})
lines = sum(sum(1 for _ in open(f, encoding="utf-8")) for f in files)
analysis = sorted(n for n in sys.modules if n == "pe_iqa.analysis" or n.startswith("pe_iqa.analysis."))
print(json.dumps({"seconds": elapsed, "files": len(files), "lines": lines, "analysis_modules": analysis,
                  "modules": [f.split("pe_iqa", 1)[1] for f in files]}))
""",
    "torchvision": """
import json, time
import torch
start = time.perf_counter()
import torchvision
model = torchvision.models.alexnet(weights="DEFAULT")
print(json.dumps({"seconds": time.perf_counter() - start}))
""",
}


def _run(case: str) -> dict:
    result = subprocess.run([sys.executable, "-c", _CASES[case]], capture_output=True, text=True, check=False,
                            env=dict(os.environ))
    if result.returncode != 0:
        raise RuntimeError(f"{case}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else '?'}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_round(index: int) -> dict[str, dict]:
    """One round: each case in a fresh interpreter, the order alternating between rounds."""
    order = list(_CASES) if index % 2 == 0 else list(reversed(_CASES))
    return {case: _run(case) for case in order}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="fresh-interpreter pairs (median reported)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output folder")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds, *_quick files")
    args = parser.parse_args(argv)
    rounds = QUICK_ROUNDS if args.quick else args.rounds
    if rounds < 1:
        parser.error("--rounds must be >= 1")
    results = [measure_round(i) for i in range(rounds)]
    pe = [r["pe_alex"]["seconds"] for r in results]
    tv = [r["torchvision"]["seconds"] for r in results]
    ratios = [a / b for a, b in zip(pe, tv, strict=True)]
    closure = results[-1]["pe_alex"]
    rows = [{"round": i, "pe_alex_s": a, "torchvision_alexnet_s": b, "ratio": a / b,
             "closure_files": r["pe_alex"]["files"], "closure_lines": r["pe_alex"]["lines"],
             "analysis_modules": len(r["pe_alex"]["analysis_modules"])}
            for i, (a, b, r) in enumerate(zip(pe, tv, results, strict=True))]
    ratio = statistics.median(ratios)
    summary = [{"case": "PEDistance(\"pe_alex\") (import pe_iqa included)", "median_s": statistics.median(pe),
                "min_s": min(pe), "max_s": max(pe)},
               {"case": "torchvision alexnet(weights=\"DEFAULT\") (import torchvision included)",
                "median_s": statistics.median(tv), "min_s": min(tv), "max_s": max(tv)}]
    verdict = "meets" if ratio <= GOAL_RATIO else "misses"
    sections = [
        "## Building the metric (fresh interpreter, after `import torch`; wall clock)",
        markdown_table(summary, ["case", "median_s", "min_s", "max_s"], digits=3),
        f"Median of the per-round ratios: **{ratio:.2f}×** over {rounds} rounds (goal ≤ {GOAL_RATIO}×: {verdict}). "
        f"Rounds alternate which interpreter starts first; on a shared machine only the ratio means anything.",
        "## Import closure of `PEDistance` (pe_iqa modules loaded after building `pe_alex`)",
        f"{closure['files']} files, {closure['lines']} lines; PE analysis modules loaded: "
        f"{closure['analysis_modules'] or 'none'}.",
        "Modules: " + ", ".join(f"`{m.lstrip('/')}`" for m in closure["modules"]),
    ]
    name = "construction_time_quick" if args.quick else "construction_time"
    paths = write_report(name, args.out, rows, "Building the default metric", sections,
                         environment_info("cpu", extra={"rounds": rounds}))
    print(f"pe_alex {statistics.median(pe):.3f} s, torchvision AlexNet {statistics.median(tv):.3f} s, "
          f"ratio {ratio:.2f} (goal <= {GOAL_RATIO}); closure {closure['files']} files / {closure['lines']} lines; "
          f"analysis modules: {closure['analysis_modules'] or 'none'}; wrote {paths.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
