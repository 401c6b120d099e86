"""Property-based tests of the PE distance: a metric-like function that scores each image on its own.

Properties (for every size 32–72 px, batch 1–3, random/smooth/constant images, with and without channel_norm):

* ``d(x, x) = 0`` and ``d(x, y) ≥ 0``;
* symmetry ``d(x, y) = d(y, x)``: both images go through the same frozen network, the per-position channel
  normalisation depends on one image only, and every term is a weighted squared difference
  ``w_m (φ_m(x) − φ_m(y))²`` — nothing distinguishes the "distorted" from the "reference" argument;
* batch-split invariance (``reduction="none"``): scoring a batch equals scoring each pair alone (to 1e-6:
  convolutions may pick another algorithm per batch size);
* per-image independence: changing one pair of a batch leaves the other scores unchanged.

A random-weights AlexNet (relu1–relu3, H-25) keeps this fast; the properties do not depend on the weights.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pe_iqa import PEDistance
from pe_iqa.backbones import load_backbone

# every property runs AlexNet on many generated pairs (0.6–30 s each in a full run on 2 shared cores)
pytestmark = pytest.mark.slow

LAYERS = ["relu1", "relu2", "relu3"]
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


@cache
def metric(channel_norm: bool) -> PEDistance:
    """A per-image (``reduction="none"``) PE distance on a shared random AlexNet."""
    return PEDistance(backbone=_backbone(), layers=LAYERS, top_percent=25, channel_norm=channel_norm, reduction="none")


@cache
def _backbone():
    return load_backbone("alexnet", LAYERS, weights="random:7")


def make_images(kind: str, n: int, height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if kind == "constant":
        return torch.rand(n, 3, 1, 1, generator=generator).expand(n, 3, height, width).contiguous()
    if kind == "smooth":
        coarse = torch.rand(n, 3, 4, 4, generator=generator)
        return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return torch.rand(n, 3, height, width, generator=generator)


@st.composite
def image_pairs(draw: st.DrawFn, max_batch: int = 3) -> tuple[torch.Tensor, torch.Tensor, bool]:
    n = draw(st.integers(1, max_batch))
    height, width = draw(st.integers(32, 72)), draw(st.integers(32, 72))
    kinds = st.sampled_from(["random", "smooth", "constant"])
    x = make_images(draw(kinds), n, height, width, draw(st.integers(0, 2**16)))
    y = make_images(draw(kinds), n, height, width, draw(st.integers(0, 2**16)))
    return x, y, draw(st.booleans())


@SETTINGS
@given(image_pairs())
def test_zero_on_identical_inputs(case) -> None:
    x, _, channel_norm = case
    assert torch.all(metric(channel_norm)(x, x.clone()) == 0)


@SETTINGS
@given(image_pairs())
def test_non_negative(case) -> None:
    x, y, channel_norm = case
    d = metric(channel_norm)(x, y)
    assert torch.isfinite(d).all() and (d >= 0).all()


@SETTINGS
@given(image_pairs())
def test_symmetric(case) -> None:
    x, y, channel_norm = case
    d = metric(channel_norm)
    torch.testing.assert_close(d(x, y), d(y, x), rtol=1e-6, atol=1e-9)


@SETTINGS
@given(image_pairs())
def test_batch_split_invariance(case) -> None:
    x, y, channel_norm = case
    d = metric(channel_norm)
    alone = torch.cat([d(x[i:i + 1], y[i:i + 1]) for i in range(x.shape[0])])
    torch.testing.assert_close(d(x, y), alone, rtol=0, atol=1e-6)


@SETTINGS
@given(image_pairs(max_batch=3), st.integers(0, 2), st.integers(0, 2**16))
def test_per_image_independence(case, which: int, seed: int) -> None:
    x, y, channel_norm = case
    d = metric(channel_norm)
    which = which % x.shape[0]
    changed = x.clone()
    changed[which] = make_images("random", 1, x.shape[2], x.shape[3], seed)[0]
    before, after = d(x, y), d(changed, y)
    others = [i for i in range(x.shape[0]) if i != which]
    torch.testing.assert_close(after[others], before[others], rtol=0, atol=1e-6)
