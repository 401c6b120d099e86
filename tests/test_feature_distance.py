"""The Eq. 1 kernel against an independent float64 NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pe_iqa.feature_distance import (
    NORM_EPS,
    channel_errors,
    channel_weights,
    distance_map,
    layer_distance,
    prepare_features,
    unit_normalise,
)


def reference_distance(a: np.ndarray, b: np.ndarray, channels: np.ndarray, channel_norm: bool,
                       scores: np.ndarray | None = None) -> np.ndarray:
    """Eq. 1 written out in float64 NumPy: ``(N, C, H, W)`` activations → ``(N,)`` distances."""
    a, b = a[:, channels].astype(np.float64), b[:, channels].astype(np.float64)
    k = len(channels)
    share = np.full(k, 1.0 / k) if scores is None or scores.sum() == 0 else scores / scores.sum()
    if channel_norm:
        a = a / (np.sqrt((a**2).sum(axis=1, keepdims=True) + NORM_EPS**2) + NORM_EPS)
        b = b / (np.sqrt((b**2).sum(axis=1, keepdims=True) + NORM_EPS**2) + NORM_EPS)
        share = share * k / 2  # unit-normalised: ½ Σ_m (â − b̂)² (uniform)
    return (((a - b) ** 2) * share[None, :, None, None]).sum(axis=1).mean(axis=(1, 2))


def activations(seed: int, shape=(2, 12, 7, 9), signed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(*shape, generator=gen)
    b = a + 0.3 * torch.randn(*shape, generator=gen)
    return (a, b) if signed else (a.relu(), b.relu())


@pytest.mark.parametrize("channel_norm", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_layer_distance_equals_the_float64_reference(channel_norm: bool, weighted: bool) -> None:
    a, b = activations(0)
    channels = torch.tensor([0, 3, 4, 8, 11])
    scores = torch.tensor([0.1, 0.5, 0.0, 2.0, 0.3]) if weighted else None
    weights = channel_weights(len(channels), channel_norm, scores)
    got = layer_distance(prepare_features(a, channels, channel_norm), prepare_features(b, channels, channel_norm),
                         weights)
    expected = reference_distance(a.numpy(), b.numpy(), channels.numpy(), channel_norm,
                                  None if scores is None else scores.numpy().astype(np.float64))
    np.testing.assert_allclose(got.numpy(), expected, rtol=2e-6)


def test_normalised_distance_is_one_minus_cosine_in_zero_one_for_relu_features() -> None:
    a, b = activations(1, shape=(4, 32, 6, 6))
    prepared_a, prepared_b = prepare_features(a, None, True), prepare_features(b, None, True)
    d_map = distance_map(prepared_a, prepared_b, channel_weights(32, True))
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-30)
    both = (a.norm(dim=1) > 0) & (b.norm(dim=1) > 0)
    torch.testing.assert_close(d_map[both], (1 - cosine)[both], rtol=1e-5, atol=1e-6)
    assert float(d_map.min()) >= 0 and float(d_map.max()) <= 1 + 1e-6
    # at most 1 for non-negative features whatever the channel count; signed features reach 2
    x = torch.zeros(1, 5, 1, 1)
    y = torch.zeros(1, 5, 1, 1)
    x[0, 0], y[0, 1] = 1.0, 1.0  # orthogonal unit vectors: the extreme of the ReLU case
    assert float(layer_distance(unit_normalise(x), unit_normalise(y), channel_weights(5, True))) == pytest.approx(1.0)
    assert float(layer_distance(unit_normalise(x), unit_normalise(-x), channel_weights(5, True))) == pytest.approx(2.0)


def test_identical_inputs_give_exactly_zero_and_finite_gradients() -> None:
    a, _ = activations(2)
    a = a.clone().requires_grad_(True)
    for channel_norm in (True, False):
        prepared = prepare_features(a, None, channel_norm)
        d = layer_distance(prepared, prepared.detach(), channel_weights(12, channel_norm)).sum()
        assert float(d.detach()) == 0.0
        (grad,) = torch.autograd.grad(d, a)
        assert bool(torch.isfinite(grad).all())
    zero = torch.zeros(1, 4, 3, 3, requires_grad=True)  # all channels silent: the ε keeps sqrt' finite
    d = layer_distance(unit_normalise(zero), unit_normalise(torch.zeros(1, 4, 3, 3)), channel_weights(4, True))
    (grad,) = torch.autograd.grad(d.sum(), zero)
    assert float(d.detach()) == 0.0 and bool(torch.isfinite(grad).all())


def test_map_averages_to_the_distance_and_channel_errors_dot_weights_too() -> None:
    a, b = (prepare_features(t, None, True) for t in activations(3))
    weights = channel_weights(12, True, torch.rand(12, generator=torch.Generator().manual_seed(0)))
    distance = layer_distance(a, b, weights)
    torch.testing.assert_close(distance_map(a, b, weights).mean(dim=(1, 2)), distance)
    torch.testing.assert_close(channel_errors(a, b) @ weights, distance, rtol=1e-6, atol=0)


def test_channel_weights_scale_and_validation() -> None:
    assert channel_weights(3, True).tolist() == [0.5, 0.5, 0.5]
    assert channel_weights(4, False).sum().item() == pytest.approx(1.0)
    weighted = channel_weights(3, True, torch.tensor([1.0, 1.0, 2.0]))
    torch.testing.assert_close(weighted, torch.tensor([0.375, 0.375, 0.75]))
    assert channel_weights(2, True, torch.zeros(2)).tolist() == [0.5, 0.5]  # scores summing to 0: uniform
    for bad in (torch.tensor([1.0, -1.0]), torch.tensor([1.0, float("nan")]), torch.tensor([1.0])):
        with pytest.raises(ValueError, match="finite non-negative"):
            channel_weights(2, True, bad)
    with pytest.raises(ValueError, match="at least one channel"):
        channel_weights(0, True)
