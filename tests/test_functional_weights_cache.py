"""``pe_distance``'s module cache follows the weights file, not only the spec (issue 25, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pe_iqa import PEDistance
from pe_iqa.backbones.specs import backbone_spec
from pe_iqa.backbones.weights import build_network
from pe_iqa.functional import pe_distance

OPTIONS = {"subset": "all", "layers": ["relu1"]}


def _write_weights(path: Path, seed: int) -> None:
    state = build_network(backbone_spec("alexnet"), f"random:{seed}").state_dict()
    save_file({k: v.contiguous() for k, v in state.items() if not k.startswith("classifier.")}, str(path))


@pytest.mark.slow  # tuning curves of two random AlexNets' relu1 measured (~6 s each on 2 shared cores)
def test_a_weights_file_rewritten_in_place_is_not_served_from_the_cache(tmp_path: Path) -> None:
    """A rewritten file returned the old module's value (.04508 vs .04594 fresh)."""
    path = tmp_path / "w.safetensors"
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(1, 3, 64, 64, generator=generator), torch.rand(1, 3, 64, 64, generator=generator)
    _write_weights(path, 1)
    first = float(pe_distance(x, y, "pe_alex", weights=str(path), **OPTIONS))
    assert float(pe_distance(x, y, "pe_alex", weights=str(path), **OPTIONS)) == first  # unchanged file: cached
    _write_weights(path, 2)
    fresh = float(PEDistance("pe_alex", weights=str(path), **OPTIONS)(x, y))
    assert fresh != first
    assert float(pe_distance(x, y, "pe_alex", weights=str(path), **OPTIONS)) == pytest.approx(fresh, rel=1e-6)
