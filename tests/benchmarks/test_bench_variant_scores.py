"""Tests of the research efficacy scores (benchmarks.selection.variant_scores): known answers on synthetic tuning
curves, degenerate channels, and explicit registration through get_rankings / PEDistance."""

from __future__ import annotations

import math

import pytest
import torch
from benchmarks.selection import variant_scores as variants

from pe_iqa import PEDistance, get_rankings, load_backbone
from pe_iqa.csf import get_csf
from pe_iqa.efficacy import EFFICACY_SCORES, compute_score, perceptual_efficacy
from pe_iqa.tuning import AnalysisConfig, TuningCurves

CONFIG = AnalysisConfig()
FREQS = CONFIG.frequencies()
THETAS = CONFIG.orientations()
CSF = get_csf("mannos_sakrison")(FREQS)
SMALL = AnalysisConfig(size=64, n_frequencies=6, n_orientations=6, n_phases=1)


def curves(response_f: list[torch.Tensor], response_theta: list[torch.Tensor]) -> TuningCurves:
    """Tuning curves of len(response_f) channels on the default frequency/orientation grid."""
    return TuningCurves(FREQS, torch.stack(response_f).double(), THETAS, torch.stack(response_theta).double())


def bump(centre: float = 0.0, width: float = 0.3) -> torch.Tensor:
    """An orientation tuning curve peaked at ``centre`` (π-periodic von Mises), values in (0, 1]."""
    return torch.exp((torch.cos(2 * (THETAS - centre)) - 1) / width)


def band(peak_cpd: float, octaves: float = 1.0) -> torch.Tensor:
    """A log-Gaussian band-pass frequency response, values in (0, 1]."""
    return torch.exp(-0.5 * (torch.log2(FREQS / peak_cpd) / octaves) ** 2)


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    """The variants are registered explicitly, never by importing a module."""
    variants.register_variant_scores()


def test_variants_are_registered() -> None:
    expected = {"pe_selectivity", "pe_rank", "csf_match", "osi", "csf_response"}
    assert expected <= set(variants.VARIANT_SCORES)
    assert expected <= set(EFFICACY_SCORES)


# ---- csf_match --------------------------------------------------------------------------------------------------

def test_csf_match_is_one_for_a_scaled_shifted_csf_and_minus_one_for_its_inverse() -> None:
    tuning = curves([3.0 * CSF + 0.2, 5.0 - 2.0 * CSF, band(1.0)], [bump(), bump(), bump()])
    score = variants.csf_match(tuning)
    assert score[0] == pytest.approx(1.0, abs=1e-12)
    assert score[1] == pytest.approx(-1.0, abs=1e-12)
    assert -1.0 < float(score[2]) < 1.0


def test_csf_match_prefers_the_band_at_the_csf_peak() -> None:
    tuning = curves([band(8.0), band(1.0)], [bump(), bump()])
    score = variants.csf_match(tuning)
    assert score[0] > 0.5 > score[1]


def test_csf_match_ignores_loudness_and_uses_a_shaped_csf_for_flat() -> None:
    tuning = curves([band(4.0), 1000.0 * band(4.0)], [bump(), bump()])
    score = variants.csf_match(tuning)
    assert score[0] == pytest.approx(float(score[1]), abs=1e-12)
    assert torch.equal(variants.csf_match(tuning, "flat"), variants.csf_match(tuning, "mannos_sakrison"))


# ---- pe_selectivity ---------------------------------------------------------------------------------------------

def test_pe_selectivity_prefers_the_quiet_selective_channel_that_pe_ranks_below_the_loud_one() -> None:
    loud_broad = (100.0 * (1 + 0.1 * band(8.0)), 100.0 * (1 + 0.1 * bump(width=3.0)))
    quiet_sharp = (1 + 0.9 * band(8.0), 0.1 + 0.9 * bump(width=0.2))
    tuning = curves([loud_broad[0], quiet_sharp[0]], [loud_broad[1], quiet_sharp[1]])
    pe = perceptual_efficacy(tuning)
    selectivity = variants.selectivity_efficacy(tuning)
    assert pe[0] > pe[1]
    assert selectivity[1] > selectivity[0]


def test_pe_selectivity_does_not_change_when_a_channel_gets_louder() -> None:
    base = curves([band(8.0), band(2.0), band(4.0)], [bump(0.0), bump(1.0, 1.0), bump(2.0, 0.1)])
    louder = curves([band(8.0) * 50, band(2.0), band(4.0)], [bump(0.0) * 50, bump(1.0, 1.0), bump(2.0, 0.1)])
    torch.testing.assert_close(variants.selectivity_efficacy(louder), variants.selectivity_efficacy(base))
    assert not torch.allclose(perceptual_efficacy(louder), perceptual_efficacy(base))


def test_pe_selectivity_zeroes_dead_and_numerically_dead_channels() -> None:
    tiny = 1e-9  # below DEAD_FRACTION of the loudest channel: float noise, not selectivity
    tuning = curves([band(8.0), torch.zeros_like(FREQS), tiny * band(8.0)],
                    [bump(), torch.zeros_like(THETAS), tiny * bump()])
    score = variants.selectivity_efficacy(tuning)
    assert float(score[0]) > 0
    assert float(score[1]) == 0.0 and float(score[2]) == 0.0


# ---- pe_rank ----------------------------------------------------------------------------------------------------

def test_pe_rank_gives_one_to_the_channel_best_at_both_factors_and_zero_to_orientation_blind() -> None:
    flat_theta = torch.ones_like(THETAS)
    tuning = curves([3 * band(8.0), band(8.0), 2 * band(8.0)], [3 * bump(), bump(), flat_theta])
    score = variants.rank_efficacy(tuning)
    assert float(score[0]) == pytest.approx(1.0)
    assert float(score[2]) == 0.0
    assert 0.0 < float(score[1]) < 1.0


def test_pe_rank_ignores_how_far_ahead_a_channel_is_while_pe_does_not() -> None:
    freq = [band(8.0), band(6.0), band(3.0)]
    base = curves(freq, [2 * bump(), bump(), 0.5 * bump()])
    extreme = curves(freq, [200 * bump(), bump(), 0.5 * bump()])  # same μ2 order, far heavier tail
    torch.testing.assert_close(variants.rank_efficacy(extreme), variants.rank_efficacy(base))
    assert not torch.allclose(perceptual_efficacy(extreme), perceptual_efficacy(base))


def test_pe_rank_shares_ranks_between_tied_channels() -> None:
    tuning = curves([band(8.0)] * 3, [bump()] * 3)
    score = variants.rank_efficacy(tuning)
    assert torch.all(score == score[0]) and float(score[0]) == pytest.approx((2 / 3) ** 2)


# ---- osi --------------------------------------------------------------------------------------------------------

def test_osi_known_values() -> None:
    delta = torch.zeros_like(THETAS)
    delta[5] = 2.0
    cos_tuned = 1 + torch.cos(2 * (THETAS - 0.7))  # |Σ r e^{2iθ}| / Σ r = (T/2) / T
    tuning = curves([band(8.0)] * 4, [torch.ones_like(THETAS), delta, cos_tuned, -bump()])
    score = variants.orientation_selectivity_index(tuning)
    assert float(score[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(score[1]) == pytest.approx(1.0)
    assert float(score[2]) == pytest.approx(0.5)
    assert float(score[3]) == 0.0  # nothing positive to rectify


def test_osi_is_scale_invariant() -> None:
    tuning = curves([band(8.0)] * 2, [bump(0.4, 0.5), 1e3 * bump(0.4, 0.5)])
    score = variants.orientation_selectivity_index(tuning)
    assert float(score[0]) == pytest.approx(float(score[1]))


# ---- csf_response -----------------------------------------------------------------------------------------------

def test_csf_response_of_a_flat_response_is_its_level_and_rewards_the_csf_band() -> None:
    tuning = curves([torch.full_like(FREQS, 2.5), band(8.0), band(0.7)], [bump()] * 3)
    score = variants.csf_response(tuning)
    assert float(score[0]) == pytest.approx(2.5)
    assert score[1] > score[2]
    assert float(variants.csf_response(tuning, "flat")[0]) == pytest.approx(2.5)


# ---- degenerate channels, all scores -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(variants.VARIANT_SCORES))
def test_scores_are_finite_and_neutral_on_dead_and_constant_channels(name: str) -> None:
    tuning = curves(
        [band(8.0), torch.zeros_like(FREQS), torch.full_like(FREQS, 3.0), torch.full_like(FREQS, math.nan)],
        [bump(), torch.zeros_like(THETAS), torch.full_like(THETAS, 3.0), torch.full_like(THETAS, math.nan)],
    )
    score = compute_score(name, tuning, CONFIG)
    assert score.shape == (4,) and score.dtype == torch.float64
    assert bool(torch.isfinite(score).all())
    assert float(score[1]) == 0.0  # dead
    if name != "csf_response":  # the constant channel is loud, just not tuned
        assert float(score[2]) == 0.0
    assert float(score[0]) > 0.0


@pytest.mark.parametrize("name", sorted(variants.VARIANT_SCORES))
def test_scores_handle_a_layer_of_dead_channels(name: str) -> None:
    tuning = curves([torch.zeros_like(FREQS)] * 3, [torch.zeros_like(THETAS)] * 3)
    assert torch.equal(compute_score(name, tuning, CONFIG), torch.zeros(3, dtype=torch.float64))


def test_score_functions_reject_a_non_tuning_argument() -> None:
    with pytest.raises(TypeError, match="TuningCurves"):
        variants.csf_match(torch.zeros(3, 4))


# ---- registration, import order ---------------------------------------------------------------------------------

def test_registration_is_idempotent_and_keeps_user_scores() -> None:
    before = dict(EFFICACY_SCORES)
    assert variants.register_variant_scores() == ()  # already registered by the fixture
    assert EFFICACY_SCORES == before


@pytest.fixture(scope="module")
def random_rankings(tmp_path_factory: pytest.TempPathFactory) -> dict:
    cache = tmp_path_factory.mktemp("variants_cache")
    return {"cache": cache, "rankings": get_rankings("alexnet", ["relu1"], weights="random", config=SMALL,
                                                    cache_dir=cache)}


@pytest.mark.parametrize("name", sorted(variants.VARIANT_SCORES))
@pytest.mark.slow  # 2.4 s measured (full run, 2 shared cores)
def test_get_rankings_by_variant_score(random_rankings: dict, name: str) -> None:
    ranking = get_rankings("alexnet", ["relu1"], weights="random", config=SMALL, score=name,
                           cache_dir=random_rankings["cache"])["relu1"]
    direct = variants.VARIANT_SCORES[name](ranking.tuning, SMALL)
    torch.testing.assert_close(ranking.score, direct.double())
    top = ranking.select("high", 10)
    assert top.numel() >= round(64 * 0.1)
    assert float(ranking.score[top].min()) >= float(ranking.score[ranking.order()[top.numel():]].max())


@pytest.mark.parametrize("name", ["pe_selectivity", "csf_match"])
@pytest.mark.slow  # 3.4 s measured (full run, 2 shared cores)
def test_pedistance_by_variant_score_with_a_deeper_shared_backbone(random_rankings: dict, name: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PE_IQA_CACHE", str(random_rankings["cache"]))
    deep = load_backbone("alexnet", ["relu1", "relu2"], weights="random")  # taps deeper than compared
    shared = PEDistance(backbone=deep, layers=["relu1"], score=name, top_percent=25, config=SMALL)
    own = PEDistance(backbone="alexnet", layers=["relu1"], weights="random", score=name, top_percent=25, config=SMALL)
    expected = get_rankings("alexnet", ["relu1"], weights="random", config=SMALL, score=name,
                            cache_dir=random_rankings["cache"])["relu1"].select("high", 25)
    assert torch.equal(shared.selected_channels()["relu1"], expected)
    assert torch.equal(own.selected_channels()["relu1"], expected)
    x, y = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)).unbind(0)
    x, y = x[None], y[None]
    d_shared, d_own = shared(x, y), own(x, y)
    assert torch.isfinite(d_shared) and float(d_shared) > 0
    torch.testing.assert_close(d_shared, d_own)
