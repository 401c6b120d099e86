"""Where two images differ: per-position distance maps of a :class:`~pe_iqa.PEDistance`, at the input size.

:meth:`pe_iqa.PEDistance.maps` computes each compared layer's map (:func:`~pe_iqa.feature_distance.distance_map`,
which averages to the layer's distance); this module upsamples them to the input size keeping their means
(:func:`upsample_map`) and combines them like the layers' distances (:func:`combine_maps`), so every map of a pair
averages to its score.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .feature_distance import combine_layers

__all__ = ["DistanceMaps", "combine_maps", "upsample_map"]


@dataclass(frozen=True)
class DistanceMaps:
    """Where two images differ: per-position distances of a batch of pairs (see :meth:`PEDistance.maps`).

    Attributes:
        scores: the distances, ``(N,)`` — the mean of every map below.
        combined: ``(N, H, W)`` at the input size: the layers' maps averaged (weighted by the spec's
            ``layer_weights`` if set).
        layers: ``{layer: (N, H, W)}`` each layer's map upsampled to the input size.
        native: ``{layer: (N, H_k, W_k)}`` each layer's map at its own resolution (what the distance averages).
    """

    scores: torch.Tensor
    combined: torch.Tensor
    layers: dict[str, torch.Tensor]
    native: dict[str, torch.Tensor]


def upsample_map(native: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of ``(N, h, w)`` maps to ``size``, rescaled per image so the mean is unchanged.

    Bilinear interpolation (as LPIPS's ``spatial=True``) weighs border positions less than inner ones; the rescale
    (a factor close to 1) keeps each upsampled map's mean equal to the native map's, so the maps of an image still
    average to its score. Maps that are zero everywhere stay zero.
    """
    up = torch.nn.functional.interpolate(native[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    native_mean, up_mean = native.mean(dim=(1, 2)), up.mean(dim=(1, 2))
    factor = torch.where(up_mean > 0, native_mean / up_mean.clamp_min(torch.finfo(up.dtype).tiny),
                         torch.ones_like(up_mean))
    return up * factor[:, None, None]


def combine_maps(native: dict[str, torch.Tensor], size: tuple[int, int],
                 layer_weights: torch.Tensor | None) -> DistanceMaps:
    """The :class:`DistanceMaps` of per-layer maps at their own resolution, upsampled to ``size``.

    Args:
        native: ``{layer: (N, H_k, W_k)}`` maps, shallow to deep.
        size: the images' ``(H, W)``.
        layer_weights: ``None`` (layers averaged) or ``(L,)`` weights summing to 1.
    """
    layers = {layer: upsample_map(m, size) for layer, m in native.items()}
    combined = combine_layers(torch.stack(list(layers.values())), layer_weights, dim=0)
    scores = combine_layers(torch.stack([m.mean(dim=(1, 2)) for m in native.values()], dim=1), layer_weights)
    return DistanceMaps(scores, combined, layers, native)
