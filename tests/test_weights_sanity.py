"""Weights that load but cannot measure anything are refused (issue 19, item 5): wrong dtype, NaN/Inf, a layer all
zeros or scaled by 1e30."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pe_iqa import PEDistance
from pe_iqa.backbones import BrokenWeightsError, WeightsMismatchError, load_backbone
from pe_iqa.backbones.specs import backbone_spec
from pe_iqa.backbones.weights import build_network


@pytest.fixture(scope="module")
def alexnet_state() -> dict[str, torch.Tensor]:
    state = build_network(backbone_spec("alexnet"), "random:3").state_dict()
    return {k: v.clone().contiguous() for k, v in state.items() if not k.startswith("classifier.")}


def _save(tmp_path: Path, state: dict[str, torch.Tensor], name: str) -> str:
    path = tmp_path / name
    save_file(state, str(path))
    return str(path)


def test_int8_weights_are_refused(alexnet_state, tmp_path) -> None:
    int8 = {k: (v * 100).round().clamp(-128, 127).to(torch.int8) for k, v in alexnet_state.items()}
    with pytest.raises(WeightsMismatchError, match="another kind of dtype"):
        load_backbone("alexnet", ["relu3"], weights=_save(tmp_path, int8, "int8.safetensors"))


def test_non_finite_weights_are_refused(alexnet_state, tmp_path) -> None:
    broken = dict(alexnet_state, **{"features.3.weight": alexnet_state["features.3.weight"] * float("nan")})
    with pytest.raises(WeightsMismatchError, match="NaN or infinite"):
        load_backbone("alexnet", ["relu3"], weights=_save(tmp_path, broken, "nan.safetensors"))


@pytest.mark.parametrize(("change", "problem"), [(0.0, "all zeros"), (1e30, "non-finite|values up to")])
def test_a_layer_that_cannot_respond_is_refused_with_its_name(alexnet_state, tmp_path, change, problem) -> None:
    """Every pair, random against random included, scored 0.0 with such weights."""
    state = dict(alexnet_state)
    state["features.3.weight"] = alexnet_state["features.3.weight"] * change
    state["features.3.bias"] = alexnet_state["features.3.bias"] * change
    path = _save(tmp_path, state, f"x{change:g}.safetensors")
    with pytest.raises(BrokenWeightsError, match=rf"layer relu2 responds to test images with ({problem})"):
        PEDistance("pe_alex", weights=path, layers=["relu2", "relu3"])


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_sane_weights_load(alexnet_state, tmp_path) -> None:
    half = {k: v.half() for k, v in alexnet_state.items()}  # float16 files are floating point: accepted
    backbone = load_backbone("alexnet", ["relu1", "relu5"], weights=_save(tmp_path, half, "half.safetensors"))
    assert backbone(torch.rand(1, 3, 64, 64))["relu5"].abs().max() > 0


def test_a_layer_whose_responses_ignore_the_image_is_refused(alexnet_state, tmp_path) -> None:
    """Issue 25, item 3: zero ``features.6.weight`` with positive biases passed the probe (each channel constant,
    channels different) and every pair scored 0.0."""
    state = dict(alexnet_state)
    state["features.6.weight"] = torch.zeros_like(alexnet_state["features.6.weight"])
    state["features.6.bias"] = torch.linspace(0.1, 1.0, alexnet_state["features.6.bias"].numel())
    path = _save(tmp_path, state, "constant_relu3.safetensors")
    with pytest.raises(BrokenWeightsError, match=r"layer relu3 responds to test images with the same values "
                                                 r"whatever the image"):
        load_backbone("alexnet", ["relu1", "relu3"], weights=path)
