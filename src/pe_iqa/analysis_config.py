"""What a PE analysis is, without running one: the analysis configuration, the viewing condition, the names.

:class:`AnalysisConfig` (the stimulus set and viewing condition of a measurement) is part of every
:class:`~pe_iqa.spec.DistanceSpec` and of every selection's key, so it lives here, apart from the analysis itself
(:mod:`pe_iqa.analysis`: stimuli, tuning curves, efficacy scores, rankings), which is imported only when a
measurement, a ranking or the tuning curves are asked for. The names of the CSF models
(:data:`CSF_NAMES`, implemented in :mod:`pe_iqa.analysis.csf`) and of the built-in efficacy scores
(:data:`SCORE_NAMES`, implemented in :mod:`pe_iqa.analysis.efficacy`) are facts of this module; the analysis
checks at import that it implements exactly these.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import torch

__all__ = ["CSF_NAMES", "SCORE_NAMES", "AnalysisConfig", "ViewingCondition"]

#: The contrast sensitivity models an analysis can weight frequencies by (:mod:`pe_iqa.analysis.csf`).
CSF_NAMES = ("mannos_sakrison", "barten", "flat")
#: The built-in efficacy scores a ranking can be asked for by name (:mod:`pe_iqa.analysis.efficacy`). Fixed: a
#: name always means the same score, so every cache keyed on it stays right. Research ranks by its own scores
#: through explicit per-channel values (``ChannelRanking(..., scores=...)``), never by registering a name.
SCORE_NAMES = ("pe", "pe_integral", "mu1", "mu2", "magnitude")


@dataclass(frozen=True)
class ViewingCondition:
    """Geometry of the (virtual) display the stimuli are shown on.

    Attributes:
        pixels_per_degree: image pixels per degree of visual angle, ``> 0``.
        size: side length of the square stimulus in pixels (``size / pixels_per_degree`` degrees).
    """

    pixels_per_degree: float = 64.0
    size: int = 224

    def __post_init__(self) -> None:
        if not self.pixels_per_degree > 0:
            raise ValueError(f"pixels_per_degree must be > 0, got {self.pixels_per_degree}")
        if not (isinstance(self.size, int) and self.size >= 8):
            raise ValueError(f"size must be an int >= 8 pixels, got {self.size!r}")

    @property
    def nyquist_cpd(self) -> float:
        """Highest representable frequency in cycles/degree (half a cycle per pixel)."""
        return self.pixels_per_degree / 2.0

    @property
    def field_deg(self) -> float:
        """Side length of the stimulus in degrees of visual angle."""
        return self.size / self.pixels_per_degree



@dataclass(frozen=True)
class AnalysisConfig:
    """Everything that defines a PE analysis besides the network.

    Attributes:
        pixels_per_degree: viewing condition (see :mod:`pe_iqa.analysis.stimuli` for why 64 is the default).
        size: stimulus side in pixels.
        f_min: lowest radial frequency, cycles/degree.
        f_max: highest radial frequency, cycles/degree (must stay below Nyquist, ``pixels_per_degree/2``).
        n_frequencies: number of log-spaced radial frequencies.
        n_orientations: number of orientations in ``[0, π)``.
        n_phases: phases averaged per frequency/orientation.
        contrast: Michelson contrast of every grating.
        csf: CSF model name (see :data:`pe_iqa.analysis.csf.CSF_MODELS`).
        orientation_freq: frequency of the oriented gratings in cpd; ``None`` = the CSF's peak (Mannos–Sakrison's
            peak for the ``flat`` CSF, which has none; see :func:`pe_iqa.analysis.tuning.peak_frequency`).
    """

    pixels_per_degree: float = 64.0
    size: int = 224
    f_min: float = 0.5
    f_max: float = 16.0
    n_frequencies: int = 48
    n_orientations: int = 36
    n_phases: int = 4
    contrast: float = 0.5
    csf: str = "mannos_sakrison"
    orientation_freq: float | None = None

    def __post_init__(self) -> None:
        viewing = self.viewing  # validates pixels_per_degree and size
        if not 0 < self.f_min < self.f_max:
            raise ValueError(f"need 0 < f_min < f_max, got f_min={self.f_min}, f_max={self.f_max}")
        if self.f_max >= viewing.nyquist_cpd:
            raise ValueError(f"f_max={self.f_max} cpd must be below Nyquist ({viewing.nyquist_cpd} cpd)")
        if self.n_frequencies < 3:
            raise ValueError(f"n_frequencies must be >= 3 for finite differences, got {self.n_frequencies}")
        if self.n_orientations < 2:
            raise ValueError(f"n_orientations must be >= 2, got {self.n_orientations}")
        if self.csf not in CSF_NAMES:
            raise ValueError(f"csf must be one of {sorted(CSF_NAMES)}, got {self.csf!r}")

    @property
    def viewing(self) -> ViewingCondition:
        """The :class:`ViewingCondition` of the stimuli."""
        return ViewingCondition(self.pixels_per_degree, self.size)

    def frequencies(self) -> torch.Tensor:
        """Radial frequencies (cpd), shape ``(F,)``, float64, log-spaced."""
        return torch.logspace(
            torch.log10(torch.tensor(self.f_min, dtype=torch.float64)),
            torch.log10(torch.tensor(self.f_max, dtype=torch.float64)),
            self.n_frequencies,
            dtype=torch.float64,
        )

    def orientations(self) -> torch.Tensor:
        """Orientations (radians), shape ``(T,)``, float64, evenly spaced in ``[0, π)``."""
        return torch.arange(self.n_orientations, dtype=torch.float64) * (torch.pi / self.n_orientations)

    def key(self) -> str:
        """A 12-hex-digit identity of the configuration (part of every ranking's cache key)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
