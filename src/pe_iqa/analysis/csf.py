"""Contrast sensitivity functions (CSF) of the human visual system, selectable by name.

A CSF gives the reciprocal of the threshold contrast of a sinusoidal grating as a function of its
spatial frequency in cycles per degree of visual angle (cpd). The PE analysis weights each channel's
frequency sensitivity by it, so channels that respond to changes where humans are most sensitive rank high.

Every model takes frequencies as a tensor (any shape, any device) and returns sensitivities of the same
shape. Use :func:`get_csf` to look a model up by name and :data:`CSF_MODELS` to list them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType

import torch

from ..analysis_config import CSF_NAMES

__all__ = ["CSF_MODELS", "barten", "csf_peak_frequency", "flat", "get_csf", "mannos_sakrison"]

CSFModel = Callable[[torch.Tensor], torch.Tensor]


def mannos_sakrison(freqs: torch.Tensor) -> torch.Tensor:
    """Mannos–Sakrison CSF: ``A(f) = 2.6 (0.0192 + 0.114 f) exp(-(0.114 f)^1.1)``.

    Band-pass with its peak near 8 cpd (7.9 cpd) and a maximum of about 0.98. The default model of the
    PE analysis, as in the paper that introduced PE.

    Args:
        freqs: spatial frequencies in cycles/degree, any shape, values ``>= 0``.

    Returns:
        Sensitivities, same shape, dtype and device as ``freqs``.

    References:
        J. L. Mannos and D. J. Sakrison, "The effects of a visual fidelity criterion on the encoding of
        images", IEEE Trans. Information Theory 20(4), 525–536, 1974.
    """
    f = _as_frequencies(freqs)
    return 2.6 * (0.0192 + 0.114 * f) * torch.exp(-((0.114 * f) ** 1.1))


def barten(freqs: torch.Tensor, luminance: float = 100.0, field_deg: float = 10.0) -> torch.Tensor:
    """Barten's simplified CSF formula (2004).

    ``S(u) = 5200 exp(-0.0016 u² (1 + 100/L)^0.08) / sqrt((1 + 144/X0² + 0.64 u²)(63/L^0.83 + 1/(1 - exp(-0.02 u²))))``

    With ``L = 100`` cd/m² and a 10° field its peak lies near 3 cpd with a maximum sensitivity of about 650;
    the peak moves to lower frequencies as luminance falls (the van Nes–Bouman behaviour the formula fits).

    Args:
        freqs: spatial frequencies in cycles/degree, any shape, values ``>= 0``.
        luminance: adaptation luminance ``L`` in cd/m², ``> 0``.
        field_deg: angular size ``X0`` of the (square) stimulus field in degrees, ``> 0``.

    Returns:
        Sensitivities, same shape, dtype and device as ``freqs`` (0 at ``u = 0``).

    References:
        P. G. J. Barten, "Formula for the contrast sensitivity of the human eye", Proc. SPIE 5294,
        Image Quality and System Performance, 231–238, 2004. doi:10.1117/12.537476
    """
    if luminance <= 0:
        raise ValueError(f"luminance must be > 0 cd/m², got {luminance}")
    if field_deg <= 0:
        raise ValueError(f"field_deg must be > 0 degrees, got {field_deg}")
    u = _as_frequencies(freqs)
    u2 = u * u
    numerator = 5200.0 * torch.exp(-0.0016 * u2 * (1.0 + 100.0 / luminance) ** 0.08)
    # 1 / (1 - exp(-0.02 u²)) diverges at u = 0, where the sensitivity tends to 0: clamp to stay finite.
    lateral = 1.0 / (-torch.expm1(-0.02 * u2)).clamp_min(torch.finfo(u.dtype).tiny)
    denominator = torch.sqrt((1.0 + 144.0 / field_deg**2 + 0.64 * u2) * (63.0 / luminance**0.83 + lateral))
    return numerator / denominator


def flat(freqs: torch.Tensor) -> torch.Tensor:
    """A constant CSF (all ones): the control that removes the CSF weighting from μ1.

    Args:
        freqs: spatial frequencies in cycles/degree, any shape.

    Returns:
        Ones, same shape, dtype and device as ``freqs``.
    """
    return torch.ones_like(_as_frequencies(freqs))


CSF_MODELS: Mapping[str, CSFModel] = MappingProxyType({
    "mannos_sakrison": mannos_sakrison,
    "barten": barten,
    "flat": flat,
})
if tuple(CSF_MODELS) != CSF_NAMES:  # one list of names (pe_iqa.analysis_config), implemented here
    raise ImportError(f"CSF models {tuple(CSF_MODELS)} differ from CSF_NAMES {CSF_NAMES}")


def get_csf(name: str, **params: float) -> CSFModel:
    """Look a CSF model up by name, optionally binding its parameters.

    Args:
        name: one of :data:`CSF_MODELS` (``"mannos_sakrison"``, ``"barten"``, ``"flat"``).
        **params: keyword parameters of the model (e.g. ``luminance=50`` for ``"barten"``).

    Returns:
        A callable mapping frequencies (cpd) to sensitivities.

    Raises:
        ValueError: if ``name`` is unknown.
    """
    try:
        model = CSF_MODELS[name]
    except KeyError:
        raise ValueError(f"csf must be one of {sorted(CSF_MODELS)}, got {name!r}") from None
    return partial(model, **params) if params else model


def csf_peak_frequency(model: CSFModel, low: float = 0.05, high: float = 60.0, samples: int = 20001) -> float:
    """Frequency (cpd) at which a CSF peaks, found on a dense log-spaced grid.

    Args:
        model: a CSF callable, e.g. from :func:`get_csf`.
        low: lowest frequency searched, cpd, ``> 0``.
        high: highest frequency searched, cpd, ``> low``.
        samples: grid size.

    Returns:
        The peak frequency in cycles/degree.
    """
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got low={low}, high={high}")
    grid = torch.logspace(torch.log10(torch.tensor(low)), torch.log10(torch.tensor(high)), samples,
                          dtype=torch.float64)
    return float(grid[int(torch.argmax(model(grid)))])


def _as_frequencies(freqs: torch.Tensor) -> torch.Tensor:
    if not isinstance(freqs, torch.Tensor):
        freqs = torch.as_tensor(freqs, dtype=torch.float64)
    if not freqs.is_floating_point():
        freqs = freqs.to(torch.float64)
    if bool((freqs < 0).any()):
        raise ValueError("freqs must be >= 0 cycles/degree")
    return freqs
