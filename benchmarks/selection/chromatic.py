"""Chromatic tuning: each channel's response to achromatic vs isoluminant colour gratings, and the scores on it.

Research code of the selection study (the shipped core does not import it). The PE paper observes that high-PE
channels are achromatic. To test that as a selection rule, this module measures, for every channel, the response to
oriented gratings at the CSF peak frequency in three colour directions, defined in linear-light sRGB around a mean
grey:

* ``achromatic``  — all primaries in phase, ``d = (1, 1, 1)``;
* ``red_green``   — red against green at constant luminance, ``d ∝ (1, −w_R/w_G, 0)``;
* ``blue_yellow`` — blue against red+green at constant luminance, ``d ∝ (−w_B/(w_R+w_G), same, 1)``;

with the Rec. 709 luminance weights ``w = (0.2126, 0.7152, 0.0722)`` (so ``w·d = 0`` for both colour
directions) and each ``d`` scaled to a largest component of 1: every direction swings the primaries by at
most ``contrast`` around the mean (equal use of the display gamut; cone contrasts are not equated). The image
is ``linear_c(x) = L0 (1 + contrast · d_c · cos(carrier(x)))``, encoded back with the sRGB transfer function,
where ``L0`` is the linear value of the mean grey and the carrier is that of
:func:`~pe_iqa.analysis.stimuli.oriented_gratings` (same geometry, orientations and phases).

Measurements are cached like tuning curves (one file per backbone, weights, layer and configuration, written and
verified by :mod:`pe_iqa.analysis.tuning_cache`, arrays ``orientations``, ``responses``, ``baseline``). The scores
(``achromatic``, ``pe_achromatic``) need these responses, not only the tuning curves, so they are not registered
efficacy scores: :func:`chromatic_rankings` ranks a layer's channels by them explicitly
(:func:`benchmarks.selection.variant_scores.rank_by_scores`)::

    net = load_backbone("alexnet", ["relu1", "relu3"])
    rankings = get_rankings(net)
    by_score = chromatic_rankings(rankings, chromatic_responses(net))  # {"achromatic": {...}, "pe_achromatic": ...}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.selection.variant_scores import rank_by_scores
from pe_iqa.analysis.ranking import ChannelRanking
from pe_iqa.analysis.stimuli import ViewingCondition, oriented_gratings
from pe_iqa.analysis.tuning import AnalysisConfig, peak_frequency, phase_mean_responses
from pe_iqa.analysis.tuning_cache import CacheEntryError, TuningKey, default_cache_dir, read_entry, write_entry
from pe_iqa.backbones import Backbone

__all__ = [
    "CHROMATIC_SCORES",
    "COLOUR_DIRECTIONS",
    "ChromaticConfig",
    "ChromaticResponses",
    "achromatic_share",
    "chromatic_gratings",
    "chromatic_rankings",
    "chromatic_responses",
    "linear_to_srgb",
    "measure_chromatic",
    "srgb_to_linear",
]

#: Rec. 709 / sRGB relative luminance weights of the linear R, G, B primaries.
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)


def _direction(vector: tuple[float, float, float]) -> tuple[float, float, float]:
    top = max(abs(v) for v in vector)
    return tuple(v / top for v in vector)  # type: ignore[return-value]


_WR, _WG, _WB = LUMINANCE_WEIGHTS
#: Colour directions in linear-light RGB, largest component 1 (the two colour ones are isoluminant).
COLOUR_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "achromatic": (1.0, 1.0, 1.0),
    "red_green": _direction((1.0, -_WR / _WG, 0.0)),
    "blue_yellow": _direction((-_WB / (_WR + _WG), -_WB / (_WR + _WG), 1.0)),
}


def srgb_to_linear(values: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in ``[0, 1]`` → linear light (IEC 61966-2-1), same shape."""
    values = torch.as_tensor(values, dtype=torch.float64)
    return torch.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: torch.Tensor) -> torch.Tensor:
    """Linear light in ``[0, 1]`` → sRGB-encoded values (IEC 61966-2-1), same shape."""
    values = torch.as_tensor(values, dtype=torch.float64).clamp(0.0, 1.0)
    return torch.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1.0 / 2.4) - 0.055)


@dataclass(frozen=True)
class ChromaticConfig:
    """The chromatic stimulus set (viewing condition and frequency come from the :class:`AnalysisConfig`).

    Attributes:
        n_orientations: orientations evenly spaced in ``[0, π)``.
        n_phases: phases averaged per orientation.
        contrast: largest per-primary modulation, relative to the mean, in linear light, in ``(0, 1]``.
        mean: sRGB grey level of the mean, in ``(0, 1)``.
    """

    n_orientations: int = 12
    n_phases: int = 4
    contrast: float = 0.5
    mean: float = 0.5

    def __post_init__(self) -> None:
        if not (isinstance(self.n_orientations, int) and self.n_orientations >= 1):
            raise ValueError(f"n_orientations must be an int >= 1, got {self.n_orientations!r}")
        if not (isinstance(self.n_phases, int) and self.n_phases >= 1):
            raise ValueError(f"n_phases must be an int >= 1, got {self.n_phases!r}")
        if not 0.0 < self.contrast <= 1.0:
            raise ValueError(f"contrast must be in (0, 1], got {self.contrast}")
        if not 0.0 < self.mean < 1.0:
            raise ValueError(f"mean must be in (0, 1), got {self.mean}")

    def orientations(self) -> torch.Tensor:
        """Orientations in radians, ``(T,)`` float64."""
        return torch.arange(self.n_orientations, dtype=torch.float64) * (torch.pi / self.n_orientations)

    def key(self) -> str:
        """A 12-hex-digit identity of this configuration and of the colour directions."""
        blob = json.dumps({"config": dataclasses.asdict(self), "directions": COLOUR_DIRECTIONS}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def chromatic_gratings(
    freq: float,
    orientations: torch.Tensor,
    direction: str,
    viewing: ViewingCondition,
    n_phases: int = 4,
    contrast: float = 0.5,
    mean: float = 0.5,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Oriented sinusoidal gratings modulated along one colour direction (see the module docstring).

    Args:
        freq: spatial frequency in cycles/degree, below Nyquist.
        orientations: orientations in radians, ``(T,)``.
        direction: a key of :data:`COLOUR_DIRECTIONS`.
        viewing: pixels per degree and image size.
        n_phases: phases per orientation ``P``.
        contrast: largest per-primary modulation in linear light, ``(0, 1]``.
        mean: sRGB grey level of the mean, ``(0, 1)``.
        dtype: floating dtype of the result.

    Returns:
        sRGB images ``(T·P, 3, S, S)`` in ``[0, 1]``, orientation-major like
        :func:`~pe_iqa.analysis.stimuli.oriented_gratings`.

    Raises:
        ValueError: on an unknown direction or invalid contrast/mean (and as ``oriented_gratings``).
    """
    if direction not in COLOUR_DIRECTIONS:
        raise ValueError(f"direction must be one of {sorted(COLOUR_DIRECTIONS)}, got {direction!r}")
    if not 0.0 < contrast <= 1.0:
        raise ValueError(f"contrast must be in (0, 1], got {contrast}")
    if not 0.0 < mean < 1.0:
        raise ValueError(f"mean must be in (0, 1), got {mean}")
    # cos(carrier) from a full-contrast achromatic grating I = (1 + cos)/2 of the same geometry
    unit = oriented_gratings(freq, orientations, viewing, n_phases, contrast=1.0, mean=0.5, dtype=torch.float64)
    cosine = 2.0 * unit[:, :1] - 1.0  # (T·P, 1, S, S)
    vector = torch.tensor(COLOUR_DIRECTIONS[direction], dtype=torch.float64).view(1, 3, 1, 1)
    base = srgb_to_linear(torch.tensor(mean, dtype=torch.float64))
    linear = base * (1.0 + contrast * vector * cosine)
    return linear_to_srgb(linear).to(dtype)


@dataclass
class ChromaticResponses:
    """Spatially averaged responses of one layer's channels to the chromatic gratings.

    Attributes:
        directions: colour direction names, ``D`` of them.
        orientations: orientations in radians, ``(T,)``.
        responses: phase-averaged responses, ``(M, D, T)``.
        baseline: response to the uniform mean-grey field, ``(M,)``.
    """

    directions: tuple[str, ...]
    orientations: torch.Tensor
    responses: torch.Tensor
    baseline: torch.Tensor

    def __post_init__(self) -> None:
        m, d, t = self.responses.shape
        if d != len(self.directions) or t != self.orientations.numel() or self.baseline.shape != (m,):
            raise ValueError(
                f"inconsistent shapes: responses {tuple(self.responses.shape)}, {len(self.directions)} directions, "
                f"{self.orientations.numel()} orientations, baseline {tuple(self.baseline.shape)}"
            )

    @property
    def n_channels(self) -> int:
        return int(self.responses.shape[0])

    def modulation(self) -> torch.Tensor:
        """Response change at the preferred orientation, ``max_θ |r_d(θ) − r_grey|``, ``(M, D)`` float64."""
        return (self.responses.to(torch.float64) - self.baseline.to(torch.float64)[:, None, None]).abs().amax(dim=2)


def achromatic_share(responses: ChromaticResponses) -> torch.Tensor:
    """Fraction of a channel's grating modulation that is achromatic: ``R_ach / (R_ach + R_rg + R_by)``.

    ``R_d`` is :meth:`ChromaticResponses.modulation` for direction ``d``. 1 = responds only to luminance
    gratings, 1/3 = colour-blind to the difference, 0 = responds only to isoluminant colour gratings.

    Args:
        responses: one layer's chromatic responses (must include ``"achromatic"``).

    Returns:
        ``(M,)`` float64 in ``[0, 1]``; 0 for channels no grating modulates (below ``1e-6`` of the layer's
        most modulated channel).

    References:
        The PE paper's observation that high-PE channels are achromatic; isoluminant gratings as in
        K. T. Mullen, "The contrast sensitivity of human colour vision to red-green and blue-yellow
        chromatic gratings", J. Physiology 359, 381–400, 1985.
    """
    if "achromatic" not in responses.directions:
        raise ValueError(f"responses need an 'achromatic' direction, have {responses.directions}")
    modulation = responses.modulation()
    total = modulation.sum(dim=1)
    top = float(total.max()) if total.numel() else 0.0
    alive = torch.isfinite(total) & (total > 1e-6 * top) if top > 0 else torch.zeros_like(total, dtype=torch.bool)
    share = modulation[:, responses.directions.index("achromatic")] / torch.where(alive, total, torch.ones_like(total))
    return torch.where(alive & torch.isfinite(share), share, torch.zeros_like(share)).clamp(0.0, 1.0)


def measure_chromatic(
    backbone: Backbone,
    config: AnalysisConfig | None = None,
    chroma: ChromaticConfig | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 32,
) -> dict[str, ChromaticResponses]:
    """Measure every tapped layer's responses to the chromatic gratings and to a uniform grey field.

    Args:
        backbone: the network (its taps are the layers measured).
        config: viewing condition and grating frequency (:func:`~pe_iqa.analysis.tuning.peak_frequency`).
        chroma: the chromatic stimulus set (default :class:`ChromaticConfig`).
        device: where to run (default: the backbone's device).
        batch_size: stimuli per forward pass, ``>= 1``.

    Returns:
        ``{layer: ChromaticResponses}`` with float64 CPU tensors, directions in :data:`COLOUR_DIRECTIONS` order.
    """
    if not isinstance(backbone, Backbone):
        raise TypeError(f"backbone must be a Backbone, got {type(backbone).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    config = config or AnalysisConfig()
    chroma = chroma or ChromaticConfig()
    run_device = torch.device(device) if device is not None else backbone.mean.device
    thetas = chroma.orientations()
    directions = tuple(COLOUR_DIRECTIONS)
    per_direction = []
    with torch.inference_mode():
        for direction in directions:
            images = chromatic_gratings(peak_frequency(config), thetas, direction, config.viewing, chroma.n_phases,
                                        chroma.contrast, chroma.mean)
            per_direction.append(phase_mean_responses(backbone, images, chroma.n_phases, batch_size, run_device))
            del images
        grey = torch.full((1, 3, config.size, config.size), chroma.mean, device=run_device)
        baseline = {layer: act.float().mean(dim=(2, 3))[0].double().cpu() for layer, act in backbone(grey).items()}
    return {
        layer: ChromaticResponses(directions, thetas, torch.stack([r[layer] for r in per_direction], dim=1),
                                  baseline[layer])
        for layer in backbone.layers
    }


_ARRAYS = ("orientations", "responses", "baseline")


def _key(net: Backbone, layer: str, config: AnalysisConfig, chroma: ChromaticConfig) -> TuningKey:
    return TuningKey(net.spec.name, net.weights_id, layer, f"chroma2-{chroma.key()}-{config.key()}")


def _read(path: Path, key: TuningKey, n_channels: int, chroma: ChromaticConfig) -> ChromaticResponses:
    arrays = read_entry(path, key, _ARRAYS)
    try:
        responses = ChromaticResponses(tuple(COLOUR_DIRECTIONS), arrays["orientations"], arrays["responses"],
                                       arrays["baseline"])
    except ValueError as error:
        raise CacheEntryError(f"{path}: {error}") from None
    if responses.n_channels != n_channels or not torch.allclose(responses.orientations, chroma.orientations()):
        raise CacheEntryError(f"{path}: does not fit {key.backbone} {key.layer}")
    return responses


def chromatic_responses(
    net: Backbone,
    config: AnalysisConfig | None = None,
    chroma: ChromaticConfig | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> dict[str, ChromaticResponses]:
    """Chromatic responses of every tapped layer of ``net``, from the cache or measured (then cached).

    Args:
        net: the network, analysed as it is (its weights fingerprint keys the cache).
        config: the PE analysis configuration (grating frequency, viewing condition).
        chroma: the chromatic stimulus set.
        cache_dir: cache folder (default :func:`~pe_iqa.analysis.tuning_cache.default_cache_dir`).
        use_cache: read and write cache files; ``False`` always measures afresh.

    Returns:
        ``{layer: ChromaticResponses}``.
    """
    config = config or AnalysisConfig()
    chroma = chroma or ChromaticConfig()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    counts = net.channels()
    found: dict[str, ChromaticResponses] = {}
    for layer in net.layers:
        key = _key(net, layer, config, chroma)
        path = folder / key.filename()
        if use_cache and path.is_file():
            try:
                found[layer] = _read(path, key, counts[layer], chroma)
            except (CacheEntryError, OSError) as error:
                warnings.warn(f"ignoring untrusted chromatic cache entry, replacing it: {error}", RuntimeWarning,
                              stacklevel=2)
    missing = [layer for layer in net.layers if layer not in found]
    if missing:
        measured = measure_chromatic(net, config, chroma)
        for layer in missing:
            found[layer] = measured[layer]
            if use_cache:
                responses = measured[layer]
                arrays = {"orientations": responses.orientations, "responses": responses.responses,
                          "baseline": responses.baseline}
                try:
                    write_entry(folder, _key(net, layer, config, chroma), chroma, arrays)
                except OSError as error:
                    warnings.warn(f"could not write the chromatic cache in {folder} ({error}); kept in memory",
                                  RuntimeWarning, stacklevel=2)
    return {layer: found[layer] for layer in net.layers}


def _achromatic(ranking: ChannelRanking, responses: ChromaticResponses) -> torch.Tensor:
    if not bool(ranking.tuning.magnitude().ne(0).any()):
        # silent for every achromatic grating: no achromatic modulation to share, whatever the network
        return torch.zeros(ranking.n_channels, dtype=torch.float64)
    return achromatic_share(responses)


#: The chromatic scores: ``achromatic`` (the achromatic share of each channel's grating modulation, see
#: :func:`achromatic_share`) and ``pe_achromatic`` (PE discounted by the chromatic fraction of the response).
CHROMATIC_SCORES = {
    "achromatic": lambda ranking, responses: _achromatic(ranking, responses),
    "pe_achromatic": lambda ranking, responses: ranking.pe * _achromatic(ranking, responses),
}


def chromatic_rankings(
    rankings: Mapping[str, ChannelRanking], responses: Mapping[str, ChromaticResponses]
) -> dict[str, dict[str, ChannelRanking]]:
    """The layers' channels ranked by each chromatic score.

    Args:
        rankings: ``{layer: ChannelRanking}`` (the PE rankings of the layers).
        responses: ``{layer: ChromaticResponses}`` of the same network (:func:`chromatic_responses`).

    Returns:
        ``{score name: {layer: ChannelRanking}}`` for every score in :data:`CHROMATIC_SCORES`.

    Raises:
        ValueError: if a layer's responses have another channel count than its ranking.
    """
    for layer, ranking in rankings.items():
        if responses[layer].n_channels != ranking.n_channels:
            raise ValueError(f"{layer}: chromatic responses have {responses[layer].n_channels} channels, "
                             f"the ranking {ranking.n_channels}")
    return {name: {layer: rank_by_scores(ranking, name, score(ranking, responses[layer]))
                   for layer, ranking in rankings.items()}
            for name, score in CHROMATIC_SCORES.items()}
