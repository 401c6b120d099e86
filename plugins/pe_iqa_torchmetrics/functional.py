"""Functional PE feature distance in TorchMetrics style (``torchmetrics.functional.image.lpips`` counterpart)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from pe_iqa.functional import pe_distance
from pe_iqa.presets import DEFAULT_METRIC
from pe_iqa.spec import DistanceSpec

__all__ = ["pe_feature_distance"]


def pe_feature_distance(
    preds: Tensor,
    target: Tensor,
    metric: str | DistanceSpec | None = DEFAULT_METRIC,
    reduction: Literal["mean", "sum", "none"] | None = "mean",
    **kwargs,
) -> Tensor:
    """PE-selected deep-feature distance between distorted ``preds`` and reference ``target``.

    A thin wrapper of :func:`pe_iqa.functional.pe_distance` (same module cache, same validation). Lower = more
    similar; presets lie in ``[0, 1]``.

    Args:
        preds: distorted images, ``(N, 3, H, W)`` or ``(N, 1, H, W)``, float in ``[0, data_range]``.
        target: reference images, same shape and device as ``preds``.
        metric: a preset of :data:`pe_iqa.presets.PRESETS` (``"pe_alex"``, ``"pe_vgg"``, ``"pe_alex_f"``), a
            :class:`~pe_iqa.spec.DistanceSpec`, or ``None`` for the default (``"pe_alex"``).
        reduction: ``"mean"`` or ``"sum"`` over the batch, or ``"none"``/``None`` for the ``(N,)`` scores.
        **kwargs: options of :func:`pe_iqa.functional.pe_distance` replacing the preset's (``backbone``, ``layers``,
            ``weights``, ``subset``, ``top_percent``, ``channel_norm``, ``weighting``, ``score``, ``config``,
            ``data_range``, ``check_range``).

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
    return pe_distance(preds, target, metric or DEFAULT_METRIC, reduction=reduction or "none", **kwargs)
