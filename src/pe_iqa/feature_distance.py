"""The Eq. 1 kernel: the per-layer deep-feature distance, for one channel set or many from one forward pass.

Everything that computes a PE distance — :class:`~pe_iqa.PEDistance`, the losses, the distance maps and every
benchmark — calls these functions. For one layer with activations ``a`` (distorted) and ``b`` (reference) of shape
``(N, C, H, W)``, a channel set ``S`` (``K`` channels) and channel weights ``w`` (:func:`channel_weights`)::

    prepared   φ = a[:, S]                              (channel_norm=False: raw Eq. 1)
               φ = a[:, S] / (sqrt(Σ_S a² + ε²) + ε)    (channel_norm=True: unit vector at every position, ε = 1e-10)
    map        D(h, w) = Σ_{m∈S} w_m (φ_m(a) − φ_m(b))²(h, w)
    distance   d = mean_{h,w} D(h, w)

The weights carry the scale. Raw: ``w`` sums to 1 (uniform ``1/K``: exactly Eq. 1's ``1/(M·H·W)``). Normalised:
``w`` averages ½ (uniform ``½``), so ``d = ½‖φ(a) − φ(b)‖²`` averaged over positions, which is ``1 − cos`` of the two
feature vectors where both are non-zero: ``[0, 1]`` for non-negative (ReLU) features, ``[0, 2]`` for signed ones,
whatever the number of channels — the LPIPS convention of summing over unit-normalised channels, halved. With
``weighting="pe"`` the weights are proportional to the channels' efficacy scores, with the same total.

The maps average to the distance; :func:`channel_errors` (the per-channel mean squared differences) dotted with the
weights gives it too, which is how :func:`set_distances` evaluates many channel sets and weightings from one pair of
activations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "NORM_EPS",
    "ChannelSet",
    "channel_errors",
    "channel_weights",
    "combine_layers",
    "distance_map",
    "layer_distance",
    "prepare_features",
    "set_distances",
    "unit_normalise",
]

NORM_EPS = 1e-10
_CHUNK_ELEMENTS = 1 << 24  # gathered float32 elements per block in set_distances (64 MiB)


def _inverse_norm(sum_of_squares: torch.Tensor) -> torch.Tensor:
    """``1 / (sqrt(s + ε²) + ε)``: the factor that unit-normalises a channel vector with squared norm ``s``."""
    return (sum_of_squares + NORM_EPS**2).sqrt().add(NORM_EPS).reciprocal()


def unit_normalise(features: torch.Tensor) -> torch.Tensor:
    """Divide every position's channel vector by its norm: ``φ / (sqrt(Σ_c φ² + ε²) + ε)``.

    Args:
        features: ``(N, K, H, W)``.

    Returns:
        Same shape; each ``(N, :, h, w)`` vector has norm just below 1 (0 where all channels are 0). Finite gradients
        everywhere, including at zero vectors.
    """
    return features * _inverse_norm(features.pow(2).sum(dim=1, keepdim=True))


def prepare_features(features: torch.Tensor, channels: torch.Tensor | None, channel_norm: bool,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Select channels, cast to the head's dtype and, with ``channel_norm``, unit-normalise them.

    Args:
        features: layer activations ``(N, C, H, W)``.
        channels: ``(K,)`` int64 indices, or ``None`` when ``features`` already holds only the selected channels.
        channel_norm: unit-normalise over the selected channels.
        dtype: the dtype the distance is computed in (float32, or float64 for a float64 network).

    Returns:
        ``(N, K, H, W)`` in ``dtype``.
    """
    if channels is not None:
        features = features.index_select(1, channels)
    features = features.to(dtype)
    return unit_normalise(features) if channel_norm else features


def channel_weights(n_channels: int, channel_norm: bool, scores: torch.Tensor | None = None) -> torch.Tensor:
    """The weights ``w`` of a channel set (see the module docstring for the scale).

    Args:
        n_channels: ``K``, the size of the set (``>= 1``).
        channel_norm: whether the set is unit-normalised (weights average ½) or raw (weights sum to 1).
        scores: optional ``(K,)`` non-negative efficacy scores; weights proportional to them (uniform if they sum
            to 0).

    Returns:
        ``(K,)`` float32.

    Example:
        >>> channel_weights(4, channel_norm=True).tolist(), channel_weights(4, channel_norm=False).tolist()
        ([0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25])
    """
    if n_channels < 1:
        raise ValueError(f"a channel set needs at least one channel, got {n_channels}")
    share = torch.full((n_channels,), 1.0 / n_channels, dtype=torch.float64)
    if scores is not None:
        scores = scores.detach().to("cpu", torch.float64).reshape(-1)
        if scores.numel() != n_channels or bool((scores < 0).any()) or not bool(torch.isfinite(scores).all()):
            raise ValueError(f"scores must be {n_channels} finite non-negative values")
        if float(scores.sum()) > 0:
            share = scores / scores.sum()
    return (share * (n_channels / 2.0 if channel_norm else 1.0)).to(torch.float32)


def distance_map(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-position distance ``Σ_m w_m (a_m − b_m)²`` of prepared features.

    Args:
        a: prepared features of the distorted images, ``(N, K, H, W)`` (:func:`prepare_features`).
        b: prepared features of the references, same shape.
        weights: ``(K,)`` channel weights (:func:`channel_weights`).

    Returns:
        ``(N, H, W)`` in the features' dtype; its spatial mean is :func:`layer_distance`.
    """
    return ((a - b).pow(2) * weights.to(a.dtype).view(1, -1, 1, 1)).sum(dim=1)


def layer_distance(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Distance of prepared features, ``(N,)``: the spatial mean of :func:`distance_map`."""
    return distance_map(a, b, weights).mean(dim=(1, 2))


def combine_layers(values: torch.Tensor, layer_weights: torch.Tensor | None, dim: int = -1) -> torch.Tensor:
    """Combine per-layer distances (or maps) along ``dim``: their mean, or their ``layer_weights``-weighted sum.

    Args:
        values: per-layer values, the layers along ``dim``.
        layer_weights: ``None`` (mean) or ``(L,)`` weights summing to 1
            (:attr:`~pe_iqa.spec.DistanceSpec.layer_weights`).

    Example:
        >>> combine_layers(torch.tensor([[1.0, 3.0]]), None).tolist(), combine_layers(
        ...     torch.tensor([[1.0, 3.0]]), torch.tensor([0.75, 0.25])).tolist()
        ([2.0], [1.5])
    """
    if layer_weights is None:
        return values.mean(dim=dim)
    shape = [1] * values.ndim
    shape[dim] = -1
    return (values * layer_weights.to(values.dtype).view(shape)).sum(dim=dim)


def channel_errors(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-channel mean squared difference of prepared features, ``(N, K)``; dotted with the weights: the distance."""
    return (a - b).pow(2).mean(dim=(2, 3))


@dataclass(frozen=True)
class ChannelSet:
    """One channel set of a layer and its weights, for :func:`set_distances`.

    Attributes:
        channels: ``(K,)`` distinct int64 channel indices.
        weights: ``(K,)`` channel weights (:func:`channel_weights`, with the same ``channel_norm``).
    """

    channels: torch.Tensor
    weights: torch.Tensor


def _check_set(channel_set: ChannelSet, n_channels: int) -> tuple[int, ...]:
    idx = channel_set.channels.reshape(-1)
    if idx.numel() == 0 or channel_set.weights.numel() != idx.numel():
        raise ValueError(f"a channel set needs K >= 1 channels and K weights, got {idx.numel()} and "
                         f"{channel_set.weights.numel()}")
    key = tuple(int(i) for i in idx.tolist())
    if min(key) < 0 or max(key) >= n_channels or len(set(key)) != len(key):
        raise ValueError(f"channel indices must be distinct and in [0, {n_channels})")
    return key


@torch.inference_mode()
def set_distances(a: torch.Tensor, b: torch.Tensor, sets: Sequence[ChannelSet], channel_norm: bool) -> torch.Tensor:
    """Distances of one pair of activations for many channel sets and weightings at once.

    Equals :func:`layer_distance` of :func:`prepare_features` for each set (to float32 rounding of the latter). Raw
    sets share one per-channel error vector (:func:`channel_errors`). Normalised sets share their squares: with
    ``i`` a set's inverse norm at each position (the factor :func:`unit_normalise` applies), the mean over positions
    of ``(a_c i_a − b_c i_b)²`` expands into ``a_c² i_a² + b_c² i_b² − 2 a_c b_c i_a i_b``, so every (channel, set)
    error is three matrix products, computed in float64 (where the expansion loses nothing) over blocks of positions
    of bounded memory. :class:`~pe_iqa.PEDistance` evaluates the same expression directly (exact zeros for identical
    images, plain gradients); the tests pin the two against each other and a float64 reference.

    Args:
        a: activations of the distorted image, ``(1, C, H, W)`` (all channels of the layer).
        b: activations of the reference, same shape.
        sets: the channel sets with their weights.
        channel_norm: unit-normalise each set's channels.

    Returns:
        ``(Q,)`` float64 distances, one per set, in the order of ``sets``.

    Raises:
        ValueError: mismatched shapes, or a set with invalid indices or weights.
    """
    if a.shape != b.shape or a.ndim != 4 or a.shape[0] != 1:
        raise ValueError(f"a and b must both have shape (1, C, H, W), got {tuple(a.shape)} and {tuple(b.shape)}")
    n_channels = a.shape[1]
    keys = [_check_set(s, n_channels) for s in sets]
    out = torch.empty(len(sets), dtype=torch.float64)
    if not channel_norm:
        errors = channel_errors(prepare_features(a, None, False), prepare_features(b, None, False))[0]
        for q, channel_set in enumerate(sets):
            idx = channel_set.channels.to(errors.device)
            out[q] = float((errors.index_select(0, idx) * channel_set.weights.to(errors)).sum())
        return out
    distinct = sorted(set(keys))
    flat_a = a[0].reshape(n_channels, -1).to(torch.float64)
    flat_b = b[0].reshape(n_channels, -1).to(torch.float64)
    positions = flat_a.shape[1]
    masks = torch.zeros(len(distinct), n_channels, dtype=torch.float64, device=a.device)
    for row, key in enumerate(distinct):
        masks[row, list(key)] = 1.0
    # Σ_p (a_c i_a − b_c i_b)² = a_c² · i_a² + b_c² · i_b² − 2 a_c b_c · i_a i_b, summed over positions by matrix
    # products for every (channel, set) at once; i = the set's inverse norms at each position (as unit_normalise)
    totals = torch.zeros(n_channels, len(distinct), dtype=torch.float64, device=a.device)
    step = max(1, _CHUNK_ELEMENTS // (4 * len(distinct)))
    for start in range(0, positions, step):
        a_part, b_part = flat_a[:, start:start + step], flat_b[:, start:start + step]
        a_sq, b_sq = a_part.pow(2), b_part.pow(2)
        inverse_a, inverse_b = _inverse_norm(masks @ a_sq), _inverse_norm(masks @ b_sq)  # (U, P)
        totals += a_sq @ inverse_a.pow(2).T + b_sq @ inverse_b.pow(2).T - 2.0 * (a_part * b_part) @ (inverse_a
                                                                                                     * inverse_b).T
    errors = (totals / positions).clamp_min_(0.0)  # (C, U): mean squared difference of channel c within set u
    column = {key: u for u, key in enumerate(distinct)}
    for q, (key, channel_set) in enumerate(zip(keys, sets, strict=True)):
        idx = torch.tensor(key, device=errors.device)
        out[q] = float((errors[idx, column[key]] * channel_set.weights.to(errors)).sum())
    return out
