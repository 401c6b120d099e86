"""Tuning curves: each channel's spatially averaged response to radial and oriented gratings.

This is the measurement stage of the PE analysis (stimuli → activations). :class:`AnalysisConfig` fixes the
viewing condition and the stimulus set; :func:`measure_tuning` runs a :class:`~pe_iqa.backbones.Backbone`
over the gratings in batches (no autograd) and returns one :class:`TuningCurves` per layer:

* ``a(f)`` — response to concentric-ring gratings of frequency ``f`` (cycles/degree), averaged over space
  and over ``n_phases`` phases, for ``n_frequencies`` log-spaced frequencies in ``[f_min, f_max]``;
* ``a(θ)`` — response to straight gratings at the CSF peak frequency and ``n_orientations`` orientations
  evenly spaced in ``[0, π)``, averaged the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from tqdm.auto import tqdm

from ..analysis_config import AnalysisConfig
from ..backbones import Backbone
from .csf import csf_peak_frequency, get_csf
from .stimuli import oriented_gratings, radial_gratings

__all__ = ["AnalysisConfig", "TuningCurves", "measure_tuning", "peak_frequency", "phase_mean_responses"]


def peak_frequency(config: AnalysisConfig) -> float:
    """Frequency (cpd) of the oriented gratings of ``config``: its ``orientation_freq``, else its CSF's peak
    (Mannos–Sakrison's for the ``flat`` CSF, which has none).

    Example:
        >>> round(peak_frequency(AnalysisConfig()), 2)
        7.89
    """
    if config.orientation_freq is not None:
        return float(config.orientation_freq)
    model = "mannos_sakrison" if config.csf == "flat" else config.csf
    return csf_peak_frequency(get_csf(model))


@dataclass
class TuningCurves:
    """Measured responses of the channels of one layer.

    Attributes:
        frequencies: radial frequencies in cpd, ``(F,)``.
        response_f: ``a_m(f)``, ``(M, F)``.
        orientations: orientations in radians, ``(T,)``.
        response_theta: ``a_m(θ)`` at the CSF peak frequency, ``(M, T)``.
    """

    frequencies: torch.Tensor
    response_f: torch.Tensor
    orientations: torch.Tensor
    response_theta: torch.Tensor

    #: names of the arrays, in storage order (see :mod:`pe_iqa.tuning_cache`)
    ARRAYS: ClassVar[tuple[str, ...]] = ("frequencies", "response_f", "orientations", "response_theta")

    @property
    def n_channels(self) -> int:
        return int(self.response_f.shape[0])

    def magnitude(self) -> torch.Tensor:
        """Mean absolute response of each channel over all stimuli, ``(M,)``."""
        return torch.cat([self.response_f, self.response_theta], dim=1).abs().mean(dim=1)

    def arrays(self) -> dict[str, torch.Tensor]:
        """The four arrays by name (for storage)."""
        return {name: getattr(self, name) for name in self.ARRAYS}

    def check(self, n_channels: int, config: AnalysisConfig) -> None:
        """Check that these curves are a measurement of ``n_channels`` channels under ``config``.

        Args:
            n_channels: the layer's channel count in the network the curves are for.
            config: the analysis configuration they should have been measured with.

        Raises:
            ValueError: on wrong shapes, a stimulus grid other than ``config``'s, or responses that are not finite
                float32 values (a network's activations are float32 or narrower).
        """
        expected = {"frequencies": (config.n_frequencies,), "response_f": (n_channels, config.n_frequencies),
                    "orientations": (config.n_orientations,), "response_theta": (n_channels, config.n_orientations)}
        for name, shape in expected.items():
            array = getattr(self, name)
            if not isinstance(array, torch.Tensor) or tuple(array.shape) != shape:
                got = tuple(array.shape) if isinstance(array, torch.Tensor) else type(array).__name__
                raise ValueError(f"{name} has shape {got}, expected {shape} ({n_channels} channels)")
        if not (torch.allclose(self.frequencies.double(), config.frequencies(), rtol=1e-12, atol=0)
                and torch.allclose(self.orientations.double(), config.orientations(), rtol=1e-12, atol=1e-15)):
            raise ValueError("the stimulus frequencies or orientations differ from the analysis configuration's")
        limit = float(torch.finfo(torch.float32).max)
        for name in ("response_f", "response_theta"):
            values = getattr(self, name)
            if not bool(torch.isfinite(values).all()) or float(values.abs().max()) > limit:
                raise ValueError(f"{name} holds values that are not finite float32 numbers")


def phase_mean_responses(
    backbone: Backbone, images: torch.Tensor, n_phases: int, batch_size: int, device: torch.device | str,
    bar: tqdm | None = None,
) -> dict[str, torch.Tensor]:
    """Spatially averaged responses of every tapped layer to stimuli, averaged over phases.

    Args:
        backbone: the network.
        images: stimuli ``(S·P, 3, H, W)``, stimulus-major with ``P = n_phases`` phases each.
        n_phases: phases per stimulus.
        batch_size: stimuli per forward pass.
        device: where to run.
        bar: a progress bar advanced by the images of each forward pass.

    Returns:
        ``{layer: (M, S)}`` float64 CPU tensors.
    """
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in backbone.layers}
    for start in range(0, images.shape[0], batch_size):
        batch = images[start:start + batch_size].to(device)
        for layer, act in backbone(batch).items():
            chunks[layer].append(act.float().mean(dim=(2, 3)).double().cpu())
        if bar is not None:
            bar.update(batch.shape[0])
    result = {}
    for layer, parts in chunks.items():
        acts = torch.cat(parts)  # (S·P, M)
        result[layer] = acts.view(-1, n_phases, acts.shape[1]).mean(dim=1).T.contiguous()  # (M, S)
    return result


def measure_tuning(
    backbone: Backbone,
    config: AnalysisConfig | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> dict[str, TuningCurves]:
    """Measure ``a(f)`` and ``a(θ)`` for every channel of every tapped layer of ``backbone``.

    Args:
        backbone: a :class:`~pe_iqa.backbones.Backbone` (its taps are the layers analysed).
        config: the stimulus set (default :class:`AnalysisConfig`).
        device: where to run (default: the backbone's device).
        batch_size: stimuli per forward pass, ``>= 1``.
        progress: show a tqdm progress bar (stimuli measured, rate and time left).

    Returns:
        ``{layer: TuningCurves}`` with float64 CPU tensors.

    Raises:
        ValueError: if ``batch_size < 1``.
        RuntimeError: if the network's responses are not finite (broken weights).
    """
    config = config or AnalysisConfig()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    run_device = torch.device(device) if device is not None else backbone.mean.device
    backbone = backbone.to(run_device)
    freqs = config.frequencies()
    thetas = config.orientations()
    groups = [("radial", freqs), ("oriented", thetas)]
    outputs: dict[str, dict[str, torch.Tensor]] = {}
    total = (len(freqs) + len(thetas)) * config.n_phases
    with torch.inference_mode(), tqdm(total=total, desc=f"PE stimuli {backbone.spec.name}", unit="image",
                                      disable=not progress, leave=False, dynamic_ncols=True) as bar:
        for kind, values in groups:
            if kind == "radial":
                images = radial_gratings(freqs, config.viewing, config.n_phases, config.contrast)
            else:
                images = oriented_gratings(
                    peak_frequency(config), thetas, config.viewing, config.n_phases, config.contrast
                )
            outputs[kind] = phase_mean_responses(backbone, images, config.n_phases, batch_size, run_device, bar)
            del images, values
    curves = {
        layer: TuningCurves(freqs, outputs["radial"][layer], thetas, outputs["oriented"][layer])
        for layer in backbone.layers
    }
    for layer, tuning in curves.items():
        try:
            tuning.check(tuning.n_channels, config)
        except ValueError as error:
            raise RuntimeError(f"{backbone.spec.name} {layer}: the network's responses to gratings are unusable "
                               f"({error}); are its weights broken?") from None
    return curves
