"""A command line that answers at once (issue 27): ``--help``, every subcommand's ``--help``, ``--version`` and
usage errors import no torch (about 2 s of CPU before any answer, 10 s on a busy machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(arguments: list[str], env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run ``python -X importtime -m pe_iqa ARGS``: its exit status and the top-level names of what it imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "pe_iqa", *arguments], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=ROOT, timeout=120)
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return done.returncode, modules


@pytest.mark.parametrize(("arguments", "status"), [
    (["--help"], 0), (["--version"], 0), ([], 2),
    (["score", "--help"], 0), (["rank", "--help"], 0), (["plot", "--help"], 0), (["layers", "--help"], 0),
    (["explain", "--help"], 0),
    (["score", "--bogus"], 2), (["explain", "nosuch"], 2), (["rank"], 2), (["score", "--workers", "-1"], 2),
    (["bogus"], 2),
])
def test_help_and_usage_errors_import_no_torch(arguments, status) -> None:
    code, modules = _imported_modules(arguments)
    assert code == status
    assert "pe_iqa" in modules and "torch" not in modules and "numpy" not in modules


def test_a_bad_environment_value_is_refused_before_torch_loads() -> None:
    code, modules = _imported_modules(["explain", "--sample", "blur_2"], {"PE_IQA_MEMORY_BUDGET_GB": "-3"})
    assert code == 2 and "torch" not in modules


def test_the_parser_shows_the_cores_names() -> None:
    """The parser's copies of the core's names (``pe_iqa.cli.choices``) equal the core's own."""
    from pe_iqa.cli import choices
    from pe_iqa.image_io import ALPHA_POLICIES
    from pe_iqa.presets import DEFAULT_METRIC, PRESETS

    assert choices.PRESET_NAMES == tuple(PRESETS)
    assert choices.DEFAULT_METRIC == DEFAULT_METRIC
    assert choices.ALPHA_POLICIES == ALPHA_POLICIES


def test_import_pe_iqa_alone_imports_no_torch() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys, pe_iqa; print('torch' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"
    done = subprocess.run([sys.executable, "-c", "from pe_iqa import PEDistance, PRESETS; print(len(PRESETS))"],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "3"
