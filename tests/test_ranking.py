"""Channel rankings: a hand-built Gabor layer ranks as the PE analysis intends; H-x/L-x/F sizes; tie handling."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from pe_iqa.analysis.ranking import SUBSETS, ChannelRanking
from pe_iqa.analysis.tuning import AnalysisConfig, TuningCurves, measure_tuning
from pe_iqa.backbones import Backbone, BackboneSpec

# ------------------------------------------------------------------------------------- hand-built layer

KERNEL = 33
PPD = 64.0
# 128-px stimuli keep the measurement to about a second; the frequency range and the CSF are the defaults.
GABOR_CONFIG = AnalysisConfig(size=128, n_frequencies=32, n_orientations=18, n_phases=2)


def _kernel_grid() -> tuple[torch.Tensor, torch.Tensor]:
    coords = torch.arange(KERNEL, dtype=torch.float64) - (KERNEL - 1) / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    return xx, yy


def _gabor(cpd: float, theta: float, sigma_across: float, sigma_along: float) -> torch.Tensor:
    """Zero-mean, unit-norm cosine Gabor; wave vector at ``theta`` (x right, y down), envelope sigmas in px."""
    xx, yy = _kernel_grid()
    across = xx * math.cos(theta) + yy * math.sin(theta)
    along = -xx * math.sin(theta) + yy * math.cos(theta)
    envelope = torch.exp(-0.5 * (across / sigma_across) ** 2 - 0.5 * (along / sigma_along) ** 2)
    kernel = envelope * torch.cos(2 * math.pi * cpd / PPD * across)
    kernel = kernel - envelope * (kernel.sum() / envelope.sum())
    return kernel / kernel.norm()


def _difference_of_gaussians(sigma_centre: float, sigma_surround: float) -> torch.Tensor:
    """Isotropic zero-mean centre-surround filter, unit norm."""
    xx, yy = _kernel_grid()
    r2 = xx**2 + yy**2

    def gauss(s: float) -> torch.Tensor:
        return torch.exp(-0.5 * r2 / s**2) / (2 * math.pi * s**2)

    kernel = gauss(sigma_centre) - gauss(sigma_surround)
    kernel = kernel - kernel.mean()
    return kernel / kernel.norm()


def _blob(sigma: float) -> torch.Tensor:
    """Small isotropic Gaussian (low-pass, broadband up to the grating range), unit norm."""
    xx, yy = _kernel_grid()
    kernel = torch.exp(-0.5 * (xx**2 + yy**2) / sigma**2)
    return kernel / kernel.norm()


# Dead channels and isotropic ones first: an order by channel index would put them on top.
FILTERS: dict[str, torch.Tensor] = {
    "dead_a": torch.zeros(KERNEL, KERNEL),
    "dog": _difference_of_gaussians(1.5, 3.0),
    "blob": _blob(1.5),
    "low_1cpd": _gabor(1.0, 0.0, 16.0, 16.0),
    "high_28cpd": _gabor(28.0, 0.0, 4.0, 8.0),
    "dead_b": torch.zeros(KERNEL, KERNEL),
    "peak_broad_orientation": _gabor(7.9, math.pi / 4, 6.0, 2.0),  # short bars: wide orientation tuning
    "small_edge": _gabor(4.0, 0.5, 1.2, 1.2),  # tiny envelope: broadband in frequency and orientation
    "peak_narrow_0": _gabor(7.9, 0.0, 6.0, 12.0),  # long bars at the CSF peak: narrow orientation tuning
    "peak_narrow_60": _gabor(7.9, math.pi / 3, 6.0, 12.0),
    "peak_narrow_120": _gabor(7.9, 2 * math.pi / 3, 6.0, 12.0),
}
NAMES = list(FILTERS)
INDEX = {name: i for i, name in enumerate(NAMES)}
PEAK_NARROW = {"peak_narrow_0", "peak_narrow_60", "peak_narrow_120"}
DEAD = {"dead_a", "dead_b"}


class _GaborLayer(nn.Module):
    """Conv2d(3, M) holding achromatic filters, then ReLU; returns ``{"gabor": (N, M, H', W')}``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, len(FILTERS), KERNEL, stride=2)
        with torch.no_grad():
            weights = torch.stack(list(FILTERS.values())).float()
            self.conv.weight.copy_(weights[:, None].expand(-1, 3, -1, -1) / 3)  # same filter on R, G, B
            self.conv.bias.zero_()
            for name in DEAD:
                self.conv.bias[INDEX[name]] = -1.0  # zero weights, negative bias: silent for every input
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"gabor": self.relu(self.conv(x))}


def _gabor_backbone() -> Backbone:
    spec = BackboneSpec("handmade_gabor", "handmade", {"gabor": "conv"}, ("gabor",), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    return Backbone(spec, ("gabor",), _GaborLayer(), weights="handmade", weights_id="handmade00000001")


@pytest.fixture(scope="module")
def gabor_ranking() -> ChannelRanking:
    tuning = measure_tuning(_gabor_backbone(), GABOR_CONFIG, batch_size=64)["gabor"]
    return ChannelRanking("handmade_gabor", "handmade00000001", "gabor", GABOR_CONFIG, tuning)


def _names(indices: torch.Tensor) -> set[str]:
    return {NAMES[i] for i in indices.tolist()}


def _percent_for(k: int, n: int) -> float:
    return 100.0 * k / n


@pytest.mark.slow  # 1.4 s measured (full run, 2 shared cores)
def test_gabor_layer_tuning_peaks_where_built(gabor_ranking: ChannelRanking) -> None:
    tuning = gabor_ranking.tuning
    assert tuning.response_f.shape == (len(NAMES), GABOR_CONFIG.n_frequencies)
    freqs = tuning.frequencies
    for name in PEAK_NARROW:
        preferred = float(freqs[int(torch.argmax(tuning.response_f[INDEX[name]]))])
        assert 5.0 < preferred < 11.0, (name, preferred)  # tuned near the 7.9-cpd CSF peak
    # orientation preference: the oriented gratings' θ is the wave-vector direction, like the filters' θ
    thetas = tuning.orientations
    for name, built in [("peak_narrow_0", 0.0), ("peak_narrow_60", math.pi / 3), ("peak_narrow_120", 2 * math.pi / 3)]:
        preferred = float(thetas[int(torch.argmax(tuning.response_theta[INDEX[name]]))])
        difference = abs((preferred - built + math.pi / 2) % math.pi - math.pi / 2)
        assert difference <= math.radians(10.0 + 1e-6), (name, math.degrees(preferred))


def test_gabor_layer_ranking_top_and_bottom(gabor_ranking: ChannelRanking) -> None:
    n = len(NAMES)
    order = [NAMES[i] for i in gabor_ranking.order().tolist()]
    assert set(order[:3]) == PEAK_NARROW, order
    assert _names(gabor_ranking.select("high", _percent_for(3, n))) == PEAK_NARROW
    # isotropic, broadband and dead channels make up the bottom, the dead ones last
    assert set(order[-2:]) == DEAD, order
    assert _names(gabor_ranking.select("low", _percent_for(5, n))) == DEAD | {"dog", "blob", "high_28cpd"}
    pe = {name: float(gabor_ranking.pe[INDEX[name]]) for name in NAMES}
    weakest_peak = min(pe[name] for name in PEAK_NARROW)
    for name in ("dog", "blob", "low_1cpd", "high_28cpd", "small_edge"):
        assert pe[name] < weakest_peak / 10, (name, pe[name], weakest_peak)
    assert pe["peak_broad_orientation"] < weakest_peak / 2  # same frequency, wider orientation tuning: lower PE


def test_dead_channels_score_exactly_zero(gabor_ranking: ChannelRanking) -> None:
    for values in (gabor_ranking.pe, gabor_ranking.mu1, gabor_ranking.mu2, gabor_ranking.score,
                   gabor_ranking.tie_break, gabor_ranking.magnitude):
        assert bool(torch.isfinite(values).all())
    for name in DEAD:
        index = INDEX[name]
        assert float(gabor_ranking.pe[index]) == 0.0
        assert float(gabor_ranking.mu1[index]) == 0.0 and float(gabor_ranking.mu2[index]) == 0.0
        assert bool((gabor_ranking.tuning.response_f[index] == 0).all())


def test_dead_channels_tied_on_all_keys_are_both_selected(gabor_ranking: ChannelRanking) -> None:
    n = len(NAMES)
    # L-x with k = 1: the two dead channels cannot be told apart, so both are in (never one by index)
    assert _names(gabor_ranking.select("low", _percent_for(1, n))) == DEAD
    assert _names(gabor_ranking.select("low", _percent_for(2, n))) == DEAD
    assert len(gabor_ranking.select("low", _percent_for(3, n))) == 3


def test_scores_rank_the_same_measurement(gabor_ranking: ChannelRanking) -> None:
    by_mu1 = dataclasses.replace(gabor_ranking, score_name="mu1")
    assert by_mu1.tuning is gabor_ranking.tuning and by_mu1.score_name == "mu1"
    torch.testing.assert_close(by_mu1.score, gabor_ranking.mu1)
    assert NAMES[int(by_mu1.order()[0])] == NAMES[int(torch.argmax(gabor_ranking.mu1))]
    by_magnitude = dataclasses.replace(gabor_ranking, score_name="magnitude")
    assert NAMES[int(by_magnitude.order()[0])] == "blob"  # a low-pass blob passes the mean grey level: loudest


# ------------------------------------------------------------------------------------- synthetic curves


def _ranking(response_f: torch.Tensor, response_theta: torch.Tensor, score: str = "pe") -> ChannelRanking:
    config = AnalysisConfig(n_frequencies=response_f.shape[1], n_orientations=response_theta.shape[1])
    tuning = TuningCurves(config.frequencies(), response_f.double(), config.orientations(), response_theta.double())
    return ChannelRanking("synthetic", "0" * 16, "layer", config, tuning, score)


def _random_ranking(n_channels: int, seed: int = 0) -> ChannelRanking:
    generator = torch.Generator().manual_seed(seed)
    return _ranking(torch.rand(n_channels, 8, generator=generator), torch.rand(n_channels, 6, generator=generator))


@pytest.mark.parametrize(
    "n_channels, percent, k",
    [(64, 10, 6), (64, 5, 3), (192, 10, 19), (384, 10, 38), (256, 25, 64), (10, 1, 1), (10, 0.01, 1), (10, 100, 10),
     (7, 50, 4), (13, 30, 4)],
)
def test_subset_sizes(n_channels: int, percent: float, k: int) -> None:
    # k = max(1, round(M·x/100)) (random curves: no ties)
    assert k == max(1, round(n_channels * percent / 100))
    ranking = _random_ranking(n_channels)
    high, low = ranking.select("high", percent), ranking.select("low", percent)
    assert len(high) == k and len(low) == k
    order = ranking.order()
    assert set(high.tolist()) == set(order[:k].tolist())
    assert set(low.tolist()) == set(order[-k:].tolist())
    assert torch.equal(high, torch.sort(high).values) and high.dtype == torch.int64
    assert torch.equal(ranking.select("all"), torch.arange(n_channels))
    if k < n_channels / 2:
        assert not set(high.tolist()) & set(low.tolist())


def test_order_is_by_score_descending() -> None:
    ranking = _random_ranking(50, seed=4)
    order = ranking.order()
    assert sorted(order.tolist()) == list(range(50))
    scores = ranking.score[order]
    assert bool((scores[:-1] >= scores[1:]).all())
    assert float(ranking.pe[order[0]]) == float(ranking.pe.max())


def test_bad_subset_arguments() -> None:
    ranking = _random_ranking(10)
    assert SUBSETS == ("high", "low", "all")
    with pytest.raises(ValueError, match="subset"):
        ranking.select("top", 10)
    for percent in (0, -5, 100.5, True, "10", None):
        with pytest.raises(ValueError, match="percent"):
            ranking.select("high", percent)
    assert len(ranking.select("high", np.float32(30))) == 3  # NumPy numbers are numbers
    assert len(ranking.select("all", 100)) == 10


def _equal_pe_pair(swap: bool) -> tuple[ChannelRanking, int, int]:
    """Channels A and B with exactly equal PE but different μ1 share (and tie-break key).

    B = A with a(f) scaled by 4 and a(θ) by 1/2: μ1 ×4 and μ2 ×1/4, both exact in floating point (powers of
    two), so PE_B == PE_A bit for bit while μ1_B/Σμ1 + μ2_B/Σμ2 differs.
    """
    generator = torch.Generator().manual_seed(7)
    base_f = torch.rand(6, 8, generator=generator, dtype=torch.float64)
    base_theta = torch.rand(6, 6, generator=generator, dtype=torch.float64)
    a_f, a_theta = base_f[0].clone(), base_theta[0].clone()
    base_f[1], base_theta[1] = a_f * 4.0, a_theta / 2.0
    if swap:
        base_f[[0, 1]], base_theta[[0, 1]] = base_f[[1, 0]], base_theta[[1, 0]]
    a, b = (1, 0) if swap else (0, 1)
    return _ranking(base_f, base_theta), a, b


@pytest.mark.parametrize("swap", [False, True])
def test_equal_pe_is_ordered_by_the_tie_break_not_by_index(swap: bool) -> None:
    ranking, a, b = _equal_pe_pair(swap)
    assert float(ranking.pe[a]) == float(ranking.pe[b])  # exactly tied on PE
    assert float(ranking.mu1[a]) != float(ranking.mu1[b])
    assert float(ranking.tie_break[a]) != float(ranking.tie_break[b])
    winner, loser = (a, b) if float(ranking.tie_break[a]) > float(ranking.tie_break[b]) else (b, a)
    order = ranking.order().tolist()
    assert order.index(winner) == order.index(loser) - 1  # adjacent: nothing else has that PE
    # at the H-x boundary only the tie-break winner is selected
    k = order.index(winner) + 1
    high = ranking.select("high", 100.0 * k / ranking.n_channels).tolist()
    assert len(high) == k and winner in high and loser not in high


def test_magnitude_orders_channels_tied_on_pe_and_tie_break() -> None:
    # Constant responses at different levels: μ1 = μ2 = 0 → PE and tie-break both 0; magnitude separates them.
    response_f = torch.tensor([[0.2] * 8, [0.9] * 8, [0.5] * 8, [0.0] * 8])
    response_theta = torch.tensor([[0.2] * 6, [0.9] * 6, [0.5] * 6, [0.0] * 6])
    ranking = _ranking(response_f, response_theta)
    assert torch.equal(ranking.pe, torch.zeros(4, dtype=torch.float64))
    assert ranking.order().tolist() == [1, 2, 0, 3]
    assert ranking.select("high", 25).tolist() == [1]
    assert ranking.select("low", 25).tolist() == [3]


@pytest.mark.parametrize("subset", ["high", "low"])
def test_identical_channels_at_the_boundary_are_all_included(subset: str) -> None:
    generator = torch.Generator().manual_seed(11)
    response_f = torch.rand(10, 8, generator=generator)
    response_theta = torch.rand(10, 6, generator=generator)
    probe = _ranking(response_f, response_theta)
    # copy the channel ranked 3rd (from the top or the bottom) onto two other channels
    order = probe.order() if subset == "high" else probe.order().flip(0)
    third = int(order[2])
    clones = [int(order[6]), int(order[8])]
    response_f[clones], response_theta[clones] = response_f[third].clone(), response_theta[third].clone()
    ranking = _ranking(response_f, response_theta)
    ranked = ranking.order() if subset == "high" else ranking.order().flip(0)
    group = {third, *clones}
    assert set(ranked[:5].tolist()) >= group  # the three copies sit together
    k_boundary = max(ranked.tolist().index(c) for c in group) + 1
    first = min(ranked.tolist().index(c) for c in group)
    # a subset whose last regular member is the first copy must include all three copies
    selected = set(ranking.select(subset, 100.0 * (first + 1) / 10).tolist())
    assert group <= selected
    assert len(selected) == k_boundary


def test_table_lists_top_and_bottom(gabor_ranking: ChannelRanking) -> None:
    rows = gabor_ranking.table(n=2)
    assert [row["where"] for row in rows] == ["top", "top", "bottom", "bottom"]
    order = gabor_ranking.order().tolist()
    assert [row["channel"] for row in rows] == order[:2] + order[-2:]
    assert rows[0]["rank"] == 1 and rows[-1]["rank"] == len(NAMES)
    assert rows[0]["pe"] == pytest.approx(float(gabor_ranking.pe[order[0]]))
