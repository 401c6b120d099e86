"""The one metric registry: pe-iqa presets, the providers a caller adds, and whatever installed plugins provide.

A :class:`ScoringMetric` scores a batch of same-size pairs ``(N, 3, H, W)`` in ``[0, 1]`` to ``(N,)`` and, when it
can, splits off the reference's features so a reference scored against many distortions is encoded once.

A :class:`MetricRegistry` turns names into metrics by asking **metric providers** in turn (objects with
``knows(name) -> bool``, cheap: no model is built, and ``build(name, device) -> ScoringMetric``): first the
pe-iqa presets (``pe_alex``, ..., built by :func:`build_pe_metric`), then the providers given to it, then those
installed under the entry-point group ``pe_iqa.metrics``. The entry point's name is the pe-iqa *extra* that
installs what the provider needs, so a provider that cannot be imported (its library is missing) turns into one
line: ``pip install 'pe-iqa[<entry point name>]'``. The core never names a plugin.

A registry is immutable: :meth:`MetricRegistry.with_providers` and :meth:`MetricRegistry.with_metrics` return a
new one (the benchmarks add their baselines that way, tests their planted metrics), so no call changes what
another caller's names mean. :data:`METRICS` is the default registry (``pe-iqa score``); :func:`build_metric` and
:func:`check_metric_names` use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

import torch

from ..provenance import Provenance, pe_provenance

__all__ = [
    "METRICS",
    "METRIC_ENTRY_POINTS",
    "MetricProvider",
    "MetricRegistry",
    "MetricUnavailableError",
    "ScoringMetric",
    "build_metric",
    "build_pe_metric",
    "check_metric_names",
    "metric_providers",
    "preset_names",
]

#: Entry-point group of metric providers (name = the pe-iqa extra that installs the provider's requirements).
METRIC_ENTRY_POINTS = "pe_iqa.metrics"


class MetricUnavailableError(ValueError):
    """A metric name no provider of the registry can build (the message says what to install)."""


@dataclass
class ScoringMetric:
    """One metric as the engine runs it.

    Attributes:
        name: the name it was asked for (the output column).
        lower_better: ``True`` for distances.
        score: ``(distorted, reference) -> (N,)`` on same-size float32 batches in ``[0, 1]``.
        features: optional ``reference -> list[Tensor]`` (one ``(N, ...)`` tensor per part), to be cached.
        score_with_features: ``(distorted, reference, features) -> (N,)`` using precomputed reference features
            (required with ``features``); must equal ``score`` on the same inputs.
        source: where the metric comes from (``"pe-iqa"``, ``"pyiqa"``, ...; ``"custom"`` when not said), for
            reports.
        provenance: what produces the values (:class:`~pe_iqa.provenance.Provenance`); compared on ``resume``.
            ``None``: an unrecorded metric, whose earlier results are only reused by a metric that is unrecorded too.
        valid_range: the values the metric can return; a value outside (or non-finite), fresh or read back from an
            earlier run, is that pair's failure, never a score.
    """

    name: str
    lower_better: bool
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    features: Callable[[torch.Tensor], list[torch.Tensor]] | None = None
    score_with_features: Callable[[torch.Tensor, torch.Tensor, list[torch.Tensor]], torch.Tensor] | None = None
    source: str = "custom"
    provenance: Provenance | None = None
    valid_range: tuple[float, float] = (-math.inf, math.inf)

    def record(self) -> Provenance:
        """:attr:`provenance`, or an ``"unrecorded"`` record naming the metric."""
        return self.provenance or Provenance(self.name, kind="unrecorded")

    def check_value(self, value: float) -> str:
        """``""`` if ``value`` is a possible score of this metric, else the pair's error message."""
        low, high = self.valid_range
        if math.isfinite(value) and low <= value <= high:
            return ""
        outside = "" if not math.isfinite(value) else f", outside [{low:g}, {high:g}]"
        return f"{self.name} returned {value!r}{outside}"

    @property
    def reuses_references(self) -> bool:
        """Whether reference features can be cached (``features`` and ``score_with_features`` given)."""
        return self.features is not None and self.score_with_features is not None


def preset_names() -> list[str]:
    """The pe-iqa preset names (``pe_alex``, ...), in the package's order."""
    from ..presets import PRESETS  # the one place the engine and the CLI read the preset table

    return list(PRESETS)


def _create_pe_distance(name: str, device: torch.device):
    """The one place the scoring engine builds a PE module."""
    from ..distance import PEDistance

    return PEDistance(name, device=device, reduction="none")


def build_pe_metric(name: str, device: torch.device | str = "cpu") -> ScoringMetric:
    """A pe-iqa preset as a :class:`ScoringMetric` (reference features reusable through ``target_features=``).

    Raises:
        ValueError: ``name`` is not a preset.
    """
    if name not in preset_names():
        raise ValueError(f"metric must be one of {preset_names()}, got {name!r}")
    module = _create_pe_distance(name, torch.device(device))
    return ScoringMetric(
        name=name,
        lower_better=True,
        score=lambda dist, ref: module(dist, ref),
        features=module.features,
        score_with_features=lambda dist, ref, feats: module(dist, ref, target_features=feats),
        source="pe-iqa",
        provenance=pe_provenance(module, name),
        valid_range=(0.0, math.inf),  # a weighted sum of squares
    )


class MetricProvider(Protocol):
    """What a ``pe_iqa.metrics`` entry point loads, and what :meth:`MetricRegistry.with_providers` takes."""

    def knows(self, name: str) -> bool:
        """Whether ``name`` is one of this provider's metrics (without building anything)."""

    def build(self, name: str, device: torch.device) -> ScoringMetric:
        """Build metric ``name`` on ``device``."""


class _Presets:
    """The pe-iqa presets as a provider (always asked first)."""

    def knows(self, name: str) -> bool:
        return name in preset_names()

    def build(self, name: str, device: torch.device) -> ScoringMetric:
        return build_pe_metric(name, device)


class _BuiltMetrics:
    """Ready :class:`ScoringMetric` objects as a provider (their device is the one they were built on)."""

    def __init__(self, metrics: Sequence[ScoringMetric]) -> None:
        self._by_name = {metric.name: metric for metric in metrics}

    def knows(self, name: str) -> bool:
        return name in self._by_name

    def build(self, name: str, device: torch.device) -> ScoringMetric:
        return self._by_name[name]


def metric_providers() -> list[metadata.EntryPoint]:
    """The installed ``pe_iqa.metrics`` entry points, sorted by name."""
    return sorted(metadata.entry_points(group=METRIC_ENTRY_POINTS), key=lambda ep: ep.name)


def _install_hint(extra: str) -> str:
    return f"pip install 'pe-iqa[{extra}]'"


class MetricRegistry:
    """Metric names to :class:`ScoringMetric` objects: the presets, the providers given, the installed ones.

    Providers are asked in that order; the first that knows a name builds it, so a preset name always means the
    preset. The registry holds no state that changes: extending it returns a new registry.

    Args:
        providers: providers asked after the presets and before the installed entry points.

    Example:
        >>> registry = MetricRegistry()
        >>> "pe_alex" in registry
        True
        >>> constant = ScoringMetric("constant", True, score=lambda dist, ref: dist.new_zeros(len(dist)))
        >>> "constant" in registry.with_metrics(constant)
        True
    """

    def __init__(self, providers: Sequence[MetricProvider] = ()) -> None:
        self._providers: tuple[MetricProvider, ...] = (_Presets(), *providers)

    def with_providers(self, *providers: MetricProvider) -> MetricRegistry:
        """A registry that also asks ``providers`` (after this one's own, before the installed ones)."""
        return MetricRegistry([*self._providers[1:], *providers])

    def with_metrics(self, *metrics: ScoringMetric) -> MetricRegistry:
        """A registry that also knows these ready metrics by their names (e.g. a planted metric in a test).

        Raises:
            TypeError: an argument is not a :class:`ScoringMetric`.
            ValueError: a name is given twice or is already a preset's or a given provider's (a name of an
                installed provider is shadowed: these metrics are asked first).
        """
        for metric in metrics:
            if not isinstance(metric, ScoringMetric):
                raise TypeError(f"metrics must be ScoringMetric objects, got {type(metric).__name__}")
        names = [metric.name for metric in metrics]
        taken = [name for name in names
                 if names.count(name) > 1 or any(provider.knows(name) for provider in self._providers)]
        if taken:
            raise ValueError(f"metric name(s) {sorted(set(taken))} are already taken")
        return self.with_providers(_BuiltMetrics(metrics))

    def __contains__(self, name: object) -> bool:
        """Whether some provider knows ``name`` (uninstalled providers know nothing)."""
        if not isinstance(name, str):
            return False
        try:
            self._provider_for(name)
        except MetricUnavailableError:
            return False
        return True

    def _provider_for(self, name: str) -> MetricProvider:
        """The first provider that knows ``name``.

        Raises:
            MetricUnavailableError: nobody knows ``name``.
        """
        for provider in self._providers:
            if provider.knows(name):
                return provider
        presets = ", ".join(preset_names())
        entry_points = metric_providers()
        missing: list[tuple[str, str]] = []
        for entry_point in entry_points:
            try:
                provider = entry_point.load()
            except ImportError as error:
                missing.append((entry_point.name, str(error)))
                continue
            if provider.knows(name):
                return provider
        if missing:
            extra, reason = missing[0]
            raise MetricUnavailableError(
                f"metric {name!r} is not a pe-iqa preset ({presets}); other metrics come from the {extra!r} "
                f"extra, which is not installed ({reason}): {_install_hint(extra)}"
            )
        if entry_points:
            raise MetricUnavailableError(
                f"unknown metric {name!r}: neither a pe-iqa preset ({presets}) nor a metric of the installed "
                f"providers ({', '.join(ep.name for ep in entry_points)}; list pyiqa's with `pe-iqa pyiqa -ls`)"
            )
        raise MetricUnavailableError(
            f"metric {name!r} is not a pe-iqa preset ({presets}) and no metric provider is installed; other "
            f"metrics (lpips, ssim, ...) come with {_install_hint('pyiqa')}"
        )

    def check(self, names: Sequence[str]) -> None:
        """Fail on the first name no provider knows, before any model is built.

        Raises:
            MetricUnavailableError: with what to install, if anything would provide it.
        """
        for name in dict.fromkeys(names):
            self._provider_for(name)

    def build(self, name: str, device: torch.device | str = "cpu") -> ScoringMetric:
        """Build metric ``name`` on ``device``.

        Raises:
            TypeError: ``name`` is not a string.
            MetricUnavailableError: nobody provides ``name``; the message lists the presets and says which extra
                would (for a provider whose requirements are missing: ``pip install 'pe-iqa[<extra>]'``).
        """
        if not isinstance(name, str):
            raise TypeError(f"metric name must be a string, got {type(name).__name__}")
        return self._provider_for(name).build(name, torch.device(device))


#: The default registry: presets and installed providers (what ``pe-iqa score`` and the scoring engine use).
METRICS = MetricRegistry()


def check_metric_names(names: Sequence[str]) -> None:
    """Fail on the first name :data:`METRICS` does not know, before any model is built.

    Raises:
        MetricUnavailableError: with what to install, if anything would provide it.
    """
    METRICS.check(names)


def build_metric(name: str, device: torch.device | str = "cpu") -> ScoringMetric:
    """Build a metric of :data:`METRICS` by name: a pe-iqa preset, or a name an installed metric provider knows.

    Raises:
        MetricUnavailableError: nobody provides ``name``; the message lists the presets and says which extra
            would (for a provider whose requirements are missing: ``pip install 'pe-iqa[<extra>]'``).
    """
    return METRICS.build(name, device)
