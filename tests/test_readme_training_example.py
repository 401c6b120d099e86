"""The plain-PyTorch training example of the losses guide (moved from the README) runs as printed (losses,
validation metric, training steps)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "losses.md"


def training_example() -> str:
    section = PAGE.read_text(encoding="utf-8").split("# PE as a training loss", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return next(block for block in blocks if "optimiser.step()" in block)


@pytest.mark.slow  # 8.6 s measured (full run, 2 shared cores)
def test_the_training_example_trains_and_validates(torch_home: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("torchmetrics")
    if not (torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth").is_file():
        pytest.skip("pretrained VGG-16 weights not in $TORCH_HOME")
    torch.manual_seed(0)
    namespace: dict = {}
    exec(compile(training_example(), str(PAGE), "exec"), namespace)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2
    values = [[float(v) for v in re.findall(r"\d+\.\d+", line)] for line in lines]
    assert all(len(v) == 2 and v[0] > 0 and 0 < v[1] < 1 for v in values)
    # the loss's backbone stayed frozen and the model learned something
    assert not any(p.requires_grad for p in namespace["perceptual"].parameters())
    assert all(p.grad is not None for p in namespace["model"].parameters())
