"""Correlation protocol for full-reference IQA benchmarks (LIVE, TID, CSIQ, ...).

The standard protocol compares objective scores with subjective scores (MOS or DMOS) using

* SROCC (Spearman rank-order correlation) and KRCC (Kendall tau-b), which are invariant to any monotone
  mapping of the scores;
* PLCC (Pearson linear correlation) on the raw scores and after a monotone non-linear (logistic) mapping of
  the scores onto the subjective scale, together with the RMSE of that mapping.

Two logistic forms are provided:

* 5-parameter (VQEG FR-TV Phase I / Sheikh et al. 2006)::

      f(x) = b1 * (0.5 - 1 / (1 + exp(b2 * (x - b3)))) + b4 * x + b5

* 4-parameter (VQEG FR-TV Phase II)::

      f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2

Direction is always handled explicitly: :func:`evaluate_scores` is told whether a higher objective score and a
higher label mean better quality, and reports every correlation as *positive when the metric agrees with
humans* (for example a distance scored against DMOS, both lower-is-better, gives positive correlations).

References:
    H. R. Sheikh, M. F. Sabir, A. C. Bovik. "A Statistical Evaluation of Recent Full Reference Image Quality
    Assessment Algorithms". IEEE TIP 15(11), 2006 (5-parameter logistic, Eq. 8).

    VQEG. "Final Report from the Video Quality Experts Group on the Validation of Objective Models of Video
    Quality Assessment", Phase I (2000) and Phase II (2003).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import optimize, special, stats

__all__ = [
    "CorrelationResult",
    "LogisticFit",
    "LogisticFitWarning",
    "centered_ranks",
    "correlate_centered",
    "evaluate_scores",
    "fit_logistic",
    "krcc",
    "logistic_4param",
    "logistic_5param",
    "plcc",
    "rmse",
    "rowwise_srocc",
    "safe_srocc",
    "srocc",
]

LogisticForm = Literal["5param", "4param"]
_N_PARAMS: dict[str, int] = {"5param": 5, "4param": 4}


class LogisticFitWarning(RuntimeWarning):
    """Emitted when a logistic fit fails and a linear mapping is used instead."""


def _as_vector(name: str, values: object) -> np.ndarray:
    """Converts ``values`` to a finite 1-D float64 array, naming ``name`` in errors."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a sequence of real numbers, got {type(values).__name__}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _as_pair(x: object, y: object, x_name: str = "x", y_name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    xa = _as_vector(x_name, x)
    ya = _as_vector(y_name, y)
    if xa.shape != ya.shape:
        raise ValueError(f"{x_name} and {y_name} must have the same length, got {xa.size} and {ya.size}")
    if xa.size < 2:
        raise ValueError(f"{x_name} and {y_name} need at least 2 elements, got {xa.size}")
    return xa, ya


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _rank_or_linear(statistic, x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """A SciPy correlation ``statistic`` of scores ``x`` (shape (N,)) and labels ``y`` (shape (N,)).

    Returns:
        The signed coefficient in [-1, 1]; NaN if either input is constant.

    Raises:
        ValueError: If the inputs are not 1-D, differ in length, have fewer than 2 elements or are not finite.
    """
    xa, ya = _as_pair(x, y)
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return math.nan
    return float(statistic(xa, ya)[0])


def srocc(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank-order correlation coefficient (ties get average ranks).

    Same inputs, output and errors as :func:`_rank_or_linear`; NaN if either input is constant.
    """
    return _rank_or_linear(stats.spearmanr, x, y)


def safe_srocc(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """:func:`srocc`, or NaN when ``x`` has fewer than 2 values or a non-finite one (instead of an error)."""
    values = np.asarray(x, dtype=np.float64)
    return srocc(values, y) if values.size >= 2 and np.all(np.isfinite(values)) else math.nan


def centered_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis, minus their mean (the input of :func:`correlate_centered`)."""
    ranks = stats.rankdata(values, axis=-1)
    return ranks - ranks.mean(axis=-1, keepdims=True)


def correlate_centered(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of centred rows, broadcasting ``(…, N)`` against ``(…, N)``; NaN where a row is constant."""
    den = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (x * y).sum(axis=-1) / den, math.nan)


def rowwise_srocc(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """SROCC of every row of ``values`` with ``labels`` (average ranks for ties).

    Args:
        values: shape (K, N).
        labels: shape (N,) — or (K, N), one row of labels per row of values.

    Returns:
        Shape (K,); NaN for rows that are constant (or if the labels are).

    Raises:
        ValueError: if the shapes do not match or fewer than 2 columns are given.

    Example:
        >>> rowwise_srocc(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), np.array([1.0, 5.0, 9.0])).tolist()
        [1.0, -1.0]
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if values.ndim != 2 or labels.shape[-1] != values.shape[1] or labels.ndim not in (1, 2) or (
            labels.ndim == 2 and labels.shape != values.shape):
        raise ValueError(f"values must have shape (K, N) and labels (N,) or (K, N), got {values.shape} and "
                         f"{labels.shape}")
    if values.shape[1] < 2:
        raise ValueError(f"need at least 2 columns, got {values.shape[1]}")
    return correlate_centered(centered_ranks(values), centered_ranks(labels))


def krcc(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Kendall rank correlation coefficient (tau-b, which corrects for ties).

    Same inputs, output and errors as :func:`_rank_or_linear`; NaN if either input is constant.
    """
    return _rank_or_linear(stats.kendalltau, x, y)


def plcc(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson linear correlation coefficient.

    Same inputs, output and errors as :func:`_rank_or_linear`; NaN if either input is constant.
    """
    return _rank_or_linear(stats.pearsonr, x, y)


def rmse(prediction: Sequence[float] | np.ndarray, target: Sequence[float] | np.ndarray) -> float:
    """Root-mean-square error between predictions and targets.

    Args:
        prediction: Predicted labels, shape (N,).
        target: Labels, shape (N,).

    Returns:
        ``sqrt(mean((prediction - target) ** 2))``.

    Raises:
        ValueError: If the inputs are not 1-D, differ in length or are not finite.
    """
    pa, ta = _as_pair(prediction, target, "prediction", "target")
    return float(np.sqrt(np.mean((pa - ta) ** 2)))


def logistic_5param(x: np.ndarray | float, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray | float:
    """5-parameter logistic of Sheikh et al. (2006): ``b1*(0.5 - 1/(1+exp(b2*(x-b3)))) + b4*x + b5``.

    Args:
        x: Objective scores, any shape.
        b1: Amplitude of the logistic part.
        b2: Slope of the logistic part.
        b3: Centre of the logistic part.
        b4: Linear term.
        b5: Offset.

    Returns:
        The mapped scores, same shape as ``x``.

    References:
        Sheikh, Sabir, Bovik, IEEE TIP 15(11), 2006, Eq. (8).
    """
    x = np.asarray(x, dtype=np.float64)
    # 1 / (1 + exp(b2 * (x - b3))) == expit(-b2 * (x - b3)), evaluated without overflow.
    return b1 * (0.5 - special.expit(-b2 * (x - b3))) + b4 * x + b5


def logistic_4param(x: np.ndarray | float, b1: float, b2: float, b3: float, b4: float) -> np.ndarray | float:
    """4-parameter logistic of VQEG Phase II: ``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``.

    Args:
        x: Objective scores, any shape.
        b1: Upper asymptote (value for ``x -> +inf``).
        b2: Lower asymptote (value for ``x -> -inf``).
        b3: Centre.
        b4: Scale (its absolute value is used).

    Returns:
        The mapped scores, same shape as ``x``.

    References:
        VQEG, Final report of FR-TV Phase II validation test, 2003.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (b1 - b2) * special.expit((x - b3) / np.abs(b4)) + b2


_LOGISTICS: dict[str, Callable[..., np.ndarray]] = {"5param": logistic_5param, "4param": logistic_4param}


def _jacobian_5param(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """Analytic Jacobian of :func:`logistic_5param`, shape (N, 5)."""
    s = special.expit(-b2 * (x - b3))
    ds = s * (1.0 - s)
    return np.stack([0.5 - s, b1 * ds * (x - b3), -b1 * ds * b2, x, np.ones_like(x)], axis=1)


def _jacobian_4param(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """Analytic Jacobian of :func:`logistic_4param`, shape (N, 4)."""
    scale = abs(b4)
    e = special.expit((x - b3) / scale)
    de = (b1 - b2) * e * (1.0 - e)
    return np.stack([e, 1.0 - e, -de / scale, -de * (x - b3) / (scale * b4)], axis=1)


# Analytic Jacobians: with finite differences, a parameter started at a tiny non-zero value gets a tiny step
# and stays frozen (MINPACK scales the step by |p|).
_JACOBIANS: dict[str, Callable[..., np.ndarray]] = {"5param": _jacobian_5param, "4param": _jacobian_4param}


@dataclass(frozen=True)
class LogisticFit:
    """Result of :func:`fit_logistic`.

    Attributes:
        form: ``"5param"`` or ``"4param"``.
        params: Fitted parameters ``(b1, ..., bk)`` in the units of the original data (canonical form:
            ``b1 >= 0`` for the 5-parameter curve, ``b4 > 0`` for the 4-parameter one), or the linear
            coefficients ``(slope, intercept)`` when the logistic fit failed.
        converged: True when the logistic fit succeeded; False when the linear fallback is used.
        sse: Sum of squared residuals of the returned mapping on the fitted data.
    """

    form: str
    params: tuple[float, ...]
    converged: bool
    sse: float

    def predict(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """Maps objective scores onto the label scale with the fitted curve.

        Args:
            x: Objective scores, shape (N,).

        Returns:
            Predicted labels, shape (N,).
        """
        xa = np.asarray(x, dtype=np.float64)
        if not self.converged:
            slope, intercept = self.params
            return slope * xa + intercept
        return np.asarray(_LOGISTICS[self.form](xa, *self.params), dtype=np.float64)


def _to_original_units(form: str, c: np.ndarray, mx: float, sx: float, my: float, sy: float) -> tuple:
    """Maps parameters fitted on standardised data (z=(x-mx)/sx, w=(y-my)/sy) back to x and y units."""
    if form == "5param":
        c1, c2, c3, c4, c5 = c
        if c1 < 0:  # (b1, b2) and (-b1, -b2) give the same curve; report the b1 >= 0 representative.
            c1, c2 = -c1, -c2
        return (sy * c1, c2 / sx, mx + sx * c3, sy * c4 / sx, my + sy * c5 - sy * c4 * mx / sx)
    c1, c2, c3, c4 = c
    return (my + sy * c1, my + sy * c2, mx + sx * c3, sx * abs(c4))


def _starting_points(form: str, z: np.ndarray, w: np.ndarray) -> list[list[float]]:
    """Data-driven initial values on standardised data (several, the best fit is kept)."""
    direction = 1.0 if stats.spearmanr(z, w)[0] >= 0 else -1.0
    centre = float(np.median(z))
    lo, hi = float(np.min(w)), float(np.max(w))
    starts: list[list[float]] = []
    if form == "5param":
        # Amplitude = label range, slope ~ 1/std(x) (=1 here), centre = median(x), no linear term,
        # offset = mean(y); a few slopes cover steep and shallow sigmoids.
        for slope in (1.0, 3.0, 0.3):
            for c3 in (centre, 0.0):
                starts.append([hi - lo, direction * slope, c3, 0.0, float(np.mean(w))])
        lin_slope, lin_icpt = np.polyfit(z, w, 1)
        starts.append([1e-3, direction, centre, float(lin_slope), float(lin_icpt)])
    else:
        # Standard practice: b1 = max(y), b2 = min(y), b3 = mean(x), b4 = std(x)/4 (asymptotes swapped for a
        # decreasing relation).
        top, bottom = (hi, lo) if direction > 0 else (lo, hi)
        for scale in (0.25, 1.0, 0.1):
            for c3 in (0.0, centre):
                starts.append([top, bottom, c3, scale])
    return starts


def fit_logistic(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    form: LogisticForm = "5param",
    maxfev: int = 20000,
) -> LogisticFit:
    """Fits a logistic mapping from objective scores ``x`` to subjective scores ``y`` by least squares.

    Both variables are standardised before fitting (the parameters are mapped back to the original units), and
    several data-driven starting points are tried with :func:`scipy.optimize.curve_fit`; the fit with the
    smallest residual is kept. If no fit converges (too few points, constant scores, divergence), a
    :class:`LogisticFitWarning` is emitted and the least-squares *linear* mapping is returned with
    ``converged=False``.

    Args:
        x: Objective scores, shape (N,).
        y: Subjective scores, shape (N,).
        form: ``"5param"`` (Sheikh 2006) or ``"4param"`` (VQEG Phase II).
        maxfev: Maximum number of function evaluations per start.

    Returns:
        The fitted :class:`LogisticFit`.

    Raises:
        ValueError: If ``form`` is unknown, ``maxfev`` is not positive, or the inputs are invalid.

    References:
        Sheikh, Sabir, Bovik, IEEE TIP 15(11), 2006; VQEG FR-TV Phase I/II final reports.
    """
    if form not in _LOGISTICS:
        raise ValueError(f"form must be one of {sorted(_LOGISTICS)}, got {form!r}")
    if not isinstance(maxfev, int) or maxfev <= 0:
        raise ValueError(f"maxfev must be a positive int, got {maxfev!r}")
    xa, ya = _as_pair(x, y)
    func = _LOGISTICS[form]
    mx, sx = float(np.mean(xa)), float(np.std(xa))
    my, sy = float(np.mean(ya)), float(np.std(ya))

    best: tuple[float, tuple] | None = None
    reason = "no starting point converged"
    if sx == 0 or sy == 0:
        reason = "x or y is constant"
    elif xa.size < _N_PARAMS[form]:
        reason = f"{xa.size} points are fewer than the {_N_PARAMS[form]} parameters"
    else:
        z, w = (xa - mx) / sx, (ya - my) / sy
        for p0 in _starting_points(form, z, w):
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", optimize.OptimizeWarning)
                    c, _ = optimize.curve_fit(func, z, w, p0=p0, jac=_JACOBIANS[form], maxfev=maxfev)
            except (RuntimeError, ValueError, FloatingPointError) as exc:
                reason = str(exc)
                continue
            params = _to_original_units(form, np.asarray(c), mx, sx, my, sy)
            with np.errstate(all="ignore"):
                pred = func(xa, *params)
            if not (np.all(np.isfinite(params)) and np.all(np.isfinite(pred))):
                reason = "non-finite parameters"
                continue
            sse = float(np.sum((pred - ya) ** 2))
            if best is None or sse < best[0]:
                best = (sse, tuple(float(p) for p in params))
    if best is not None:
        return LogisticFit(form=form, params=best[1], converged=True, sse=best[0])

    warnings.warn(
        f"{form} logistic fit failed ({reason}); falling back to a linear mapping",
        LogisticFitWarning,
        stacklevel=2,
    )
    if sx == 0:
        slope, intercept = 0.0, my
    else:
        slope, intercept = (float(v) for v in np.polyfit(xa, ya, 1))
    sse = float(np.sum((slope * xa + intercept - ya) ** 2))
    return LogisticFit(form=form, params=(slope, intercept), converged=False, sse=sse)


@dataclass(frozen=True)
class CorrelationResult:
    """All correlation-protocol numbers for one metric on one dataset.

    Correlations are oriented so that a positive value means the metric agrees with humans.

    Attributes:
        n: Number of scored images.
        srocc: Spearman rank-order correlation.
        krcc: Kendall tau-b.
        plcc: Pearson correlation of the raw scores.
        plcc_logistic5: Pearson correlation after the 5-parameter logistic mapping.
        rmse_logistic5: RMSE (label units) after the 5-parameter logistic mapping.
        plcc_logistic4: Pearson correlation after the 4-parameter logistic mapping.
        rmse_logistic4: RMSE (label units) after the 4-parameter logistic mapping.
        fit5: The 5-parameter fit (on oriented scores and labels, see :func:`evaluate_scores`).
        fit4: The 4-parameter fit (same orientation), or ``None`` when it was not asked for.
    """

    n: int
    srocc: float
    krcc: float
    plcc: float
    plcc_logistic5: float
    rmse_logistic5: float
    plcc_logistic4: float
    rmse_logistic4: float
    fit5: LogisticFit
    fit4: LogisticFit | None

    def as_dict(self) -> dict[str, object]:
        """Returns the result as a plain (JSON-friendly) dictionary."""
        return asdict(self)


def _orient(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    return values if higher_is_better else -values


def _fitted_correlation(fit: LogisticFit, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """PLCC and RMSE after ``fit``, PLCC signed by the direction of the fitted curve over the data range."""
    pred = fit.predict(x)
    err = float(np.sqrt(np.mean((pred - y) ** 2)))
    if np.ptp(pred) == 0 or np.ptp(y) == 0:
        return math.nan, err
    r = abs(float(stats.pearsonr(pred, y)[0]))
    lo, hi = fit.predict(np.array([x.min(), x.max()]))
    return (r if hi >= lo else -r), err


def evaluate_scores(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[float] | np.ndarray,
    higher_is_better_score: bool,
    higher_is_better_label: bool,
    maxfev: int = 20000,
    logistic4: bool = True,
) -> CorrelationResult:
    """Runs the full correlation protocol (SROCC, KRCC, PLCC raw and after logistic fits, RMSE).

    Scores and labels are first oriented so that higher means better quality for both (a lower-is-better
    quantity is negated). All correlations are computed on the oriented values, so they are positive when the
    metric agrees with humans and negative when it disagrees. The logistic curves are fitted on the oriented
    values (no monotonicity constraint, as in the standard practice); since a least-squares fit always
    correlates positively with its target, the fitted PLCC is signed by the direction of the fitted curve
    (negative when the fitted mapping decreases, i.e. the metric is anti-correlated with humans). RMSE is in
    label units and does not depend on orientation.

    Args:
        scores: Objective scores, shape (N,).
        labels: Subjective scores (MOS or DMOS), shape (N,).
        higher_is_better_score: True for a quality/similarity score, False for a distance.
        higher_is_better_label: True for MOS, False for DMOS (e.g. LIVE ``dmos``).
        maxfev: Maximum function evaluations per start in :func:`fit_logistic`.
        logistic4: also fit the 4-parameter logistic (``False``: its fields are NaN and ``fit4`` is ``None``;
            large grids need only the 5-parameter one).

    Returns:
        A :class:`CorrelationResult`.

    Raises:
        TypeError: If a direction flag is not a bool.
        ValueError: If the inputs are not finite 1-D arrays of equal length (at least 2).
    """
    hb_s = _check_bool("higher_is_better_score", higher_is_better_score)
    hb_l = _check_bool("higher_is_better_label", higher_is_better_label)
    s, y = _as_pair(scores, labels, "scores", "labels")
    x = _orient(s, hb_s)
    t = _orient(y, hb_l)
    fit5 = fit_logistic(x, t, "5param", maxfev=maxfev)
    fit4 = fit_logistic(x, t, "4param", maxfev=maxfev) if logistic4 else None
    plcc5, rmse5 = _fitted_correlation(fit5, x, t)
    plcc4, rmse4 = _fitted_correlation(fit4, x, t) if fit4 is not None else (math.nan, math.nan)
    return CorrelationResult(
        n=int(x.size),
        srocc=srocc(x, t),
        krcc=krcc(x, t),
        plcc=plcc(x, t),
        plcc_logistic5=plcc5,
        rmse_logistic5=rmse5,
        plcc_logistic4=plcc4,
        rmse_logistic4=rmse4,
        fit5=fit5,
        fit4=fit4,
    )
