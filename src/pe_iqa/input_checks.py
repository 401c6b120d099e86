"""Validation of images passed to the distance: clear errors instead of silently wrong scores.

Checks run cheapest first. Structural checks (type, dtype, shape, device, size) read only tensor metadata
and never synchronise with the device; the value checks (finite, within ``[0, data_range]``) read the data
and cost exactly one host sync for all tensors of a call, or none with ``check_range=False``.
"""

from __future__ import annotations

import warnings

import torch

from .spec import check_data_range

__all__ = ["check_image_pair", "check_image_structure", "check_images", "check_value_range"]

# Values may exceed the range by this fraction of data_range (rounding of resampled or converted images).
_RANGE_TOLERANCE = 1e-4


def check_image_structure(name: str, images: object) -> torch.Tensor:
    """Check that ``images`` is a float ``(N, C, H, W)`` tensor with ``C ∈ {1, 3}`` and ``N ≥ 1``.

    Reads metadata only (no device sync).

    Args:
        name: the argument's name, used in error messages (e.g. ``"preds"``).
        images: the object to check.

    Returns:
        ``images`` unchanged.

    Raises:
        TypeError: not a tensor, or not a floating-point tensor (integer, bool, complex).
        ValueError: not 4-D, not 1 or 3 channels in dim 1, an empty batch, or a meta tensor (no data).
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, 3, H, W), got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype {images.dtype}; "
            f"convert 8-bit images with `{name}.float() / 255` (or `.float()` and data_range=255)"
        )
    if images.ndim != 4:
        raise ValueError(f"{name} must have 4 dimensions (N, C, H, W), got {images.ndim} (shape "
                         f"{tuple(images.shape)}){_layout_hint(name, tuple(images.shape))}")
    if images.shape[1] not in (1, 3):
        hint = _layout_hint(name, tuple(images.shape))
        raise ValueError(
            f"{name} must have 1 (grayscale) or 3 (RGB) channels in dim 1, got {images.shape[1]} "
            f"(shape {tuple(images.shape)})" + (hint or "; drop alpha channels and use channels-first (N, C, H, W)")
        )
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0, shape {tuple(images.shape)}); pass at least one image")
    if images.device.type == "meta":
        raise ValueError(f"{name} is a meta tensor (shape only, no data): a distance needs real values")
    return images


def _layout_hint(name: str, shape: tuple[int, ...]) -> str:
    """How to turn a tensor of ``shape`` into ``(N, C, H, W)``: a batch dimension, or channels moved first.

    Example:
        >>> _layout_hint("preds", (256, 256, 3))
        ' — it looks channels-last (H, W, C): use preds.permute(2, 0, 1).unsqueeze(0)'
    """
    channels_last = len(shape) in (3, 4) and shape[-1] in (1, 3, 4) and shape[-3] not in (1, 3)
    alpha = "[..., :3]" if channels_last and shape[-1] == 4 else ""
    if len(shape) == 3 and channels_last:
        return f" — it looks channels-last (H, W, C): use {name}{alpha}.permute(2, 0, 1).unsqueeze(0)"
    if len(shape) == 4 and channels_last:
        return f" — it looks channels-last (N, H, W, C): use {name}{alpha}.permute(0, 3, 1, 2)"
    if len(shape) == 3:
        return " — add a batch dimension with .unsqueeze(0)"
    if len(shape) == 2:
        return f" — a grayscale (H, W) image: use {name}.unsqueeze(0).unsqueeze(0)"
    return ""


def _check_size(images: torch.Tensor, min_size: int) -> None:
    height, width = images.shape[-2:]
    if min(height, width) < min_size:
        raise ValueError(
            f"images must be at least {min_size}×{min_size} pixels for the deepest layer used, got "
            f"{height}×{width}; upsample or pad them, or use shallower layers"
        )


def _check_device(names: str, images: torch.Tensor, device: torch.device | None) -> None:
    if device is not None and images.device != device:
        raise ValueError(
            f"{names} on {images.device} but the metric is on {device}; move the images with "
            f".to('{device}') or the metric with .to('{images.device}')"
        )


def check_value_range(tensors: dict[str, torch.Tensor], data_range: float = 1.0) -> None:
    """Check that every tensor is finite and within ``[0, data_range]``, with one host sync in all.

    Args:
        tensors: ``{argument name: images}``; the names appear in the error messages.
        data_range: the maximum of the expected range (``1.0`` for ``[0, 1]``).

    Raises:
        ValueError: NaN or Inf values, or values outside ``[0, data_range]`` (beyond a ``1e-4·data_range``
            tolerance). The message suggests the fix when the data look like ``[0, 255]`` or ``[-1, 1]`` images.
    """
    stats = []
    for images in tensors.values():
        data = images.detach()
        low, high = data.aminmax()
        stats.append(torch.stack([torch.isfinite(data).all().float(), low.float(), high.float()]))
    values = torch.stack(stats).tolist()  # the one host sync
    tolerance = _RANGE_TOLERANCE * data_range
    brightest = max(high for _, _, high in values)
    if data_range >= 2 and 0 < brightest <= data_range / 255 + tolerance:
        warnings.warn(f"every value is <= {brightest:.4g} while data_range={data_range:g}: these look like [0, 1] "
                      f"images; pass data_range=1 (scores of [0, 1] data read as [0, {data_range:g}] are near 0)",
                      UserWarning, stacklevel=4)
    for name, (finite, low, high) in zip(tensors, values, strict=True):
        if not finite:
            raise ValueError(f"{name} contains NaN or Inf values")
        if low >= -tolerance and high <= data_range + tolerance:
            continue
        if low >= -tolerance and 1.5 * data_range < high <= 255 * data_range + tolerance:
            hint = (f"it looks like [0, 255] data: divide by 255 (`{name} / 255`) or pass "
                    f"data_range={255 * data_range:g}")
        elif -data_range - tolerance <= low < -tolerance and high <= data_range + tolerance:
            hint = f"it looks like [-1, 1] data: map it to [0, 1] with `({name} + 1) / 2`"
        else:
            hint = (f"clamp it with `{name}.clamp(0, {data_range:g})`, or pass check_range=False "
                    f"(e.g. for a training loss on outputs that overshoot)")
        raise ValueError(
            f"{name} must have values in [0, {data_range:g}], got min={low:.4g}, max={high:.4g} — {hint}"
        )


def check_images(
    images: object,
    name: str = "images",
    data_range: float = 1.0,
    check_range: bool = True,
    min_size: int = 1,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Validate one batch of images and bring it to ``(N, 3, H, W)`` in ``[0, 1]``.

    Args:
        images: ``(N, C, H, W)``, ``C ∈ {1, 3}``, float, values in ``[0, data_range]``.
        name: the argument's name in error messages.
        data_range: the maximum value of the images' range.
        check_range: verify the values (finite, in range); one host sync. ``False`` skips all value checks.
        min_size: smallest accepted height and width.
        device: the device the images must be on (``None``: any).

    Returns:
        ``(N, 3, H, W)`` images scaled to ``[0, 1]`` (grayscale repeated to RGB, as a view).

    Raises:
        TypeError, ValueError: as :func:`check_image_pair`.
    """
    data_range = check_data_range(data_range)
    images = check_image_structure(name, images)
    _check_device(f"{name} is", images, device)
    _check_size(images, min_size)
    if check_range:
        check_value_range({name: images}, data_range)
    if data_range != 1.0:
        images = images / data_range
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images


def check_image_pair(
    preds: object,
    target: object,
    data_range: float = 1.0,
    check_range: bool = True,
    min_size: int = 1,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a (distorted, reference) pair and bring it to ``(N, 3, H, W)`` in ``[0, 1]``.

    Args:
        preds: distorted images ``(N, C, H, W)``, ``C ∈ {1, 3}``, float, values in ``[0, data_range]``.
        target: reference images, same shape and device as ``preds``.
        data_range: the maximum value of the images' range (``1.0`` for ``[0, 1]``, ``255.0`` for 8-bit data).
        check_range: verify values are finite and lie in ``[0, data_range]`` (costs one host sync for both
            tensors; turn off in a training loss on generator outputs that may overshoot slightly — then no
            value is checked and NaN inputs give NaN distances).
        min_size: smallest accepted height and width.
        device: the device both tensors must be on (the metric's); ``None`` accepts any common device.

    Returns:
        ``(preds, target)`` as 3-channel tensors scaled to ``[0, 1]`` (grayscale repeated to RGB).

    Raises:
        TypeError: a non-tensor or a non-floating tensor.
        ValueError: wrong ndim, channel count, mismatched shapes or devices, empty batch, images smaller
            than ``min_size``, NaN/Inf or out-of-range values, or a ``data_range`` that is not positive.
    """
    data_range = check_data_range(data_range)
    preds = check_image_structure("preds", preds)
    target = check_image_structure("target", target)
    if preds.shape != target.shape:
        raise ValueError(
            f"preds and target must have the same shape, got {tuple(preds.shape)} and {tuple(target.shape)}"
        )
    if preds.device != target.device:
        raise ValueError(f"preds and target must be on the same device, got {preds.device} and {target.device}")
    _check_device("preds and target are", preds, device)
    _check_size(preds, min_size)
    if check_range:
        check_value_range({"preds": preds, "target": target}, data_range)
    if data_range != 1.0:
        preds, target = preds / data_range, target / data_range
    if preds.shape[1] == 1:
        preds, target = preds.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
    return preds, target
