"""Existing full-reference metrics to compare with, behind one interface: pyiqa, TorchMetrics, L2, PE presets.

Every metric is a :class:`FRMetric`: ``fn(distorted, reference)`` on ``(N, 3, H, W)`` tensors in ``[0, 1]``
returning ``(N,)`` values, plus its direction stated explicitly (``lower_better``; pyiqa's own
``lower_better`` attribute for pyiqa metrics). :func:`build_metric` knows these names:

==================  ==============================================================  =============
name                what                                                            lower_better
==================  ==============================================================  =============
``pe_alex`` …       the pe-iqa presets (:data:`pe_iqa.presets.PRESETS`)            True
``lpips``           pyiqa ``lpips`` (LPIPS v0.1, AlexNet)                           True (pyiqa)
``lpips-vgg``       pyiqa ``lpips-vgg``                                             True (pyiqa)
``dists``           pyiqa ``dists``                                                 True (pyiqa)
``ssim``            pyiqa ``ssim`` (on the Y channel, pyiqa's default)              False (pyiqa)
``ms_ssim``         pyiqa ``ms_ssim`` (needs images of at least ~161 px)            False (pyiqa)
``psnr``            pyiqa ``psnr`` (RGB)                                            False (pyiqa)
``pyiqa:<name>``    any other pyiqa metric in full-reference mode                  pyiqa's
``tm_ssim``         TorchMetrics ``structural_similarity_index_measure`` (RGB)     False
``tm_psnr``         TorchMetrics ``peak_signal_noise_ratio`` per image (RGB)       False
``l2``              mean squared error over pixels and channels (baseline)         True
==================  ==============================================================  =============

A metric that cannot be built offline (weights not cached, package missing) raises
:class:`MetricUnavailableError`; :func:`build_metrics` collects those as "unavailable" with the reason.
:func:`register_metric` adds a custom :class:`FRMetric` under its name (e.g. a planted metric in tests).

References:
    C. Chen, J. Mo et al., pyiqa (IQA-PyTorch), https://github.com/chaofengc/IQA-PyTorch.
    R. Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018.
    K. Ding et al., "Image Quality Assessment: Unifying Structure and Texture Similarity", TPAMI 2020 (DISTS).
    Z. Wang et al., "Image Quality Assessment: From Error Visibility to Structural Similarity", TIP 2004.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from pe_iqa.distance import PEDistance
from pe_iqa.presets import PRESETS

__all__ = [
    "DEFAULT_COMPARISON_METRICS",
    "PYIQA_NAMES",
    "FRMetric",
    "MetricUnavailableError",
    "available_metric_names",
    "build_metric",
    "build_metrics",
    "l2_distance",
    "register_metric",
    "score_pairs",
    "time_interleaved",
    "unregister_metric",
]

#: pyiqa metrics known by their bare name (any other is reachable as ``pyiqa:<name>``).
PYIQA_NAMES: tuple[str, ...] = ("lpips", "lpips-vgg", "dists", "ssim", "ms_ssim", "psnr")
#: The comparison set of the LIVE benchmark (``pe_vgg`` is left out: its configuration is a row of the VGG-16 grid).
DEFAULT_COMPARISON_METRICS: tuple[str, ...] = (
    "pe_alex", "lpips", "lpips-vgg", "dists", "ssim", "ms_ssim", "psnr", "tm_ssim", "tm_psnr", "l2",
)
_VGG_PYIQA = ("lpips-vgg", "dists")

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class MetricUnavailableError(RuntimeError):
    """A metric cannot be built here (package missing, weights not available offline)."""


@dataclass(frozen=True)
class FRMetric:
    """A full-reference metric with its direction.

    Attributes:
        name: display name (``"lpips"``, ``"pe_alex"``, …).
        fn: ``fn(distorted, reference) -> (N,)`` for ``(N, 3, H, W)`` float tensors in ``[0, 1]``.
        lower_better: True for a distance (lower = more similar), False for a similarity/quality score.
        source: ``"pe-iqa"``, ``"pyiqa"``, ``"torchmetrics"``, ``"baseline"`` or ``"custom"``.
        backbone: the CNN it runs (``"alexnet"``, ``"vgg16"``) or ``None``; runners may downscale images for
            VGG-based metrics.
    """

    name: str
    fn: MetricFn
    lower_better: bool
    source: str = "custom"
    backbone: str | None = None

    def __call__(self, distorted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Metric values, ``(N,)`` float64 on the CPU."""
        with torch.inference_mode():
            out = torch.as_tensor(self.fn(distorted, reference)).detach().reshape(-1)
        if out.numel() != distorted.shape[0]:
            raise ValueError(f"metric {self.name!r} returned {out.numel()} values for {distorted.shape[0]} images")
        return out.double().cpu()


_REGISTERED: dict[str, FRMetric] = {}


def register_metric(metric: FRMetric, override: bool = False) -> None:
    """Make a custom metric buildable by name (e.g. ``--metrics <name>`` of the runners).

    Args:
        metric: the metric; its ``name`` is the key.
        override: replace a metric registered under the same name.

    Raises:
        TypeError: if ``metric`` is not an :class:`FRMetric`.
        ValueError: if the name is taken (by a registered or built-in metric) and ``override`` is false.
    """
    if not isinstance(metric, FRMetric):
        raise TypeError(f"metric must be an FRMetric, got {type(metric).__name__}")
    builtin = metric.name in available_metric_names() and metric.name not in _REGISTERED
    if builtin or (metric.name in _REGISTERED and not override):
        raise ValueError(f"metric name {metric.name!r} is already taken")
    _REGISTERED[metric.name] = metric


def unregister_metric(name: str) -> None:
    """Forget a metric added with :func:`register_metric` (no-op if absent)."""
    _REGISTERED.pop(name, None)


def l2_distance(distorted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image over pixels and channels, ``(N,)``: the L2 baseline (lower = closer)."""
    return (distorted.float() - reference.float()).pow(2).flatten(1).mean(dim=1)


def available_metric_names() -> list[str]:
    """Names :func:`build_metric` accepts (besides ``pyiqa:<name>``)."""
    return [*PRESETS, *PYIQA_NAMES, "tm_ssim", "tm_psnr", "l2", *_REGISTERED]


def _pyiqa_metric(name: str, device: torch.device) -> FRMetric:
    try:
        import pyiqa
    except ImportError as error:
        raise MetricUnavailableError(f"{name}: pyiqa is not installed (pip install pyiqa)") from error
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = pyiqa.create_metric(name, device=device, as_loss=False)
    except Exception as error:  # offline weight download, unknown metric name …
        raise MetricUnavailableError(f"pyiqa {name!r} could not be built: {type(error).__name__}: {error}") from error
    if getattr(model, "metric_mode", "FR") != "FR":
        raise MetricUnavailableError(f"pyiqa {name!r} is not a full-reference metric")
    backbone = "vgg16" if name in _VGG_PYIQA else "alexnet" if name.startswith("lpips") else None
    return FRMetric(name, lambda x, y: model(x, y), bool(model.lower_better), "pyiqa", backbone)


def _torchmetrics_metric(name: str) -> FRMetric:
    try:
        from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
    except ImportError as error:
        raise MetricUnavailableError(f"{name}: torchmetrics is not installed") from error
    if name == "tm_ssim":
        def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")
    else:
        def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return FRMetric(name, fn, False, "torchmetrics")


def build_metric(name: str, device: torch.device | str = "cpu") -> FRMetric:
    """Build a comparison metric by name (see the module table).

    Args:
        name: a PE preset, a pyiqa name (bare from :data:`PYIQA_NAMES` or ``pyiqa:<name>``), ``tm_ssim``,
            ``tm_psnr``, ``l2`` or a name added with :func:`register_metric`.
        device: where the metric runs.

    Returns:
        The :class:`FRMetric`.

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if the name is unknown.
        MetricUnavailableError: if it cannot be built here (offline, package missing).
    """
    if not isinstance(name, str):
        raise TypeError(f"metric name must be a string, got {type(name).__name__}")
    device = torch.device(device)
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in PRESETS:
        try:
            module = PEDistance(name, device=device, reduction="none")
        except Exception as error:
            raise MetricUnavailableError(f"preset {name!r}: {type(error).__name__}: {error}") from error
        return FRMetric(name, module, True, "pe-iqa", module.backbone.spec.name)
    if name in PYIQA_NAMES or name.startswith("pyiqa:"):
        return _pyiqa_metric(name.removeprefix("pyiqa:"), device)
    if name in ("tm_ssim", "tm_psnr"):
        return _torchmetrics_metric(name)
    if name == "l2":
        return FRMetric("l2", l2_distance, True, "baseline")
    raise ValueError(f"unknown metric {name!r}; choose from {available_metric_names()} or 'pyiqa:<name>'")


def build_metrics(
    metrics: Iterable[str | FRMetric], device: torch.device | str = "cpu"
) -> tuple[list[FRMetric], dict[str, str]]:
    """Build several metrics, collecting those unavailable here instead of failing.

    Args:
        metrics: names (see :func:`build_metric`) or ready :class:`FRMetric` objects (used as given).
        device: where the metrics run.

    Returns:
        ``(built, unavailable)`` with ``unavailable = {name: reason}``.

    Raises:
        ValueError: on an unknown name.
    """
    built: list[FRMetric] = []
    unavailable: dict[str, str] = {}
    for metric in metrics:
        if isinstance(metric, FRMetric):
            built.append(metric)
            continue
        try:
            built.append(build_metric(metric, device))
        except MetricUnavailableError as error:
            unavailable[metric] = str(error)
    return built, unavailable


def score_pairs(
    metric: FRMetric,
    pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    warmup: bool = True,
    progress: bool = True,
) -> tuple[np.ndarray, float]:
    """Score ``(distorted, reference)`` pairs one at a time and time it.

    Args:
        metric: the metric.
        pairs: ``(distorted, reference)`` tensors of shape ``(1, 3, H, W)`` in ``[0, 1]``, already on the
            metric's device (loading is not timed).
        warmup: run the first pair once untimed first (lazy initialisation, allocator warm-up).
        progress: show a progress bar.

    Returns:
        ``(values, seconds_per_image)``: ``(N,)`` float64 and the mean wall time of one call.

    Raises:
        ValueError: if ``pairs`` is empty or the metric does not return one value per image.
    """
    if not pairs:
        raise ValueError("pairs is empty")
    if warmup:
        metric(*pairs[0])
    values = np.empty(len(pairs))
    elapsed = 0.0
    for i, (distorted, reference) in enumerate(tqdm(pairs, desc=metric.name, disable=not progress, unit="img")):
        start = time.perf_counter()
        out = metric(distorted, reference)
        elapsed += time.perf_counter() - start
        values[i] = float(out[0])
    return values, elapsed / len(pairs)


def time_interleaved(
    runs: Sequence[tuple[FRMetric, Sequence[tuple[torch.Tensor, torch.Tensor]]]],
    n_pairs: int = 10,
    *,
    progress: bool = True,
) -> dict[str, float]:
    """Seconds per image of several metrics, measured round-robin so that they share the machine's load.

    On a shared machine the load drifts over minutes, so timing metrics one after the other biases their
    ratios. Here pair ``i`` is scored by every metric in turn (the order rotates with ``i``), and each metric's
    median call time is returned.

    Args:
        runs: ``(metric, pairs)`` per metric; ``pairs`` as in :func:`score_pairs` (a metric may get its own,
            e.g. downscaled, copies of the same images).
        n_pairs: number of pairs timed per metric (the first ones).
        progress: show a progress bar.

    Returns:
        ``{metric name: median seconds per call}``.

    Raises:
        ValueError: if ``runs`` is empty, a metric has no pairs or ``n_pairs < 1``.
    """
    if not runs:
        raise ValueError("runs is empty")
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    if any(not pairs for _, pairs in runs):
        raise ValueError("every metric needs at least one pair")
    count = min(n_pairs, *(len(pairs) for _, pairs in runs))
    times: dict[str, list[float]] = {metric.name: [] for metric, _ in runs}
    for i in tqdm(range(count), desc="timing (interleaved)", disable=not progress, unit="pair"):
        shift = i % len(runs)
        for metric, pairs in [*runs[shift:], *runs[:shift]]:
            start = time.perf_counter()
            metric(*pairs[i])
            times[metric.name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}
