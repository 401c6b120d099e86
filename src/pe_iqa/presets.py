"""Named metric presets (``pe_alex``, ``pe_vgg`` …): the table the pyiqa and TorchMetrics adapters expose.

Each preset is a dict of :class:`~pe_iqa.distance.PEDistance` keyword arguments. ``pe_alex`` is the package
default (:data:`~pe_iqa.distance.DEFAULTS`); the others fix the backbone and its layers. All presets are
full-reference distances: lower = more similar, 0 for identical images.
"""

from __future__ import annotations

import torch

from .distance import DEFAULTS, PEDistance

__all__ = ["METRIC_PRESETS", "create_preset"]

METRIC_PRESETS: dict[str, dict] = {
    "pe_alex": {k: v for k, v in DEFAULTS.items()},
    # VGG-16 relu2_2, H-50 by PE, unit-normalised. Measured on LIVE at native resolution (what PEDistance sees):
    # H-10/25/50 = .902/.926/.932, F .934, L-50 .921; the raw-Eq. 1 H-10 cell that looked best on ×0.5 images
    # (.939) drops to .866 at native size, so VGG selections are scale-sensitive and we keep the robust one.
    "pe_vgg": {**DEFAULTS, "backbone": "vgg16", "layers": ("relu2_2",), "top_percent": 50.0},
    "pe_alex_f": {**DEFAULTS, "subset": "all"},
}


def create_preset(name: str, device: torch.device | str | None = None, **overrides) -> PEDistance:
    """Build the :class:`~pe_iqa.distance.PEDistance` of a named preset.

    Args:
        name: one of :data:`METRIC_PRESETS`.
        device: where to place the module.
        **overrides: keyword arguments replacing the preset's (e.g. ``reduction="none"``).

    Raises:
        ValueError: if the preset is unknown.
    """
    try:
        options = dict(METRIC_PRESETS[name])
    except KeyError:
        raise ValueError(f"metric must be one of {sorted(METRIC_PRESETS)}, got {name!r}") from None
    options.update(overrides)
    return PEDistance(device=device, **options)
