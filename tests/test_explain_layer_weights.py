"""``explain_pair`` takes its contributions from the kernel, combined as the score is (issue 25, item 5)."""

from __future__ import annotations

import pytest
import torch

from pe_iqa import PEDistance
from pe_iqa.explain import explain_pair


@pytest.mark.slow  # random AlexNet rankings measured once (~40 s), then ~5 s per metric on 2 shared cores
@pytest.mark.parametrize("layer_weights", [None, [3, 1], [0, 1]])
def test_contributions_sum_to_the_score_for_any_layer_weights(layer_weights) -> None:
    """With ``layer_weights=[3, 1]`` the contributions summed to .1027 while the score was .0801 (divided by the
    number of layers, weights ignored)."""
    metric = PEDistance("pe_alex", weights="random", layers=["relu1", "relu2"], top_percent=25,
                        layer_weights=layer_weights)
    generator = torch.Generator().manual_seed(3)
    reference = torch.rand(1, 3, 64, 64, generator=generator)
    distorted = (reference + 0.2 * torch.randn(1, 3, 64, 64, generator=generator)).clamp(0, 1)
    why = explain_pair(metric, distorted, reference, top=4)
    assert why.score == pytest.approx(float(metric(distorted, reference)), rel=1e-6)
    assert sum(c.contribution for c in why.contributions) == pytest.approx(why.score, rel=1e-5)
    by_layer = {layer: sum(c.contribution for c in why.contributions if c.layer == layer) for layer in metric.layers}
    per_layer = metric.layer_distances(*metric.pair_features(distorted, reference, None))[0]
    shares = [0.5, 0.5] if layer_weights is None else [w / sum(layer_weights) for w in layer_weights]
    for k, layer in enumerate(metric.layers):
        assert by_layer[layer] == pytest.approx(shares[k] * float(per_layer[k]), rel=1e-5, abs=1e-12)
    for (layer, channel), channel_map in why.channel_maps.items():  # each map averages to its contribution
        contribution = next(c for c in why.contributions if (c.layer, c.channel) == (layer, channel))
        assert float(channel_map.mean()) == pytest.approx(contribution.contribution, rel=1e-4, abs=1e-12)
