"""Distance maps and channel contributions: they add up to the score and point at where images differ."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pe_iqa import PRESETS, PEDistance
from pe_iqa.explain import explain_pair
from pe_iqa.explain_figures import explanation_figure
from pe_iqa.plotting import save_figure

pytestmark = pytest.mark.slow  # every test uses the three presets (module fixture, ~10 s)


def natural(size: tuple[int, int], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(size[0] // 6, 2), max(size[1] // 6, 2), generator=gen)
    detail = 0.15 * torch.rand(1, 3, *size, generator=gen)
    return (F.interpolate(coarse, size=size, mode="bicubic", align_corners=False) + detail).clamp(0, 1)


@pytest.fixture(scope="module")
def metrics(alexnet_weights_available: bool) -> dict[str, PEDistance]:
    if not alexnet_weights_available:
        pytest.skip("pretrained weights not in $TORCH_HOME")
    return {name: PEDistance(name, reduction="none") for name in PRESETS}


@pytest.mark.parametrize("size", [(64, 64), (67, 61), (97, 130)])
def test_maps_average_to_the_score_for_every_preset(metrics: dict[str, PEDistance], size: tuple[int, int]) -> None:
    reference = torch.cat([natural(size, 0), natural(size, 1)])
    noise = torch.randn(reference.shape, generator=torch.Generator().manual_seed(2))
    distorted = (reference + 0.08 * noise).clamp(0, 1)
    for name, metric in metrics.items():
        maps = metric.maps(distorted, reference)
        scores = metric(distorted, reference)
        torch.testing.assert_close(maps.scores, scores, rtol=1e-6, atol=1e-9)
        assert maps.combined.shape == (2, *size)
        torch.testing.assert_close(maps.combined.mean(dim=(1, 2)), scores, rtol=1e-5, atol=1e-9, msg=name)
        for layer in metric.layers:
            assert maps.layers[layer].shape == (2, *size)
            torch.testing.assert_close(maps.layers[layer].mean(dim=(1, 2)), maps.native[layer].mean(dim=(1, 2)),
                                       rtol=1e-5, atol=1e-9)
        assert bool((maps.combined >= 0).all())


def test_identical_images_give_zero_maps_and_zero_contributions(metrics: dict[str, PEDistance]) -> None:
    image = natural((80, 72), 3)
    metric = metrics["pe_alex"]
    maps = metric.maps(image, image)
    assert float(maps.combined.abs().max()) == 0.0 and float(maps.scores[0]) == 0.0
    why = explain_pair(metric, image, image)
    assert why.score == 0.0 and all(c.contribution == 0.0 and c.share == 0.0 for c in why.contributions)


@pytest.mark.parametrize("name", ["pe_alex", "pe_vgg"])
def test_a_blurred_patch_draws_the_map_to_the_patch(metrics: dict[str, PEDistance], name: str) -> None:
    reference = natural((160, 160), 4)
    blurred = F.avg_pool2d(F.pad(reference, (3, 3, 3, 3), mode="reflect"), 7, stride=1)
    distorted = reference.clone()
    distorted[..., 40:88, 96:144] = blurred[..., 40:88, 96:144]
    combined = metrics[name].maps(distorted, reference).combined[0]
    patch = torch.zeros(160, 160, dtype=torch.bool)
    patch[40:88, 96:144] = True
    inside, outside = float(combined[patch].mean()), float(combined[~patch].mean())
    assert inside > 5 * outside, (inside, outside)
    # the heat map's mass sits around the patch (receptive fields reach a little beyond it)
    around = torch.zeros_like(patch)
    around[24:104, 80:160] = True
    assert float(combined[around].sum()) > 0.8 * float(combined.sum())


def test_contributions_sum_to_the_score_and_describe_the_channels(metrics: dict[str, PEDistance]) -> None:
    reference = natural((96, 96), 5)
    distorted = (reference * 0.7 + 0.15).clamp(0, 1)
    metric = metrics["pe_alex"]
    why = explain_pair(metric, distorted, reference, top=3)
    assert why.score == pytest.approx(float(metric(distorted, reference)[0]), rel=1e-6)
    assert sum(c.contribution for c in why.contributions) == pytest.approx(why.score, rel=1e-5)
    assert sum(c.share for c in why.contributions) == pytest.approx(1.0, rel=1e-5)
    assert len(why.contributions) == len(metric.selected_channels()["relu3"]) == 38
    values = [c.contribution for c in why.contributions]
    assert values == sorted(values, reverse=True)
    ranking = metric.rankings["relu3"]
    first = why.contributions[0]
    assert first.pe == pytest.approx(float(ranking.pe[first.channel]))
    assert 1 <= first.pe_rank <= 38  # an H-10 channel ranks in the layer's top 10 %
    assert 0.5 <= first.preferred_frequency <= 16 and 0 <= first.preferred_orientation < 180
    assert set(why.channel_maps) == {(c.layer, c.channel) for c in why.contributions[:3]}
    for (layer, channel), channel_map in why.channel_maps.items():
        contribution = next(c for c in why.contributions if (c.layer, c.channel) == (layer, channel))
        assert channel_map.shape == (96, 96)
        assert float(channel_map.mean()) == pytest.approx(contribution.contribution, rel=1e-4)  # one layer
    assert set(first.as_dict()) >= {"layer", "channel", "contribution", "share", "pe", "pe_rank"}


def test_maps_are_differentiable(metrics: dict[str, PEDistance]) -> None:
    reference = natural((64, 64), 6)
    distorted = (reference + 0.05).clamp(0, 1).requires_grad_(True)
    metrics["pe_alex"].maps(distorted, reference).combined.sum().backward()
    assert distorted.grad is not None and bool(torch.isfinite(distorted.grad).all())


def test_explanation_figure_is_written(metrics: dict[str, PEDistance], tmp_path) -> None:
    reference = natural((72, 88), 7)
    distorted = (reference + 0.1 * torch.randn(reference.shape, generator=torch.Generator().manual_seed(8))).clamp(0, 1)
    metric = metrics["pe_alex"]
    why = explain_pair(metric, distorted, reference, top=2)
    path = save_figure(explanation_figure(why, metric, distorted, reference, n=2), tmp_path / "why.png", dpi=40)
    assert path.stat().st_size > 1000


def test_bad_arguments(metrics: dict[str, PEDistance]) -> None:
    pair = natural((64, 64), 9)
    with pytest.raises(ValueError, match="one pair at a time"):
        explain_pair(metrics["pe_alex"], torch.cat([pair, pair]), torch.cat([pair, pair]))
    with pytest.raises(ValueError, match="top must be"):
        explain_pair(metrics["pe_alex"], pair, pair, top=0)
