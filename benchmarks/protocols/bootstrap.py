"""Resampling intervals and tests of SROCC: over images, or over references (clusters), with one set of resamples.

LIVE-style datasets have few references, each with many distorted images; images of one reference share content and
are not independent. The unit of resampling is therefore stated everywhere:

* :class:`PairedBootstrap` draws one set of resamples and scores any number of configurations on the same
  resamples, so the difference of two configurations' SROCCs is recomputed on each resample and its interval
  accounts for their correlation. ``groups=None`` resamples **images** with replacement; ``groups=<reference of
  each image>`` resamples **references** with replacement, each drawn reference bringing all its images (the
  clustered bootstrap, Davison & Hinkley 1997, §3.8). With few references (5 on the shared LIVE subset) the
  clustered percentile interval has few distinct resamples and tends to be too narrow: read it beside the exact test.
* :func:`sign_flip_test` is the exact paired sign-flip (randomisation) test over clusters: per reference, the
  difference of the two configurations' within-reference SROCCs; every one of the ``2**G`` sign patterns is
  enumerated. With ``G = 5`` references there are 32 patterns, so the smallest attainable **two-sided** p-value
  is 2/32 = .0625; the **one-sided** p-value (the direction fixed in advance) reaches 1/32 = .031 when all 5
  references favour that direction. Both are reported; the two-sided one is the pre-specified test of the tables.
* :func:`t_interval` is the t-interval of a mean over a few paired units (references, test images).
* :func:`compare_srocc` puts them side by side for one pair of configurations. Its **primary** interval is the
  t-interval of the mean per-reference difference of within-reference SROCCs (each reference one unit, ``G − 1``
  degrees of freedom); the two bootstraps are secondary: the reference bootstrap with 5 references has about 126
  distinct resamples and comes out too narrow, the image bootstrap ignores the clustering.

References:
    B. Efron, R. Tibshirani. "An Introduction to the Bootstrap". Chapman & Hall, 1993 (percentile method).
    A. C. Davison, D. V. Hinkley. "Bootstrap Methods and their Application". Cambridge University Press, 1997
    (resampling clusters).
    R. A. Fisher. "The Design of Experiments". Oliver & Boyd, 1935 (randomisation test).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from benchmarks.protocols.correlation import (
    _as_pair,
    _check_bool,
    centered_ranks,
    correlate_centered,
    safe_srocc,
    srocc,
)

__all__ = [
    "MAX_EXACT_CLUSTERS",
    "BootstrapCI",
    "PairedBootstrap",
    "SignFlipResult",
    "SroccComparison",
    "bootstrap_srocc_ci",
    "compare_srocc",
    "sign_flip_test",
    "t_interval",
    "within_group_srocc",
]

#: Above this many clusters :func:`sign_flip_test` draws random sign patterns instead of enumerating them.
MAX_EXACT_CLUSTERS = 16


class PairedBootstrap:
    """Percentile bootstrap of SROCCs over images or references, one set of resamples shared by every configuration.

    Args:
        labels: subjective scores, shape (N,).
        n_boot: number of resamples (>= 1).
        seed: seed of the ``numpy.random.default_rng`` drawing the resamples.
        confidence: interval level in (0, 1).
        groups: the reference (cluster) of every image, shape (N,); given, whole references are resampled with
            replacement (a resample has as many references as the data, and so a varying number of images).

    Raises:
        ValueError: on bad ``labels``, ``n_boot``, ``confidence`` or ``groups`` (fewer than 2 references).

    Example:
        >>> boot = PairedBootstrap(np.arange(10.0), n_boot=200)
        >>> low, high = boot.interval(boot.sroccs(np.arange(10.0) ** 2))
        >>> low, high
        (1.0, 1.0)
        >>> boot = PairedBootstrap(np.arange(10.0), n_boot=200, groups=[0] * 5 + [1] * 5)
        >>> boot.unit, boot.n_clusters
        ('reference', 2)
    """

    def __init__(self, labels: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0,
                 confidence: float = 0.95, groups: Sequence[Hashable] | None = None) -> None:
        y = np.asarray(labels, dtype=np.float64)
        if y.ndim != 1 or y.size < 3 or not np.all(np.isfinite(y)):
            raise ValueError(f"labels must be a finite (N,) array with N >= 3, got shape {y.shape}")
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
            raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        self.labels, self.n_boot, self.confidence = y, n_boot, float(confidence)
        rng = np.random.default_rng(seed)
        if groups is None:
            self.unit, self.n_clusters = "image", y.size
            self.indices: np.ndarray | list[np.ndarray] = rng.integers(0, y.size, size=(n_boot, y.size))
            self._buckets = [(np.arange(n_boot), self.indices)]
        else:
            members = _members(groups, y.size)
            self.unit, self.n_clusters = "reference", len(members)
            drawn = rng.integers(0, len(members), size=(n_boot, len(members)))
            self.indices = [np.concatenate([members[g] for g in row]) for row in drawn]
            # resamples of equal length are ranked together (one vectorised pass per length)
            by_length: dict[int, list[int]] = {}
            for b, idx in enumerate(self.indices):
                by_length.setdefault(idx.size, []).append(b)
            self._buckets = [(np.array(rows), np.stack([self.indices[b] for b in rows]))
                             for rows in by_length.values()]
        self._label_ranks = [centered_ranks(y[idx]) for _, idx in self._buckets]

    def sroccs(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """SROCC of ``values`` with the labels on every resample, shape (B,) (NaN where a side is constant).

        Raises:
            ValueError: if ``values`` is not a finite (N,) array.
        """
        x = np.asarray(values, dtype=np.float64)
        if x.shape != self.labels.shape or not np.all(np.isfinite(x)):
            raise ValueError(f"values must be a finite array of shape {self.labels.shape}, got {x.shape}")
        out = np.empty(self.n_boot)
        for (rows, idx), label_ranks in zip(self._buckets, self._label_ranks, strict=True):
            out[rows] = correlate_centered(centered_ranks(x[idx]), label_ranks)
        return out

    def interval(self, samples: np.ndarray) -> tuple[float, float]:
        """Percentile interval of bootstrap samples (NaN samples ignored; NaN if none is finite)."""
        finite = np.asarray(samples, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            return math.nan, math.nan
        alpha = (1.0 - self.confidence) / 2.0
        low, high = np.quantile(finite, [alpha, 1.0 - alpha])
        return float(low), float(high)


def _members(groups: Sequence[Hashable], n: int) -> list[np.ndarray]:
    """Image indices of every group, in order of first appearance; at least 2 groups."""
    keys = list(groups)
    if len(keys) != n:
        raise ValueError(f"groups must give one reference per image ({n}), got {len(keys)}")
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    if len(members) < 2:
        raise ValueError("resampling references needs at least 2 references")
    return [np.array(m) for m in members.values()]


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
    groups: Sequence[Hashable] | None = None,
) -> BootstrapCI:
    """Percentile bootstrap confidence interval of the (oriented) SROCC, resampling images (or references).

    Args:
        scores: Objective scores, shape (N,).
        labels: Subjective scores, shape (N,).
        higher_is_better_score: True for a quality/similarity score, False for a distance.
        higher_is_better_label: True for MOS, False for DMOS.
        n_boot: Number of resamples.
        confidence: Confidence level in (0, 1).
        seed: Seed of the ``numpy.random.default_rng`` generator (results are reproducible).
        groups: reference of every image: resample references (see :class:`PairedBootstrap`).

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
    boot = PairedBootstrap(t, n_boot=n_boot, seed=seed, confidence=confidence, groups=groups)
    low, high = boot.interval(boot.sroccs(x))
    return BootstrapCI(srocc(x, t), low, high, confidence, n_boot)


def within_group_srocc(values: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray,
                       groups: Sequence[Hashable]) -> dict[Hashable, float]:
    """SROCC of ``values`` with ``labels`` inside every group (reference), in order of first appearance.

    Example:
        >>> within_group_srocc([1, 2, 3, 3, 2, 1], [1, 2, 3, 1, 2, 3], ["a"] * 3 + ["b"] * 3)
        {'a': 1.0, 'b': -1.0}
    """
    x, y = _as_pair(values, labels, "values", "labels")
    keys = list(groups)
    members = _members(keys, x.size)
    return {keys[int(idx[0])]: safe_srocc(x[idx], y[idx]) for idx in members}


@dataclass(frozen=True)
class SignFlipResult:
    """Paired sign-flip test of a mean difference over clusters.

    Attributes:
        mean: mean of the per-cluster differences.
        p_value: two-sided p-value, P(|mean of flipped differences| >= |mean|).
        n_clusters: number of clusters (references).
        n_patterns: sign patterns evaluated (``2**n_clusters`` when exact).
        exact: every pattern enumerated.
        min_p_value: the smallest p-value this test can give with these clusters (2 / 2**G when exact).
        positive: clusters whose difference is > 0.
        p_greater: one-sided p-value against ``mean > 0``, P(mean of flipped differences >= mean).
        p_less: one-sided p-value against ``mean < 0``, P(mean of flipped differences <= mean).
    """

    mean: float
    p_value: float
    n_clusters: int
    n_patterns: int
    exact: bool
    min_p_value: float
    positive: int
    p_greater: float = math.nan
    p_less: float = math.nan

    def one_sided(self, greater: bool) -> float:
        """The one-sided p-value of the direction ``greater`` (``mean > 0``) or not (``mean < 0``)."""
        return self.p_greater if greater else self.p_less


def sign_flip_test(differences: Sequence[float] | np.ndarray, n_random: int = 100_000,
                   seed: int = 0) -> SignFlipResult:
    """Paired sign-flip test of ``mean(differences) = 0``, two-sided and one-sided (exact up to 16 clusters).

    Under the null hypothesis each cluster's difference is as likely to have either sign, so the mean is compared
    with its values under all ``2**G`` sign patterns (the observed one included). The one-sided p-values are valid
    for a direction chosen before seeing the data; with 5 clusters all of one sign they are 1/32.

    Args:
        differences: one paired difference per cluster (e.g. per reference), shape (G,), G >= 1, finite.
        n_random: random patterns when G > :data:`MAX_EXACT_CLUSTERS`.
        seed: seed of those random patterns.

    Returns:
        A :class:`SignFlipResult`.

    Raises:
        ValueError: if ``differences`` is empty or not finite.

    Example:
        >>> result = sign_flip_test([0.1, 0.2, 0.05, 0.3, 0.15])
        >>> result.p_value, result.min_p_value, result.p_greater, result.p_less
        (0.0625, 0.0625, 0.03125, 1.0)
    """
    d = np.asarray(differences, dtype=np.float64).reshape(-1)
    if d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"differences must be a non-empty finite vector, got {d!r}")
    g = d.size
    exact = g <= MAX_EXACT_CLUSTERS
    if exact:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=g)))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(n_random, g))
        signs[0] = 1.0
    mean = float(d.mean())
    means = signs @ d / g
    tolerance = 1e-12 * max(1.0, abs(mean))
    p_value = float(np.mean(np.abs(means) >= abs(mean) - tolerance))
    p_greater = float(np.mean(means >= mean - tolerance))
    p_less = float(np.mean(means <= mean + tolerance))
    return SignFlipResult(mean, p_value, g, len(signs), exact, 2.0 / len(signs) if exact else math.nan,
                          int(np.sum(d > 0)), p_greater, p_less)


def t_interval(differences: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Student-t interval of the mean of paired differences, and its two-sided p-value.

    Args:
        differences: one difference per unit (reference, test image), shape (n,), n >= 2.
        confidence: interval level in (0, 1).

    Returns:
        ``(low, high, p_value)``; NaN where the differences are all equal (zero spread).

    Example:
        >>> low, high, p = t_interval([1.0, 2.0, 3.0])
        >>> round(low, 3), round(high, 3), round(p, 3)
        (-0.484, 4.484, 0.074)
    """
    d = np.asarray(differences, dtype=np.float64).reshape(-1)
    if d.size < 2 or not np.all(np.isfinite(d)):
        raise ValueError(f"need at least 2 finite differences, got {d!r}")
    sd = float(d.std(ddof=1))
    if sd == 0:
        return math.nan, math.nan, math.nan
    se = sd / math.sqrt(d.size)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, d.size - 1)) * se
    p_value = float(2.0 * stats.t.sf(abs(d.mean()) / se, d.size - 1))
    return float(d.mean() - half), float(d.mean() + half), p_value


@dataclass(frozen=True)
class SroccComparison:
    """SROCC(a) − SROCC(b) on the same images, with each unit of resampling stated.

    The primary statement is about references: ``within_diff`` (the mean over references of the difference of
    within-reference SROCCs) with its t-interval and the exact sign-flip p-values. ``diff`` and the bootstrap
    intervals are about the pooled SROCC, the secondary columns.

    Attributes:
        srocc_a: SROCC of configuration a on all images.
        srocc_b: SROCC of configuration b.
        diff: ``srocc_a − srocc_b``.
        image_low: percentile bootstrap interval over images (images of one reference are not independent).
        image_high: its upper bound.
        reference_low: percentile bootstrap interval over references (clustered).
        reference_high: its upper bound.
        sign_flip_p: exact two-sided sign-flip p-value of the mean within-reference SROCC difference.
        sign_flip_min_p: the smallest p-value that test can give with these references.
        references_a_better: references where a's within-reference SROCC is higher.
        n_references: number of references.
        within_diff: mean over references of (within-reference SROCC of a − of b): the primary estimate.
        t_low: 95 % t-interval of ``within_diff`` (``G − 1`` degrees of freedom): the primary interval.
        t_high: its upper bound.
        t_p: the t-test's two-sided p-value.
        sign_flip_p_greater: exact one-sided sign-flip p-value for "a higher than b".
        sign_flip_p_less: exact one-sided sign-flip p-value for "a lower than b".
    """

    srocc_a: float
    srocc_b: float
    diff: float
    image_low: float
    image_high: float
    reference_low: float
    reference_high: float
    sign_flip_p: float
    sign_flip_min_p: float
    references_a_better: int
    n_references: int
    within_diff: float = math.nan
    t_low: float = math.nan
    t_high: float = math.nan
    t_p: float = math.nan
    sign_flip_p_greater: float = math.nan
    sign_flip_p_less: float = math.nan

    @property
    def significant(self) -> bool:
        """The primary (reference-level t-) interval excludes 0 (the statement the tables mark)."""
        return bool(self.t_low > 0 or self.t_high < 0)


def compare_srocc(a_values: np.ndarray, b_values: np.ndarray, labels: np.ndarray,
                  image_boot: PairedBootstrap, reference_boot: PairedBootstrap,
                  groups: Sequence[Hashable]) -> SroccComparison:
    """Compare two configurations' SROCCs with image- and reference-resampled intervals and the exact test.

    Args:
        a_values: values of configuration a, oriented so that SROCC > 0 agrees with the labels, shape (N,).
        b_values: same for configuration b.
        labels: oriented labels, shape (N,) (those of both bootstraps).
        image_boot: a :class:`PairedBootstrap` over images.
        reference_boot: a :class:`PairedBootstrap` over references (``groups`` given).
        groups: reference of every image.

    Returns:
        A :class:`SroccComparison`; its t-interval is NaN when every reference gives the same difference.
    """
    if image_boot.unit != "image" or reference_boot.unit != "reference":
        raise ValueError("image_boot must resample images and reference_boot references")
    diff_image = image_boot.sroccs(a_values) - image_boot.sroccs(b_values)
    diff_reference = reference_boot.sroccs(a_values) - reference_boot.sroccs(b_values)
    within_a = within_group_srocc(a_values, labels, groups)
    within_b = within_group_srocc(b_values, labels, groups)
    per_reference = np.array([within_a[k] - within_b[k] for k in within_a])
    per_reference = np.nan_to_num(per_reference)
    flip = sign_flip_test(per_reference)
    t_low, t_high, t_p = t_interval(per_reference) if per_reference.size >= 2 else (math.nan,) * 3
    sa, sb = safe_srocc(a_values, labels), safe_srocc(b_values, labels)
    return SroccComparison(sa, sb, sa - sb, *image_boot.interval(diff_image), *reference_boot.interval(diff_reference),
                           flip.p_value, flip.min_p_value, flip.positive, flip.n_clusters, flip.mean, t_low, t_high,
                           t_p, flip.p_greater, flip.p_less)
