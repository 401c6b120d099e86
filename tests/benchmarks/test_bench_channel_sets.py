"""Many configurations from one forward pass per image give exactly PEDistance's numbers (the same kernel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from benchmarks.channel_sets import (
    ChannelSet,
    Variant,
    downscale,
    evaluate_variants,
    indicator_set_distances,
    mean_over_layers,
    random_channel_sets,
    selected_scores,
    set_distances,
    standard_channel_sets,
)
from benchmarks.datasets.live import load_live_index
from tests.fixtures.planted import LiveFixture

from benchmarks import channel_sets
from pe_iqa import PEDistance, get_rankings, load_backbone
from pe_iqa.feature_distance import channel_weights, layer_distance, prepare_features
from pe_iqa.image_io import read_image

PERCENTS = (5, 10, 25, 50)


def activations(seed: int, shape=(2, 12, 7, 9), signed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(*shape, generator=gen)
    b = a + 0.3 * torch.randn(*shape, generator=gen)
    return (a, b) if signed else (a.relu(), b.relu())
# (subset, x, channel_norm, weighting, layers)
CONFIGS = [
    ("high", 10, True, "uniform", ["relu3"]),
    ("low", 25, False, "uniform", ["relu1", "relu2"]),
    ("high", 50, True, "pe", ["relu2", "relu5"]),
    ("all", 100, True, "uniform", ["relu1", "relu2", "relu3", "relu4", "relu5"]),
    ("all", 100, False, "pe", ["relu4"]),
    ("high", 5, False, "pe", ["relu5"]),
    ("low", 5, True, "pe", ["relu1", "relu3"]),
]


@pytest.fixture(scope="module")
def net():
    return load_backbone("alexnet", weights="random")


@pytest.fixture(scope="module")
def rankings(net):
    return get_rankings(net)


@pytest.fixture(scope="module")
def records(live_tree: LiveFixture):
    return load_live_index(live_tree.root).records


def set_name(subset: str, x: float) -> str:
    return "F" if subset == "all" else f"{subset[0].upper()}-{x:g}"


def reference_values(metric: PEDistance, records, scale: float = 1.0) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for r in records:
            dist, ref = downscale(read_image(r.dist_path), scale), downscale(read_image(r.ref_path), scale)
            out.append(float(metric(dist, ref)))
    return np.array(out)


@pytest.mark.slow  # 9.7 s measured (full run, 2 shared cores)
def test_engine_equals_pedistance_for_many_configs(net, rankings, records) -> None:
    sets = standard_channel_sets(rankings, PERCENTS)
    variants = {
        (name, norm, w): Variant(channels, norm, selected_scores(rankings, channels) if w == "pe" else None)
        for name, channels in sets.items() for norm in (True, False) for w in ("uniform", "pe")
    }
    distances = evaluate_variants(net, records, variants, progress=False)
    assert set(distances) == set(variants)
    assert all(v.shape == (len(records), 5) for v in distances.values())
    for k, (subset, x, norm, weighting, layers) in enumerate(CONFIGS):
        ours = mean_over_layers(distances[(set_name(subset, x), norm, weighting)], net.layers, layers)
        for prune in (False, True) if k < 2 else (False,):
            metric = PEDistance(backbone=net, layers=layers, subset=subset, top_percent=x, channel_norm=norm,
                                weighting=weighting, reduction="none", prune=prune)
            expected = reference_values(metric, records)
            assert np.all(expected > 0)
            # the pruned deepest convolution (fewer output filters) rounds its float32 outputs differently, which
            # shows at ~1e-6 in distances of nearly equal random-network features
            np.testing.assert_allclose(ours, expected, rtol=1e-5 if prune else 1e-6, atol=0)


@pytest.mark.slow  # rankings of a random AlexNet (module fixture, ~18 s)
def test_per_layer_columns_equal_pedistance_layer_distances(net, rankings, records) -> None:
    sets = {"H-25": standard_channel_sets(rankings, [25])["H-25"]}
    distances = evaluate_variants(net, records[:4], {"H-25": Variant(sets["H-25"])}, progress=False)["H-25"]
    metric = PEDistance(backbone=net, layers=net.layers, subset="high", top_percent=25, reduction="none", prune=False)
    with torch.inference_mode():
        for i, r in enumerate(records[:4]):
            a, b = metric.features(read_image(r.dist_path)), metric.features(read_image(r.ref_path))
            np.testing.assert_allclose(distances[i], metric.layer_distances(a, b)[0].numpy(), rtol=1e-6)


@pytest.mark.slow  # rankings of a random AlexNet (module fixture, ~18 s)
def test_raw_pe_weighted_variants_with_scale(net, rankings, records) -> None:
    sets = standard_channel_sets(rankings, [10])
    variants = {"H-10": Variant(sets["H-10"], False, selected_scores(rankings, sets["H-10"])),
                "L-10": Variant(sets["L-10"], False), "F": Variant(sets["F"], False)}
    out = evaluate_variants(net, records, variants, scale=0.8, progress=False)
    for name, weighting in (("H-10", "pe"), ("L-10", "uniform"), ("F", "uniform")):
        subset = {"H": "high", "L": "low", "F": "all"}[name[0]]
        metric = PEDistance(backbone=net, layers=["relu2"], subset=subset, top_percent=10, channel_norm=False,
                            weighting=weighting, reduction="none")
        np.testing.assert_allclose(out[name][:, 1], reference_values(metric, records, 0.8), rtol=1e-6)


@pytest.mark.slow  # rankings of a random AlexNet (module fixture, ~18 s)
@pytest.mark.parametrize("channel_norm", [True, False])
def test_variant_weights_are_pedistance_weights(net, rankings, channel_norm: bool) -> None:
    sets = standard_channel_sets(rankings, [25])
    variant = Variant(sets["H-25"], channel_norm, selected_scores(rankings, sets["H-25"]))
    metric = PEDistance(backbone=net, layers=net.layers, subset="high", top_percent=25, weighting="pe",
                        channel_norm=channel_norm)
    for layer, w in metric.channel_weights().items():
        torch.testing.assert_close(variant.channel_set(layer).weights, w)
    assert all(torch.equal(sets["H-25"][k], v) for k, v in metric.selected_channels().items())


@pytest.mark.slow  # rankings of a random AlexNet (module fixture, ~18 s)
def test_each_reference_runs_through_the_network_once(net, rankings, records) -> None:
    calls = []
    handle = net.register_forward_hook(lambda module, inputs, output: calls.append(tuple(inputs[0].shape[-2:])))
    try:
        evaluate_variants(net, records, {"F": Variant(standard_channel_sets(rankings, [])["F"])}, progress=False)
    finally:
        handle.remove()
    n_refs = len({r.ref_path for r in records})
    assert n_refs == 2
    image_calls = [size for size in calls if size in {(40, 56), (56, 40)}]  # not the channel-count probe
    assert len(image_calls) == len(records) + n_refs


@pytest.mark.slow  # rankings of a random AlexNet (module fixture, ~18 s)
def test_random_channel_sets(rankings) -> None:
    first = random_channel_sets(rankings, 10, seed=1)
    again = random_channel_sets(rankings, 10, seed=1)
    other = random_channel_sets(rankings, 10, seed=2)
    for layer, ranking in rankings.items():
        idx = first[layer]
        assert idx.numel() == ranking.select("high", 10).numel()
        assert idx.unique().numel() == idx.numel() and int(idx.min()) >= 0 and int(idx.max()) < ranking.n_channels
        assert torch.equal(idx, again[layer])
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_downscale_is_antialiased_bilinear() -> None:
    x = torch.rand(1, 3, 40, 56)
    assert downscale(x, 1.0) is x
    half = downscale(x, 0.5)
    assert half.shape == (1, 3, 20, 28)
    torch.testing.assert_close(half, F.interpolate(x, size=(20, 28), mode="bilinear", antialias=True).clamp(0, 1))
    with pytest.raises(ValueError, match="scale"):
        downscale(x, 1.5)


@pytest.mark.slow  # rankings of a random AlexNet (module fixture, ~18 s)
def test_bad_inputs(net, rankings, records) -> None:
    sets = standard_channel_sets(rankings, [10])
    with pytest.raises(ValueError, match="records is empty"):
        evaluate_variants(net, [], {"F": Variant(sets["F"])}, progress=False)
    with pytest.raises(ValueError, match="every layer"):
        evaluate_variants(net, records, {"x": Variant({"relu1": torch.tensor([0])})}, progress=False)
    bad = {k: v.clone() for k, v in sets["F"].items()}
    bad["relu1"] = torch.tensor([0, 64])
    with pytest.raises(ValueError, match="distinct and in"):
        evaluate_variants(net, records, {"bad": Variant(bad)}, progress=False)
    negative = {k: -torch.ones(v.numel()) for k, v in sets["H-10"].items()}
    with pytest.raises(ValueError, match="non-negative"):
        evaluate_variants(net, records, {"H-10": Variant(sets["H-10"], True, negative)}, progress=False)
    with pytest.raises(ValueError, match="needs >="):
        evaluate_variants(net, records[:1], {"F": Variant(sets["F"])}, scale=0.1, progress=False)
    with pytest.raises(ValueError, match="subset"):
        mean_over_layers(np.zeros((3, 5)), net.layers, ["relu9"])
    with pytest.raises(ValueError, match="shape"):
        mean_over_layers(np.zeros((3, 4)), net.layers, ["relu1"])


@pytest.mark.parametrize("channel_norm", [True, False])
@pytest.mark.parametrize("signed", [False, True])
def test_set_distances_equal_the_one_set_kernel_for_many_sets(channel_norm: bool, signed: bool) -> None:
    a, b = activations(4, shape=(1, 20, 11, 13), signed=signed)
    gen = torch.Generator().manual_seed(1)
    sets = []
    for k in (1, 2, 5, 5, 10, 20):
        channels = torch.sort(torch.randperm(20, generator=gen)[:k]).values
        scores = torch.rand(k, generator=gen) if k % 2 else None
        sets.append(ChannelSet(channels, channel_weights(k, channel_norm, scores)))
    sets.append(sets[2])  # repeated sets are evaluated once and reported twice
    got = set_distances(a, b, sets, channel_norm)
    for q, channel_set in enumerate(sets):
        one = layer_distance(prepare_features(a, channel_set.channels, channel_norm),
                             prepare_features(b, channel_set.channels, channel_norm), channel_set.weights)
        assert float(got[q]) == pytest.approx(float(one), rel=2e-6)  # the float32 head PEDistance runs
        wide = layer_distance(prepare_features(a, channel_set.channels, channel_norm, torch.float64),
                              prepare_features(b, channel_set.channels, channel_norm, torch.float64),
                              channel_set.weights)
        assert float(got[q]) == (float(wide) if channel_norm else pytest.approx(float(wide), rel=1e-12, abs=1e-15))
    assert got.dtype == torch.float64 and float(got[-1]) == float(got[2])
    identical = set_distances(a, a, sets, channel_norm)
    assert bool((identical.abs() < 1e-12).all())


def _mixed_sets(n_channels: int, channel_norm: bool, seed: int) -> list[ChannelSet]:
    """Sets of 1…C channels, uniform and score-weighted (one with a zero score), one repeated."""
    gen = torch.Generator().manual_seed(seed)
    sets = []
    for k in (1, 2, 3, 5, 5, 8, n_channels):
        channels = torch.sort(torch.randperm(n_channels, generator=gen)[:k]).values
        scores = torch.rand(k, generator=gen) if k % 2 else None
        if k == 5 and scores is not None:
            scores[0] = 0.0
        sets.append(ChannelSet(channels, channel_weights(k, channel_norm, scores)))
    return [*sets, sets[3]]


@pytest.mark.parametrize("channel_norm", [True, False])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("uniform", [False, True])
def test_all_sets_at_once_equal_the_per_set_kernel(channel_norm: bool, signed: bool, uniform: bool) -> None:
    a, b = activations(6, shape=(1, 16, 9, 11), signed=signed)
    a[:, :, :3] = 0.0  # positions where a set's channels are all 0 in one image (the kernel's ε matters)...
    b[:, :, 1:4] = 0.0  # ...or in both: distance 0 there
    sets = _mixed_sets(16, channel_norm, seed=2)
    if uniform:
        sets = [ChannelSet(s.channels, channel_weights(s.channels.numel(), channel_norm)) for s in sets]
    for chunk in (1024, 7):  # one block, and blocks that do not divide the 99 positions
        got = indicator_set_distances(a, b, sets, channel_norm, chunk=chunk)
        assert got.dtype == torch.float64 and got.shape == (len(sets),)
        for q, channel_set in enumerate(sets):
            kernel = layer_distance(prepare_features(a, channel_set.channels, channel_norm, torch.float64),
                                    prepare_features(b, channel_set.channels, channel_norm, torch.float64),
                                    channel_set.weights)
            assert float(got[q]) == pytest.approx(float(kernel), rel=1e-12, abs=1e-14)
        torch.testing.assert_close(got, set_distances(a, b, sets, channel_norm), rtol=1e-12, atol=1e-14)
    assert bool((indicator_set_distances(a, a, sets, channel_norm).abs() < 1e-12).all())
    with pytest.raises(ValueError, match="distinct and in"):
        indicator_set_distances(a, b, [ChannelSet(torch.tensor([1, 1]), channel_weights(2, True))], True)


@pytest.mark.parametrize("keep_reference_norms", [True, False])
def test_all_sets_path_of_evaluate_variants_equals_the_per_set_path(net, records, keep_reference_norms: bool,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if not keep_reference_norms:  # as for VGG-16 relu1_2 at 768×512: recomputed for every distorted image
        monkeypatch.setattr(channel_sets, "REFERENCE_NORMS_MAX", 0)
    gen = torch.Generator().manual_seed(3)
    channels = {f"s{k}": {layer: torch.sort(torch.randperm(64, generator=gen)[:k]).values for layer in net.layers}
                for k in (3, 17, 64)}
    scores = {layer: torch.rand(17, generator=gen) for layer in net.layers}
    variants = {(name, norm, weighted): Variant(c, norm, scores if weighted else None)
                for name, c in channels.items() for norm in (True, False)
                for weighted in ((False, True) if name == "s17" else (False,))}
    per_set = evaluate_variants(net, records[:5], variants, progress=False)
    at_once = evaluate_variants(net, records[:5], variants, progress=False, all_sets=True)
    for key, values in per_set.items():
        assert values.mean() > 1e-3
        np.testing.assert_allclose(at_once[key], values, rtol=1e-12, atol=1e-15)


def test_set_distances_reject_bad_sets() -> None:
    a, b = activations(5, shape=(1, 6, 4, 4))
    with pytest.raises(ValueError, match="distinct and in"):
        set_distances(a, b, [ChannelSet(torch.tensor([0, 6]), channel_weights(2, True))], True)
    with pytest.raises(ValueError, match="distinct and in"):
        set_distances(a, b, [ChannelSet(torch.tensor([1, 1]), channel_weights(2, True))], True)
    with pytest.raises(ValueError, match="K weights"):
        set_distances(a, b, [ChannelSet(torch.tensor([1, 2]), channel_weights(3, True))], True)
    with pytest.raises(ValueError, match=r"shape \(1, C, H, W\)"):
        set_distances(a[0], b[0], [], True)
