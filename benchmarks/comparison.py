"""The metrics the benchmarks compare with, built by the one metric registry, and timed one pair at a time.

Every metric is a :class:`~pe_iqa.scoring.metrics.ScoringMetric` of the registry that ``pe-iqa score`` uses
(:class:`~pe_iqa.scoring.metrics.MetricRegistry`): the pe-iqa presets, pyiqa's metrics through the pyiqa plugin
(its ``lower_better``), and the benchmarks' baselines added here by :class:`BaselineMetrics`:

==================  ==============================================================  =============
name                what                                                            lower_better
==================  ==============================================================  =============
``pe_alex`` …       the pe-iqa presets (:data:`pe_iqa.presets.PRESETS`)            True
``lpips``, …        any pyiqa metric (``lpips``, ``lpips-vgg``, ``dists``,          pyiqa's
                    ``ssim`` on Y, ``ms_ssim``, ``psnr`` …), by pyiqa's name
``tm_ssim``         TorchMetrics ``structural_similarity_index_measure`` (RGB)     False
``tm_psnr``         TorchMetrics ``peak_signal_noise_ratio`` per image (RGB)       False
``l2``              mean squared error over pixels and channels (baseline)         True
==================  ==============================================================  =============

:data:`BENCHMARK_METRICS` is that registry; a runner takes another (``registry=``, e.g. with a planted metric
added by :meth:`~pe_iqa.scoring.metrics.MetricRegistry.with_metrics`) or ready metric objects.
:func:`build_available` builds several, collecting those that cannot be built here (weights not cached offline)
as "unavailable" with the reason; a name nobody provides is an error before anything is built.

References:
    C. Chen, J. Mo et al., pyiqa (IQA-PyTorch), https://github.com/chaofengc/IQA-PyTorch.
    R. Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018.
    K. Ding et al., "Image Quality Assessment: Unifying Structure and Texture Similarity", TPAMI 2020 (DISTS).
    Z. Wang et al., "Image Quality Assessment: From Error Visibility to Structural Similarity", TIP 2004.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import torch
from tqdm.auto import tqdm

from pe_iqa import __version__
from pe_iqa.backbones import canonical_name
from pe_iqa.presets import PRESETS
from pe_iqa.provenance import Provenance
from pe_iqa.scoring.metrics import METRICS, MetricRegistry, ScoringMetric

__all__ = [
    "BENCHMARK_METRICS",
    "DEFAULT_COMPARISON_METRICS",
    "BaselineMetrics",
    "build_available",
    "l2_distance",
    "metric_values",
    "runs_on_vgg16",
    "score_one_by_one",
    "time_interleaved",
]

#: The comparison set of the LIVE benchmark (``pe_vgg`` is left out: its configuration is a row of the VGG-16 grid).
DEFAULT_COMPARISON_METRICS: tuple[str, ...] = (
    "pe_alex", "lpips", "lpips-vgg", "dists", "ssim", "ms_ssim", "psnr", "tm_ssim", "tm_psnr", "l2",
)
#: pyiqa metrics that run VGG-16.
_VGG_PYIQA = ("lpips-vgg", "dists")


def l2_distance(distorted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image over pixels and channels, ``(N,)``: the L2 baseline (lower = closer)."""
    return (distorted.float() - reference.float()).pow(2).flatten(1).mean(dim=1)


def _tm_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")


def _tm_psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))


class BaselineMetrics:
    """The benchmarks' baselines as a metric provider: ``l2``, and TorchMetrics' SSIM and PSNR on RGB."""

    _METRICS: Mapping[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], bool, str]] = MappingProxyType({
        "l2": (l2_distance, True, "baseline"), "tm_ssim": (_tm_ssim, False, "torchmetrics"),
        "tm_psnr": (_tm_psnr, False, "torchmetrics"),
    })

    def knows(self, name: str) -> bool:
        return name in self._METRICS

    def build(self, name: str, device: torch.device) -> ScoringMetric:
        """The baseline ``name`` (TorchMetrics' need ``torchmetrics``: an ImportError otherwise)."""
        fn, lower_better, source = self._METRICS[name]
        if source == "torchmetrics":
            import torchmetrics  # noqa: F401  (fail at build time, not at the first pair)
        record = Provenance(name, kind="benchmarks.comparison", version=f"pe-iqa {__version__}")
        return ScoringMetric(name, lower_better, score=fn, source=source, provenance=record)


#: The registry of every benchmark: the presets, the installed providers (pyiqa) and the baselines.
BENCHMARK_METRICS: MetricRegistry = METRICS.with_providers(BaselineMetrics())


def runs_on_vgg16(name: str) -> bool:
    """Whether metric ``name`` runs VGG-16 (the runners may score it on downscaled images)."""
    if name in PRESETS:
        return canonical_name(PRESETS[name].backbone) == "vgg16"
    return name in _VGG_PYIQA


def build_available(
    metrics: Iterable[str | ScoringMetric], device: torch.device | str = "cpu",
    registry: MetricRegistry = BENCHMARK_METRICS,
) -> tuple[list[ScoringMetric], dict[str, str]]:
    """Build several metrics, collecting those that cannot be built here instead of failing.

    Args:
        metrics: names of ``registry`` or ready :class:`~pe_iqa.scoring.metrics.ScoringMetric` objects (used as
            given).
        device: where the metrics run.
        registry: the registry the names are built by.

    Returns:
        ``(built, unavailable)`` with ``unavailable = {name: reason}`` (weights missing offline, a package
        missing, …).

    Raises:
        MetricUnavailableError: a name ``registry`` does not know (a ValueError), before anything is built.
    """
    metrics = list(metrics)
    registry.check([metric for metric in metrics if isinstance(metric, str)])
    built: list[ScoringMetric] = []
    unavailable: dict[str, str] = {}
    for metric in metrics:
        if not isinstance(metric, str):
            built.append(metric)
            continue
        try:
            built.append(registry.build(metric, device))
        except Exception as error:  # offline weight download, missing package …: this metric only
            unavailable[metric] = f"{type(error).__name__}: {error}"
    return built, unavailable


def metric_values(metric: ScoringMetric, distorted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``metric.score`` without autograd, checked: ``(N,)`` float64 on the CPU.

    Raises:
        ValueError: the metric did not return one value per image.
    """
    with torch.inference_mode():
        out = torch.as_tensor(metric.score(distorted, reference)).detach().reshape(-1)
    if out.numel() != distorted.shape[0]:
        raise ValueError(f"metric {metric.name!r} returned {out.numel()} values for {distorted.shape[0]} images")
    return out.double().cpu()


def score_one_by_one(
    metric: ScoringMetric,
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
        metric_values(metric, *pairs[0])
    values = np.empty(len(pairs))
    elapsed = 0.0
    for i, (distorted, reference) in enumerate(tqdm(pairs, desc=metric.name, disable=not progress, unit="img")):
        start = time.perf_counter()
        out = metric_values(metric, distorted, reference)
        elapsed += time.perf_counter() - start
        values[i] = float(out[0])
    return values, elapsed / len(pairs)


def time_interleaved(
    runs: Sequence[tuple[ScoringMetric, Sequence[tuple[torch.Tensor, torch.Tensor]]]],
    n_pairs: int = 10,
    *,
    progress: bool = True,
) -> dict[str, float]:
    """Seconds per image of several metrics, measured round-robin so that they share the machine's load.

    On a shared machine the load drifts over minutes, so timing metrics one after the other biases their
    ratios. Here pair ``i`` is scored by every metric in turn (the order rotates with ``i``), and each metric's
    median call time is returned.

    Args:
        runs: ``(metric, pairs)`` per metric; ``pairs`` as in :func:`score_one_by_one` (a metric may get its own,
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
            metric_values(metric, *pairs[i])
            times[metric.name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}
