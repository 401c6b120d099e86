"""Named PE distances (``pe_alex``, ``pe_vgg``, ``pe_alex_f``) as data, and resolving a name or spec with overrides.

Each preset is a :class:`~pe_iqa.spec.DistanceSpec`. ``pe_alex`` is the package default. All presets are
full-reference distances: lower = more similar, 0 for identical images, in ``[0, 1]`` (unit-normalised ReLU
features, uniform weights; see :class:`~pe_iqa.spec.DistanceSpec`). The TorchMetrics and pyiqa adapters, the
command line and the benchmarks expose exactly these.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .backbones import canonical_name
from .spec import DistanceSpec

__all__ = ["DEFAULT_METRIC", "PRESETS", "resolve_spec"]

#: The package's default metric.
DEFAULT_METRIC = "pe_alex"

#: Named distances (read-only). Chosen on the shared LIVE data; see the README, "Choosing the defaults".
PRESETS: Mapping[str, DistanceSpec] = MappingProxyType({
    # AlexNet relu3, H-10 by PE, unit-normalised, uniform weights: LIVE SROCC .936, chosen by leave-one-reference-out
    # CV at relu3 in 4/5 folds; conv3 computes only the 38 selected filters.
    "pe_alex": DistanceSpec("alexnet", ("relu3",), top_percent=10.0),
    # VGG-16 relu2_2, H-50 by PE, unit-normalised: shared LIVE SROCC .932 at native resolution (what PEDistance
    # sees; benchmarks/results/live_fr_pe_vgg_native.md), .883 on ×0.5 images (live_table.md). VGG selections are
    # scale-sensitive (README, "Choosing the defaults"); H-50 is kept as the less extreme choice, not a tuned one.
    "pe_vgg": DistanceSpec("vgg16", ("relu2_2",), top_percent=50.0),
    # The F control of pe_alex: every relu3 channel.
    "pe_alex_f": DistanceSpec("alexnet", ("relu3",), subset="all"),
})


def resolve_spec(metric: str | DistanceSpec = DEFAULT_METRIC, **overrides: object) -> DistanceSpec:
    """The :class:`~pe_iqa.spec.DistanceSpec` of a preset name (or a spec), with options overridden.

    Args:
        metric: a name in :data:`PRESETS` or a :class:`~pe_iqa.spec.DistanceSpec`.
        **overrides: :class:`~pe_iqa.spec.DistanceSpec` fields to change (``None`` values are ignored, so callers
            can pass their own optional arguments through).

    Raises:
        TypeError: ``metric`` of another type, or an unknown option.
        ValueError: an unknown preset (a backbone name gets a hint), or an invalid option value.

    Example:
        >>> resolve_spec("pe_vgg", top_percent=25).describe()
        'vgg16 relu2_2, H-25 by pe, unit-norm, uniform weights'
    """
    if isinstance(metric, DistanceSpec):
        spec = metric
    elif isinstance(metric, str):
        if metric not in PRESETS:
            hint = ""
            try:
                hint = f"; {canonical_name(metric)!r} is a backbone: use backbone={metric!r}"
            except (TypeError, ValueError):
                pass
            raise ValueError(f"metric must be one of {sorted(PRESETS)} or a DistanceSpec, got {metric!r}{hint}")
        spec = PRESETS[metric]
    else:
        raise TypeError(f"metric must be a preset name or a DistanceSpec, got {type(metric).__name__}")
    changes = {name: value for name, value in overrides.items() if value is not None}
    return spec.replace(**changes) if changes else spec
