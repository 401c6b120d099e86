"""Channel-efficacy scores beyond PE, for the selection study (research code; the shipped core does not import it).

They are passed to the core as explicit per-channel scores, never registered by name (the core's built-in scores are
fixed): :func:`rank_by_selector` ranks a measurement by a built-in score or one of :data:`VARIANT_SCORES`, and
:func:`rank_by_scores` by any per-channel values (e.g. the chromatic scores).

PE multiplies two *loudness-dependent* sums: ``μ1`` grows linearly and ``μ2`` quadratically with a channel's
response level, so PE largely ranks channels by how strongly they respond to gratings, and ``μ1``, ``μ2``
are correlated through that shared factor. The scores here each isolate one idea of "human-like tuning"
so that it can be tested against PE and against the plain ``magnitude`` control:

========================  ==========================================================================
name                      what it measures
========================  ==========================================================================
``pe_selectivity``        PE of the tuning curves divided by the channel's own mean response:
                          selectivity, not loudness.
``pe_rank``               PE with ``μ1`` and ``μ2`` replaced by their rank percentiles in the layer,
                          so neither factor's heavy tail dominates the product.
``csf_match``             Pearson correlation over log-frequency between ``a(f)`` and the CSF: does
                          the channel's band-pass have the human shape?
``osi``                   Orientation selectivity index ``1 − circular variance`` of ``a(θ)``.
``csf_response``          CSF-weighted mean response ``Σ CSF(f)|a(f)| / Σ CSF(f)``: the human-weighted
                          version of the ``magnitude`` control.
========================  ==========================================================================

All scores take a layer's :class:`~pe_iqa.analysis.tuning.TuningCurves` and return ``(M,)`` float64, higher = more
human-like, never NaN: dead channels (mean absolute response 0, or below ``1e-6`` of the layer's loudest
channel for the normalised scores) and channels with a constant response get the score's neutral value
(0), so they sort to the bottom together and :class:`~pe_iqa.analysis.ranking.ChannelRanking` separates them by its
tie-break keys (``μ1/Σμ1 + μ2/Σμ2``, then mean response magnitude).

Scores that need a CSF with a shape (``csf_match``) use Mannos–Sakrison when the analysis CSF is
``"flat"``, as :func:`~pe_iqa.analysis.tuning.peak_frequency` does.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from scipy.stats import rankdata

from pe_iqa.analysis.csf import get_csf
from pe_iqa.analysis.efficacy import (
    EFFICACY_SCORES,
    ScoreFn,
    frequency_sensitivity,
    orientation_selectivity,
)
from pe_iqa.analysis.ranking import ChannelRanking
from pe_iqa.analysis.tuning import TuningCurves

__all__ = [
    "SELECTOR_NAMES",
    "VARIANT_SCORES",
    "csf_match",
    "csf_response",
    "orientation_selectivity_index",
    "rank_by_scores",
    "rank_by_selector",
    "rank_efficacy",
    "selectivity_efficacy",
]

#: Channels whose mean absolute response is below this fraction of the layer's loudest channel count as
#: dead for the scale-free scores (their normalised curves would be float noise blown up).
DEAD_FRACTION = 1e-6


def _check_tuning(tuning: TuningCurves) -> None:
    if not isinstance(tuning, TuningCurves):
        raise TypeError(f"tuning must be a TuningCurves, got {type(tuning).__name__}")


def _alive(magnitude: torch.Tensor) -> torch.Tensor:
    finite = torch.isfinite(magnitude)
    top = float(magnitude[finite].max()) if bool(finite.any()) else 0.0
    if top <= 0:
        return torch.zeros_like(magnitude, dtype=torch.bool)
    return finite & (magnitude > DEAD_FRACTION * top)


def _share(values: torch.Tensor) -> torch.Tensor:
    total = float(values.sum())
    return values / total if total > 0 and math.isfinite(total) else torch.zeros_like(values)


def _finite(values: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(values), values, torch.zeros_like(values))


def _shaped_csf(name: str) -> str:
    return "mannos_sakrison" if name == "flat" else name


def selectivity_efficacy(tuning: TuningCurves, csf: str = "mannos_sakrison") -> torch.Tensor:
    """PE of loudness-normalised tuning curves: ``PE`` computed on ``a_m / mean|a_m|``.

    ``μ1`` scales with the response level ``s`` of a channel and ``μ2`` with ``s²``, so PE ∝ ``s³`` for two
    channels with the same tuning *shape*. Dividing each channel's curves by its own mean absolute response
    (over all radial and oriented gratings) makes the score invariant to ``s``: a quiet, sharply tuned
    channel outranks a loud, broadly tuned one. The normalised factors are then combined exactly as PE::

        â_m = a_m / mean|a_m|       μ̂1_m = Σ_f CSF(f)|∂â_m/∂f|     μ̂2_m = Σ_θ (â_m(θ) − max â_m)²
        score_m = μ̂1_m μ̂2_m / (Σ μ̂1 · Σ μ̂2)

    Args:
        tuning: tuning curves of one layer, ``response_f`` ``(M, F)`` and ``response_theta`` ``(M, T)``.
        csf: CSF model name.

    Returns:
        ``(M,)`` float64 in ``[0, 1]``; 0 for dead channels (see :data:`DEAD_FRACTION`).

    References:
        PE as in the paper this package implements (Eq. 4–6); contrast normalisation of responses in the
        spirit of D. J. Heeger, "Normalization of cell responses in cat striate cortex", Visual
        Neuroscience 9(2), 181–197, 1992.
    """
    _check_tuning(tuning)
    magnitude = tuning.magnitude().to(torch.float64)
    alive = _alive(magnitude)
    scale = torch.where(alive, magnitude, torch.ones_like(magnitude))[:, None]
    normalised = TuningCurves(
        tuning.frequencies, tuning.response_f.to(torch.float64) / scale,
        tuning.orientations, tuning.response_theta.to(torch.float64) / scale,
    )
    mu1 = torch.where(alive, frequency_sensitivity(normalised, csf), torch.zeros_like(magnitude))
    mu2 = torch.where(alive, orientation_selectivity(normalised), torch.zeros_like(magnitude))
    return _finite(_share(mu1) * _share(mu2))


def _percentile_ranks(values: torch.Tensor) -> torch.Tensor:
    """Average rank / M in ``(0, 1]`` (ties share their mean rank); exact zeros stay 0."""
    values = _finite(values.to(torch.float64))
    if values.numel() == 0:
        return values
    ranks = torch.from_numpy(rankdata(values.cpu().numpy(), method="average")).to(torch.float64)
    return torch.where(values > 0, ranks / values.numel(), torch.zeros_like(values))


def rank_efficacy(tuning: TuningCurves, csf: str = "mannos_sakrison") -> torch.Tensor:
    """PE with rank-normalised factors: ``score_m = R(μ1)_m · R(μ2)_m``.

    ``R(v)_m`` is the average rank of ``v_m`` in the layer divided by the number of channels ``M`` (in
    ``(0, 1]``, ties sharing their mean rank). ``μ2`` is a sum of squares with a far heavier tail than
    ``μ1``, so in PE's product a few very orientation-selective channels dominate whatever their frequency
    sensitivity; on percentiles both factors weigh the same and the product rewards channels good at both.
    A factor that is exactly 0 (no orientation or no frequency modulation at all) keeps the score at 0, as in
    PE, so channels PE calls "no efficacy" stay at the bottom.

    Args:
        tuning: tuning curves of one layer.
        csf: CSF model name (for ``μ1``).

    Returns:
        ``(M,)`` float64 in ``[0, 1]``.
    """
    _check_tuning(tuning)
    mu1 = frequency_sensitivity(tuning, csf)
    mu2 = orientation_selectivity(tuning)
    return _percentile_ranks(mu1) * _percentile_ranks(mu2)


def csf_match(tuning: TuningCurves, csf: str = "mannos_sakrison") -> torch.Tensor:
    """Pearson correlation between each channel's frequency response ``a_m(f)`` and the CSF.

    ``score_m = corr_f(a_m(f), CSF(f))`` over the measured radial frequencies, which are log-spaced, so
    every octave weighs the same. The correlation ignores the channel's response level and offset: it asks
    only whether the channel's band-pass has the human shape (rising to the CSF peak near 8 cpd, falling
    beyond). A scaled and shifted CSF scores 1, an inverted one −1.

    Args:
        tuning: tuning curves of one layer, ``response_f`` ``(M, F)``.
        csf: CSF model name; ``"flat"`` has no shape, so Mannos–Sakrison is used in its place.

    Returns:
        ``(M,)`` float64 in ``[−1, 1]``; 0 for channels whose ``a(f)`` is constant (dead channels included).

    References:
        J. L. Mannos and D. J. Sakrison, IEEE Trans. Information Theory 20(4), 525–536, 1974 (the CSF).
    """
    _check_tuning(tuning)
    freqs = tuning.frequencies.to(torch.float64)
    weights = get_csf(_shaped_csf(csf))(freqs)
    response = tuning.response_f.to(torch.float64)
    centred = response - response.mean(dim=1, keepdim=True)
    target = weights - weights.mean()
    spread = centred.norm(dim=1)
    level = response.abs().amax(dim=1)
    flat = ~(spread > 1e-9 * level)  # constant curves (float noise around a level), incl. all-zero/NaN
    corr = (centred @ target) / (spread * target.norm())
    return torch.where(flat, torch.zeros_like(corr), _finite(corr)).clamp(-1.0, 1.0)


def orientation_selectivity_index(tuning: TuningCurves) -> torch.Tensor:
    """Orientation selectivity index ``OSI_m = |Σ_θ r_m(θ) e^{2iθ}| / Σ_θ r_m(θ)`` (1 − circular variance).

    ``r = max(a(θ), 0)`` (responses are rectified, as firing rates). The index is 0 for a channel that
    responds equally to every orientation, 1 for one that responds to a single orientation, and does not
    depend on the response level — unlike ``μ2``, which grows with its square. Orientations must be
    evenly spaced over ``[0, π)`` (as :meth:`~pe_iqa.analysis.tuning.AnalysisConfig.orientations` gives) for an
    isotropic channel to score exactly 0.

    Args:
        tuning: tuning curves of one layer, ``response_theta`` ``(M, T)``.

    Returns:
        ``(M,)`` float64 in ``[0, 1]``; 0 for channels with no positive response or a constant one.

    References:
        D. L. Ringach, R. M. Shapley and M. J. Hawken, "Orientation selectivity in macaque V1: diversity and
        laminar dependence", J. Neuroscience 22(13), 5639–5651, 2002.
    """
    _check_tuning(tuning)
    rates = _finite(tuning.response_theta.to(torch.float64)).clamp_min(0.0)
    angles = 2.0 * tuning.orientations.to(torch.float64)
    total = rates.sum(dim=1)
    vector = torch.hypot(rates @ torch.cos(angles), rates @ torch.sin(angles))
    flat = ~(rates.amax(dim=1) - rates.amin(dim=1) > 1e-12 * rates.amax(dim=1))  # isotropic up to float noise
    alive = _alive(total) & ~flat
    osi = vector / torch.where(alive, total, torch.ones_like(total))
    return torch.where(alive, _finite(osi), torch.zeros_like(osi)).clamp(0.0, 1.0)


def csf_response(tuning: TuningCurves, csf: str = "mannos_sakrison") -> torch.Tensor:
    """CSF-weighted mean absolute response: ``score_m = Σ_f CSF(f)|a_m(f)| / Σ_f CSF(f)``.

    The ``magnitude`` control ranks channels by how strongly they respond to any grating; this ranks them
    by how strongly they respond at the frequencies humans are most sensitive to. It is what remains of
    ``μ1`` if the response level, rather than its change with frequency, is what matters.

    Args:
        tuning: tuning curves of one layer, ``response_f`` ``(M, F)``.
        csf: CSF model name (``"flat"`` gives the mean absolute radial response).

    Returns:
        ``(M,)`` float64, ``>= 0``; 0 for dead channels.
    """
    _check_tuning(tuning)
    weights = get_csf(csf)(tuning.frequencies.to(torch.float64))
    return _finite((tuning.response_f.to(torch.float64).abs() @ weights) / weights.sum())


VARIANT_SCORES: dict[str, ScoreFn] = {
    "pe_selectivity": lambda tuning, config: selectivity_efficacy(tuning, config.csf),
    "pe_rank": lambda tuning, config: rank_efficacy(tuning, config.csf),
    "csf_match": lambda tuning, config: csf_match(tuning, config.csf),
    "osi": lambda tuning, config: orientation_selectivity_index(tuning),
    "csf_response": lambda tuning, config: csf_response(tuning, config.csf),
}


#: Every selector a ranking can be asked for here: the core's built-in scores, then the variants.
SELECTOR_NAMES = (*EFFICACY_SCORES, *VARIANT_SCORES)


def rank_by_scores(ranking: ChannelRanking, name: str, scores: torch.Tensor) -> ChannelRanking:
    """The same measurement ranked by explicit per-channel ``scores`` (higher = better), labelled ``name``.

    Ties are broken by the same keys as every ranking (the core's :class:`~pe_iqa.analysis.ranking.ChannelRanking`).
    """
    return ChannelRanking(ranking.backbone, ranking.weights_id, ranking.layer, ranking.config, ranking.tuning, name,
                          scores)


def rank_by_selector(ranking: ChannelRanking, name: str) -> ChannelRanking:
    """The same measurement ranked by the built-in score or the variant score ``name``.

    Raises:
        ValueError: an unknown selector.
    """
    if name in EFFICACY_SCORES:
        return dataclasses.replace(ranking, score_name=name, scores=None)
    if name in VARIANT_SCORES:
        return rank_by_scores(ranking, name, VARIANT_SCORES[name](ranking.tuning, ranking.config))
    raise ValueError(f"unknown selector {name!r}; selectors: {list(SELECTOR_NAMES)}")
