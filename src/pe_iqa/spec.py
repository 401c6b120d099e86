"""The specification of a PE distance: one frozen, validated, hashable value.

A :class:`DistanceSpec` says everything that determines a distance's value: the backbone and its weights, the
layers compared, which channels (H-x / L-x / F by an efficacy score), whether they are unit-normalised, how they
are weighted, the PE analysis configuration and the input range. Every entry point — :class:`~pe_iqa.PEDistance`,
:func:`~pe_iqa.functional.pe_distance`, the TorchMetrics metric, the pyiqa architecture, the command line and the
benchmarks — builds one, so options are validated here, once. Named presets (``pe_alex`` …) are instances of it
(:data:`pe_iqa.presets.PRESETS`). How a distance is *run* (reduction, range checks, device, pruning, compilation)
is not part of the spec: it never changes the value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from .analysis_config import SCORE_NAMES, AnalysisConfig
from .backbones import backbone_spec, canonical_name
from .selections import check_selection

__all__ = ["DATA_RANGE_LIMITS", "WEIGHTINGS", "DistanceSpec", "check_bool", "check_data_range"]

WEIGHTINGS = ("uniform", "pe")
#: Accepted ``data_range`` values: ``1`` for ``[0, 1]`` images up to 32-bit integer white levels; outside, inputs
#: divided by it overflow or lose every digit (``1e-300`` gave NaN scores).
DATA_RANGE_LIMITS = (1e-6, 1e10)


def check_bool(name: str, value: object) -> bool:
    """``value`` as a bool if it is one (NumPy bools included), else a ``TypeError`` (``"no"`` is not ``False``)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def check_data_range(value: object) -> float:
    """``value`` as a float if it is a number within :data:`DATA_RANGE_LIMITS`, else a ``ValueError`` (shared by
    the input checks)."""
    low, high = DATA_RANGE_LIMITS
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not (
            math.isfinite(float(value)) and low <= float(value) <= high):
        raise ValueError(f"data_range must be a number from {low:g} to {high:g} (1.0 for [0, 1] images, 255 for "
                         f"[0, 255]), got {value!r}")
    return float(value)


def _check_layer_weights(weights: object, given_layers: object, layers: tuple[str, ...]) -> tuple[float, ...] | None:
    """``weights`` (one per given layer) normalised to sum 1 and reordered like ``layers``; ``None`` stays ``None``."""
    if weights is None:
        return None
    if isinstance(weights, (str, bytes)) or not isinstance(weights, (list, tuple, np.ndarray)):
        raise TypeError(f"layer_weights must be a sequence of numbers, got {type(weights).__name__}")
    values = [float(w) if isinstance(w, numbers.Real) and not isinstance(w, (bool, np.bool_)) else None
              for w in weights]
    if any(v is None for v in values):
        raise TypeError(f"layer_weights must be numbers, got {list(weights)!r}")
    names = layers if given_layers is None else ((given_layers,) if isinstance(given_layers, str)
                                                 else tuple(given_layers))
    if len(names) != len(set(names)):
        raise ValueError(f"layer_weights need distinct layers, got {list(names)}")
    if len(values) != len(names):
        raise ValueError(f"layer_weights must give one weight per layer ({len(names)}: {list(names)}), "
                         f"got {len(values)}")
    if not all(math.isfinite(v) and v >= 0 for v in values) or not sum(values) > 0:
        raise ValueError(f"layer_weights must be finite, non-negative and not all zero, got {values}")
    total = sum(values)
    if not math.isfinite(total):  # e.g. (1e308, 1e308): scale by the largest first (only then: same digits as before)
        largest = max(values)
        values = [v / largest for v in values]
        total = sum(values)
    by_name = dict(zip(names, values, strict=True))
    return tuple(by_name[layer] / total for layer in layers)


@dataclass(frozen=True)
class DistanceSpec:
    """What a PE distance is (validated on construction; immutable and hashable).

    Attributes:
        backbone: backbone name (aliases accepted, stored canonical), e.g. ``"alexnet"``, ``"vgg16"``,
            ``"timm:resnet50"``.
        layers: layers compared, shallow to deep; ``None`` (the default) means the backbone's default layers
            (LPIPS's taps where LPIPS has them). Stored as a tuple.
        weights: backbone weights tag (``"DEFAULT"``, a weight-enum name, ``"random[:SEED]"`` or a file path).
        subset: ``"high"`` (H-x), ``"low"`` (L-x) or ``"all"`` (F).
        top_percent: x, the percentage of channels kept per layer, in ``(0, 100]``.
        channel_norm: unit-normalise the selected channels at each position (LPIPS-style). The distance is then
            ``½ Σ_m w_m (â_m − b̂_m)²`` averaged over positions, with weights averaging 1: ``1 − cos`` of the
            feature vectors, in ``[0, 1]`` for ReLU features. Without it, the raw Eq. 1 (mean over channels).
        weighting: ``"uniform"`` or ``"pe"`` (channel weights proportional to their score).
        score: the built-in efficacy score ranking the channels (:data:`~pe_iqa.analysis_config.SCORE_NAMES`).
        config: the PE analysis configuration (:class:`~pe_iqa.analysis_config.AnalysisConfig`).
        data_range: the maximum of the input range (``1.0`` for ``[0, 1]``, ``255`` for 8-bit data).
        layer_weights: how the layers' distances are combined: ``None`` (the default) averages them; otherwise one
            non-negative weight per layer, in the order ``layers`` was given, not all zero. Stored normalised to
            sum 1, in the stored (shallow-to-deep) layer order.

    Raises:
        TypeError: a field of the wrong type (e.g. ``channel_norm="no"``).
        ValueError: an unknown backbone, layer, subset, weighting or score, or a number out of range.

    Example:
        >>> spec = DistanceSpec("alex", ["relu3"], top_percent=25)
        >>> spec.backbone, spec.layers, spec.top_percent
        ('alexnet', ('relu3',), 25.0)
        >>> spec.replace(backbone="vgg16").layers  # another backbone: its default layers
        ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3')
    """

    backbone: str = "alexnet"
    layers: tuple[str, ...] | None = None
    weights: str = "DEFAULT"
    subset: str = "high"
    top_percent: float = 10.0
    channel_norm: bool = True
    weighting: str = "uniform"
    score: str = "pe"
    config: AnalysisConfig = field(default_factory=AnalysisConfig)
    data_range: float = 1.0
    layer_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        backbone = canonical_name(self.backbone)
        layers = backbone_spec(backbone).check_layers(self.layers)
        if not isinstance(self.weights, str):
            raise TypeError(f"weights must be a string tag or file path, got {type(self.weights).__name__}")
        subset, top_percent = check_selection(self.subset, self.top_percent)
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.score not in SCORE_NAMES:  # a name registered by the deprecated register_score: ask the analysis
            from .analysis.efficacy import score_function

            score_function(self.score)
        if not isinstance(self.config, AnalysisConfig):
            raise TypeError(f"config must be an AnalysisConfig, got {type(self.config).__name__}")
        values = {"backbone": backbone, "layers": layers, "subset": subset, "top_percent": top_percent,
                  "channel_norm": check_bool("channel_norm", self.channel_norm),
                  "data_range": check_data_range(self.data_range),
                  "layer_weights": _check_layer_weights(self.layer_weights, self.layers, layers)}
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """The names of the fields (the options that change a distance's value)."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: object) -> DistanceSpec:
        """A copy with some fields changed, validated.

        Changing the backbone without giving ``layers`` selects the new backbone's default layers.

        Raises:
            TypeError: an unknown option name, or a value of the wrong type.
            ValueError: an invalid value.
        """
        unknown = sorted(set(changes) - self.option_names())
        if unknown:
            raise TypeError(f"unknown distance option(s) {unknown}; options are {sorted(self.option_names())}")
        if "backbone" in changes and "layers" not in changes and canonical_name(changes["backbone"]) != self.backbone:
            changes["layers"] = None
            changes.setdefault("layer_weights", None)
        return dataclasses.replace(self, **changes)

    def canonical(self) -> str:
        """Every field as one stable JSON text (sorted keys, floats written exactly): equal specs give equal texts.

        Example:
            >>> DistanceSpec("alex", ["relu3"]).canonical()[:40]
            '{"backbone":"alexnet","channel_norm":tru'
        """
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def digest(self) -> str:
        """SHA-256 of :meth:`canonical` (hex): the spec's identity in provenance records and file names."""
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()

    @property
    def value_range(self) -> tuple[float, float]:
        """The values this distance can take on ReLU layers: ``(0, 1)`` with unit-normalised channels and uniform
        weights (``½‖â − b̂‖²`` of non-negative unit vectors); ``(0, inf)`` otherwise (PE weights can give one
        channel more than its ``½``; the raw Eq. 1 has no upper bound).

        Example:
            >>> DistanceSpec("alexnet").value_range, DistanceSpec("alexnet", weighting="pe").value_range
            ((0.0, 1.0), (0.0, inf))
        """
        bounded = self.channel_norm and self.weighting == "uniform"
        return (0.0, 1.0) if bounded else (0.0, math.inf)

    def describe(self) -> str:
        """A one-line summary, e.g. ``"alexnet relu3, H-10 by pe, unit-norm, uniform weights"``."""
        selection = "F" if self.subset == "all" else f"{self.subset[0].upper()}-{self.top_percent:g} by {self.score}"
        norm = "unit-norm" if self.channel_norm else "raw Eq. 1"
        weights = "" if self.weights == "DEFAULT" else f" ({self.weights} weights)"
        names = "+".join(self.layers) if self.layer_weights is None else "+".join(
            f"{w:.3g}·{layer}" for layer, w in zip(self.layers, self.layer_weights, strict=True))
        return f"{self.backbone}{weights} {names}, {selection}, {norm}, {self.weighting} weights"
