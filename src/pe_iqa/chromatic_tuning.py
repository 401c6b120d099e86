"""Chromatic tuning: each channel's response to achromatic vs isoluminant colour gratings, and the scores on it.

The PE paper observes that high-PE channels are achromatic. To test that as a selection rule, this module
measures, for every channel, the response to oriented gratings at the CSF peak frequency in three colour
directions, defined in linear-light sRGB around a mean grey:

* ``achromatic``  — all primaries in phase, ``d = (1, 1, 1)``;
* ``red_green``   — red against green at constant luminance, ``d ∝ (1, −w_R/w_G, 0)``;
* ``blue_yellow`` — blue against red+green at constant luminance, ``d ∝ (−w_B/(w_R+w_G), same, 1)``;

with the Rec. 709 luminance weights ``w = (0.2126, 0.7152, 0.0722)`` (so ``w·d = 0`` for both colour
directions) and each ``d`` scaled to a largest component of 1: every direction swings the primaries by at
most ``contrast`` around the mean (equal use of the display gamut; cone contrasts are not equated). The image
is ``linear_c(x) = L0 (1 + contrast · d_c · cos(carrier(x)))``, encoded back with the sRGB transfer function,
where ``L0`` is the linear value of the mean grey and the carrier is that of
:func:`~pe_iqa.stimuli.oriented_gratings` (same geometry, orientations and phases).

Measurements are cached like tuning curves (one file per backbone, weights, layer and configuration, written
with :func:`pe_iqa.ranking_cache.write_entry` and verified on read) and linked, in this process, to the
layer's :class:`~pe_iqa.tuning.TuningCurves` by a fingerprint of the curves. Because an efficacy score sees
only the tuning curves, the scores registered here (``achromatic``, ``pe_achromatic``) work once
:func:`prepare_chromatic` has run for the backbone and layers being ranked (otherwise they raise a
``ValueError`` saying so; tuning curves silent for every grating score 0 without a lookup)::

    from pe_iqa.chromatic_tuning import prepare_chromatic
    prepare_chromatic("alexnet", ["relu1", "relu3"])
    metric = PEDistance(layers=["relu3"], score="pe_achromatic")

Storage in the tuning-curve file format: ``frequencies`` ← the orientations ``(T,)``, ``response_f`` ← the
responses ``(M, D·T)`` (direction-major), ``orientations`` ← the direction indices ``(D,)``,
``response_theta`` ← the grey-field baseline ``(M, 1)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .backbones import Backbone, load_backbone, resolve_backbone_name
from .efficacy import EFFICACY_SCORES, perceptual_efficacy, register_score
from .ranking_cache import CacheEntryError, RankingKey, default_cache_dir, read_entry, write_entry
from .registry import get_rankings
from .stimuli import ViewingCondition, oriented_gratings
from .tuning import AnalysisConfig, TuningCurves

__all__ = [
    "COLOUR_DIRECTIONS",
    "ChromaticConfig",
    "ChromaticResponses",
    "achromatic_share",
    "chromatic_for",
    "chromatic_gratings",
    "linear_to_srgb",
    "measure_chromatic",
    "prepare_chromatic",
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
        :func:`~pe_iqa.stimuli.oriented_gratings`.

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


def _phase_mean_responses(backbone, images, n_phases, batch_size, device) -> dict[str, torch.Tensor]:
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in backbone.layers}
    for start in range(0, images.shape[0], batch_size):
        for layer, act in backbone(images[start:start + batch_size].to(device)).items():
            chunks[layer].append(act.float().mean(dim=(2, 3)).double().cpu())
    result = {}
    for layer, parts in chunks.items():
        acts = torch.cat(parts)  # (T·P, M)
        result[layer] = acts.view(-1, n_phases, acts.shape[1]).mean(dim=1).T.contiguous()  # (M, T)
    return result


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
        config: viewing condition and grating frequency (:meth:`AnalysisConfig.peak_frequency`).
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
    backbone = backbone.to(run_device)
    thetas = chroma.orientations()
    directions = tuple(COLOUR_DIRECTIONS)
    per_direction = []
    with torch.inference_mode():
        for direction in directions:
            images = chromatic_gratings(config.peak_frequency(), thetas, direction, config.viewing, chroma.n_phases,
                                        chroma.contrast, chroma.mean)
            per_direction.append(_phase_mean_responses(backbone, images, chroma.n_phases, batch_size, run_device))
            del images
        grey = torch.full((1, 3, config.size, config.size), chroma.mean, device=run_device)
        baseline = {layer: act.float().mean(dim=(2, 3))[0].double().cpu() for layer, act in backbone(grey).items()}
    return {
        layer: ChromaticResponses(directions, thetas, torch.stack([r[layer] for r in per_direction], dim=1),
                                  baseline[layer])
        for layer in backbone.layers
    }


# ---- cache and the link to tuning curves ----------------------------------------------------------------------

_LINKED: dict[str, ChromaticResponses] = {}
_LOCK = threading.Lock()


def _tuning_fingerprint(tuning: TuningCurves) -> str:
    digest = hashlib.sha256()
    for tensor in (tuning.frequencies, tuning.response_f, tuning.orientations, tuning.response_theta):
        data = tensor.detach().to("cpu", torch.float64).contiguous()
        digest.update(str(tuple(data.shape)).encode())
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def _pack(responses: ChromaticResponses) -> TuningCurves:
    m, d, t = responses.responses.shape
    return TuningCurves(responses.orientations, responses.responses.reshape(m, d * t),
                        torch.arange(d, dtype=torch.float64), responses.baseline.reshape(m, 1))


def _unpack(packed: TuningCurves, directions: tuple[str, ...]) -> ChromaticResponses:
    m, t, d = packed.response_f.shape[0], packed.frequencies.numel(), packed.orientations.numel()
    if d != len(directions) or packed.response_f.shape[1] != d * t or packed.response_theta.shape != (m, 1):
        raise CacheEntryError("chromatic cache entry has inconsistent shapes")
    return ChromaticResponses(directions, packed.frequencies, packed.response_f.reshape(m, d, t),
                              packed.response_theta.reshape(m))


def _key(name: str, weights_id: str, layer: str, config: AnalysisConfig, chroma: ChromaticConfig) -> RankingKey:
    return RankingKey(name, weights_id, layer, f"chroma-{chroma.key()}-{config.key()}")


def prepare_chromatic(
    backbone: str | Backbone = "alexnet",
    layers: list[str] | tuple[str, ...] | None = None,
    *,
    weights: str = "DEFAULT",
    config: AnalysisConfig | None = None,
    chroma: ChromaticConfig | None = None,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> dict[str, ChromaticResponses]:
    """Chromatic responses of several layers (cached), linked to their tuning curves for the chromatic scores.

    After this call, :func:`~pe_iqa.registry.get_rankings` and :class:`~pe_iqa.distance.PEDistance` accept
    ``score="achromatic"`` and ``score="pe_achromatic"`` for these layers (same backbone, weights, config).

    Args:
        backbone: backbone name or loaded :class:`~pe_iqa.backbones.Backbone`.
        layers: layer names (default: the backbone's default layers or the given Backbone's taps).
        weights: weights tag when ``backbone`` is a name.
        config: the PE analysis configuration of the rankings to link to.
        chroma: the chromatic stimulus set.
        device: where to measure if needed.
        cache_dir: cache folder (default :func:`~pe_iqa.ranking_cache.default_cache_dir`).
        use_cache: read and write cache files; ``False`` always measures afresh.

    Returns:
        ``{layer: ChromaticResponses}``.
    """
    config = config or AnalysisConfig()
    chroma = chroma or ChromaticConfig()
    if isinstance(backbone, Backbone):
        net = backbone
        layers = net.spec.check_layers(layers if layers is not None else net.layers)
        if any(layer not in net.layers for layer in layers):
            net = load_backbone(net.spec.name, layers, weights=net.weights, device=device)
    else:
        net = load_backbone(resolve_backbone_name(backbone), layers, weights=weights, device=device)
        layers = net.layers
    rankings = get_rankings(net, list(layers), config=config, device=device, cache_dir=cache_dir,
                            use_cache=use_cache)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    directions = tuple(COLOUR_DIRECTIONS)
    found: dict[str, ChromaticResponses] = {}
    for layer in layers:
        path = folder / _key(net.spec.name, net.weights_id, layer, config, chroma).filename()
        if use_cache and path.is_file():
            try:
                found[layer] = _unpack(read_entry(path, _key(net.spec.name, net.weights_id, layer, config, chroma)),
                                       directions)
            except (CacheEntryError, OSError, UnicodeDecodeError) as error:
                warnings.warn(f"ignoring untrusted chromatic cache entry, rebuilding it: {error}", RuntimeWarning,
                              stacklevel=2)
    missing = [layer for layer in layers if layer not in found]
    if missing:
        measured = measure_chromatic(net, config, chroma, device=device)
        for layer in missing:
            found[layer] = measured[layer]
            if use_cache:
                try:
                    write_entry(folder, _key(net.spec.name, net.weights_id, layer, config, chroma), config,
                                _pack(measured[layer]))
                except OSError as error:
                    warnings.warn(f"could not write the chromatic cache in {folder} ({error}); kept in memory",
                                  RuntimeWarning, stacklevel=2)
    with _LOCK:
        for layer in layers:
            if found[layer].n_channels != rankings[layer].n_channels:
                raise RuntimeError(f"{layer}: chromatic and tuning measurements disagree on the channel count")
            _LINKED[_tuning_fingerprint(rankings[layer].tuning)] = found[layer]
    return {layer: found[layer] for layer in layers}


def chromatic_for(tuning: TuningCurves) -> ChromaticResponses:
    """The chromatic responses linked to ``tuning`` by :func:`prepare_chromatic`.

    Raises:
        ValueError: if none were prepared for these tuning curves.
    """
    with _LOCK:
        found = _LINKED.get(_tuning_fingerprint(tuning))
    if found is None:
        raise ValueError(
            "no chromatic responses for these tuning curves: call "
            "pe_iqa.chromatic_tuning.prepare_chromatic(backbone, layers, weights=..., config=...) first"
        )
    if found.n_channels != tuning.n_channels:
        raise ValueError(f"chromatic responses have {found.n_channels} channels, tuning curves {tuning.n_channels}")
    return found


def _linked_share(tuning: TuningCurves) -> torch.Tensor:
    if not bool(tuning.magnitude().ne(0).any()):
        # silent for every achromatic grating: no achromatic modulation to share, whatever the network
        return torch.zeros(tuning.n_channels, dtype=torch.float64)
    return achromatic_share(chromatic_for(tuning))


def _achromatic_score(tuning: TuningCurves, config: AnalysisConfig) -> torch.Tensor:
    """Achromatic share of the linked chromatic responses (see :func:`achromatic_share`)."""
    return _linked_share(tuning)


def _pe_achromatic_score(tuning: TuningCurves, config: AnalysisConfig) -> torch.Tensor:
    """``PE_m × achromatic share_m``: PE, discounted by the fraction of the response that is chromatic."""
    return perceptual_efficacy(tuning, config.csf) * _linked_share(tuning)


for _name, _fn in {"achromatic": _achromatic_score, "pe_achromatic": _pe_achromatic_score}.items():
    if _name not in EFFICACY_SCORES:
        register_score(_name, _fn)
