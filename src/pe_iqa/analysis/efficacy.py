"""Efficacy scores: how human-like each channel's tuning is (scores stage of the PE analysis).

Every score maps a layer's :class:`~pe_iqa.tuning.TuningCurves` to one number per channel, higher = more
human-like. Scores are registered by name in :data:`EFFICACY_SCORES`, so a ranking can be asked for by
score name and cached like PE (only the tuning curves are expensive; scores are recomputed on load).

Perceptual Efficacy (the paper's Eq. 4–6)::

    μ1_m = Σ_f CSF(f) · |∂a_m/∂f|           (frequency sensitivity where humans are sensitive)
    μ2_m = Σ_θ (a_m(θ) − max_θ a_m(θ))²      (orientation selectivity at the CSF peak frequency)
    PE_m = μ1_m · μ2_m / (Σ_m μ1_m · Σ_m μ2_m)

``∂a/∂f`` uses second-order central finite differences on the (non-uniform, log-spaced) frequency grid,
one-sided at the ends. Degenerate channels (dead ReLU, constant response) get 0, never NaN.

Noise floor: activations are float32, so a channel whose response is constant across gratings still shows
differences of ~1e-7 of its level, giving μ values ~1e-14 of the layer's largest. μ1 and μ2 values below
``NOISE_FLOOR = 1e-9`` times the layer's maximum are set to exactly 0, so such channels tie (and are ordered
by the documented secondary keys) instead of being ordered by rounding noise.

The controls ``mu1``, ``mu2`` (each factor alone) and ``magnitude`` (mean absolute grating response) are
built in too: PE has to beat them to mean more than "this channel responds strongly". The built-in scores are fixed
(:data:`EFFICACY_SCORES` is read-only, its names are :data:`pe_iqa.analysis_config.SCORE_NAMES`): a score name always
means the same function, so nothing keyed on it goes stale. The research scores of the selection study
(``benchmarks/selection``) rank channels by explicit per-channel values (``ChannelRanking(..., scores=...)``).
:func:`register_score` is deprecated.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from ..analysis_config import SCORE_NAMES, AnalysisConfig
from .csf import get_csf
from .tuning import TuningCurves

__all__ = [
    "EFFICACY_SCORES",
    "EfficacyTerms",
    "compute_score",
    "efficacy_terms",
    "frequency_sensitivity",
    "orientation_selectivity",
    "perceptual_efficacy",
    "register_score",
    "score_function",
]

ScoreFn = Callable[[TuningCurves, AnalysisConfig], torch.Tensor]


def frequency_sensitivity(
    tuning: TuningCurves, csf: str = "mannos_sakrison", integrate: bool = False
) -> torch.Tensor:
    """``μ1_m = Σ_f CSF(f) · |∂a_m/∂f|`` for every channel.

    The paper's plain sum over the sampled frequencies (``integrate=False``). On the default log-spaced grid it
    gives low frequencies more weight (samples are denser there in linear frequency); ``integrate=True`` uses
    trapezoid weights instead, ``∫ CSF(f) |∂a/∂f| df``, which equals the plain sum up to a constant factor on a
    uniform grid (PE normalises constants away) and does not depend on how the grid is spaced.

    Args:
        tuning: tuning curves of one layer, ``response_f`` of shape ``(M, F)``.
        csf: CSF model name.
        integrate: weight each sample by its trapezoid width in cycles/degree.

    Returns:
        ``(M,)`` non-negative float64.
    """
    freqs = tuning.frequencies.to(torch.float64)
    response = tuning.response_f.to(torch.float64)
    (slope,) = torch.gradient(response, spacing=(freqs,), dim=1)
    weights = get_csf(csf)(freqs)
    if integrate:
        widths = torch.zeros_like(freqs)
        steps = freqs[1:] - freqs[:-1]
        widths[1:] += steps / 2
        widths[:-1] += steps / 2
        weights = weights * widths
    return _floor_noise(_finite((weights[None, :] * slope.abs()).sum(dim=1)))


def orientation_selectivity(tuning: TuningCurves) -> torch.Tensor:
    """``μ2_m = Σ_θ (a_m(θ) − max_θ a_m(θ))²`` for every channel.

    Args:
        tuning: tuning curves of one layer, ``response_theta`` of shape ``(M, T)``.

    Returns:
        ``(M,)`` non-negative float64 (0 for an orientation-blind channel).
    """
    response = tuning.response_theta.to(torch.float64)
    return _floor_noise(_finite(((response - response.max(dim=1, keepdim=True).values) ** 2).sum(dim=1)))


@dataclass(frozen=True)
class EfficacyTerms:
    """The terms of PE for every channel of a layer, each ``(M,)`` float64.

    Attributes:
        mu1: frequency sensitivity ``μ1`` (:func:`frequency_sensitivity`).
        mu2: orientation selectivity ``μ2`` (:func:`orientation_selectivity`).
        pe: Perceptual Efficacy ``μ1 μ2 / (Σμ1 · Σμ2)``.
        tie_break: ``μ1/Σμ1 + μ2/Σμ2``, the key that orders channels PE cannot tell apart (channels with PE = 0,
            often silent for every oriented grating in deep layers, still differ in how much of the layer's
            frequency sensitivity they carry).
    """

    mu1: torch.Tensor
    mu2: torch.Tensor
    pe: torch.Tensor
    tie_break: torch.Tensor


def efficacy_terms(tuning: TuningCurves, csf: str = "mannos_sakrison", integrate: bool = False) -> EfficacyTerms:
    """``μ1``, ``μ2``, PE and the tie-break key of every channel, each computed once.

    Args:
        tuning: tuning curves of one layer.
        csf: CSF model name.
        integrate: trapezoid-weighted ``μ1`` (see :func:`frequency_sensitivity`).
    """
    mu1, mu2 = frequency_sensitivity(tuning, csf, integrate), orientation_selectivity(tuning)
    share1, share2 = _safe_share(mu1), _safe_share(mu2)
    return EfficacyTerms(mu1, mu2, _finite(share1 * share2), share1 + share2)


def perceptual_efficacy(tuning: TuningCurves, csf: str = "mannos_sakrison") -> torch.Tensor:
    """Perceptual Efficacy ``PE_m = μ1_m μ2_m / (Σμ1 · Σμ2)`` of every channel of a layer.

    Args:
        tuning: tuning curves of one layer.
        csf: CSF model name.

    Returns:
        ``(M,)`` float64 in ``[0, 1]``; all zeros if every channel is degenerate.

    References:
        Perceptual Efficacy channel selection for deep-feature distances (the paper this package implements),
        Eq. 4–6; the CSF from J. L. Mannos and D. J. Sakrison, IEEE Trans. IT 20(4), 1974.
    """
    return efficacy_terms(tuning, csf).pe


def _safe_share(values: torch.Tensor) -> torch.Tensor:
    total = values.sum()
    return values / total if float(total) > 0 else torch.zeros_like(values)


NOISE_FLOOR = 1e-9


def _floor_noise(values: torch.Tensor) -> torch.Tensor:
    """Zero the values below ``NOISE_FLOOR`` × the layer maximum (float32 rounding, not tuning)."""
    if values.numel() == 0:
        return values
    threshold = NOISE_FLOOR * values.max()
    return torch.where(values > threshold, values, torch.zeros_like(values))


def _finite(values: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(values), values, torch.zeros_like(values))


#: The built-in efficacy scores by name (read-only).
EFFICACY_SCORES: Mapping[str, ScoreFn] = MappingProxyType({
    "pe": lambda tuning, config: perceptual_efficacy(tuning, config.csf),
    "pe_integral": lambda tuning, config: efficacy_terms(tuning, config.csf, integrate=True).pe,
    "mu1": lambda tuning, config: frequency_sensitivity(tuning, config.csf),
    "mu2": lambda tuning, config: orientation_selectivity(tuning),
    "magnitude": lambda tuning, config: tuning.magnitude(),
})
if tuple(EFFICACY_SCORES) != SCORE_NAMES:  # one list of names (pe_iqa.analysis_config), implemented here
    raise ImportError(f"efficacy scores {tuple(EFFICACY_SCORES)} differ from SCORE_NAMES {SCORE_NAMES}")

#: Scores added by the deprecated :func:`register_score` (never a built-in name).
_REGISTERED: dict[str, ScoreFn] = {}


def register_score(name: str, fn: ScoreFn, override: bool = False) -> None:
    """Register an efficacy score under ``name`` (deprecated: rank by explicit scores instead).

    .. deprecated:: 0.2
        Registered names are process-wide state. Compute the scores and rank by them:
        ``ChannelRanking(ranking.backbone, ranking.weights_id, ranking.layer, ranking.config, ranking.tuning,
        name, scores=fn(ranking.tuning, ranking.config))``. Removed in 0.3.

    Args:
        name: the score's name (not a built-in one).
        fn: ``fn(tuning, config) -> (M,)`` tensor, higher = more human-like.
        override: replace a score registered earlier under that name (every cache keyed on the score function
            then misses, so no distance computed with the old function is returned).

    Raises:
        ValueError: ``name`` is a built-in score, or registered already and ``override`` is false.
    """
    warnings.warn("register_score is deprecated and will be removed in pe-iqa 0.3; rank by explicit per-channel "
                  "scores (ChannelRanking(..., scores=...)) instead", FutureWarning, stacklevel=2)
    if name in EFFICACY_SCORES:
        raise ValueError(f"{name!r} is a built-in efficacy score; built-in scores cannot be replaced")
    if name in _REGISTERED and not override:
        raise ValueError(f"efficacy score {name!r} is already registered")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    _REGISTERED[name] = fn


def score_function(name: str) -> ScoreFn:
    """The score function of a built-in (or, deprecated, registered) score name.

    Raises:
        ValueError: if the score is unknown.
    """
    fn = EFFICACY_SCORES.get(name) or _REGISTERED.get(name)
    if fn is None:
        raise ValueError(f"score must be one of {sorted({*EFFICACY_SCORES, *_REGISTERED})}, got {name!r}")
    return fn


def compute_score(name: str, tuning: TuningCurves, config: AnalysisConfig) -> torch.Tensor:
    """Evaluate the score ``name`` on ``tuning``.

    Raises:
        ValueError: if the score is unknown.
    """
    return _finite(score_function(name)(tuning, config).to(torch.float64))
