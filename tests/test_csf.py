"""CSF models: published peak frequencies and luminance behaviour, the flat control, lookup by name."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from pe_iqa.analysis.csf import CSF_MODELS, barten, csf_peak_frequency, flat, get_csf, mannos_sakrison


def _barten_reference(u: np.ndarray, luminance: float, field_deg: float) -> np.ndarray:
    """Barten (2004), Proc. SPIE 5294, Eq. (1), written out independently in numpy."""
    num = 5200.0 * np.exp(-0.0016 * u**2 * (1 + 100 / luminance) ** 0.08)
    den = np.sqrt((1 + 144 / field_deg**2 + 0.64 * u**2) * (63 / luminance**0.83 + 1 / (1 - np.exp(-0.02 * u**2))))
    return num / den


def test_mannos_sakrison_peak_near_8_cpd() -> None:
    # Mannos & Sakrison (1974): A(f) = 2.6 (0.0192 + 0.114 f) exp(-(0.114 f)^1.1), peak at about 7.9 cpd.
    peak = csf_peak_frequency(mannos_sakrison)
    assert peak == pytest.approx(7.9, abs=0.1)
    independent = minimize_scalar(
        lambda f: -2.6 * (0.0192 + 0.114 * f) * math.exp(-((0.114 * f) ** 1.1)), bounds=(0.1, 60), method="bounded"
    ).x
    assert peak == pytest.approx(independent, rel=2e-3)
    assert float(mannos_sakrison(torch.tensor(peak))) == pytest.approx(0.98, abs=0.01)


def test_mannos_sakrison_is_band_pass() -> None:
    freqs = torch.tensor([0.0, 0.5, 2.0, 7.9, 20.0, 40.0, 60.0], dtype=torch.float64)
    values = mannos_sakrison(freqs)
    assert float(values[0]) == pytest.approx(2.6 * 0.0192)
    assert bool((torch.diff(values[:4]) > 0).all()) and bool((torch.diff(values[3:]) < 0).all())
    expected = [2.6 * (0.0192 + 0.114 * f) * math.exp(-((0.114 * f) ** 1.1)) for f in freqs.tolist()]
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-12)


def test_barten_matches_published_formula() -> None:
    u = np.array([0.25, 0.5, 1, 2, 3, 5, 8, 16, 30, 50], dtype=np.float64)
    for luminance, field in [(100.0, 10.0), (10.0, 10.0), (1.0, 2.0), (500.0, 40.0)]:
        ours = barten(torch.from_numpy(u), luminance=luminance, field_deg=field).numpy()
        np.testing.assert_allclose(ours, _barten_reference(u, luminance, field), rtol=1e-10)


def test_barten_peak_near_3_cpd_at_100_cd_m2() -> None:
    model = get_csf("barten", luminance=100.0, field_deg=10.0)
    peak = csf_peak_frequency(model)
    assert 2.5 <= peak <= 3.5
    # maximum sensitivity of a few hundred (Barten 2004, Fig. 1: ~600–700 at 100 cd/m²)
    assert 500 <= float(model(torch.tensor([peak], dtype=torch.float64))) <= 800


def test_barten_peak_moves_to_lower_frequency_at_lower_luminance() -> None:
    luminances = [1000.0, 100.0, 10.0, 1.0, 0.1]
    peaks = [csf_peak_frequency(get_csf("barten", luminance=lum)) for lum in luminances]
    maxima = [float(barten(torch.tensor([peak], dtype=torch.float64), luminance=lum))
              for peak, lum in zip(peaks, luminances, strict=True)]
    assert all(a > b for a, b in itertools.pairwise(peaks)), peaks
    assert all(a > b for a, b in itertools.pairwise(maxima)), maxima  # sensitivity falls too
    assert peaks[-1] < 1.5  # scotopic-ish: well below the photopic ~3 cpd


def test_barten_finite_at_zero_and_validates() -> None:
    value = barten(torch.tensor([0.0, 1e-8, 1.0], dtype=torch.float64))
    assert bool(torch.isfinite(value).all())
    assert float(value[0]) == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match="luminance"):
        barten(torch.tensor([1.0]), luminance=0.0)
    with pytest.raises(ValueError, match="field_deg"):
        barten(torch.tensor([1.0]), field_deg=-1.0)


def test_flat_is_constant() -> None:
    freqs = torch.logspace(-2, 2, 50, dtype=torch.float64).reshape(5, 10)
    values = flat(freqs)
    assert values.shape == freqs.shape and values.dtype == freqs.dtype
    assert bool((values == 1.0).all())


@pytest.mark.parametrize("name", sorted(CSF_MODELS))
def test_models_keep_shape_dtype_device(name: str) -> None:
    model = get_csf(name)
    for dtype in (torch.float32, torch.float64):
        freqs = torch.rand(3, 4, dtype=dtype) * 30
        values = model(freqs)
        assert values.shape == (3, 4) and values.dtype == dtype and values.device == freqs.device
        assert bool(torch.isfinite(values).all()) and bool((values >= 0).all())
    with pytest.raises(ValueError, match="freqs"):
        model(torch.tensor([-1.0]))


def test_get_csf_lookup_and_binding() -> None:
    assert get_csf("mannos_sakrison") is mannos_sakrison
    assert set(CSF_MODELS) == {"mannos_sakrison", "barten", "flat"}
    bound = get_csf("barten", luminance=10.0)
    freqs = torch.tensor([1.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(bound(freqs), barten(freqs, luminance=10.0))


@pytest.mark.parametrize("name", ["", "Mannos", "csf", "barten2004"])
def test_get_csf_unknown_name(name: str) -> None:
    with pytest.raises(ValueError, match="csf must be one of"):
        get_csf(name)


def test_csf_peak_frequency_validates_range() -> None:
    with pytest.raises(ValueError):
        csf_peak_frequency(mannos_sakrison, low=0.0)
    with pytest.raises(ValueError):
        csf_peak_frequency(mannos_sakrison, low=10.0, high=5.0)
