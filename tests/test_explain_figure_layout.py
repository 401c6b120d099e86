"""The explanation figure's colour bars stay beside their images, clear of the titles (issue 20.8)."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from pe_iqa import PEDistance
from pe_iqa.explain import explain_pair
from pe_iqa.explain_figures import explanation_figure


@pytest.mark.parametrize("size", [(64, 160), (128, 64)])  # a wide and a tall image
@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_colour_bars_are_as_tall_as_their_image_and_clear_of_every_title(alexnet_weights_available: bool,
                                                                        size: tuple[int, int]) -> None:
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME")
    gen = torch.Generator().manual_seed(0)
    reference = torch.rand(1, 3, *size, generator=gen)
    distorted = (reference + 0.2 * torch.rand(1, 3, *size, generator=gen)).clamp(0, 1)
    metric = PEDistance("pe_alex", device="cpu")
    with torch.no_grad():
        why = explain_pair(metric, distorted, reference, top=2)
    figure = explanation_figure(why, metric, distorted, reference, n=2)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
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
