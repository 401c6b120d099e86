"""pyiqa model configs (``pyiqa.default_model_configs.DEFAULT_CONFIGS`` entries) for the PE metric presets."""

from __future__ import annotations

from pe_iqa.presets import PRESETS
from pe_iqa.spec import DistanceSpec

__all__ = ["model_config", "model_configs", "score_range"]

#: The architecture name pyiqa builds the presets with (:class:`~pe_iqa_pyiqa.arch.PEDistanceArch`).
ARCH_NAME = "PEDistanceArch"


def score_range(spec: DistanceSpec) -> str:
    """pyiqa's ``score_range`` text (``"min, max"``, ``~`` for an open end) of a distance.

    Unit-normalised channels with uniform weights give ``½‖â − b̂‖²`` averaged over positions (see
    :mod:`pe_iqa.feature_distance`): at most 1 for the non-negative (ReLU) features every preset compares — two
    unit vectors with non-negative components are at most √2 apart — whatever the number of channels. PE-weighted
    or raw (Eq. 1) distances have no fixed upper bound.

    Args:
        spec: a preset's specification.

    Returns:
        ``"0, 1"`` or ``"0, ~"``.
    """
    return "0, 1" if spec.channel_norm and spec.weighting == "uniform" else "0, ~"


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
        "lower_better": True,
        "score_range": score_range(PRESETS[name]),
    }


def model_configs() -> dict[str, dict]:
    """``{preset name: pyiqa config}`` for every preset in :data:`pe_iqa.presets.PRESETS`."""
    return {name: model_config(name) for name in PRESETS}
