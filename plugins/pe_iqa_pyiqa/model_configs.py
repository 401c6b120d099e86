"""pyiqa model configs (``pyiqa.default_model_configs.DEFAULT_CONFIGS`` entries) for the PE metric presets."""

from __future__ import annotations

import math

from pe_iqa.distance import PEDistance
from pe_iqa.presets import PRESETS
from pe_iqa.spec import DistanceSpec

__all__ = ["model_config", "model_configs", "score_range"]

#: The architecture name pyiqa builds the presets with (:class:`~pe_iqa_pyiqa.arch.PEDistanceArch`).
ARCH_NAME = "PEDistanceArch"


def score_range(spec: DistanceSpec) -> str:
    """pyiqa's ``score_range`` text (``"min, max"``, ``~`` for an open end) of a distance.

    The range is the core's (:attr:`pe_iqa.spec.DistanceSpec.value_range`): at most 1 with unit-normalised
    channels and uniform weights (every preset), no fixed upper bound for PE-weighted or raw (Eq. 1) distances.

    Args:
        spec: a preset's specification.

    Returns:
        ``"0, 1"`` or ``"0, ~"``.
    """
    low, high = spec.value_range
    return f"{low:g}, {high:g}" if math.isfinite(high) else f"{low:g}, ~"


def model_config(name: str) -> dict:
    """The pyiqa config of preset ``name``: full-reference, lower is better, built by ``PEDistanceArch``.

    Raises:
        ValueError: unknown preset.
    """
    if name not in PRESETS:
        raise ValueError(f"name must be one of {sorted(PRESETS)}, got {name!r}")
    return {
        "metric_opts": {"type": ARCH_NAME, "metric": name},
        "metric_mode": "FR",
        "lower_better": PEDistance.lower_better,
        "score_range": score_range(PRESETS[name]),
    }


def model_configs() -> dict[str, dict]:
    """``{preset name: pyiqa config}`` for every preset in :data:`pe_iqa.presets.PRESETS`."""
    return {name: model_config(name) for name in PRESETS}
