"""Tests of the chromatic measurement (pe_iqa.chromatic_tuning): isoluminant stimuli, the achromatic share,
its cache, and the achromatic / pe_achromatic scores through get_rankings and PEDistance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from benchmarks.selection import chromatic as chroma

from pe_iqa import get_rankings, load_backbone
from pe_iqa.analysis.efficacy import EFFICACY_SCORES, perceptual_efficacy
from pe_iqa.analysis.stimuli import ViewingCondition
from pe_iqa.analysis.tuning import AnalysisConfig
from pe_iqa.backbones import Backbone

SMALL = AnalysisConfig(size=64, n_frequencies=6, n_orientations=6, n_phases=1)
SMALL_CHROMA = chroma.ChromaticConfig(n_orientations=4, n_phases=2)
WEIGHTS = torch.tensor(chroma.LUMINANCE_WEIGHTS, dtype=torch.float64).view(1, 3, 1, 1)


def test_colour_directions_are_isoluminant_and_use_the_same_gamut() -> None:
    for name, direction in chroma.COLOUR_DIRECTIONS.items():
        vector = torch.tensor(direction, dtype=torch.float64)
        assert float(vector.abs().max()) == pytest.approx(1.0)
        luminance = float((vector * WEIGHTS.flatten()).sum())
        assert luminance == pytest.approx(1.0 if name == "achromatic" else 0.0, abs=1e-12)


def test_srgb_transfer_round_trips() -> None:
    values = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(chroma.linear_to_srgb(chroma.srgb_to_linear(values)), values)


@pytest.mark.parametrize("direction", sorted(chroma.COLOUR_DIRECTIONS))
def test_chromatic_gratings_modulate_luminance_only_when_achromatic(direction: str) -> None:
    images = chroma.chromatic_gratings(8.0, torch.tensor([0.0, 1.0]), direction, ViewingCondition(64.0, 32),
                                       n_phases=3, dtype=torch.float64)
    assert images.shape == (6, 3, 32, 32)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    luminance = (chroma.srgb_to_linear(images) * WEIGHTS).sum(dim=1)
    spread = float(luminance.max() - luminance.min())
    if direction == "achromatic":
        assert spread > 0.1
        assert torch.allclose(images[:, 0], images[:, 1]) and torch.allclose(images[:, 1], images[:, 2])
    else:
        assert spread < 1e-9
        assert float((images[:, 0] - images[:, 2]).abs().max()) > 0.05  # but the colour varies


def test_chromatic_gratings_reject_bad_arguments() -> None:
    viewing = ViewingCondition(64.0, 32)
    with pytest.raises(ValueError, match="direction"):
        chroma.chromatic_gratings(8.0, torch.zeros(1), "purple", viewing)
    with pytest.raises(ValueError, match="contrast"):
        chroma.chromatic_gratings(8.0, torch.zeros(1), "red_green", viewing, contrast=0.0)
    with pytest.raises(ValueError, match="n_phases"):
        chroma.ChromaticConfig(n_phases=0)


def _responses(modulation: list[list[float]], baseline: float = 0.3) -> chroma.ChromaticResponses:
    """Channels whose response at one of 3 orientations rises by the given amount per direction."""
    amounts = torch.tensor(modulation, dtype=torch.float64)  # (M, D)
    responses = torch.full((amounts.shape[0], 3, 3), baseline, dtype=torch.float64)
    responses[:, :, 1] += amounts
    return chroma.ChromaticResponses(tuple(chroma.COLOUR_DIRECTIONS), torch.tensor([0.0, 1.0, 2.0]),
                                     responses, torch.full((amounts.shape[0],), baseline, dtype=torch.float64))


def test_achromatic_share_known_values() -> None:
    share = chroma.achromatic_share(_responses([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 3.0, 1.0], [0.0, 0.0, 0.0],
                                                [-1.0, 0.5, 0.5]]))
    torch.testing.assert_close(share, torch.tensor([1.0, 1 / 3, 0.0, 0.0, 0.5], dtype=torch.float64))


def test_achromatic_share_needs_the_achromatic_direction_and_consistent_shapes() -> None:
    with pytest.raises(ValueError, match="achromatic"):
        chroma.achromatic_share(chroma.ChromaticResponses(("red_green",), torch.zeros(2), torch.zeros(3, 1, 2),
                                                          torch.zeros(3)))
    with pytest.raises(ValueError, match="inconsistent"):
        chroma.ChromaticResponses(("achromatic",), torch.zeros(2), torch.zeros(3, 1, 2), torch.zeros(4))


def test_chromatic_scores_are_not_registered_in_the_core() -> None:
    # they need chromatic responses, not only tuning curves: ranked explicitly by chromatic_rankings
    assert not {"achromatic", "pe_achromatic"} & set(EFFICACY_SCORES)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chroma_cache")


@pytest.fixture(scope="module")
def net() -> Backbone:
    return load_backbone("alexnet", ["relu1"], weights="random")


@pytest.fixture(scope="module")
def prepared(net: Backbone, cache: Path) -> dict[str, chroma.ChromaticResponses]:
    return chroma.chromatic_responses(net, config=SMALL, chroma=SMALL_CHROMA, cache_dir=cache)


@pytest.mark.slow  # 1.5 s measured (quick-tier run, 2 shared cores)
def test_responses_are_measured_and_cached(prepared: dict, net: Backbone, cache: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    responses = prepared["relu1"]
    assert responses.responses.shape == (64, 3, 4) and responses.baseline.shape == (64,)
    assert bool(torch.isfinite(responses.responses).all())
    files = sorted(cache.glob("alexnet__*__relu1__chroma2-*.json"))
    assert len(files) == 1

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again despite a cache entry")

    monkeypatch.setattr(chroma, "measure_chromatic", no_measuring)
    again = chroma.chromatic_responses(net, config=SMALL, chroma=SMALL_CHROMA, cache_dir=cache)
    torch.testing.assert_close(again["relu1"].responses, responses.responses)
    torch.testing.assert_close(again["relu1"].baseline, responses.baseline)


def test_corrupt_chromatic_cache_is_rebuilt_with_a_warning(prepared: dict, net: Backbone, cache: Path) -> None:
    (path,) = cache.glob("alexnet__*__relu1__chroma2-*.json")
    document = json.loads(path.read_text())
    document["payload"]["torch_version"] = "edited"
    path.write_text(json.dumps(document))
    with pytest.warns(RuntimeWarning, match="untrusted chromatic cache"):
        rebuilt = chroma.chromatic_responses(net, config=SMALL, chroma=SMALL_CHROMA, cache_dir=cache)
    torch.testing.assert_close(rebuilt["relu1"].responses, prepared["relu1"].responses)
    json.loads(path.read_text())  # rewritten, valid again


def test_rankings_by_chromatic_scores(prepared: dict, net: Backbone, cache: Path) -> None:
    rankings = get_rankings(net, config=SMALL, cache_dir=cache)
    by_score = chroma.chromatic_rankings(rankings, prepared)
    share = chroma.achromatic_share(prepared["relu1"])
    achromatic = by_score["achromatic"]["relu1"]
    torch.testing.assert_close(achromatic.score, share)
    assert achromatic.score_name == "achromatic"
    combined = by_score["pe_achromatic"]["relu1"]
    torch.testing.assert_close(combined.score, perceptual_efficacy(achromatic.tuning) * share)
    # the ranking orders by the explicit scores, ties broken as every ranking
    top = combined.select("high", 25)
    dropped = torch.ones(64, dtype=torch.bool)
    dropped[top] = False
    assert combined.score[top].min() >= combined.score[dropped].max()
    with pytest.raises(ValueError, match="channels"):
        chroma.chromatic_rankings(rankings, {"relu1": chroma.ChromaticResponses(
            ("achromatic", "red_green", "blue_yellow"), torch.zeros(4), torch.zeros(3, 3, 4), torch.zeros(3))})
