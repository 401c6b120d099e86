"""The README's two commands work as written, in the order the README gives them (issue 20.1).

The block under "The two commands" is read from the README itself: its main command is run on the bundled sample,
its test commands must be what ``.ci/run`` runs, and the tests must need no environment variable.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _section_block(title: str, level: int = 2) -> list[str]:
    """The command lines (no comments, no blanks) of the first fenced block under the README heading ``title``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    marks = "#" * level
    section = text.split(f"\n{marks} {title}\n", 1)[1].split(f"\n{marks} ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, f"no bash block under '## {title}'"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def _two_commands() -> tuple[str, list[str]]:
    lines = _section_block("The two commands")
    main = [line for line in lines if line.startswith("pe-iqa ")]
    tests = [line for line in lines if line.startswith("python -m pytest")]
    assert len(main) == 1 and tests and len(main) + len(tests) == len(lines), lines
    return main[0], tests


def test_the_install_section_installs_what_the_test_command_needs_before_it() -> None:
    """Issue 27: the CPU-or-GPU choice comes first (the CPU wheel index before pe-iqa), then the developer install."""
    install = _section_block("Install")
    assert install == ["pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu",
                       'pip install -e ".[test]"'], install
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Install\n", 1)[1]
    assert section.index("CPU only") < section.index("NVIDIA GPU") < section.index("```bash")
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.index('pip install -e ".[test]"') < text.index("python -m pytest")
    extras = (REPO / "pyproject.toml").read_text(encoding="utf-8").split('test = [', 1)[1].split("]", 1)[0]
    for needed in ("pytest", "hypothesis", "torchmetrics", "pyiqa", "lpips"):  # what the test modules import
        assert f'"{needed}' in extras, needed


def test_ci_runs_the_readme_test_command_verbatim_and_sets_no_environment() -> None:
    _, tests = _two_commands()
    full = [command for command in tests if " -m " not in command.replace("python -m pytest", "", 1)]
    assert len(full) == 1, tests  # one full run; the others are tiers of it
    for command in tests:
        assert command.startswith(full[0]), command  # a tier is the full command plus a selection
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert full[0] in ci  # a line of its own, exactly as the README writes it
    installs = [re.search(r'-e "\.\[([a-z,]+)\]"', line) for line in ci if not line.startswith("#")]
    extras = [set(found.group(1).split(",")) for found in installs if found]
    assert extras and {"test", "docs"} <= extras[0], extras  # the tests' extra, and the docs build's
    exported = [line for line in ci if re.match(r"\s*export\s", line)]
    assert not exported, exported  # the test command must not need what only CI knows


def test_probe_the_shared_defaults(torch_home: Path, live_root: Path) -> None:
    """Run alone by the test below, in an environment without the variables."""
    assert (torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth").is_file()
    assert (live_root / "labels" / "live_dmos.csv").is_file()


@pytest.mark.slow
def test_the_tests_find_shared_weights_and_data_without_environment_variables() -> None:
    if not (SHARED / "torch_home").is_dir() or not (SHARED / "data" / "LIVE").is_dir():
        pytest.skip(f"no {SHARED} beside this checkout")
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("TORCH_HOME", "PE_IQA_LIVE_ROOT", "HF_HUB_OFFLINE", "PE_IQA_CACHE")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                             f"{Path(__file__).relative_to(REPO)}::test_probe_the_shared_defaults"],
                            cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout and "skipped" not in result.stdout


@pytest.mark.slow
def test_the_main_command_runs_as_written_on_the_bundled_sample(torch_home: Path) -> None:
    pytest.importorskip("pyiqa")
    if not (torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth").is_file():
        pytest.skip(f"pretrained AlexNet weights not in {torch_home} (the README's export TORCH_HOME=...)")
    main, _ = _two_commands()
    words = shlex.split(main)
    program = shutil.which(words[0])  # the installed script; a bare checkout runs the same command line as a module
    command = [program, *words[1:]] if program else [sys.executable, "-m", "pe_iqa", *words[1:]]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    header = result.stdout.splitlines()[1].split()
    assert header == ["image", "pe_alex", "lpips", "ssim"]
    assert re.search(r"^mean \(6 pairs\)(\s+\d\.\d{6}){3}$", result.stdout, re.MULTILINE), result.stdout
    assert "Traceback" not in result.stderr


def test_ci_builds_the_documentation_site_with_warnings_as_errors() -> None:
    ci = [line for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    build = [line for line in ci if line.startswith("python -m sphinx ")]
    assert len(build) == 1, build
    words = build[0].split()
    assert "-W" in words and words[-2:] == ["docs", "docs/_build/html"] and "html" in words
    assert ci.index(build[0]) < ci.index("python -m pytest -q")  # a broken site fails CI before the long tests
    extras = (REPO / "pyproject.toml").read_text(encoding="utf-8").split("\ndocs = [", 1)[1].split("]", 1)[0]
    for needed in ("sphinx", "myst-parser", "furo"):
        assert f'"{needed}' in extras, needed
    conf = (REPO / "docs" / "conf.py").read_text(encoding="utf-8")
    assert "sphinx.ext.intersphinx" not in conf  # the build fetches nothing


@pytest.mark.slow  # four commands on the bundled sample
def test_the_command_line_quickstart_runs_as_written_on_the_sample_as_the_readers_folders(
        torch_home: Path, tmp_path: Path) -> None:
    """Issue 27: the README's command-line quickstart, run line by line where its folders and manifest are the
    bundled sample's pairs."""
    pytest.importorskip("pyiqa")
    if not (torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth").is_file():
        pytest.skip(f"pretrained AlexNet weights not in {torch_home}")
    sample = REPO / "src" / "pe_iqa" / "sample"
    for part in ("distorted", "reference"):
        shutil.copytree(sample / part, tmp_path / part)
    names = sorted(p.name for p in (sample / "distorted").glob("*.png"))
    (tmp_path / "pairs.csv").write_text("distorted,reference\n" + "".join(f"distorted/{n},reference/{n}\n"
                                                                        for n in names), encoding="utf-8")
    lines = _section_block("Command line", level=3)
    assert [shlex.split(line)[1] for line in lines] == ["score", "score", "explain", "rank"]
    for line in lines:
        words = shlex.split(line.split("  #", 1)[0])
        program = shutil.which(words[0])
        command = [program, *words[1:]] if program else [sys.executable, "-m", "pe_iqa", *words[1:]]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (line, result.stderr[-3000:])
        assert "Traceback" not in result.stderr, line
        for word in words:
            if word.endswith(".csv") and word != "pairs.csv":
                rows = (tmp_path / word).read_text(encoding="utf-8").splitlines()
                assert len(rows) == 1 + len(names), (line, rows)
