"""Leave-one-group-out cross-validation of a configuration choice (e.g. leave-one-reference-out on LIVE).

A metric's configuration (backbone, layers, channel selector, x, normalisation) chosen by its SROCC on a
dataset is optimistic on that same dataset. Here the choice itself is cross-validated: the images are split by
group (LIVE: by reference image, so no scene is seen in training and test), and for every fold

1. each candidate configuration is scored by its SROCC on the *training* images, pooled over their groups;
2. the best candidate (highest SROCC; ties go to the first in the given order) is chosen;
3. the chosen candidate is evaluated on the held-out group.

Reported per fold: the chosen candidate, its training SROCC and its test SROCC (within the held-out group).
Reported over folds: the mean ± standard deviation of the test SROCCs, and two *pooled* SROCCs over all
held-out predictions concatenated (every image is predicted exactly once, by the configuration its fold chose):

* ``pooled_srocc``: of the raw candidate values. Folds may choose configurations whose values live on
  different scales (a normalised and a raw distance, say), so this pools numbers that are not comparable;
  it is reported because it is what is usually done in leave-one-group-out CV.
* ``pooled_mapped_srocc``: of the values mapped onto the label scale by a 4-parameter logistic fitted on the
  fold's training images (VQEG's monotone mapping, :func:`~benchmarks.protocols.correlation.fit_logistic`),
  which makes the held-out predictions of different folds comparable. The 4-parameter form is used because it
  is monotone: it cannot reorder a fold's own predictions (the 5-parameter form's linear term can, and did on
  folds of ~25 training images).

A fixed configuration is cross-validated the same way with a single candidate (then ``pooled_srocc`` is its
SROCC on all images).

References:
    T. Hastie, R. Tibshirani, J. Friedman. "The Elements of Statistical Learning", 2nd ed., Springer 2009,
    §7.10 (cross-validation; the selection step must be inside the loop).

    H. R. Sheikh, M. F. Sabir, A. C. Bovik. "A Statistical Evaluation of Recent Full Reference Image Quality
    Assessment Algorithms". IEEE TIP 15(11), 2006 (logistic mapping before pooling); VQEG FR-TV Phase II
    final report, 2003 (4-parameter logistic).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.protocols.correlation import LogisticFitWarning, fit_logistic, rowwise_srocc, safe_srocc

__all__ = ["CrossValidationResult", "FoldResult", "leave_one_group_out"]


@dataclass(frozen=True)
class FoldResult:
    """One fold of :func:`leave_one_group_out`.

    Attributes:
        held_out: the held-out group.
        chosen: index of the chosen candidate (row of the candidate matrix).
        chosen_name: its name.
        train_srocc: the chosen candidate's SROCC on the training images (pooled over the training groups).
        test_srocc: its SROCC on the held-out images (NaN if undefined, e.g. constant values).
        n_train: training images.
        n_test: held-out images.
    """

    held_out: str
    chosen: int
    chosen_name: str
    train_srocc: float
    test_srocc: float
    n_train: int
    n_test: int


@dataclass(frozen=True)
class CrossValidationResult:
    """Result of :func:`leave_one_group_out`.

    Attributes:
        folds: one :class:`FoldResult` per group, in order of first appearance.
        predictions: held-out value of every image (by its fold's chosen candidate), shape (N,).
        mapped_predictions: the same after the fold's training logistic mapping, on the label scale, shape (N,).
        pooled_srocc: SROCC of ``predictions`` with the labels.
        pooled_mapped_srocc: SROCC of ``mapped_predictions`` with the labels.
    """

    folds: tuple[FoldResult, ...]
    predictions: np.ndarray
    mapped_predictions: np.ndarray
    pooled_srocc: float
    pooled_mapped_srocc: float

    @property
    def test_sroccs(self) -> np.ndarray:
        """Held-out SROCC of every fold, shape (G,)."""
        return np.array([fold.test_srocc for fold in self.folds])

    @property
    def mean_test_srocc(self) -> float:
        """Mean held-out SROCC over the folds (NaN folds ignored)."""
        values = self.test_sroccs
        return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan

    @property
    def std_test_srocc(self) -> float:
        """Sample standard deviation of the held-out SROCCs over the folds (NaN folds ignored)."""
        values = self.test_sroccs[np.isfinite(self.test_sroccs)]
        return float(np.std(values, ddof=1)) if values.size > 1 else math.nan


def _mapped(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LogisticFitWarning)
        return fit_logistic(train_x, train_y, "4param").predict(test_x)


def leave_one_group_out(
    candidates: np.ndarray,
    labels: Sequence[float] | np.ndarray,
    groups: Sequence[str],
    names: Sequence[str] | None = None,
) -> CrossValidationResult:
    """Cross-validates choosing the best of several candidate scorings by SROCC, one group held out at a time.

    The SROCC is taken as is (no orientation): give candidates oriented like the labels, e.g. distances with
    DMOS (both higher = worse), so that the best candidate has the highest SROCC.

    Args:
        candidates: values of each candidate for each image, shape (K, N) (or (N,) for one fixed candidate).
        labels: subjective scores, shape (N,).
        groups: group of each image (e.g. LIVE reference name), length N; at least 2 distinct groups, each
            with at least 2 images.
        names: candidate names, length K (default ``"0"``, ``"1"``, …).

    Returns:
        A :class:`CrossValidationResult`.

    Raises:
        ValueError: on mismatched shapes, non-finite values, fewer than 2 groups or a group of 1 image.
    """
    values = np.asarray(candidates, dtype=np.float64)
    if values.ndim == 1:
        values = values[None, :]
    y = np.asarray(labels, dtype=np.float64)
    group_list = [str(g) for g in groups]
    if values.ndim != 2 or y.ndim != 1 or values.shape[1] != y.size or len(group_list) != y.size:
        raise ValueError(
            f"candidates must have shape (K, N) with N = len(labels) = len(groups), got {values.shape}, "
            f"{y.shape[0] if y.ndim else y.shape} labels and {len(group_list)} groups"
        )
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(y))):
        raise ValueError("candidates and labels must be finite")
    names = [str(i) for i in range(values.shape[0])] if names is None else [str(n) for n in names]
    if len(names) != values.shape[0]:
        raise ValueError(f"names must have {values.shape[0]} entries, got {len(names)}")
    order = list(dict.fromkeys(group_list))
    if len(order) < 2:
        raise ValueError(f"groups must hold at least 2 distinct groups, got {order}")
    group_arr = np.array(group_list)
    small = [g for g in order if int((group_arr == g).sum()) < 2]
    if small:
        raise ValueError(f"every group needs at least 2 images; groups {small} have 1")

    predictions = np.full(y.size, math.nan)
    mapped = np.full(y.size, math.nan)
    folds = []
    for group in order:
        test = group_arr == group
        train = ~test
        train_scores = rowwise_srocc(values[:, train], y[train])
        ranked = np.where(np.isfinite(train_scores), train_scores, -np.inf)
        best = int(np.argmax(ranked))  # first of the best: candidate order breaks ties
        predictions[test] = values[best, test]
        mapped[test] = _mapped(values[best, train], y[train], values[best, test])
        folds.append(FoldResult(
            held_out=group, chosen=best, chosen_name=names[best], train_srocc=float(train_scores[best]),
            test_srocc=safe_srocc(values[best, test], y[test]), n_train=int(train.sum()), n_test=int(test.sum()),
        ))
    return CrossValidationResult(
        folds=tuple(folds), predictions=predictions, mapped_predictions=mapped,
        pooled_srocc=safe_srocc(predictions, y), pooled_mapped_srocc=safe_srocc(mapped, y),
    )
