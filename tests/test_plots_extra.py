"""matplotlib is the ``plots`` extra: the core works without it, and what draws a figure says so in one line
before any work (issue 20.3). Run in a subprocess where ``import matplotlib`` fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_puts_matplotlib_in_the_plots_extra_only() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    core = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "matplotlib" not in core
    assert 'plots = ["matplotlib>=3.7"]' in text
    test_extra = text.split("\ntest = [", 1)[1].split("]", 1)[0]
    assert "matplotlib" in test_extra  # the tests draw figures


@pytest.mark.slow
def test_without_matplotlib_the_core_scores_and_figures_fail_in_one_line(alexnet_weights_available: bool,
                                                                          tmp_path: Path) -> None:
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME")
    code = textwrap.dedent(f"""
        import contextlib, io, sys
        sys.modules["matplotlib"] = None  # import matplotlib -> ImportError, as when it is not installed
        import torch
        import pe_iqa, pe_iqa.explain, pe_iqa.explain_figures, pe_iqa.plotting, pe_iqa.scoring.maps
        from pe_iqa import PEDistance
        from pe_iqa.cli import main
        from pe_iqa.explain import explain_pair
        reference = torch.rand(1, 3, 64, 64)
        metric = PEDistance("pe_alex")
        why = explain_pair(metric, (reference + 0.1).clamp(0, 1), reference, top=3)
        assert why.score > 0 and len(why.contributions) > 0
        tmp = {str(tmp_path)!r}
        for args in (["plot", "alexnet", "--layers", "relu1", "--out-dir", tmp + "/figures"],
                     ["explain", "--sample", "blur_2", "--figure", tmp + "/why.png"],
                     ["score", "--sample", "--maps", tmp + "/maps", "--no-progress"]):
            err, out = io.StringIO(), io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                status = main(args)
            lines = err.getvalue().strip().splitlines()
            assert status == 1, (args, status, lines)
            assert len(lines) == 1 and "pip install 'pe-iqa[plots]'" in lines[0], (args, lines)
            assert lines[0].startswith(f"pe-iqa {{args[0]}}: error: figures need matplotlib"), lines
            assert not out.getvalue(), out.getvalue()  # refused before any work: nothing measured or scored
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
    assert not (tmp_path / "why.png").exists() and not (tmp_path / "maps").exists()
