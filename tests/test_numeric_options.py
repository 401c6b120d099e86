"""Option values that overflow or underflow are refused at construction, or computed right (issue 19, item 6/14)."""

from __future__ import annotations

import warnings

import pytest
import torch

from pe_iqa import DistanceSpec, PEContextualLoss, PEDistance
from pe_iqa.input_checks import check_image_pair


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_huge_layer_weights_normalise_like_equal_weights() -> None:
    spec = DistanceSpec("alexnet", ["relu1", "relu2"], weights="random", layer_weights=(1e308, 1e308))
    assert spec.layer_weights == (0.5, 0.5)
    torch.manual_seed(0)
    x, y = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    huge = PEDistance(spec)(x, y)
    equal = PEDistance(spec.replace(layer_weights=(1, 1)))(x, y)
    assert float(huge) > 0
    assert torch.equal(huge, equal)


def test_ordinary_layer_weights_keep_their_digits() -> None:
    spec = DistanceSpec("alexnet", ["relu1", "relu2"], layer_weights=(3, 1))
    assert spec.layer_weights == (3 / 4, 1 / 4)


@pytest.mark.parametrize("data_range", [1e-300, 5e-324, 1e300, 1e-7])
def test_extreme_data_range_refused(data_range: float) -> None:
    with pytest.raises(ValueError, match="data_range must be a number from"):
        DistanceSpec(data_range=data_range)
    with pytest.raises(ValueError, match="data_range must be a number from"):
        check_image_pair(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), data_range=data_range)


@pytest.mark.parametrize("options", [{"bandwidth": float("inf")}, {"bandwidth": 1e-300}, {"eps": 1e-300},
                                     {"eps": float("inf")}, {"bandwidth": float("nan")}])
def test_contextual_loss_refuses_non_finite_or_denormal_options(options: dict) -> None:
    name = next(iter(options))
    with pytest.raises(ValueError, match=name):
        PEContextualLoss(weights="random", layers=["relu1"], **options)


def test_unit_data_with_data_range_255_warns() -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.warns(UserWarning, match="look like \\[0, 1\\] images; pass data_range=1"):
        check_image_pair(x, x.clamp(0.1, 0.9), data_range=255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_image_pair(x * 255, x * 200, data_range=255)  # real [0, 255] data: quiet
        check_image_pair(x * 0, x * 0, data_range=255)  # all black: nothing to say
