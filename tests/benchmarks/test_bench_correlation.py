"""Tests of the correlation protocol against scipy, hand-computed values and planted logistic curves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from benchmarks.protocols.bootstrap import bootstrap_srocc_ci
from benchmarks.protocols.correlation import (
    LogisticFitWarning,
    evaluate_scores,
    fit_logistic,
    krcc,
    logistic_4param,
    logistic_5param,
    plcc,
    rmse,
    srocc,
)
from scipy import stats


def test_hand_computed_small_example() -> None:
    x = [1, 2, 3, 4, 5]
    y = [2, 1, 4, 3, 5]
    # sum d^2 = 4 -> 1 - 6*4 / (5*24); 8 concordant and 2 discordant pairs; cov 8 / sqrt(10*10).
    assert srocc(x, y) == pytest.approx(0.8)
    assert krcc(x, y) == pytest.approx(0.6)
    assert plcc(x, y) == pytest.approx(0.8)
    assert rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == pytest.approx(math.sqrt(4.0 / 3.0))


def test_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, 200).astype(float)  # many ties
    y = x + rng.normal(0, 3, 200)
    assert srocc(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert krcc(x, y) == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)
    assert plcc(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)


@pytest.mark.parametrize(
    ("true", "form"),
    [
        ((40.0, 1.2, 5.0, 0.5, 30.0), "5param"),
        ((25.0, -0.8, 3.0, -1.0, 60.0), "5param"),
        ((80.0, 10.0, 4.0, 1.5), "4param"),
        ((10.0, 90.0, 6.0, 0.7), "4param"),  # decreasing
    ],
)
def test_logistic_fit_recovers_known_parameters(true: tuple[float, ...], form: str) -> None:
    rng = np.random.default_rng(42)
    x = rng.uniform(0, 10, 400)
    func = logistic_5param if form == "5param" else logistic_4param
    y = func(x, *true) + rng.normal(0, 0.01, x.size)
    fit = fit_logistic(x, y, form)
    assert fit.converged
    expected = list(true)
    if form == "5param" and expected[0] < 0:  # (b1, b2) ~ (-b1, -b2): canonical b1 >= 0
        expected[0], expected[1] = -expected[0], -expected[1]
    np.testing.assert_allclose(fit.params, expected, rtol=2e-2, atol=2e-2)
    assert rmse(fit.predict(x), y) < 0.02


def test_logistic_fit_scale_invariance() -> None:
    """Fitting is done on standardised data, so huge or tiny units give the same mapping."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 300)
    y = logistic_4param(x, 100.0, 0.0, 0.4, 0.05) + rng.normal(0, 0.5, x.size)
    a = fit_logistic(x, y, "4param")
    b = fit_logistic(x * 1e-6, y, "4param")
    np.testing.assert_allclose(a.predict(x), b.predict(x * 1e-6), rtol=1e-4, atol=1e-3)


def test_fit_falls_back_to_linear_with_warning() -> None:
    x = [1.0, 2.0, 3.0]
    y = [2.0, 4.0, 6.5]
    with pytest.warns(LogisticFitWarning, match="fewer than the 5 parameters"):
        fit = fit_logistic(x, y, "5param")
    assert not fit.converged
    slope, intercept = np.polyfit(x, y, 1)
    np.testing.assert_allclose(fit.params, (slope, intercept))
    np.testing.assert_allclose(fit.predict(x), slope * np.array(x) + intercept)


def _planted(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A distance and a DMOS that agree (both lower-is-better: a larger distance goes with a larger DMOS)."""
    rng = np.random.default_rng(seed)
    distance = rng.uniform(0, 1, n)
    dmos = logistic_4param(distance, 90.0, 10.0, 0.5, 0.1) + rng.normal(0, 2.0, n)
    return distance, dmos


def test_evaluate_scores_direction_is_explicit() -> None:
    distance, dmos = _planted()
    agree = evaluate_scores(distance, dmos, higher_is_better_score=False, higher_is_better_label=False)
    assert agree.n == distance.size
    assert agree.srocc == pytest.approx(stats.spearmanr(distance, dmos)[0])
    assert agree.krcc == pytest.approx(stats.kendalltau(distance, dmos)[0])
    assert agree.plcc == pytest.approx(stats.pearsonr(distance, dmos)[0])
    for value in (agree.srocc, agree.plcc, agree.plcc_logistic5, agree.plcc_logistic4):
        assert value > 0.9
    assert agree.krcc > 0.8
    # Noise sd is 2 DMOS points: a good fit has RMSE close to it.
    assert agree.rmse_logistic4 == pytest.approx(2.0, rel=0.15)
    assert agree.rmse_logistic5 == pytest.approx(2.0, rel=0.15)
    assert agree.fit4.converged and agree.fit5.converged

    # The same numbers as a quality score against MOS (both negated) ...
    flipped = evaluate_scores(-distance, -dmos, higher_is_better_score=True, higher_is_better_label=True)
    assert flipped.srocc == pytest.approx(agree.srocc)
    assert flipped.plcc_logistic4 == pytest.approx(agree.plcc_logistic4, abs=1e-6)

    # ... while a metric pointing the wrong way gets negative correlations, same magnitudes.
    wrong = evaluate_scores(distance, dmos, higher_is_better_score=True, higher_is_better_label=False)
    assert wrong.srocc == pytest.approx(-agree.srocc)
    assert wrong.krcc == pytest.approx(-agree.krcc)
    assert wrong.plcc == pytest.approx(-agree.plcc)
    assert wrong.plcc_logistic4 == pytest.approx(-agree.plcc_logistic4, abs=1e-3)
    assert wrong.plcc_logistic5 == pytest.approx(-agree.plcc_logistic5, abs=1e-3)
    assert wrong.rmse_logistic4 == pytest.approx(agree.rmse_logistic4, rel=1e-3)
    assert set(agree.as_dict()) >= {"srocc", "krcc", "plcc", "plcc_logistic5", "rmse_logistic4"}


def test_evaluate_scores_fitted_plcc_matches_manual_fit() -> None:
    distance, dmos = _planted(seed=5)
    result = evaluate_scores(distance, dmos, False, False)
    # Independent computation: fit DMOS from distance directly, correlate.
    fit = fit_logistic(distance, dmos, "4param")
    assert result.plcc_logistic4 == pytest.approx(stats.pearsonr(fit.predict(distance), dmos)[0], abs=1e-6)
    assert result.rmse_logistic4 == pytest.approx(rmse(fit.predict(distance), dmos), rel=1e-6)


def test_evaluate_scores_constant_scores_warns() -> None:
    with pytest.warns(LogisticFitWarning):
        result = evaluate_scores(np.ones(10), np.arange(10.0), True, True)
    assert math.isnan(result.srocc)
    assert math.isnan(result.plcc_logistic5)
    assert not result.fit5.converged


@pytest.mark.parametrize("flag", [1, "yes", None])
def test_evaluate_scores_rejects_non_bool_direction(flag: object) -> None:
    with pytest.raises(TypeError, match="higher_is_better_score"):
        evaluate_scores([1, 2, 3], [1, 2, 3], flag, True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="higher_is_better_label"):
        evaluate_scores([1, 2, 3], [1, 2, 3], True, flag)  # type: ignore[arg-type]


def test_input_validation_names_arguments() -> None:
    with pytest.raises(ValueError, match="scores and labels must have the same length"):
        evaluate_scores([1, 2, 3], [1, 2], True, True)
    with pytest.raises(ValueError, match="labels contains NaN"):
        evaluate_scores([1, 2, 3], [1, np.nan, 2], True, True)
    with pytest.raises(ValueError, match="scores must be one-dimensional"):
        evaluate_scores(np.ones((2, 2)), np.ones(4), True, True)
    with pytest.raises(ValueError, match="form"):
        fit_logistic([1, 2, 3], [1, 2, 3], "3param")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="x must be a sequence"):
        srocc(object(), [1, 2])


def test_bootstrap_matches_naive_loop_and_is_seeded() -> None:
    distance, dmos = _planted(n=60, seed=2)
    ci = bootstrap_srocc_ci(distance, dmos, False, False, n_boot=200, confidence=0.9, seed=7)
    # Naive reference: the same resampling scheme, scipy's spearmanr per resample.
    rng = np.random.default_rng(7)
    idx = rng.integers(0, distance.size, size=(200, distance.size))
    values = [stats.spearmanr(-distance[i], -dmos[i])[0] for i in idx]
    low, high = np.quantile(values, [0.05, 0.95])
    assert ci.low == pytest.approx(low, abs=1e-12)
    assert ci.high == pytest.approx(high, abs=1e-12)
    assert ci.estimate == pytest.approx(stats.spearmanr(distance, dmos)[0])
    assert ci.low <= ci.estimate <= ci.high
    assert bootstrap_srocc_ci(distance, dmos, False, False, n_boot=200, confidence=0.9, seed=7) == ci
    other = bootstrap_srocc_ci(distance, dmos, False, False, n_boot=200, confidence=0.9, seed=8)
    assert (other.low, other.high) != (ci.low, ci.high)


def test_bootstrap_perfect_agreement_and_validation() -> None:
    x = np.arange(30.0)
    ci = bootstrap_srocc_ci(x, x**2, True, True, n_boot=50)
    assert (ci.low, ci.estimate, ci.high) == pytest.approx((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_srocc_ci(x, x, True, True, n_boot=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_srocc_ci(x, x, True, True, confidence=1.5)
