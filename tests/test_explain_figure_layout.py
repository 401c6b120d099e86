"""The explanation figure's colour bars stay beside their images, clear of the titles (issue 20.8)."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from pe_iqa import PEDistance
from pe_iqa.explain import explain_pair
from pe_iqa.explain_figures import explanation_figure


def _drawn_figure(size: tuple[int, int], channels: int, seed: int, noise: float):
    """The explanation figure of a random pair (pe_alex), drawn: ``(figure, renderer)``."""
    gen = torch.Generator().manual_seed(seed)
    reference = torch.rand(1, 3, *size, generator=gen)
    distorted = (reference + noise * torch.rand(1, 3, *size, generator=gen)).clamp(0, 1)
    metric = PEDistance("pe_alex", device="cpu")
    with torch.no_grad():
        why = explain_pair(metric, distorted, reference, top=channels)
    figure = explanation_figure(why, metric, distorted, reference, n=channels)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return figure, canvas.get_renderer()


@pytest.mark.parametrize("size", [(64, 160), (128, 64)])  # a wide and a tall image
@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_colour_bars_are_as_tall_as_their_image_and_clear_of_every_title(alexnet_weights_available: bool,
                                                                        size: tuple[int, int]) -> None:
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME")
    figure, renderer = _drawn_figure(size, 2, seed=0, noise=0.2)
    titles = [figure._suptitle, *(ax.title for ax in figure.axes)]
    title_boxes = [t.get_window_extent(renderer) for t in titles if t is not None and t.get_text()]
    with_bars = [ax for ax in figure.axes if ax.child_axes]
    assert len(with_bars) == 1 + 2  # the heat map and each shown channel's difference map
    for ax in with_bars:
        image = ax.get_window_extent(renderer)  # the drawn image (aspect kept)
        (bar,) = ax.child_axes
        box = bar.get_window_extent(renderer)
        assert box.y0 == pytest.approx(image.y0, abs=1) and box.y1 == pytest.approx(image.y1, abs=1)
        assert box.x0 >= image.x1  # beside it, not over it
        assert not any(box.overlaps(title) for title in title_boxes)  # wide images: it rose into the title


@pytest.mark.slow  # explains one pair with pe_alex
def test_the_figure_has_no_empty_slot_a_clear_legend_labels_and_maps_over_the_image(
        alexnet_weights_available: bool) -> None:
    """Issue 27: an empty fourth slot in the top row, the CSF legend over a curve, no y-axis label on the tuning
    curves, channel maps without the image under them."""
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME")
    figure, renderer = _drawn_figure((96, 96), 4, seed=1, noise=0.3)
    frequency_axes = [ax for ax in figure.axes if ax.get_xlabel().startswith("frequency")]
    orientation_axes = [ax for ax in figure.axes if ax.get_xlabel().startswith("orientation")]
    map_axes = [ax for ax in figure.axes if ax.get_title() == "its weighted squared difference"]
    tuning_axes = frequency_axes + orientation_axes
    top_axes = [ax for ax in figure.axes if ax.get_title() in ("distorted", "reference")
                or ax.get_title().startswith("where they differ")]
    assert len(frequency_axes) == len(orientation_axes) == len(map_axes) == 4 and len(top_axes) == 3
    for column in frequency_axes:  # every column of the grid has a panel of the top row above it
        x0, x1 = column.get_window_extent(renderer).intervalx
        assert any(min(x1, top.get_window_extent(renderer).x1) > max(x0, top.get_window_extent(renderer).x0)
                   for top in top_axes)
    for ax in frequency_axes:  # the legend covers no point of any curve
        box = ax.get_legend().get_window_extent(renderer)
        for line in ax.get_lines():
            points = ax.transData.transform(line.get_xydata())
            assert not any(box.contains(x, y) for x, y in points), ax.get_title()
    assert frequency_axes[0].get_ylabel() and orientation_axes[0].get_ylabel()
    assert all(ax.get_ylim()[1] > 1 for ax in tuning_axes)
    for ax in map_axes:  # the greyed image under the channel's map, both over the same extent
        under, over = ax.get_images()
        assert under.get_cmap().name == "gray" and over.get_alpha() < 1
        assert under.get_extent() == over.get_extent()
