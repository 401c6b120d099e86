"""Sinusoidal grating stimuli for probing CNN channels: radial (concentric rings) and oriented gratings.

All gratings are achromatic (the three RGB planes are equal), have a fixed Michelson contrast around a mean
grey level, and are specified in cycles per degree of visual angle under a :class:`ViewingCondition`
(pixels per degree). Several phases are drawn per frequency/orientation so that a channel's spatially
averaged response does not hinge on where the bright and dark bars happen to fall.

Default viewing condition: **64 pixels/degree**. That is a 24-inch 1920×1080 monitor (0.277 mm pixels) seen
from about 1 m, or a 27-inch 4K monitor from about 60 cm. At 64 px/deg the CSF peak (≈ 8 cpd) is a period of
8 pixels: twice AlexNet's conv1 stride (4) and well below the Nyquist limit (32 cpd). At 32 px/deg the peak
would be a 4-pixel period, which aliases exactly against a stride-4 first layer and makes the oriented
responses of the first layers depend on sampling phase rather than on orientation.
"""

from __future__ import annotations

import math

import torch

from ..analysis_config import ViewingCondition

__all__ = ["DEFAULT_VIEWING", "ViewingCondition", "oriented_gratings", "radial_gratings"]


DEFAULT_VIEWING = ViewingCondition()


def _check_common(viewing: ViewingCondition, n_phases: int, contrast: float, mean: float) -> None:
    if not isinstance(viewing, ViewingCondition):
        raise TypeError(f"viewing must be a ViewingCondition, got {type(viewing).__name__}")
    if not (isinstance(n_phases, int) and n_phases >= 1):
        raise ValueError(f"n_phases must be an int >= 1, got {n_phases!r}")
    if not 0.0 < contrast <= 1.0:
        raise ValueError(f"contrast (Michelson) must be in (0, 1], got {contrast}")
    if not 0.0 < mean < 1.0:
        raise ValueError(f"mean grey level must be in (0, 1), got {mean}")
    if mean * (1.0 + contrast) > 1.0 + 1e-9:
        raise ValueError(f"mean*(1+contrast) = {mean * (1 + contrast):.3f} > 1: the grating would clip")


def _check_frequencies(freqs: torch.Tensor, viewing: ViewingCondition) -> torch.Tensor:
    freqs = torch.as_tensor(freqs, dtype=torch.float64).reshape(-1)
    if freqs.numel() == 0:
        raise ValueError("freqs must hold at least one frequency")
    if bool((freqs <= 0).any()) or not bool(torch.isfinite(freqs).all()):
        raise ValueError("freqs must be finite and > 0 cycles/degree")
    if float(freqs.max()) >= viewing.nyquist_cpd:
        raise ValueError(
            f"freqs up to {float(freqs.max()):.2f} cpd exceed the Nyquist limit {viewing.nyquist_cpd:.2f} cpd "
            f"of {viewing.pixels_per_degree} px/deg; raise pixels_per_degree or lower the frequencies"
        )
    return freqs


def _phases(n_phases: int) -> torch.Tensor:
    return torch.arange(n_phases, dtype=torch.float64) * (2.0 * math.pi / n_phases)


def _centred_grid(size: int, device: torch.device | str | None) -> tuple[torch.Tensor, torch.Tensor]:
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2.0
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    return xx, yy


def _to_images(carrier: torch.Tensor, contrast: float, mean: float, dtype: torch.dtype) -> torch.Tensor:
    luminance = mean * (1.0 + contrast * torch.cos(carrier))
    return luminance.to(dtype).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def radial_gratings(
    freqs: torch.Tensor,
    viewing: ViewingCondition = DEFAULT_VIEWING,
    n_phases: int = 4,
    contrast: float = 0.5,
    mean: float = 0.5,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Radially symmetric sinusoidal gratings (concentric rings) centred in the image.

    ``I(r) = mean · (1 + contrast · cos(2π f r / ppd + φ))`` with ``r`` the distance in pixels from the
    image centre, ``f`` in cycles/degree and ``φ`` in ``{0, 2π/P, …}`` for ``P = n_phases``.

    Args:
        freqs: spatial frequencies in cycles/degree, shape ``(F,)``; each ``> 0`` and below Nyquist.
        viewing: pixels per degree and image size.
        n_phases: phases per frequency ``P``.
        contrast: Michelson contrast in ``(0, 1]``.
        mean: mean grey level in ``(0, 1)``.
        device: where to build the images.
        dtype: floating dtype of the result.

    Returns:
        Images of shape ``(F·P, 3, S, S)`` in ``[0, 1]``, frequency-major (image ``i`` has frequency
        ``freqs[i // P]`` and phase index ``i % P``).

    Raises:
        ValueError: on frequencies at or above Nyquist, bad contrast/mean, or ``n_phases < 1``.
    """
    _check_common(viewing, n_phases, contrast, mean)
    freqs = _check_frequencies(freqs, viewing).to(device)
    xx, yy = _centred_grid(viewing.size, device)
    radius = torch.sqrt(xx**2 + yy**2)
    cycles_per_px = freqs / viewing.pixels_per_degree
    carrier = 2.0 * math.pi * cycles_per_px[:, None, None, None] * radius + _phases(n_phases).to(device)[
        None, :, None, None
    ]
    return _to_images(carrier.reshape(-1, viewing.size, viewing.size), contrast, mean, dtype)


def oriented_gratings(
    freq: float,
    orientations: torch.Tensor,
    viewing: ViewingCondition = DEFAULT_VIEWING,
    n_phases: int = 4,
    contrast: float = 0.5,
    mean: float = 0.5,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Straight sinusoidal gratings of one frequency at several orientations.

    ``I(x, y) = mean · (1 + contrast · cos(2π f (x cos θ + y sin θ) / ppd + φ))`` with ``x`` to the right
    and ``y`` down (image rows), so ``θ`` is the direction of the wave vector: ``θ = 0`` gives vertical bars,
    ``θ = π/2`` horizontal bars. Orientation is periodic in ``π``.

    Args:
        freq: spatial frequency in cycles/degree, ``> 0`` and below Nyquist.
        orientations: orientations ``θ`` in radians, shape ``(T,)``.
        viewing: pixels per degree and image size.
        n_phases: phases per orientation ``P``.
        contrast: Michelson contrast in ``(0, 1]``.
        mean: mean grey level in ``(0, 1)``.
        device: where to build the images.
        dtype: floating dtype of the result.

    Returns:
        Images of shape ``(T·P, 3, S, S)`` in ``[0, 1]``, orientation-major.

    Raises:
        ValueError: on a frequency at or above Nyquist, empty orientations, bad contrast/mean.
    """
    _check_common(viewing, n_phases, contrast, mean)
    f = float(_check_frequencies(torch.tensor([freq]), viewing)[0])
    theta = torch.as_tensor(orientations, dtype=torch.float64).reshape(-1).to(device)
    if theta.numel() == 0:
        raise ValueError("orientations must hold at least one angle")
    xx, yy = _centred_grid(viewing.size, device)
    projection = xx[None] * torch.cos(theta)[:, None, None] + yy[None] * torch.sin(theta)[:, None, None]
    cycles_per_px = f / viewing.pixels_per_degree
    carrier = 2.0 * math.pi * cycles_per_px * projection[:, None] + _phases(n_phases).to(device)[
        None, :, None, None
    ]
    return _to_images(carrier.reshape(-1, viewing.size, viewing.size), contrast, mean, dtype)
