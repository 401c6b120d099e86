"""Validation of image pairs passed to the distance: clear errors instead of silently wrong scores."""

from __future__ import annotations

import torch

__all__ = ["check_image_pair"]


def _check_one(name: str, images: object, data_range: float, check_range: bool) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, 3, H, W), got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor with values in [0, {data_range:g}], got dtype {images.dtype}; "
            f"convert uint8 images with `{name}.float() / 255`"
        )
    if images.ndim != 4:
        raise ValueError(f"{name} must have 4 dimensions (N, C, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] not in (1, 3):
        raise ValueError(
            f"{name} must have 1 (grayscale) or 3 (RGB) channels in dim 1, got {images.shape[1]} "
            f"(shape {tuple(images.shape)}); drop alpha channels and use channels-first (N, C, H, W)"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0)")
    finite = torch.isfinite(images).all()
    if check_range:
        low, high = images.detach().aminmax()
        # one host sync for all three checks
        ok, lo, hi = torch.stack([finite.to(low.dtype), low, high]).float().tolist()
        if not ok:
            raise ValueError(f"{name} contains NaN or Inf values")
        tolerance = 1e-4 * data_range
        if lo < -tolerance or hi > data_range + tolerance:
            hint = ""
            if hi > data_range + tolerance and hi <= 255 * data_range + tolerance and hi > 1.5 * data_range:
                hint = f" — it looks like [0, 255] data: divide by 255 or pass data_range={255 * data_range:g}"
            elif lo < -tolerance and lo >= -data_range - tolerance:
                hint = " — it looks like [-1, 1] data: map it with (x + 1) / 2"
            raise ValueError(
                f"{name} must have values in [0, {data_range:g}], got min={lo:.4g}, max={hi:.4g}{hint}"
            )
    elif not bool(finite):
        raise ValueError(f"{name} contains NaN or Inf values")
    return images


def check_image_pair(
    preds: object,
    target: object,
    data_range: float = 1.0,
    check_range: bool = True,
    min_size: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a (distorted, reference) pair and bring it to ``(N, 3, H, W)`` in ``[0, 1]``.

    Args:
        preds: distorted images ``(N, C, H, W)``, ``C ∈ {1, 3}``, float, values in ``[0, data_range]``.
        target: reference images, same shape and device as ``preds``.
        data_range: the maximum value of the images' range (``1.0`` for ``[0, 1]``, ``255.0`` for 8-bit data).
        check_range: verify values lie in ``[0, data_range]`` (costs one host sync; turn off in a training
            loss on generator outputs that may overshoot slightly).
        min_size: smallest accepted height and width.

    Returns:
        ``(preds, target)`` as 3-channel tensors scaled to ``[0, 1]`` (grayscale repeated to RGB).

    Raises:
        TypeError: a non-tensor or a non-floating tensor.
        ValueError: wrong ndim, channel count, mismatched shapes or devices, empty batch, NaN/Inf,
            out-of-range values, or images smaller than ``min_size``.
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    preds = _check_one("preds", preds, data_range, check_range)
    target = _check_one("target", target, data_range, check_range)
    if preds.shape != target.shape:
        raise ValueError(
            f"preds and target must have the same shape, got {tuple(preds.shape)} and {tuple(target.shape)}"
        )
    if preds.device != target.device:
        raise ValueError(f"preds and target must be on the same device, got {preds.device} and {target.device}")
    height, width = preds.shape[-2:]
    if min(height, width) < min_size:
        raise ValueError(
            f"images must be at least {min_size}×{min_size} pixels for the deepest layer used, got {height}×{width}"
        )
    if data_range != 1.0:
        preds, target = preds / data_range, target / data_range
    if preds.shape[1] == 1:
        preds, target = preds.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
    return preds, target
