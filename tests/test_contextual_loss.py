"""Tests of the contextual loss (:mod:`pe_iqa.contextual_loss`): known values, an independent NumPy reference,
the minimum, gradients, channel weights, the sampling bound and the image-level module."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from pe_iqa.backbones import load_backbone
from pe_iqa.contextual_loss import ContextualLoss, PEContextualLoss, contextual_loss


def reference_cx(pred: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None, h: float = 0.5,
                 eps: float = 1e-5) -> np.ndarray:
    """Per-image −log CX in float64, written from the paper's equations with explicit loops over positions."""
    losses = []
    for x_map, y_map in zip(pred, target, strict=True):
        xs = x_map.reshape(x_map.shape[0], -1).T  # (P, C)
        ys = y_map.reshape(y_map.shape[0], -1).T  # (Q, C)
        mu = ys.mean(axis=0)
        w = np.ones(xs.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)

        def unit(v: np.ndarray, w: np.ndarray = w, mu: np.ndarray = mu) -> np.ndarray:
            c = v - mu
            norm = math.sqrt(float(np.sum(w * c * c)))
            return c / norm if norm > 0 else c * 0.0

        d = np.empty((len(xs), len(ys)))
        for i, x in enumerate(xs):
            for j, y in enumerate(ys):
                d[i, j] = max(0.0, (1.0 - float(np.sum(w * unit(x) * unit(y)))) / 2.0)
        cx = np.empty_like(d)
        for i in range(len(xs)):
            rel = d[i] / (d[i].min() + eps)
            e = np.exp((1.0 - rel) / h)
            cx[i] = e / e.sum()
        losses.append(-math.log(float(np.mean(cx.max(axis=0)))))
    return np.array(losses)


def features(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_hand_computed_value() -> None:
    # target vectors (1, 0), (-1, 0) (mean 0); pred (1, 0) matches y1 exactly, pred (0, 1) is at d = 1/2 from both:
    # CX row 1 = (1, 0), row 2 = (1/2, 1/2) → max over rows (1, 1/2) → CX = 3/4, whatever the bandwidth
    target = torch.tensor([[1.0, -1.0], [0.0, 0.0]], dtype=torch.float64).view(1, 2, 1, 2)
    pred = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64).view(1, 2, 1, 2)
    for bandwidth in (0.1, 0.5, 2.0):
        loss = contextual_loss(pred, target, bandwidth=bandwidth)
        assert float(loss) == pytest.approx(-math.log(0.75), rel=1e-12)


def test_duplicated_target_vectors_share_their_match() -> None:
    # two equal target vectors both at distance 0 from both predictions: CX_ij = 1/2 everywhere → loss log 2
    vec = torch.tensor([1.0, 2.0, 0.5])
    target = torch.stack([vec, vec, -vec], dim=1).view(1, 3, 1, 3)
    pred = target.clone()
    # target vector 3 is distinct and matched exactly → 1; vectors 1 and 2 are matched with 1/2 each
    assert float(contextual_loss(pred, target)) == pytest.approx(-math.log((0.5 + 0.5 + 1.0) / 3), rel=1e-6)


@pytest.mark.parametrize(("shape_pred", "shape_target", "bandwidth", "weighted"), [
    ((2, 4, 3, 3), (2, 4, 3, 3), 0.5, False),
    ((1, 5, 2, 4), (1, 5, 3, 2), 0.2, False),
    ((2, 6, 3, 2), (2, 6, 3, 2), 1.0, True),
])
def test_matches_numpy_reference(shape_pred, shape_target, bandwidth, weighted) -> None:
    pred = features(*shape_pred, seed=1, dtype=torch.float64)
    target = features(*shape_target, seed=2, dtype=torch.float64)
    weights = torch.rand(shape_pred[1], generator=torch.Generator().manual_seed(3), dtype=torch.float64) \
        if weighted else None
    got = contextual_loss(pred, target, channel_weights=weights, bandwidth=bandwidth, reduction="none")
    expected = reference_cx(pred.numpy(), target.numpy(), None if weights is None else weights.numpy(), bandwidth)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)
    single = contextual_loss(pred.float(), target.float(), channel_weights=weights, bandwidth=bandwidth,
                             reduction="none")
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_identical_inputs_give_zero_and_the_range_is_zero_to_log_q() -> None:
    feats = features(3, 16, 6, 6, seed=4)
    assert torch.equal(contextual_loss(feats, feats, reduction="none"), torch.zeros(3))
    assert float(contextual_loss(feats, feats, channel_weights=torch.rand(16) + 0.1)) == 0.0
    far = contextual_loss(features(3, 16, 6, 6, seed=5), feats, reduction="none")
    assert bool((far > 0).all()) and bool((far <= math.log(36) + 1e-6).all())


def test_per_image_losses_do_not_depend_on_the_batch() -> None:
    pred, target = features(3, 8, 4, 4, seed=6), features(3, 8, 4, 4, seed=7)
    batch = contextual_loss(pred, target, reduction="none")
    alone = torch.cat([contextual_loss(pred[i:i + 1], target[i:i + 1], reduction="none") for i in range(3)])
    torch.testing.assert_close(batch, alone)
    torch.testing.assert_close(contextual_loss(pred, target), batch.mean())
    torch.testing.assert_close(contextual_loss(pred, target, reduction="sum"), batch.sum())


@pytest.mark.slow  # 2.7 s measured (quick-tier run, 2 shared cores)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradcheck_float64(weighted: bool) -> None:
    pred = features(2, 3, 3, 3, seed=8, dtype=torch.float64).requires_grad_(True)
    target = features(2, 3, 3, 3, seed=9, dtype=torch.float64)
    weights = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64) if weighted else None
    assert torch.autograd.gradcheck(
        lambda p: contextual_loss(p, target, channel_weights=weights, reduction="none"), (pred,))


def test_equal_weights_give_exactly_the_unweighted_loss() -> None:
    pred, target = features(2, 8, 5, 5, seed=10), features(2, 8, 5, 5, seed=11)
    plain = contextual_loss(pred, target, reduction="none")
    for value in (1.0, 0.125, 3.0 / 7.0):
        assert torch.equal(contextual_loss(pred, target, channel_weights=torch.full((8,), value), reduction="none"),
                           plain)
    assert torch.equal(ContextualLoss(torch.ones(8), reduction="none")(pred, target), plain)
    # the cosine is scale-invariant in the weights: w and 5·w agree
    weights = torch.rand(8, generator=torch.Generator().manual_seed(12)) + 0.05
    torch.testing.assert_close(contextual_loss(pred, target, channel_weights=weights),
                               contextual_loss(pred, target, channel_weights=5 * weights))


def test_zero_weights_equal_channel_selection() -> None:
    pred, target = features(2, 8, 4, 4, seed=13), features(2, 8, 4, 4, seed=14)
    keep = torch.tensor([0, 3, 4, 7])
    weights = torch.zeros(8).index_fill(0, keep, 1.0)
    torch.testing.assert_close(contextual_loss(pred, target, channel_weights=weights),
                               contextual_loss(pred[:, keep], target[:, keep]))


def test_sampling_is_seeded_and_exact_when_everything_fits() -> None:
    pred, target = features(2, 8, 8, 8, seed=15), features(2, 8, 8, 8, seed=16)  # 64 positions
    full = contextual_loss(pred, target, max_positions=None)
    assert torch.equal(contextual_loss(pred, target, max_positions=64), full)
    sampled = contextual_loss(pred, target, max_positions=16)
    assert torch.equal(contextual_loss(pred, target, max_positions=16), sampled)  # fresh seed 0 each call
    assert not torch.equal(sampled, full)
    other = contextual_loss(pred, target, max_positions=16, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(other, sampled)
    # modules draw new positions at each call, reproducibly from their seed
    first, second = ContextualLoss(max_positions=16, seed=3), ContextualLoss(max_positions=16, seed=3)
    calls = [first(pred, target) for _ in range(3)]
    assert [torch.equal(a, b) for a, b in zip(calls, [second(pred, target) for _ in range(3)], strict=True)] == \
        [True] * 3
    assert not torch.equal(calls[0], calls[1])
    # the same positions in prediction and target: identical inputs still give 0 when sampled
    assert float(contextual_loss(pred, pred, max_positions=16)) == 0.0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"channel_weights": torch.ones(3)}, "shape"),
    ({"channel_weights": -torch.ones(8)}, "non-negative"),
    ({"channel_weights": torch.zeros(8)}, "not all zero"),
    ({"bandwidth": 0.0}, "bandwidth"),
    ({"max_positions": 0}, "max_positions"),
    ({"reduction": "max"}, "reduction"),
])
def test_invalid_options_raise(kwargs: dict, match: str) -> None:
    feats = features(1, 8, 2, 2, seed=17)
    with pytest.raises(ValueError, match=match):
        contextual_loss(feats, feats, **kwargs)


def test_mismatched_features_raise() -> None:
    with pytest.raises(ValueError, match="agree in N and C"):
        contextual_loss(features(1, 8, 2, 2, seed=0), features(1, 4, 2, 2, seed=0))
    with pytest.raises(ValueError, match="channels"):
        ContextualLoss(torch.rand(4) + 0.1)(features(1, 8, 2, 2, seed=0), features(1, 8, 2, 2, seed=0))


@pytest.fixture(scope="module")
def random_alexnet():
    return load_backbone("alexnet", ["relu1", "relu2"], weights="random")


@pytest.mark.slow  # 1.4 s measured (full run, 2 shared cores)
def test_image_loss_gradients_reach_only_the_input(random_alexnet) -> None:
    loss = PEContextualLoss(random_alexnet, ["relu1", "relu2"], layer_weights=[1.0, 3.0], reduction="none")
    preds = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(18)).requires_grad_(True)
    target = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(19)).requires_grad_(True)
    values = loss(preds, target)
    assert values.shape == (2,) and values.dtype == torch.float32 and bool((values > 0).all())
    values.sum().backward()
    assert preds.grad is not None and bool(torch.isfinite(preds.grad).all()) and float(preds.grad.abs().sum()) > 0
    assert target.grad is None
    assert all(not p.requires_grad and p.grad is None for p in loss.parameters())
    # layer weights (1, 3)/4 over the per-layer functional losses on the backbone's features
    with torch.no_grad():
        a, b = random_alexnet(preds), random_alexnet(target)
        per_layer = [contextual_loss(a[k], b[k], reduction="none") for k in ("relu1", "relu2")]
    torch.testing.assert_close(values.detach(), 0.25 * per_layer[0] + 0.75 * per_layer[1])
    assert float(loss(target.detach(), target.detach()).sum()) == 0.0


@pytest.mark.slow  # 7.0 s measured (quick-tier run, 2 shared cores)
def test_image_loss_under_autocast_computes_the_head_in_float32(random_alexnet) -> None:
    loss = PEContextualLoss(random_alexnet, ["relu1"], reduction="none")
    preds = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(20))
    target = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(21))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(preds, target)
    assert mixed.dtype == torch.float32 and bool(torch.isfinite(mixed).all())
    torch.testing.assert_close(mixed, loss(preds, target), rtol=0.1, atol=0.02)


@pytest.mark.slow  # 1.6 s measured (full run, 2 shared cores)
def test_pe_weights_and_high_subset_follow_the_ranking(alexnet_weights_available: bool) -> None:
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME (the shipped ranking needs them)")
    from pe_iqa import get_ranking

    net = load_backbone("alexnet", ["relu1"])
    ranking = get_ranking(net, "relu1")
    weighted = PEContextualLoss(net, ["relu1"], weighting="pe")
    expected = ranking.pe / ranking.pe.sum()
    torch.testing.assert_close(weighted.channel_weights()["relu1"], expected.float())
    high = PEContextualLoss(net, ["relu1"], subset="high", top_percent=25)
    assert torch.equal(high.selected_channels()["relu1"], ranking.select("high", 25))
    assert high.channel_weights()["relu1"] is None
    preds = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(22))
    target = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(23))
    a, b = net(preds)["relu1"], net(target)["relu1"]
    torch.testing.assert_close(weighted(preds, target), contextual_loss(a, b, channel_weights=expected.float()))
    channels = ranking.select("high", 25)
    torch.testing.assert_close(high(preds, target), contextual_loss(a[:, channels], b[:, channels]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_agrees_with_cpu(random_alexnet) -> None:
    loss = PEContextualLoss(copy.deepcopy(random_alexnet), ["relu1"], reduction="none")
    preds = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(24))
    target = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(25))
    expected = loss(preds, target)
    loss.to("cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        mixed = loss(preds.cuda(), target.cuda())
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(loss(preds.cuda(), target.cuda()).cpu(), expected, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(mixed.cpu(), expected, rtol=0.05, atol=0.02)
