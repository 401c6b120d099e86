"""The contextual loss (CX) of Mechrez et al. on deep features, with optional PE channel weights or H-x selection.

Definition (Mechrez, Talmi, Zelnik-Manor, "The contextual loss for image transformation with non-aligned
data", ECCV 2018; used for super-resolution in Mechrez et al., "Maintaining natural image statistics with the
contextual loss", ACCV 2018). For one image, let ``x_i`` (``i = 1..P``) be the feature vectors of the
prediction and ``y_j`` (``j = 1..Q``) those of the target (one ``C``-vector per spatial position)::

    μ       = mean_j y_j                                       (per channel; centring on the target's mean)
    x̂_i     = √w ⊙ (x_i − μ) / ‖√w ⊙ (x_i − μ)‖₂                ŷ_j likewise
    d_ij    = (1 − ⟨x̂_i, ŷ_j⟩) / 2                               ∈ [0, 1]  (cosine distance)
    d̃_ij    = d_ij / (min_k d_ik + eps)                          (relative distance)
    CX_ij   = exp((1 − d̃_ij)/h) / Σ_k exp((1 − d̃_ik)/h)         (normalised over the target positions)
    CX      = mean_j max_i CX_ij                                 ∈ [1/Q, 1]
    loss    = −log CX                                            ∈ [0, log Q]

``w`` are optional non-negative per-channel weights: each channel contributes ``w_c x_c y_c`` to the inner
product, i.e. the weighted cosine ``Σ w_c a_c b_c / (‖a‖_w ‖b‖_w)``. The cosine is invariant to a common
scale of ``w``, so all-equal weights give exactly the unweighted loss (they are detected and skipped, so the
result is bit-identical too); a zero weight removes its channel, so H-x selection equals 0/1 weights.

As in the authors' code (``CX/CSFlow.py``, ``create_using_dotP`` and ``CX_loss`` in
https://github.com/roimehrez/contextualLoss): centring on the target's mean, ``d = (1 − cos)/2``, ``eps =
1e-5``, normalisation over the target positions, the maximum over the prediction's positions and the mean
over the target's. Two deliberate differences: the mean ``μ`` is taken per image (the reference takes it over
the whole batch), so a batch's per-image losses do not depend on which images share the batch (for one image
they coincide); and ``CX_ij`` is computed as a softmax (same value, no overflow at small ``h``). The minimum 0
is reached when every target vector has an exact match among the prediction's and no two target vectors are
equal (equal target vectors share their match's weight); so identical inputs with distinct vectors give 0.

Memory bound: the loss compares every pair of positions, ``N·P·Q`` values per intermediate (≈5 of them are
kept for the backward pass). When a feature map has more than ``max_positions`` positions, ``max_positions``
of them are drawn at random without replacement, per image, with a seeded :class:`torch.Generator` (the same
positions in prediction and target when their sizes agree, so identical inputs still give 0). The loss is
then the CX of the two sampled sets (still centred on the mean of the whole target map), exact when
``H·W ≤ max_positions`` and otherwise a stochastic, biased estimate: fewer target vectors compete in the
normalisation, so values are lower. Measured on VGG-16 ``relu2_2`` features of four 128² natural images
(4096 positions; bicubic ×4 inputs vs originals): 1024 positions give 0.76–0.81× the full loss (1.8 % spread
between draws) and a gradient whose cosine with the full gradient is 0.54 per draw; 2048 positions give
0.87–0.90× and 0.76. Compare losses only at the same ``max_positions``.
With the default 1024, one image costs ≈ 5·1024²·4 B ≈ 20 MiB. The modules draw new positions at every call
from a generator seeded at construction (reproducible for a given seed and call sequence); the functional
form reseeds at every call unless a generator is passed.

The head (everything after the backbone) runs in float32 — float64 for float64 features — with autocast
disabled, so it works under ``torch.autocast`` and on any device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .backbones import Backbone
from .distance import check_reduction, reduce
from .feature_distance import combine_layers
from .input_checks import check_image_pair
from .resolver import resolve
from .spec import DistanceSpec, check_bool

__all__ = ["ContextualLoss", "PEContextualLoss", "contextual_loss"]

#: Below these, the contextual similarity divides by zero in float32 (NaN): ``bandwidth=inf`` or ``1e-300`` refused.
_MIN_BANDWIDTH = 1e-6
_MIN_EPS = float(torch.finfo(torch.float32).tiny)
_NORM_TINY = 1e-20  # under the square root of the squared norm: finite gradients for an all-zero vector


def _check_loss_options(bandwidth: float, eps: float, max_positions: int | None, reduction: str) -> None:
    if not isinstance(bandwidth, (int, float)) or isinstance(bandwidth, bool) or not (
            math.isfinite(bandwidth) and bandwidth >= _MIN_BANDWIDTH):
        raise ValueError(f"bandwidth must be a finite number >= {_MIN_BANDWIDTH:g}, got {bandwidth!r}")
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not (
            math.isfinite(eps) and eps >= _MIN_EPS):
        raise ValueError(f"eps must be a finite number >= {_MIN_EPS:.3g} (float32's smallest normal), got {eps!r}")
    if max_positions is not None and (isinstance(max_positions, bool) or not isinstance(max_positions, int)
                                      or max_positions < 1):
        raise ValueError(f"max_positions must be a positive int or None, got {max_positions!r}")
    check_reduction(reduction)


def _channel_scale(channel_weights: torch.Tensor | None, n_channels: int) -> torch.Tensor | None:
    """``√w`` as a ``(C, 1)`` tensor, or ``None`` when the weights are absent or all equal (no effect)."""
    if channel_weights is None:
        return None
    weights = torch.as_tensor(channel_weights).detach()
    if weights.ndim != 1 or weights.numel() != n_channels:
        raise ValueError(f"channel_weights must have shape ({n_channels},), got {tuple(weights.shape)}")
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or not bool((weights > 0).any()):
        raise ValueError("channel_weights must be finite, non-negative, and not all zero")
    if bool((weights == weights[0]).all()):
        return None
    return (weights / weights.max()).sqrt().view(-1, 1)


def _sample_positions(flat: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    if index is None:
        return flat
    return flat.gather(2, index.to(flat.device).unsqueeze(1).expand(-1, flat.shape[1], -1))


def _draw_positions(n: int, positions: int, keep: int | None, generator: torch.Generator) -> torch.Tensor | None:
    if keep is None or positions <= keep:
        return None
    return torch.rand(n, positions, generator=generator).argsort(dim=1)[:, :keep]


def _unit_vectors(flat: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    centred = flat - mean
    if scale is not None:
        centred = centred * scale
    return centred / torch.sqrt(centred.pow(2).sum(dim=1, keepdim=True) + _NORM_TINY)


def _contextual_head(
    pred_feats: torch.Tensor,
    target_feats: torch.Tensor,
    scale: torch.Tensor | None,
    bandwidth: float,
    eps: float,
    max_positions: int | None,
    generator: torch.Generator,
) -> torch.Tensor:
    """Per-image ``−log CX``, ``(N,)``, from validated features and the channel scale ``√w`` (``(C, 1)`` or None)."""
    n = pred_feats.shape[0]
    dtype = torch.float64 if torch.float64 in (pred_feats.dtype, target_feats.dtype) else torch.float32
    with torch.autocast(device_type=pred_feats.device.type, enabled=False):
        x = pred_feats.to(dtype).flatten(2)  # (N, C, P)
        y = target_feats.to(dtype).flatten(2)  # (N, C, Q)
        if scale is not None:
            scale = scale.to(device=x.device, dtype=dtype)
        mean = y.mean(dim=2, keepdim=True)
        pred_index = _draw_positions(n, x.shape[2], max_positions, generator)
        target_index = (pred_index if x.shape[2] == y.shape[2]
                        else _draw_positions(n, y.shape[2], max_positions, generator))
        x_hat = _unit_vectors(_sample_positions(x, pred_index), mean, scale)
        y_hat = _unit_vectors(_sample_positions(y, target_index), mean, scale)
        distance = ((1.0 - torch.bmm(x_hat.transpose(1, 2), y_hat)) / 2).clamp_min(0.0)  # (N, P, Q): d_ij
        relative = distance / (distance.amin(dim=2, keepdim=True) + eps)
        cx = torch.softmax((1.0 - relative) / bandwidth, dim=2)  # CX_ij, normalised over target positions j
        similarity = cx.amax(dim=1).mean(dim=1)  # mean_j max_i CX_ij: (N,)
        return -torch.log(similarity)


def _check_features(pred_feats: torch.Tensor, target_feats: torch.Tensor) -> None:
    for name, feats in (("pred_feats", pred_feats), ("target_feats", target_feats)):
        if not isinstance(feats, torch.Tensor) or feats.ndim != 4 or not feats.is_floating_point():
            raise ValueError(f"{name} must be a floating-point (N, C, H, W) tensor")
    if pred_feats.shape[:2] != target_feats.shape[:2]:
        raise ValueError(f"pred_feats and target_feats must agree in N and C, got {tuple(pred_feats.shape)} and "
                         f"{tuple(target_feats.shape)}")
    if pred_feats.device != target_feats.device:
        raise ValueError(f"pred_feats and target_feats must be on the same device, got {pred_feats.device} and "
                         f"{target_feats.device}")


def contextual_loss(
    pred_feats: torch.Tensor,
    target_feats: torch.Tensor,
    *,
    channel_weights: torch.Tensor | None = None,
    bandwidth: float = 0.5,
    eps: float = 1e-5,
    max_positions: int | None = 1024,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Contextual loss ``−log CX`` between two batches of feature maps (see the module docstring).

    Args:
        pred_feats: ``(N, C, H, W)`` features of the prediction (gradients flow to it).
        target_feats: ``(N, C, H', W')`` features of the target (spatial sizes may differ: CX needs no alignment).
        channel_weights: optional ``(C,)`` non-negative weights of the channels in the cosine similarity.
        bandwidth: ``h`` (the paper's default 0.5).
        eps: ``ε`` of the relative distance.
        max_positions: at most this many positions per image enter the loss (random subset, see the module
            docstring); ``None`` uses all positions.
        generator: CPU generator for that subset (default: a fresh one seeded with 0, i.e. the same positions at
            every call for a given shape).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N,)`` per-image losses).

    Returns:
        A float32 scalar or ``(N,)`` tensor (float64 for float64 features), in ``[0, log Q]`` (``Q`` target
        positions used), lower = more similar.

    Raises:
        ValueError: on mismatched or non-4-D features, invalid weights or options.

    Example:
        >>> feats = torch.rand(2, 8, 5, 5)
        >>> float(contextual_loss(feats, feats))
        0.0
        >>> bool(contextual_loss(torch.rand(2, 8, 5, 5), feats) > 0)
        True
    """
    _check_loss_options(bandwidth, eps, max_positions, reduction)
    _check_features(pred_feats, target_feats)
    scale = _channel_scale(channel_weights, pred_feats.shape[1])
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    per_image = _contextual_head(pred_feats, target_feats, scale, float(bandwidth), float(eps), max_positions,
                                 generator)
    return reduce(per_image, reduction)


class ContextualLoss(nn.Module):
    """:func:`contextual_loss` as a module on features (fixed options, a seeded generator for the sampling).

    Args:
        channel_weights: optional ``(C,)`` non-negative channel weights (validated once; moves with the module).
        bandwidth, eps, max_positions, reduction: as :func:`contextual_loss`.
        seed: seed of the generator drawing the sampled positions (a new draw at every call).

    Example:
        >>> loss = ContextualLoss(channel_weights=torch.ones(8))
        >>> feats = torch.rand(1, 8, 4, 4)
        >>> float(loss(feats, feats))
        0.0
    """

    def __init__(
        self,
        channel_weights: torch.Tensor | None = None,
        *,
        bandwidth: float = 0.5,
        eps: float = 1e-5,
        max_positions: int | None = 1024,
        seed: int = 0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        _check_loss_options(bandwidth, eps, max_positions, reduction)
        self.n_channels = None if channel_weights is None else int(torch.as_tensor(channel_weights).numel())
        scale = None if channel_weights is None else _channel_scale(channel_weights, self.n_channels)
        self.register_buffer("_scale", None if scale is None else scale.float(), persistent=False)
        self.bandwidth, self.eps = float(bandwidth), float(eps)
        self.max_positions, self.reduction = max_positions, reduction
        self.generator = torch.Generator().manual_seed(int(seed))

    def forward(self, pred_feats: torch.Tensor, target_feats: torch.Tensor) -> torch.Tensor:
        """Loss between ``(N, C, H, W)`` prediction and target features (see :func:`contextual_loss`)."""
        _check_features(pred_feats, target_feats)
        if self.n_channels is not None and pred_feats.shape[1] != self.n_channels:
            raise ValueError(f"features have {pred_feats.shape[1]} channels, the weights {self.n_channels}")
        per_image = _contextual_head(pred_feats, target_feats, self._scale, self.bandwidth, self.eps,
                                     self.max_positions, self.generator)
        return reduce(per_image, self.reduction)

    def extra_repr(self) -> str:
        weighted = "none" if self.n_channels is None else f"{self.n_channels} channels"
        return (f"bandwidth={self.bandwidth:g}, eps={self.eps:g}, max_positions={self.max_positions}, "
                f"channel_weights={weighted}, reduction={self.reduction}")


class PEContextualLoss(nn.Module):
    """Contextual loss on a frozen backbone's features of images, with PE channel weights or H-x selection.

    Images ``(N, 3, H, W)`` (or ``(N, 1, H, W)``, repeated to RGB) in ``[0, data_range]`` go through the frozen
    backbone; on each layer the chosen channels enter :func:`contextual_loss`; per-image losses are averaged
    over the layers (or weighted by ``layer_weights``). The target is a constant (its features are computed
    without gradients): gradients flow to ``preds`` only; the backbone's parameters stay frozen.

    The channels are chosen as for a PE distance: the options form a :class:`~pe_iqa.spec.DistanceSpec` and
    :func:`~pe_iqa.resolver.resolve` loads the network (or takes the given one, analysed as it is) and selects
    each layer's channels (``subset``: ``"all"`` = F, ``"high"``/``"low"`` = H-x/L-x with ``top_percent`` = x)
    and, with ``weighting="pe"``, their weights ∝ PE (summing to 1; channels with PE 0 drop out, uniform if
    all are 0).

    Args:
        backbone: backbone name or a loaded :class:`~pe_iqa.backbones.Backbone` (shared, not copied).
        layers: layers compared (default VGG-16 ``relu2_2``, as the paper's loss).
        weights: backbone weights tag for a named backbone (``"DEFAULT"``, ``"random[:SEED]"``, a file).
        weighting: ``"uniform"`` or ``"pe"``.
        subset: ``"all"``, ``"high"`` or ``"low"``.
        top_percent: x for ``"high"``/``"low"``, in ``(0, 100]``.
        layer_weights: optional weight per layer, in the order of ``layers`` (normalised; default equal).
        bandwidth, eps, max_positions, reduction: as :class:`ContextualLoss`.
        seed: seed of the position sampling (layer ``k`` uses ``seed + k``).
        data_range: maximum of the input range (``1.0`` for ``[0, 1]``).
        check_range: validate values (one host sync; off by default, outputs of a network may overshoot).
        device: where to place the module.

    Example:
        >>> loss = PEContextualLoss("alexnet", ["relu1"], weights="random")
        >>> x = torch.rand(1, 3, 64, 64)
        >>> float(loss(x, x))
        0.0
    """

    def __init__(
        self,
        backbone: str | Backbone = "vgg16",
        layers: Sequence[str] | str = ("relu2_2",),
        *,
        weights: str = "DEFAULT",
        weighting: str = "uniform",
        subset: str = "all",
        top_percent: float = 50.0,
        layer_weights: Sequence[float] | None = None,
        bandwidth: float = 0.5,
        eps: float = 1e-5,
        max_positions: int | None = 1024,
        seed: int = 0,
        reduction: str = "mean",
        data_range: float = 1.0,
        check_range: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        _check_loss_options(bandwidth, eps, max_positions, reduction)
        given = backbone if isinstance(backbone, Backbone) else None
        # the cosine normalises the vectors itself: raw channels, weights summing to 1 (∝ PE or uniform)
        spec = DistanceSpec(given.spec.name if given is not None else backbone, layers,
                            weights=given.weights if given is not None else weights, subset=subset,
                            top_percent=top_percent, channel_norm=False, weighting=weighting,
                            data_range=data_range, layer_weights=layer_weights)
        resolved = resolve(spec, backbone=given, device=device)
        #: the :class:`~pe_iqa.spec.DistanceSpec` whose channels (and channel weights) this loss compares
        self.spec = resolved.spec
        self.layers = tuple(layer.name for layer in resolved.layers)
        self.reduction, self.check_range = reduction, check_bool("check_range", check_range)
        self.backbone = resolved.backbone
        layer_weights = self.spec.layer_weights
        self.register_buffer("layer_weights", None if layer_weights is None else torch.tensor(layer_weights),
                             persistent=False)
        heads = []
        for index, layer in enumerate(resolved.layers):
            channels = None if self.spec.subset == "all" else layer.channels
            channel_weights = layer.channel_weights if self.spec.weighting == "pe" else None
            self.register_buffer(f"_channels_{index}", channels, persistent=False)
            self.register_buffer(f"_weights_{index}", channel_weights, persistent=False)
            # one generator per layer, seeds seed, seed + 1, ...: the draws do not depend on the other layers
            heads.append(ContextualLoss(channel_weights, bandwidth=bandwidth, eps=eps, max_positions=max_positions,
                                        seed=seed + index, reduction="none"))
        self.heads = nn.ModuleList(heads)
        self.to(device if device is not None else self.backbone.mean.device)

    def selected_channels(self) -> dict[str, torch.Tensor | None]:
        """Channel indices used per layer (``None``: all channels)."""
        return {layer: getattr(self, f"_channels_{i}") for i, layer in enumerate(self.layers)}

    def channel_weights(self) -> dict[str, torch.Tensor | None]:
        """Channel weights per layer over the selected channels, summing to 1 (``None``: uniform)."""
        return {layer: getattr(self, f"_weights_{i}") for i, layer in enumerate(self.layers)}

    def _layer_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        out = self.backbone(images)
        feats = []
        for index, layer in enumerate(self.layers):
            channels = getattr(self, f"_channels_{index}")
            feats.append(out[layer] if channels is None else out[layer].index_select(1, channels))
        return feats

    def _check_memory(self, images: torch.Tensor) -> None:
        """Refuse, before the network runs, a call above the memory budget (:mod:`pe_iqa.memory`), as every PE
        call does: the backbone's activations of both batches plus each layer's sampled ``P × Q`` similarities."""
        from .memory import check_memory_budget, estimate_call_bytes

        shape = tuple(images.shape)
        estimate = estimate_call_bytes(self.backbone.activation_bytes_per_pixel(), shape)
        positions = self.heads[0].max_positions if self.heads else None
        if positions is not None:  # distance, relative distance, softmax: three (N, P, Q) float32 buffers a layer
            estimate += 3 * 4 * shape[0] * positions**2 * len(self.heads)
        check_memory_budget(estimate, images.device,
                            f"{self.spec.backbone} contextual loss on {shape[0]} {shape[-1]}×{shape[-2]} pair(s)")

    def forward(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss between predictions and targets, ``(N, 3, H, W)`` (or 1-channel) in ``[0, data_range]``.

        Returns:
            A float32 scalar (``"mean"``/``"sum"``) or ``(N,)`` (``"none"``) tensor, ``≥ 0``.
        """
        preds, target = check_image_pair(preds, target, self.spec.data_range, self.check_range,
                                         self.backbone.min_input_size, self.backbone.mean.device)
        self._check_memory(preds)
        with torch.no_grad():
            target_feats = self._layer_features(target)
        pred_feats = self._layer_features(preds)
        per_layer = torch.stack([head(a, b) for head, a, b in zip(self.heads, pred_feats, target_feats, strict=True)],
                                dim=1)
        return reduce(combine_layers(per_layer, self.layer_weights), self.reduction)

    def extra_repr(self) -> str:
        counts = {layer: "all" if c is None else int(c.numel()) for layer, c in self.selected_channels().items()}
        selection = "F" if self.spec.subset == "all" else f"{self.spec.subset[0].upper()}-{self.spec.top_percent:g}"
        return (f"backbone={self.spec.backbone}, channels={counts} ({selection}, {self.spec.weighting} weights), "
                f"reduction={self.reduction}")
