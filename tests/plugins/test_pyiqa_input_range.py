"""[0, 255] input through ``pyiqa.create_metric("pe_alex")`` gets pe-iqa's message, not pyiqa's bare assertion
(issue 27); every other pyiqa metric is checked as before."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("pyiqa")

import pyiqa

import pe_iqa_pyiqa  # noqa: F401  (registers the presets and the range check)
from pe_iqa_pyiqa.input_range import InputRangeError

OPTIONS = {"device": "cpu", "weights": "random", "layers": ["relu1"], "top_percent": 25}


def test_0_255_input_gets_pe_iqas_message_and_the_fix_works() -> None:
    metric = pyiqa.create_metric("pe_alex", **OPTIONS)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(InputRangeError) as error:
        metric(images * 255, images.flip(-1) * 255)
    assert isinstance(error.value, ValueError) and isinstance(error.value, AssertionError)
    message = str(error.value)
    assert "it looks like [0, 255] data" in message and "divide by 255" in message
    assert "pyiqa.create_metric('pe_alex', data_range=255, check_input_range=False)" in message
    fixed = pyiqa.create_metric("pe_alex", data_range=255, check_input_range=False, **OPTIONS)
    torch.testing.assert_close(fixed(images * 255, images.flip(-1) * 255), metric(images, images.flip(-1)),
                               rtol=1e-5, atol=1e-6)


def test_other_metrics_and_losses_are_checked_as_pyiqa_does() -> None:
    images = torch.rand(1, 3, 64, 64) * 255
    with pytest.raises(AssertionError, match="Input must be normalized to") as error:
        pyiqa.create_metric("psnr", device="cpu")(images, images)
    assert not isinstance(error.value, InputRangeError)
    loss = pyiqa.create_metric("pe_alex", as_loss=True, **OPTIONS)  # pyiqa skips its range check for losses
    assert float(loss(images, images)) == 0.0
