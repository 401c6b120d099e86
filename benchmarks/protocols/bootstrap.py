"""Bootstrap intervals of SROCC: one paired bootstrap over images, shared by every configuration it compares.

:class:`PairedBootstrap` draws one set of resamples (images with replacement) and scores any number of
configurations on the same resamples, so the difference of two configurations' SROCCs is recomputed on each resample
and its interval accounts for their correlation through the images. :func:`bootstrap_srocc_ci` is the one-metric
case.

References:
    B. Efron, R. Tibshirani. "An Introduction to the Bootstrap". Chapman & Hall, 1993 (percentile method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.protocols.correlation import _as_pair, _check_bool, centered_ranks, correlate_centered, srocc

__all__ = ["BootstrapCI", "PairedBootstrap", "bootstrap_srocc_ci"]


class PairedBootstrap:
    """Percentile bootstrap of SROCCs over images, with one set of resamples shared by every configuration.

    Args:
        labels: subjective scores, shape (N,).
        n_boot: number of resamples (>= 1).
        seed: seed of the ``numpy.random.default_rng`` drawing the resamples.
        confidence: interval level in (0, 1).

    Raises:
        ValueError: on bad ``labels``, ``n_boot`` or ``confidence``.

    Example:
        >>> boot = PairedBootstrap(np.arange(10.0), n_boot=200)
        >>> low, high = boot.interval(boot.sroccs(np.arange(10.0) ** 2))
        >>> low, high
        (1.0, 1.0)
    """

    def __init__(self, labels: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> None:
        y = np.asarray(labels, dtype=np.float64)
        if y.ndim != 1 or y.size < 3 or not np.all(np.isfinite(y)):
            raise ValueError(f"labels must be a finite (N,) array with N >= 3, got shape {y.shape}")
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
            raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        self.labels, self.n_boot, self.confidence = y, n_boot, float(confidence)
        self.indices = np.random.default_rng(seed).integers(0, y.size, size=(n_boot, y.size))  # (B, N)
        self._label_ranks = centered_ranks(y[self.indices])

    def sroccs(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """SROCC of ``values`` with the labels on every resample, shape (B,) (NaN where a side is constant).

        Raises:
            ValueError: if ``values`` is not a finite (N,) array.
        """
        x = np.asarray(values, dtype=np.float64)
        if x.shape != self.labels.shape or not np.all(np.isfinite(x)):
            raise ValueError(f"values must be a finite array of shape {self.labels.shape}, got {x.shape}")
        return correlate_centered(centered_ranks(x[self.indices]), self._label_ranks)

    def interval(self, samples: np.ndarray) -> tuple[float, float]:
        """Percentile interval of bootstrap samples (NaN samples ignored; NaN if none is finite)."""
        finite = np.asarray(samples, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            return math.nan, math.nan
        alpha = (1.0 - self.confidence) / 2.0
        low, high = np.quantile(finite, [alpha, 1.0 - alpha])
        return float(low), float(high)


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile bootstrap confidence interval.

    Attributes:
        estimate: The statistic on the full sample.
        low: Lower bound of the interval.
        high: Upper bound of the interval.
        confidence: Confidence level, e.g. 0.95.
        n_boot: Number of bootstrap resamples.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_boot: int


def bootstrap_srocc_ci(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[float] | np.ndarray,
    higher_is_better_score: bool,
    higher_is_better_label: bool,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile bootstrap confidence interval of the (oriented) SROCC, resampling images with replacement.

    Args:
        scores: Objective scores, shape (N,).
        labels: Subjective scores, shape (N,).
        higher_is_better_score: True for a quality/similarity score, False for a distance.
        higher_is_better_label: True for MOS, False for DMOS.
        n_boot: Number of resamples.
        confidence: Confidence level in (0, 1).
        seed: Seed of the ``numpy.random.default_rng`` generator (results are reproducible).

    Returns:
        A :class:`BootstrapCI`; resamples with a constant side (undefined SROCC) are dropped.

    Raises:
        TypeError: If a direction flag is not a bool.
        ValueError: If ``n_boot`` is not positive, ``confidence`` is not in (0, 1) or the inputs are invalid.
    """
    hb_s = _check_bool("higher_is_better_score", higher_is_better_score)
    hb_l = _check_bool("higher_is_better_label", higher_is_better_label)
    s, y = _as_pair(scores, labels, "scores", "labels")
    x, t = (s if hb_s else -s), (y if hb_l else -y)
    boot = PairedBootstrap(t, n_boot=n_boot, seed=seed, confidence=confidence)
    low, high = boot.interval(boot.sroccs(x))
    return BootstrapCI(srocc(x, t), low, high, confidence, n_boot)
