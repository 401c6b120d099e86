"""pyiqa's own API and command line know the PE presets in a fresh interpreter, without an extra import (issue 12.6).

Everything runs in subprocesses: the hook acts at interpreter start-up (``pe_iqa_pyiqa.pth``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import torch

pytest.importorskip("pyiqa")

import pe_iqa_pyiqa_autoregister as hook
from pe_iqa import PEDistance
from pe_iqa.cli import SAMPLE_DIR
from pe_iqa.image_io import read_pair
from pe_iqa_pyiqa_autoregister.build_pth import PTH_LINE, PTH_NAME

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != hook.OPT_OUT_ENV}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, env=environment)


def _installed_pth() -> Path | None:
    """The .pth in this interpreter's site-packages, if pe-iqa was installed (wheel or editable) here."""
    for distribution in metadata.distributions():
        if distribution.metadata["Name"] == "pe-iqa":
            found = [f for f in distribution.files or [] if f.name == PTH_NAME and len(f.parts) == 1]
            if found:
                return Path(found[0].locate())
    return None


def test_the_installed_pth_file_is_the_hook_line() -> None:
    pth = _installed_pth()
    if pth is None:
        pytest.skip("pe-iqa is not installed with its .pth (e.g. run from a bare checkout)")
    assert pth.read_text(encoding="utf-8") == PTH_LINE
    assert pth.parent.name in ("site-packages", "dist-packages")


@pytest.mark.slow  # 6.0 s measured (full run, 2 shared cores)
def test_a_fresh_interpreter_knows_the_presets_without_an_extra_import() -> None:
    result = _python("""
        import sys
        assert "pe_iqa_pyiqa_autoregister" in sys.modules  # installed by the .pth at start-up
        assert "pe_iqa" not in sys.modules and "torch" not in sys.modules  # and nothing else was imported
        import pyiqa, torch
        assert "pe_alex" in pyiqa.list_models(metric_mode="FR")
        metric = pyiqa.create_metric("pe_alex", device="cpu")
        x = torch.rand(1, 3, 64, 64)
        assert float(metric(x, x)) == 0.0 and metric.lower_better
        assert not any("autoregister" in repr(f) for f in sys.meta_path)  # the finder removed itself
        print("ok")
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.slow  # 9.8 s measured (full run, 2 shared cores)
def test_the_opt_out_variable_leaves_pyiqa_alone() -> None:
    result = _python("""
        import pyiqa
        assert "pe_alex" not in pyiqa.list_models()
        import pe_iqa_pyiqa  # explicit registration still works
        assert "pe_alex" in pyiqa.list_models()
        print("ok")
    """, **{hook.OPT_OUT_ENV: "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    late = _python("""
        import os
        os.environ["PE_IQA_PYIQA_AUTOREGISTER"] = "off"  # also read when pyiqa is imported
        import pyiqa
        assert "pe_alex" not in pyiqa.list_models()
    """)
    assert late.returncode == 0, late.stderr[-3000:]


@pytest.mark.slow  # 4.2 s measured (full run, 2 shared cores)
def test_a_failing_hook_warns_and_never_breaks_pyiqa() -> None:
    result = _python("""
        import sys, warnings
        sys.modules["pe_iqa_pyiqa"] = None  # makes `import pe_iqa_pyiqa` fail inside the hook
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import pyiqa
        assert "lpips" in pyiqa.list_models() and "pe_alex" not in pyiqa.list_models()
        assert any("could not add its metrics" in str(w.message) for w in caught), caught
        print("ok")
    """)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow  # 6.6 s measured (full run, 2 shared cores)
def test_pyiqa_command_line_scores_pe_alex_like_the_core() -> None:
    script = Path(sys.executable).with_name("pyiqa")
    if not script.is_file():
        pytest.skip("pyiqa's console script is not installed here")
    dist, ref = SAMPLE_DIR / "distorted" / "noise_2.png", SAMPLE_DIR / "reference" / "noise_2.png"
    environment = {k: v for k, v in os.environ.items() if k != hook.OPT_OUT_ENV}
    result = subprocess.run([str(script), "pe_alex", "-t", str(dist), "-r", str(ref), "--device", "cpu"],
                            capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"'mean': (?:np\.float64\()?([-+0-9.eE]+)", result.stdout)
    assert match, result.stdout
    with torch.inference_mode():
        expected = float(PEDistance("pe_alex", device="cpu")(*read_pair(dist, ref)))
    assert float(match.group(1)) == pytest.approx(expected, abs=1e-7)


def test_the_finder_answers_only_for_pyiqa_configs() -> None:
    finder = hook._Finder()
    for name in ("os", "pyiqa", "pyiqa.default_model_configs_x", "numpy.core"):
        assert finder.find_spec(name) is None


@pytest.mark.parametrize(("flags", "installed"), [(["-S"], True), (["-I", "-S"], False)])
def test_isolated_mode_skips_the_hook(flags: list[str], installed: bool) -> None:
    """Issue 20.8: the README said ``python -I`` skips the hook, but Python processes ``.pth`` lines under ``-I``
    and the finder was installed. ``-S`` keeps the installed ``.pth`` out, so the hook under test is this
    checkout's, run by hand as the ``.pth`` line runs it."""
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'plugins')!r}); import pe_iqa_pyiqa_autoregister as h; "
            "h.install(); print(any(type(f).__name__ == '_Finder' for f in sys.meta_path))")
    result = subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(installed)


def test_the_pth_line_is_silent_without_the_hook_package(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-S", "-I", "-c", f"exec({PTH_LINE!r}); print('started')"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "started" and done.stderr == ""


def test_a_broken_hook_package_costs_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Issue 19.13: a SyntaxError in the hook printed a traceback at every Python start-up."""
    broken = tmp_path / "pe_iqa_pyiqa_autoregister"
    broken.mkdir()
    (broken / "__init__.py").write_text("def install(:\n", encoding="utf-8")
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); exec({PTH_LINE!r}); print('started')"
    done = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "started"
    assert done.stderr.startswith("pe-iqa: pyiqa hook disabled (SyntaxError") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_a_broken_hook_says_so_once_when_site_reads_the_pth_twice(tmp_path: Path) -> None:
    """Issue 25.16: the line appeared twice on Python 3.11, whose ``site`` processes the file twice where
    site-packages is reached through two paths (``lib64 → lib``)."""
    site_dir, linked = tmp_path / "lib", tmp_path / "lib64"
    broken = site_dir / "pe_iqa_pyiqa_autoregister"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('half installed')\n", encoding="utf-8")
    (site_dir / PTH_NAME).write_text(PTH_LINE, encoding="utf-8")
    linked.symlink_to(site_dir, target_is_directory=True)
    code = f"import site; site.addsitedir({str(site_dir)!r}); site.addsitedir({str(linked)!r}); print('started')"
    done = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "started"
    assert done.stderr == "pe-iqa: pyiqa hook disabled (RuntimeError: half installed)\n"


@pytest.mark.slow
def test_a_wheel_carries_the_pth_and_its_hook(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info next to pyproject.toml
    source.mkdir()
    for part in ("pyproject.toml", "README.md", "src", "plugins"):
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy
        copy(REPO / part, source / part, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (REPO / part).is_dir() else {}))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {built.stderr[-500:]}")
    (wheel,) = tmp_path.glob("pe_iqa-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert PTH_NAME in names  # at the root: installed into site-packages
        assert archive.read(PTH_NAME).decode() == PTH_LINE
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        assert any(line.startswith(f"{PTH_NAME},") for line in archive.read(record).decode().splitlines())
        assert "pe_iqa_pyiqa_autoregister/__init__.py" in names
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        archive.extractall(tmp_path / "site")
    assert "[pe_iqa.metrics]" in entry_points and "[pe_iqa.commands]" in entry_points
    check = subprocess.run(
        [sys.executable, "-S", "-c", f"import site, sys; site.addsitedir({str(tmp_path / 'site')!r}); "
         "import pe_iqa_pyiqa_autoregister as h; "
         f"assert h.__file__.startswith({str(tmp_path / 'site')!r}), h.__file__; "
         "assert any('autoregister' in repr(f) for f in sys.meta_path); print('ok')"],
        capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and check.stdout.strip() == "ok", check.stderr
