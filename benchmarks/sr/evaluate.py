"""Quality metrics of super-resolved held-out images, via pyiqa (imported, never copied).

Full-reference: ``psnr`` (pyiqa ``psnry``: on the Y channel, the SR convention), ``ssim`` (pyiqa ``ssim``, Y
channel), ``lpips`` (AlexNet, v0.1) and ``dists``. No-reference ``niqe`` and ``nrqm`` (the paper's
perceptual axis) are used only when their weight files are already in pyiqa's cache folder: this
environment is offline, and asking pyiqa for a missing file would try to download it. The border of
``scale`` pixels is shaved before scoring (SR convention); outputs are clamped and quantised to 8 bits, as if
saved to PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = ["DEFAULT_METRICS", "HIGHER_BETTER", "MetricSet", "quantise"]

DEFAULT_METRICS: tuple[str, ...] = ("psnr", "ssim", "lpips", "dists", "niqe", "nrqm")
#: our metric name → (pyiqa name, weight files pyiqa loads from its cache folder)
_PYIQA: dict[str, tuple[str, tuple[str, ...]]] = {
    "psnr": ("psnry", ()),
    "ssim": ("ssim", ()),
    "lpips": ("lpips", ("LPIPS_v0.1_alex-df73285e.pth",)),
    "dists": ("dists", ("DISTS_weights-f5e65c96.pth",)),
    "niqe": ("niqe", ("niqe_modelparameters.mat",)),
    "nrqm": ("nrqm", ("NRQM_model.mat",)),
}
HIGHER_BETTER = {"psnr": True, "ssim": True, "lpips": False, "dists": False, "niqe": False, "nrqm": True}


def quantise(images: torch.Tensor) -> torch.Tensor:
    """Clamp to ``[0, 1]`` and round to 8-bit levels."""
    return (images.clamp(0, 1) * 255).round() / 255


class MetricSet:
    """The available metrics among ``names``; ``unavailable`` says why the others were left out."""

    def __init__(self, names: Sequence[str] = DEFAULT_METRICS, scale: int = 4) -> None:
        import pyiqa
        from pyiqa.utils.download_util import DEFAULT_CACHE_DIR

        self.scale = scale
        self.metrics: dict[str, torch.nn.Module] = {}
        self.full_reference: dict[str, bool] = {}
        self.unavailable: dict[str, str] = {}
        for name in names:
            if name not in _PYIQA:
                raise ValueError(f"unknown metric {name!r}; choose from {sorted(_PYIQA)}")
            pyiqa_name, files = _PYIQA[name]
            absent = [f for f in files if not (Path(DEFAULT_CACHE_DIR) / f).is_file()]
            if absent:
                self.unavailable[name] = (f"weights not available offline ({', '.join(absent)} not in "
                                          f"{DEFAULT_CACHE_DIR})")
                continue
            metric = pyiqa.create_metric(pyiqa_name, device="cpu")
            self.metrics[name] = metric
            self.full_reference[name] = metric.metric_mode == "FR"

    @property
    def names(self) -> list[str]:
        return list(self.metrics)

    def score(self, sr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        """Scores of one ``(1, 3, H, W)`` output against its reference (both in ``[0, 1]``)."""
        s = self.scale
        sr, hr = quantise(sr)[..., s:-s, s:-s], hr[..., s:-s, s:-s]
        out = {}
        with torch.inference_mode():
            for name, metric in self.metrics.items():
                value = metric(sr, hr) if self.full_reference[name] else metric(sr)
                out[name] = float(value.reshape(-1)[0])
        return out
