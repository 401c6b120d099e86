"""Figures of the PE analysis: channel choice, filter chromaticity, first-layer filters, PNG output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pe_iqa import get_rankings, load_backbone
from pe_iqa.plotting import filter_chromaticity, input_filters, plot_layer, save_figure, top_bottom_channels

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("alexnet", ["relu1", "relu2"])  # ImageNet weights: shipped rankings, nothing measured


@pytest.fixture(scope="module")
def rankings(backbone):
    return get_rankings(backbone, ["relu1", "relu2"])


def test_filter_chromaticity_zero_for_grey_positive_for_colour() -> None:
    grey = torch.randn(2, 1, 5, 5).expand(2, 3, 5, 5)
    assert torch.allclose(filter_chromaticity(grey), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    red_only = torch.zeros(1, 3, 5, 5)
    red_only[0, 0] = torch.randn(5, 5)
    opponent = torch.randn(1, 1, 5, 5) * torch.tensor([1.0, -1.0, 0.0]).view(1, 3, 1, 1)
    colour = filter_chromaticity(torch.cat([red_only, opponent]))
    assert (colour > 0.3).all()
    mixed = grey[:1] + 0.1 * opponent
    assert 0 < float(filter_chromaticity(mixed)) < float(colour[1])
    assert torch.allclose(filter_chromaticity(7.5 * mixed), filter_chromaticity(mixed))  # scale-invariant
    assert float(filter_chromaticity(torch.zeros(1, 3, 3, 3))) == 0.0
    with pytest.raises(ValueError, match=r"\(K, 3, h, w\)"):
        filter_chromaticity(torch.zeros(2, 4, 3, 3))


@pytest.mark.slow  # 4.4 s measured (full run, 2 shared cores)
def test_top_bottom_channels_follow_the_ranking(rankings) -> None:
    ranking = rankings["relu1"]
    order = ranking.order().tolist()
    top, bottom = top_bottom_channels(ranking, 3)
    assert top == order[:3] and bottom == order[::-1][:3]
    assert float(ranking.score[top[0]]) >= float(ranking.score[bottom[0]])
    wide_top, wide_bottom = top_bottom_channels(ranking, 1000)
    assert len(wide_top) == len(wide_bottom) == ranking.n_channels // 2
    assert not set(wide_top) & set(wide_bottom)
    with pytest.raises(ValueError, match="n must be"):
        top_bottom_channels(ranking, 0)


def test_input_filters_only_for_the_first_rgb_layer(backbone) -> None:
    filters = input_filters(backbone, "relu1")
    conv = backbone.extractor.get_submodule("features.0")
    assert filters.shape == (64, 3, 11, 11)
    assert torch.allclose(filters * backbone.std.view(1, 3, 1, 1), conv.weight, atol=1e-6)
    assert input_filters(backbone, "relu2") is None


@pytest.mark.slow  # 8.6 s measured (full run, 2 shared cores)
def test_plot_layer_writes_png_with_and_without_filters(tmp_path: Path, backbone, rankings) -> None:
    with_filters = plot_layer(rankings["relu1"], n=3, filters=input_filters(backbone, "relu1"))
    without = plot_layer(rankings["relu2"], n=2)
    assert len(with_filters.axes) > len(without.axes)  # the filter row adds 2n image axes
    for figure, name in ((with_filters, "a/relu1.png"), (without, "relu2.png")):
        path = save_figure(figure, tmp_path / name, dpi=40)
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def test_plot_layer_rejects_filters_of_another_layer(backbone, rankings) -> None:
    with pytest.raises(ValueError, match="filters must have shape"):
        plot_layer(rankings["relu2"], filters=input_filters(backbone, "relu1"))


@pytest.mark.slow  # 0.6 s measured (full run, 2 shared cores)
def test_pe_histogram_counts_every_positive_channel(rankings) -> None:
    # float32 log-spaced edges used to miss the extremes (60 of 62 relu1 channels drawn, the top one lost)
    from matplotlib.patches import Rectangle

    from pe_iqa.plotting import pe_histogram_edges

    values = torch.tensor([0.0, 0.0, 1.7e-16, 2.3e-9, 4.1e-5, 1e-4, 3.8e-3, 3.8e-3, 0.0123456789])
    edges = pe_histogram_edges(values)
    assert edges[0] == float(values[values > 0].min()) and edges[-1] == float(values.max())
    counts, _ = np.histogram(values[values > 0].numpy(), bins=edges)
    assert counts.sum() == int((values > 0).sum())
    ranking = rankings["relu1"]  # the real relu1 ranking: 62 of its 64 channels have PE > 0
    figure = plot_layer(ranking, n=2)
    histogram = figure.axes[2]
    drawn = sum(p.get_height() for p in histogram.patches if isinstance(p, Rectangle))
    assert drawn == int((ranking.pe > 0).sum()) == 62
    assert "PE = 0: 2 of 64 channels" in " ".join(t.get_text() for t in histogram.texts)
