"""What ``pe-iqa rank`` says while it works (issue 27): a progress bar with time left while tuning curves are
measured, and offline one line naming the ``--weights random`` flag, without torch hub's "Downloading" line."""

from __future__ import annotations

import io
import sys
import urllib.error
from typing import ClassVar

import pytest

from pe_iqa import AnalysisConfig
from pe_iqa.backbones import load_backbone
from pe_iqa.cli import main
from pe_iqa.cli.rank import _command_line_wording, loading_weights


class _RecordingBar:
    made: ClassVar[list[_RecordingBar]] = []

    def __init__(self, *args, total=None, unit="it", disable=False, **kwargs) -> None:
        self.total, self.unit, self.n = total, unit, 0
        _RecordingBar.made.append(self)

    def update(self, n: int = 1) -> None:
        self.n += n

    def __enter__(self) -> _RecordingBar:
        return self

    def __exit__(self, *exc) -> None:
        return None


def test_measuring_tuning_curves_shows_progress_per_stimulus(monkeypatch) -> None:
    """Ranking a new backbone printed "measuring the tuning curves … once" and then nothing for about 50 s (the
    bar had two steps, one per stimulus group, so no rate and no time left)."""
    from pe_iqa.analysis import tuning

    monkeypatch.setattr(tuning, "tqdm", _RecordingBar)
    _RecordingBar.made.clear()
    config = AnalysisConfig(size=32, n_frequencies=5, n_orientations=4, n_phases=2)
    net = load_backbone("alexnet", ["relu1"], weights="random")
    tuning.measure_tuning(net, config, batch_size=3, progress=True)
    (bar,) = _RecordingBar.made
    assert bar.unit == "image" and bar.total == (5 + 4) * 2 == bar.n


def test_offline_rank_names_the_flag_and_claims_no_download(monkeypatch, tmp_path, capsys) -> None:
    """The offline error suggested Python's ``weights='random'`` after torchvision's "Downloading: …" line."""
    import torch.hub

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "urlopen", offline)
    assert main(["rank", "resnet18", "--layers", "layer1", "--no-cache", "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert "Downloading" not in captured.out + captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "--weights random" in lines[0] and "weights='random'" not in lines[0], lines


def test_a_download_that_runs_is_announced_on_standard_error(monkeypatch) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with loading_weights():
        sys.stdout.write('Downloading: "https://x/y.pth" to /tmp/y.pth\n')
        sys.stderr.write("100%|##########| 1.00k/1.00k\n")
        print("table")
    assert out.getvalue() == "table\n"
    assert err.getvalue() == 'Downloading: "https://x/y.pth" to /tmp/y.pth\n100%|##########| 1.00k/1.00k\n'


@pytest.mark.parametrize(("library", "command_line"), [
    ("or pass weights='random' for an untrained network", "or pass --weights random for an untrained network"),
    ("and pass weights='/path/to/file.pth' (loaded with pretrained_cfg_overlay=dict(file=...)), or "
     "weights='random'.", "and pass --weights /path/to/file.pth, or --weights random."),
])
def test_weights_messages_use_the_flag(library, command_line) -> None:
    assert _command_line_wording(library) == command_line
