"""Just-noticeable-difference (JND) protocol of the BAPPS benchmark.

For each pair ``(p0, p1)`` humans were asked whether the two patches are the same; ``same`` is the fraction
who answered "same". Pairs are ranked by increasing metric distance and treated as retrieval of "same" pairs:
the cumulative true positives are the summed ``same`` fractions, the false positives the summed ``1 - same``
fractions; the score is the area under the precision-recall curve computed with the (non 11-point) PASCAL VOC
average precision. This reproduces ``score_jnd_dataset`` and ``voc_ap`` of the LPIPS code.

One deliberate difference: pairs with equal distances are ranked in input order (a stable sort), whereas LPIPS
uses ``np.argsort``'s default (unstable) sort. Results coincide whenever no distances tie.

References:
    R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness of Deep Features
    as a Perceptual Metric". CVPR 2018.

    ``lpips/trainer.py::score_jnd_dataset`` and ``lpips/__init__.py::voc_ap`` in
    https://github.com/richzhang/PerceptualSimilarity (BSD-2-Clause, Copyright (c) 2018, Richard Zhang,
    Phillip Isola, Alexei A. Efros, Eli Shechtman, Oliver Wang); reimplemented here.

    M. Everingham et al. "The PASCAL Visual Object Classes (VOC) Challenge". IJCV 88, 2010 (average
    precision).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmarks.protocols.finite_arrays import as_flat_finite

__all__ = ["jnd_map", "jnd_precision_recall", "voc_ap"]


def voc_ap(recall: Sequence[float] | np.ndarray, precision: Sequence[float] | np.ndarray) -> float:
    """PASCAL VOC average precision (area under the interpolated precision-recall curve, not 11-point).

    Sentinels ``(0, 0)`` and ``(1, 0)`` are added, precision is replaced by its running maximum from the right
    (the precision envelope), and ``sum(delta_recall * precision)`` is taken over points where recall changes.

    Args:
        recall: Recall values in increasing order, shape (K,).
        precision: Precision values at those points, shape (K,).

    Returns:
        The average precision.

    Raises:
        ValueError: If the two inputs have different sizes or are not finite.

    References:
        ``voc_ap(..., use_07_metric=False)`` in richzhang/PerceptualSimilarity (BSD-2-Clause), itself from the
        py-faster-rcnn PASCAL VOC evaluation code.
    """
    rec, prec = as_flat_finite("recall", recall), as_flat_finite("precision", precision)
    if rec.size != prec.size:
        raise ValueError(f"recall and precision must have the same size, got {rec.size} and {prec.size}")
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def jnd_precision_recall(
    distances: Sequence[float] | np.ndarray,
    same: Sequence[float] | np.ndarray,
    lower_is_better: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision-recall curve of retrieving "same" pairs by increasing distance.

    Args:
        distances: Metric value per pair, shape (N,).
        same: Fraction of humans answering "same" per pair, in [0, 1], shape (N,).
        lower_is_better: True for a distance (pairs with small values are retrieved first, as in LPIPS);
            False for a similarity score (pairs with large values first).

    Returns:
        ``(recall, precision)``, each of shape (N,), one point per rank.

    Raises:
        TypeError: If ``lower_is_better`` is not a bool or an input is not numeric.
        ValueError: If the sizes differ, the inputs are empty, ``same`` leaves [0, 1] or sums to 0.
    """
    if not isinstance(lower_is_better, (bool, np.bool_)):
        raise TypeError(f"lower_is_better must be a bool, got {type(lower_is_better).__name__}")
    d, s = as_flat_finite("distances", distances), as_flat_finite("same", same)
    if d.size != s.size:
        raise ValueError(f"distances and same must have the same size, got {d.size} and {s.size}")
    if d.size == 0:
        raise ValueError("distances and same are empty")
    if np.any((s < 0) | (s > 1)):
        raise ValueError("same must lie in [0, 1] (fraction of 'same' answers)")
    if not np.sum(s) > 0:
        raise ValueError("same sums to 0: no pair was judged 'same', recall is undefined")
    order = np.argsort(d if lower_is_better else -d, kind="stable")
    s_sorted = s[order]
    tps = np.cumsum(s_sorted)
    fps = np.cumsum(1.0 - s_sorted)
    fns = np.sum(s_sorted) - tps
    precision = tps / (tps + fps)
    recall = tps / (tps + fns)
    return recall, precision


def jnd_map(
    distances: Sequence[float] | np.ndarray,
    same: Sequence[float] | np.ndarray,
    lower_is_better: bool = True,
) -> float:
    """JND mAP score of a metric (LPIPS ``score_jnd_dataset``).

    Args:
        distances: Metric value per pair, shape (N,).
        same: Fraction of humans answering "same" per pair, in [0, 1], shape (N,).
        lower_is_better: True for a distance, False for a similarity score.

    Returns:
        The average precision in [0, 1].

    Raises:
        TypeError: If ``lower_is_better`` is not a bool or an input is not numeric.
        ValueError: If the inputs are inconsistent (see :func:`jnd_precision_recall`).

    References:
        Zhang et al., CVPR 2018; ``score_jnd_dataset`` in richzhang/PerceptualSimilarity (BSD-2-Clause).
    """
    recall, precision = jnd_precision_recall(distances, same, lower_is_better=lower_is_better)
    return voc_ap(recall, precision)
