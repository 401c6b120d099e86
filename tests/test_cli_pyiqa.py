"""The command line and pyiqa: the core never imports it, its metrics come through the plugin's entry points,
and every pyiqa failure a user can cause is one line (issue 10.7, issue 11.5 and 11.7)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import urllib.error
from pathlib import Path

import pytest
import torch
from tests.fixtures.sample_pairs import copy_sample_pair

from pe_iqa import PEDistance
from pe_iqa.cli import main
from pe_iqa.image_io import read_pair

TOL = 1e-6

_BLOCK_PYIQA = textwrap.dedent("""
    import sys

    class BlockPyiqa:  # behaves as if pyiqa were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "pyiqa" or name.startswith("pyiqa."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, BlockPyiqa())
    from pe_iqa.cli import main
    status = main(sys.argv[1:])
    assert "pyiqa" not in sys.modules
    sys.exit(status)
""")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return copy_sample_pair("jpeg_2.png", tmp_path_factory.mktemp("one"))


def _without_pyiqa(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK_PYIQA, *arguments], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow  # 7.5 s measured (full run, 2 shared cores)
def test_the_core_never_imports_pyiqa() -> None:
    code = "import sys, pe_iqa, pe_iqa.cli, pe_iqa.scoring, pe_iqa.image_io; assert 'pyiqa' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 0


@pytest.mark.slow  # 60.5 s measured (full run, 2 shared cores)
def test_without_pyiqa_presets_score_and_pyiqa_metrics_name_the_extra() -> None:
    """Issue 11.5: the README's main command must work after the install the README gives for it."""
    presets = _without_pyiqa("score", "--sample", "pe_alex", "--device", "cpu")
    assert presets.returncode == 0, presets.stderr
    assert "mean (6 pairs)" in presets.stdout
    missing = _without_pyiqa("score", "--sample", "lpips", "--device", "cpu")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].endswith("pip install 'pe-iqa[pyiqa]'")
    assert "Traceback" not in missing.stderr and "lpips" in missing.stderr
    command = _without_pyiqa("pyiqa", "pe_alex", "-t", "x.png", "-r", "y.png")
    assert command.returncode == 1 and "Traceback" not in command.stderr
    assert command.stderr.strip().splitlines() == [
        "pe-iqa pyiqa: error: `pe-iqa pyiqa` needs the 'pyiqa' extra, which is not installed "
        "(No module named 'pyiqa'): pip install 'pe-iqa[pyiqa]'"
    ]


@pytest.mark.slow  # 4.6 s measured (full run, 2 shared cores)
def test_score_pyiqa_metrics_equal_pyiqa(capsys, pair) -> None:
    pyiqa = pytest.importorskip("pyiqa")
    assert main(["score", "-t", str(pair[0]), "-r", str(pair[1]), "lpips", "ssim", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "Loading pretrained" not in captured.out  # pyiqa's loading messages go to stderr
    mean = next(line.split() for line in captured.out.splitlines() if line.startswith("mean"))
    images = read_pair(*pair)
    for column, name in ((-2, "lpips"), (-1, "ssim")):
        metric = pyiqa.create_metric(name, device="cpu")
        assert float(mean[column]) == pytest.approx(float(metric(*images)), abs=TOL)
    assert "lower = better: lpips; higher = better: ssim" in captured.out


@pytest.mark.slow  # 2.8 s measured (full run, 2 shared cores)
def test_pyiqa_command_runs_pyiqa_cli_with_pe_metrics(capsys, pair) -> None:
    pytest.importorskip("pyiqa")
    argv = list(sys.argv)
    assert main(["pyiqa", "pe_alex", "-t", str(pair[0]), "-r", str(pair[1]), "--device", "cpu"]) == 0
    assert sys.argv == argv
    match = re.search(r"'mean': (?:np\.float64\()?([-+0-9.eE]+)", capsys.readouterr().out)
    assert match, "pyiqa's CLI printed no mean"
    with torch.inference_mode():
        expected = float(PEDistance("pe_alex", device="cpu")(*read_pair(*pair)))
    assert float(match.group(1)) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize(("args", "message", "code"), [
    ([], "usage: pe-iqa pyiqa METRIC", 2),
    (["pe_foo", "-t", "{d}"], "unknown metric(s) 'pe_foo'", 2),
    (["pe_alex"], "give the images to score with -t DIST", 2),
    (["pe_alex", "-t", "{tmp}/none.png"], "-t {tmp}/none.png: no such file or folder", 2),  # issue 25.15
])
def test_pyiqa_command_errors_are_one_line(capsys, tmp_path, pair, args, message, code) -> None:
    """Issue 10.7: ``pe-iqa pyiqa pe_foo`` ended in an AssertionError, ``pe-iqa pyiqa`` in a TypeError."""
    pytest.importorskip("pyiqa")
    assert main(["pyiqa", *(a.format(d=pair[0], tmp=tmp_path) for a in args)]) == code
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """pyiqa's weight folder is empty and downloads fail as they do without a network."""
    download_util = pytest.importorskip("pyiqa.utils.download_util")

    def no_network(url, destination, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download_util, "DEFAULT_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(download_util, "download_url_to_file", no_network)
    return tmp_path / "empty"


@pytest.mark.slow  # 2.7 s measured (full run, 2 shared cores)
def test_an_offline_pyiqa_metric_names_the_metric_and_the_weight_file(capsys, pair, offline) -> None:
    """Issue 11.7: a bare ``<urlopen error …>`` named neither the metric nor the file."""
    assert main(["score", "-t", str(pair[0]), "-r", str(pair[1]), "lpips", "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    err = [line for line in captured.err.strip().splitlines() if line and not line.startswith("Downloading: ")]
    assert len(err) == 1 and "Traceback" not in captured.err and captured.out == ""  # pyiqa's own line aside
    assert err[0].startswith("pe-iqa score: error: pyiqa metric 'lpips' needs the weight file "
                             "LPIPS_v0.1_alex-df73285e.pth")
    assert f"expected at {offline / 'LPIPS_v0.1_alex-df73285e.pth'}" in err[0]
    assert "Temporary failure in name resolution" in err[0] and err[0].endswith("internet access")
    assert main(["pyiqa", "lpips", "-t", str(pair[0]), "-r", str(pair[1]), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pe-iqa pyiqa: error: pyiqa metric 'lpips' needs the weight file LPIPS_v0.1_alex")
