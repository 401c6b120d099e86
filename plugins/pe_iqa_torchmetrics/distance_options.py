"""Which keyword arguments configure the PE distance, and building it from a preset name plus overrides.

Shared by :class:`~pe_iqa_torchmetrics.metric.PEFeatureDistance` (which must tell its distance options apart
from TorchMetrics' ``Metric`` options) and :func:`~pe_iqa_torchmetrics.functional.pe_feature_distance`.
"""

from __future__ import annotations

import inspect

from pe_iqa.distance import PEDistance
from pe_iqa.presets import METRIC_PRESETS, create_preset

__all__ = ["DISTANCE_OPTIONS", "build_distance", "preset_options", "split_distance_options"]

#: Keyword arguments of :class:`~pe_iqa.distance.PEDistance` an adapter may pass through. ``reduction`` is fixed
#: by the adapter (per-image scores) and ``device`` is replaced by ``.to(device)``.
DISTANCE_OPTIONS: frozenset[str] = frozenset(inspect.signature(PEDistance).parameters) - {"reduction", "device"}


def split_distance_options(kwargs: dict) -> tuple[dict, dict]:
    """Split keyword arguments into ``(PEDistance options, the rest)``.

    Raises:
        TypeError: if ``reduction`` or ``device`` is given (the adapters set them themselves).
    """
    for name in ("reduction", "device"):
        if name in kwargs:
            raise TypeError(
                f"{name!r} is not accepted here: "
                + ("use per_sample=True for per-image scores" if name == "reduction" else "use .to(device)")
            )
    distance = {k: v for k, v in kwargs.items() if k in DISTANCE_OPTIONS}
    rest = {k: v for k, v in kwargs.items() if k not in DISTANCE_OPTIONS}
    return distance, rest


def preset_options(metric: str | None, overrides: dict) -> dict:
    """The ``PEDistance`` keyword arguments of preset ``metric`` with ``overrides`` applied.

    Args:
        metric: a name in :data:`pe_iqa.presets.METRIC_PRESETS`, or ``None`` for ``PEDistance``'s own defaults.
        overrides: option → value, replacing the preset's.

    Raises:
        TypeError: ``metric`` is neither a string nor ``None``.
        ValueError: unknown preset name.
    """
    if metric is None:
        return dict(overrides)
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a preset name (str) or None, got {type(metric).__name__}")
    if metric not in METRIC_PRESETS:
        raise ValueError(f"metric must be one of {sorted(METRIC_PRESETS)} or None, got {metric!r}")
    return {**METRIC_PRESETS[metric], **overrides}


def build_distance(metric: str | None, options: dict) -> PEDistance:
    """A ``PEDistance`` returning per-image scores (``reduction="none"``) for preset ``metric`` + ``options``.

    Built by :func:`pe_iqa.presets.create_preset` (or :class:`~pe_iqa.distance.PEDistance` when ``metric`` is
    ``None``), so it is exactly the core's module.

    Raises:
        TypeError, ValueError: invalid preset name or options (raised by the core).
    """
    preset_options(metric, {})  # validates the name with this module's message
    if metric is None:
        return PEDistance(reduction="none", **options)
    return create_preset(metric, reduction="none", **options)
