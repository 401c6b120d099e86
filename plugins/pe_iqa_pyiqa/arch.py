"""The pyiqa architecture wrapping a PE distance preset: ``(distorted, reference) → (N, 1)`` scores, as pyiqa's
deep-feature metrics (``lpips``, ``lpips-vgg``, ``dists``) return them."""

from __future__ import annotations

import torch
from torch import nn

from pe_iqa.distance import PEDistance

__all__ = ["PEDistanceArch"]


class PEDistanceArch(nn.Module):
    """A :data:`pe_iqa.presets.PRESETS` distance as a pyiqa full-reference architecture (``ARCH_REGISTRY`` entry).

    pyiqa's ``InferenceModel`` builds it from a model config's ``metric_opts`` (``{"type": "PEDistanceArch",
    "metric": "pe_alex"}``) plus the keyword arguments given to ``pyiqa.create_metric``, and calls it as
    ``net(distorted, reference)``.

    Args:
        metric: the preset name (a key of :data:`pe_iqa.presets.PRESETS`).
        **options: :class:`~pe_iqa.distance.PEDistance` options replacing the preset's. ``check_range``
            defaults to ``False``: ``InferenceModel`` checks the ``[0, 1]`` range itself, and skips the check
            when used as a loss (``as_loss=True``), as pyiqa intends.

    Raises:
        TypeError: ``reduction`` or ``device`` given (pyiqa reduces and places the model itself).
        ValueError: unknown preset or invalid option.
    """

    def __init__(self, metric: str = "pe_alex", **options) -> None:
        super().__init__()
        for name in ("reduction", "device"):
            if name in options:
                raise TypeError(f"{name!r} is set by pyiqa's InferenceModel (loss_reduction=, device=), not here")
        options.setdefault("check_range", False)
        self.metric = metric
        self.distance = PEDistance(metric, reduction="none", **options)

    def forward(self, dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Per-image distance, lower = more similar.

        Args:
            dist: distorted images ``(N, 3, H, W)`` (or ``(N, 1, H, W)``) in ``[0, 1]``.
            ref: reference images, same shape and device.

        Returns:
            ``(N, 1)`` float32 scores, differentiable with respect to both inputs: the shape of pyiqa's
            ``lpips``, ``lpips-vgg`` and ``dists``, so scores of several metrics concatenate (``torch.cat``).
        """
        return self.distance(dist, ref).unsqueeze(1)
