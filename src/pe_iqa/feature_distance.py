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
weights gives it too. The benchmarks evaluate many channel sets from one pair of activations with these same
functions (``benchmarks/channel_sets.py``, in float64: the head's dtype for a float64 network).
"""

from __future__ import annotations

import torch

__all__ = [
    "NORM_EPS",
    "channel_errors",
    "channel_weights",
    "combine_layers",
    "distance_map",
    "layer_distance",
    "prepare_features",
    "unit_normalise",
]

NORM_EPS = 1e-10


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
