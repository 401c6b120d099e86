"""pyiqa model configs (``pyiqa.default_model_configs.DEFAULT_CONFIGS`` entries) for the PE metric presets."""

from __future__ import annotations

from pe_iqa.presets import METRIC_PRESETS

from .arch import PEDistanceArch

__all__ = ["model_config", "model_configs", "score_range"]


def score_range(options: dict) -> str:
    """pyiqa's ``score_range`` text (``"min, max"``, ``~`` for an open end) for a preset's options.

    With ``channel_norm`` the selected channels are divided by their norm at each position, so every component
    has magnitude below 1. The presets tap ReLU outputs (``relu3``, ``relu2_2``): components lie in ``[0, 1)``,
    each squared difference is below 1, and the channel weights sum to 1, so each layer's distance (a weighted
    mean of squared differences over channels and positions) and their mean lie in ``[0, 1]``. (For signed
    features the bound would be ``4 · max weight`` ≤ 4; for uniform weights over ``K`` non-negative channels it
    is ``2 / K``, so observed values are far below 1.) Without ``channel_norm`` the distance is unbounded.

    Args:
        options: :class:`~pe_iqa.distance.PEDistance` keyword arguments of a preset.

    Returns:
        ``"0, 1"`` or ``"0, ~"``.
    """
    return "0, 1" if options.get("channel_norm", True) else "0, ~"


def model_config(name: str) -> dict:
    """The pyiqa config of preset ``name``: full-reference, lower is better, built by :class:`PEDistanceArch`.

    Raises:
        ValueError: unknown preset.
    """
    if name not in METRIC_PRESETS:
        raise ValueError(f"name must be one of {sorted(METRIC_PRESETS)}, got {name!r}")
    return {
        "metric_opts": {"type": PEDistanceArch.__name__, "metric": name},
        "metric_mode": "FR",
        "lower_better": True,
        "score_range": score_range(METRIC_PRESETS[name]),
    }


def model_configs() -> dict[str, dict]:
    """``{preset name: pyiqa config}`` for every preset in :data:`pe_iqa.presets.METRIC_PRESETS`."""
    return {name: model_config(name) for name in METRIC_PRESETS}
