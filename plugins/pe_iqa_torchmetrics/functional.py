"""Functional PE feature distance in TorchMetrics style (``torchmetrics.functional.image.lpips`` counterpart)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from pe_iqa.distance import pe_distance

from .distance_options import preset_options

__all__ = ["pe_feature_distance"]

_REDUCTIONS = ("mean", "sum", "none", None)


def pe_feature_distance(
    preds: Tensor,
    target: Tensor,
    metric: str | None = "pe_alex",
    reduction: Literal["mean", "sum", "none"] | None = "mean",
    **kwargs,
) -> Tensor:
    """PE-selected deep-feature distance between distorted ``preds`` and reference ``target``.

    A thin wrapper of :func:`pe_iqa.distance.pe_distance`: the preset's options, updated with ``kwargs``, select
    the distance; the module is built once per option set and device and reused. Lower = more similar.

    Args:
        preds: distorted images, ``(N, 3, H, W)`` or ``(N, 1, H, W)``, float in ``[0, data_range]``.
        target: reference images, same shape and device as ``preds``.
        metric: a preset of :data:`pe_iqa.presets.METRIC_PRESETS` (``"pe_alex"``, ``"pe_vgg"``, ``"pe_alex_f"``)
            or ``None`` for :data:`pe_iqa.distance.DEFAULTS`.
        reduction: ``"mean"`` or ``"sum"`` over the batch, or ``"none"``/``None`` for the ``(N,)`` scores.
        **kwargs: options of :func:`pe_iqa.distance.pe_distance` replacing the preset's (``backbone``, ``layers``,
            ``weights``, ``subset``, ``top_percent``, ``channel_norm``, ``weighting``, ``score``, ``data_range``,
            ``check_range``).

    Returns:
        A scalar (``"mean"``/``"sum"``) or ``(N,)`` float32 tensor, differentiable with respect to the inputs.

    Raises:
        TypeError: non-tensor or non-float inputs, or an unknown keyword argument.
        ValueError: unknown preset or reduction, or invalid images (see :func:`pe_iqa.input_checks.check_image_pair`).

    Example:
        >>> import torch
        >>> from pe_iqa_torchmetrics import pe_feature_distance
        >>> preds, target = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
        >>> options = {"weights": "random", "layers": ["relu1"], "top_percent": 25}  # no weight files needed
        >>> pe_feature_distance(preds, target, reduction="none", **options).shape
        torch.Size([2])
        >>> float(pe_feature_distance(target, target, **options))
        0.0
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    options = preset_options(metric, kwargs)
    return pe_distance(preds, target, reduction=reduction or "none", **options)
