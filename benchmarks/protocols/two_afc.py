"""Two-alternative forced choice (2AFC) protocol of the BAPPS benchmark.

For each triplet ``(ref, p0, p1)`` humans were asked which distortion is closer to the reference; ``h`` is the
fraction of them preferring ``p1``. A metric with distances ``d0 = d(ref, p0)`` and ``d1 = d(ref, p1)`` scores
``h`` when it prefers ``p1``, ``1 - h`` when it prefers ``p0`` and ``0.5`` on a tie::

    score = mean((d0 < d1) * (1 - h) + (d1 < d0) * h + 0.5 * (d0 == d1))

which is exactly ``score_2afc_dataset`` of the LPIPS code.

References:
    R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness of Deep Features
    as a Perceptual Metric". CVPR 2018.

    ``lpips/trainer.py::score_2afc_dataset`` in https://github.com/richzhang/PerceptualSimilarity
    (BSD-2-Clause, Copyright (c) 2018, Richard Zhang, Phillip Isola, Alexei A. Efros, Eli Shechtman,
    Oliver Wang); reimplemented here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmarks.protocols.finite_arrays import as_flat_finite

__all__ = ["two_afc_score", "two_afc_scores"]


def two_afc_scores(
    d0: Sequence[float] | np.ndarray,
    d1: Sequence[float] | np.ndarray,
    judge: Sequence[float] | np.ndarray,
    lower_is_better: bool = True,
) -> np.ndarray:
    """Per-triplet 2AFC agreement between a metric and the human judgements.

    Args:
        d0: Metric value between the reference and ``p0``, shape (N,) (any shape is flattened).
        d1: Metric value between the reference and ``p1``, shape (N,).
        judge: Fraction of humans who preferred ``p1`` (judged it closer to the reference), in [0, 1],
            shape (N,).
        lower_is_better: True for a distance (smaller = more similar, as LPIPS); False for a similarity score,
            which is negated before comparison.

    Returns:
        Agreement in [0, 1] per triplet, shape (N,).

    Raises:
        TypeError: If ``lower_is_better`` is not a bool or an input is not numeric.
        ValueError: If the sizes differ, the inputs are empty or not finite, or ``judge`` leaves [0, 1].

    References:
        Zhang et al., CVPR 2018; ``score_2afc_dataset`` in richzhang/PerceptualSimilarity (BSD-2-Clause).
    """
    if not isinstance(lower_is_better, (bool, np.bool_)):
        raise TypeError(f"lower_is_better must be a bool, got {type(lower_is_better).__name__}")
    a0, a1, h = as_flat_finite("d0", d0), as_flat_finite("d1", d1), as_flat_finite("judge", judge)
    if not (a0.size == a1.size == h.size):
        raise ValueError(f"d0, d1 and judge must have the same size, got {a0.size}, {a1.size} and {h.size}")
    if a0.size == 0:
        raise ValueError("d0, d1 and judge are empty")
    if np.any((h < 0) | (h > 1)):
        raise ValueError("judge must lie in [0, 1] (fraction of humans preferring p1)")
    if not lower_is_better:
        a0, a1 = -a0, -a1
    return (a0 < a1) * (1.0 - h) + (a1 < a0) * h + (a1 == a0) * 0.5


def two_afc_score(
    d0: Sequence[float] | np.ndarray,
    d1: Sequence[float] | np.ndarray,
    judge: Sequence[float] | np.ndarray,
    lower_is_better: bool = True,
) -> float:
    """2AFC score: mean agreement of a metric with human judgements (LPIPS ``score_2afc_dataset``).

    Args:
        d0: Metric value between the reference and ``p0``, shape (N,).
        d1: Metric value between the reference and ``p1``, shape (N,).
        judge: Fraction of humans who preferred ``p1``, in [0, 1], shape (N,).
        lower_is_better: True for a distance, False for a similarity score.

    Returns:
        The 2AFC score in [0, 1].

    Raises:
        TypeError: If ``lower_is_better`` is not a bool or an input is not numeric.
        ValueError: If the inputs are inconsistent (see :func:`two_afc_scores`).

    References:
        Zhang et al., CVPR 2018; ``score_2afc_dataset`` in richzhang/PerceptualSimilarity (BSD-2-Clause).
    """
    return float(np.mean(two_afc_scores(d0, d1, judge, lower_is_better=lower_is_better)))
