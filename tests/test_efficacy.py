"""Efficacy scores: μ1 finite differences on the log grid, μ2 and PE against their formulas, degenerate channels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pe_iqa.analysis import efficacy
from pe_iqa.analysis.csf import get_csf
from pe_iqa.analysis.efficacy import (
    EFFICACY_SCORES,
    compute_score,
    efficacy_terms,
    frequency_sensitivity,
    orientation_selectivity,
    perceptual_efficacy,
    register_score,
)
from pe_iqa.analysis.tuning import AnalysisConfig, TuningCurves

CONFIG = AnalysisConfig()


def _curves(response_f: torch.Tensor, response_theta: torch.Tensor, freqs: torch.Tensor | None = None) -> TuningCurves:
    freqs = CONFIG.frequencies() if freqs is None else freqs
    thetas = torch.arange(response_theta.shape[1], dtype=torch.float64) * math.pi / response_theta.shape[1]
    return TuningCurves(freqs, response_f.to(torch.float64), thetas, response_theta.to(torch.float64))


def _random_curves(n_channels: int = 12, seed: int = 0) -> TuningCurves:
    generator = torch.Generator().manual_seed(seed)
    freqs = CONFIG.frequencies()
    response_f = torch.rand(n_channels, freqs.numel(), generator=generator, dtype=torch.float64)
    response_theta = torch.rand(n_channels, 36, generator=generator, dtype=torch.float64)
    return _curves(response_f, response_theta, freqs)


def test_frequency_grid_is_non_uniform_log_spaced() -> None:
    freqs = CONFIG.frequencies()
    steps = torch.diff(freqs)
    assert float(steps.max() / steps.min()) > 10  # really non-uniform
    torch.testing.assert_close(torch.diff(torch.log(freqs)), torch.full_like(steps, math.log(32) / 47))


def test_mu1_exact_for_a_quadratic_on_the_non_uniform_grid() -> None:
    # Second-order central differences on a non-uniform grid are exact for quadratics in the interior; the ends
    # are one-sided (first order): a'(f_0) ≈ (a_1 - a_0)/(f_1 - f_0).
    freqs = CONFIG.frequencies()
    coefficients = torch.tensor([[0.3, -1.2, 0.05], [-2.0, 0.4, 0.0], [1.0, 0.0, -0.02]], dtype=torch.float64)
    response = coefficients[:, :1] + coefficients[:, 1:2] * freqs + coefficients[:, 2:3] * freqs**2
    derivative = coefficients[:, 1:2] + 2 * coefficients[:, 2:3] * freqs  # analytic a'(f)
    derivative[:, 0] = (response[:, 1] - response[:, 0]) / (freqs[1] - freqs[0])
    derivative[:, -1] = (response[:, -1] - response[:, -2]) / (freqs[-1] - freqs[-2])
    csf = get_csf("mannos_sakrison")(freqs)
    expected = (csf * derivative.abs()).sum(dim=1)
    mu1 = frequency_sensitivity(_curves(response, torch.zeros(3, 4), freqs))
    torch.testing.assert_close(mu1, expected, rtol=1e-10, atol=0)


def test_mu1_converges_to_the_analytic_derivative_of_a_smooth_curve() -> None:
    freqs = torch.logspace(math.log10(0.5), math.log10(16.0), 2000, dtype=torch.float64)
    response = torch.stack([torch.sin(freqs / 2) + torch.log(freqs), torch.exp(-((freqs - 8) ** 2) / 8)])
    derivative = torch.stack(
        [torch.cos(freqs / 2) / 2 + 1 / freqs, -(freqs - 8) / 4 * torch.exp(-((freqs - 8) ** 2) / 8)]
    )
    for csf in ("mannos_sakrison", "barten", "flat"):
        expected = (get_csf(csf)(freqs) * derivative.abs()).sum(dim=1)
        mu1 = frequency_sensitivity(_curves(response, torch.zeros(2, 4), freqs), csf)
        torch.testing.assert_close(mu1, expected, rtol=2e-3, atol=0)


def test_mu1_matches_numpy_gradient_with_coordinates() -> None:
    tuning = _random_curves()
    freqs = tuning.frequencies.numpy()
    slope = np.gradient(tuning.response_f.numpy(), freqs, axis=1)
    expected = (get_csf("mannos_sakrison")(tuning.frequencies).numpy() * np.abs(slope)).sum(axis=1)
    np.testing.assert_allclose(frequency_sensitivity(tuning).numpy(), expected, rtol=1e-12)


def test_mu2_matches_formula() -> None:
    tuning = _random_curves()
    response = tuning.response_theta.numpy()
    expected = ((response - response.max(axis=1, keepdims=True)) ** 2).sum(axis=1)
    np.testing.assert_allclose(orientation_selectivity(tuning).numpy(), expected, rtol=1e-12)
    flat = _curves(torch.zeros(2, 48), torch.full((2, 36), 0.7))
    assert torch.equal(orientation_selectivity(flat), torch.zeros(2, dtype=torch.float64))


def test_pe_is_the_normalised_product_and_shares_sum_to_one() -> None:
    tuning = _random_curves(n_channels=20, seed=1)
    mu1, mu2 = frequency_sensitivity(tuning), orientation_selectivity(tuning)
    pe = perceptual_efficacy(tuning)
    torch.testing.assert_close(pe, mu1 * mu2 / (mu1.sum() * mu2.sum()), rtol=1e-12, atol=0)
    assert float((mu1 / mu1.sum()).sum()) == pytest.approx(1.0, abs=1e-12)
    assert float((mu2 / mu2.sum()).sum()) == pytest.approx(1.0, abs=1e-12)
    assert bool((pe >= 0).all()) and float(pe.sum()) <= 1.0
    # Σ_m PE_m = Σ_m s1_m s2_m ≤ max share: a single channel holding all of both sums gets PE = 1
    single = _curves(torch.stack([tuning.response_f[0], torch.zeros(48, dtype=torch.float64)]),
                     torch.stack([tuning.response_theta[0], torch.zeros(36, dtype=torch.float64)]))
    torch.testing.assert_close(perceptual_efficacy(single), torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(efficacy_terms(tuning).tie_break, mu1 / mu1.sum() + mu2 / mu2.sum(), rtol=1e-12, atol=0)


def test_pe_is_invariant_to_a_common_response_scale() -> None:
    tuning = _random_curves(seed=2)
    scaled = _curves(tuning.response_f * 3.0, tuning.response_theta * 0.2, tuning.frequencies)
    torch.testing.assert_close(perceptual_efficacy(scaled), perceptual_efficacy(tuning), rtol=1e-10, atol=0)


def test_degenerate_channels_give_zero_not_nan() -> None:
    response_f = torch.zeros(4, 48)
    response_theta = torch.zeros(4, 36)
    response_f[1] = 0.5  # constant response: no frequency sensitivity
    response_theta[1] = 0.5
    response_f[2, 10] = float("nan")  # a broken measurement
    response_theta[3] = torch.linspace(0, 1, 36)  # orientation-selective but frequency-blind
    tuning = _curves(response_f, response_theta)
    for values in (frequency_sensitivity(tuning), orientation_selectivity(tuning), perceptual_efficacy(tuning),
                   efficacy_terms(tuning).tie_break):
        assert bool(torch.isfinite(values).all())
    assert torch.equal(perceptual_efficacy(tuning), torch.zeros(4, dtype=torch.float64))
    dead = _curves(torch.zeros(3, 48), torch.zeros(3, 36))
    for name in EFFICACY_SCORES:
        assert torch.equal(compute_score(name, dead, CONFIG), torch.zeros(3, dtype=torch.float64)), name


def test_mu1_of_a_linear_response_is_the_csf_sum() -> None:
    # a(f) = c·f has slope c at every sample (ends included), so μ1 = |c|·Σ_f CSF(f) exactly.
    freqs = CONFIG.frequencies()
    tuning = _curves(torch.stack([0.25 * freqs, -2.0 * freqs]), torch.zeros(2, 4), freqs)
    for csf in ("mannos_sakrison", "barten", "flat"):
        total = get_csf(csf)(freqs).sum()
        torch.testing.assert_close(frequency_sensitivity(tuning, csf), torch.stack([0.25 * total, 2.0 * total]))
    assert float(frequency_sensitivity(tuning, "flat")[0]) == pytest.approx(0.25 * freqs.numel())


def test_magnitude_control() -> None:
    tuning = _random_curves(seed=3)
    expected = torch.cat([tuning.response_f, tuning.response_theta], dim=1).abs().mean(dim=1)
    torch.testing.assert_close(compute_score("magnitude", tuning, CONFIG), expected)
    torch.testing.assert_close(compute_score("mu1", tuning, CONFIG), frequency_sensitivity(tuning))
    torch.testing.assert_close(compute_score("mu2", tuning, CONFIG), orientation_selectivity(tuning))
    torch.testing.assert_close(compute_score("pe", tuning, CONFIG), perceptual_efficacy(tuning))


def test_built_in_scores_are_fixed_and_register_score_is_deprecated() -> None:
    assert tuple(EFFICACY_SCORES) == ("pe", "pe_integral", "mu1", "mu2", "magnitude")
    with pytest.raises(TypeError):
        EFFICACY_SCORES["pe"] = lambda tuning, config: tuning.magnitude()  # type: ignore[index]
    with pytest.raises(ValueError, match="score must be one of"):
        compute_score("no_such_score", _random_curves(), CONFIG)
    with pytest.warns(FutureWarning, match="deprecated"), pytest.raises(ValueError, match="built-in"):
        register_score("pe", lambda tuning, config: tuning.magnitude())
    name = "test_only_negative_magnitude"
    try:
        with pytest.warns(FutureWarning):
            register_score(name, lambda tuning, config: -tuning.magnitude())
        tuning = _random_curves()
        torch.testing.assert_close(compute_score(name, tuning, CONFIG), -tuning.magnitude())
        with pytest.warns(FutureWarning), pytest.raises(ValueError, match="already registered"):
            register_score(name, lambda tuning, config: tuning.magnitude())
        with pytest.warns(FutureWarning):
            register_score(name, lambda tuning, config: tuning.magnitude() * 2, override=True)
        torch.testing.assert_close(compute_score(name, tuning, CONFIG), 2 * tuning.magnitude())
        assert name not in EFFICACY_SCORES
    finally:
        efficacy._REGISTERED.pop(name, None)


def test_integrated_mu1_does_not_depend_on_grid_spacing() -> None:
    """``integrate=True`` approximates ∫ CSF |a'| df: a log grid and a uniform grid agree, the plain sum does not."""
    curve = lambda f: torch.tanh(f - 1.0) - 0.3 * torch.sin(f / 3.0)  # noqa: E731  (steep near 1 cpd)
    log_f = torch.logspace(math.log10(0.5), math.log10(16.0), 400, dtype=torch.float64)
    lin_f = torch.linspace(0.5, 16.0, 400, dtype=torch.float64)
    theta = torch.zeros(1, 4, dtype=torch.float64)
    on_log = _curves(curve(log_f)[None], theta, log_f)
    on_lin = _curves(curve(lin_f)[None], theta, lin_f)
    integral_log = float(frequency_sensitivity(on_log, integrate=True)[0])
    integral_lin = float(frequency_sensitivity(on_lin, integrate=True)[0])
    assert integral_log == pytest.approx(integral_lin, rel=1e-3)
    plain_log, plain_lin = float(frequency_sensitivity(on_log)[0]), float(frequency_sensitivity(on_lin)[0])
    assert abs(plain_log / plain_lin - 1) > 0.1  # the paper's plain sum weights the denser low-frequency samples
