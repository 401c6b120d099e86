"""The PE-selected deep-feature distance: functional :func:`pe_distance` and the :class:`PEDistance` module.

For each layer ``k`` and its selected channels ``S_k`` (H-x, L-x or F of a :class:`~pe_iqa.ranking.ChannelRanking`)::

    d_k(x, y) = Σ_{m ∈ S_k} w_m · 1/(H_k W_k) · Σ_{h,w} (φ_m(x) − φ_m(y))²        (Eq. 1 of the paper)
    d(x, y)   = mean_k d_k(x, y)

with ``w_m = 1/|S_k|`` (``weighting="uniform"``: exactly Eq. 1's ``1/(M·H·W)``) or ``w_m ∝ PE_m`` summing to 1
(``weighting="pe"``, as the paper's super-resolution loss). With ``channel_norm=True`` the selected channels
are first unit-normalised at every position, ``φ / (‖φ‖₂ + 1e-10)`` over ``S_k``, as LPIPS does for all
channels. Lower = more similar; 0 for identical images.

Inputs are ``(N, 3, H, W)`` (or ``(N, 1, H, W)``, repeated to RGB) in ``[0, 1]`` and validated (see
:func:`~pe_iqa.input_checks.check_image_pair`). The backbone is frozen and stops at the deepest layer used;
channels are selected before any per-channel arithmetic; the distance head runs in float32 even under
``torch.autocast``; gradients flow to the inputs and are finite at identical inputs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch
from torch import nn

from .backbones import Backbone, load_backbone, prune_deepest_tap
from .input_checks import check_image_pair
from .ranking import SUBSETS
from .registry import get_rankings
from .tuning import AnalysisConfig

__all__ = ["DEFAULTS", "PEDistance", "PELoss", "pe_distance"]

#: Package defaults, chosen on the shared LIVE data (see README "Choosing the defaults").
DEFAULTS: dict = {
    "backbone": "alexnet",
    "layers": ("relu3",),
    "subset": "high",
    "top_percent": 10.0,
    "channel_norm": True,
    "weighting": "uniform",
    "score": "pe",
}

_REDUCTIONS = ("mean", "sum", "none")
_WEIGHTINGS = ("uniform", "pe")
_NORM_EPS = 1e-10


class PEDistance(nn.Module):
    """PE-selected deep-feature distance as a frozen ``nn.Module`` (usable as a loss).

    Args:
        backbone: backbone name or a loaded :class:`~pe_iqa.backbones.Backbone` (shared, not copied).
        layers: layers to compare (default ``DEFAULTS["layers"]`` for AlexNet, else the backbone's defaults).
        weights: backbone weights tag (see :func:`~pe_iqa.backbones.load_backbone`).
        subset: ``"high"`` (H-x), ``"low"`` (L-x) or ``"all"`` (F).
        top_percent: x, the percentage of channels kept per layer, in ``(0, 100]``.
        channel_norm: unit-normalise the selected channels at each position (LPIPS-style).
        weighting: ``"uniform"`` or ``"pe"`` (channel weights proportional to their score).
        score: registered efficacy score ranking the channels (default ``"pe"``).
        config: PE analysis configuration (default :class:`~pe_iqa.tuning.AnalysisConfig`).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        data_range: maximum of the input range (``1.0`` for ``[0, 1]``).
        check_range: validate the value range (one host sync per call).
        prune: compute only the selected channels of the deepest layer (same result, less work; see
            :func:`~pe_iqa.backbones.prune_deepest_tap`). The given backbone is never modified.
        device: where to place the module.

    Example:
        >>> metric = PEDistance(weights="random", layers=["relu1"], top_percent=25)
        >>> x = torch.rand(2, 3, 64, 64)
        >>> metric(x, x).tolist()
        0.0
        >>> bool(metric(x, torch.rand(2, 3, 64, 64)) > 0)
        True
    """

    def __init__(
        self,
        backbone: str | Backbone = DEFAULTS["backbone"],
        layers: list[str] | tuple[str, ...] | None = None,
        *,
        weights: str = "DEFAULT",
        subset: str = DEFAULTS["subset"],
        top_percent: float = DEFAULTS["top_percent"],
        channel_norm: bool = DEFAULTS["channel_norm"],
        weighting: str = DEFAULTS["weighting"],
        score: str = DEFAULTS["score"],
        config: AnalysisConfig | None = None,
        reduction: str = "mean",
        data_range: float = 1.0,
        check_range: bool = True,
        prune: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
        if weighting not in _WEIGHTINGS:
            raise ValueError(f"weighting must be one of {_WEIGHTINGS}, got {weighting!r}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if not 0 < float(top_percent) <= 100:
            raise ValueError(f"top_percent must be in (0, 100], got {top_percent}")
        if not data_range > 0:
            raise ValueError(f"data_range must be > 0, got {data_range}")
        if isinstance(backbone, Backbone):
            net = backbone
            layers = net.spec.check_layers(layers if layers is not None else net.layers)
            if any(layer not in net.layers for layer in layers):
                raise ValueError(f"the given Backbone taps {net.layers}, not all of {layers}")
        else:
            if layers is None and backbone in ("alexnet", "alex"):
                layers = DEFAULTS["layers"]
            net = load_backbone(backbone, layers, weights=weights, device=device)
            layers = net.layers
        self.layers = tuple(layers)
        self.subset, self.top_percent, self.score = subset, float(top_percent), score
        self.channel_norm, self.weighting, self.reduction = bool(channel_norm), weighting, reduction
        self.data_range, self.check_range = float(data_range), bool(check_range)
        rankings = get_rankings(net, list(self.layers), score=score, config=config, device=device)
        self.rankings = rankings
        for index, layer in enumerate(self.layers):
            ranking = rankings[layer]
            channels = ranking.select(subset, self.top_percent)
            self.register_buffer(f"_channels_{index}", channels, persistent=False)
            self.register_buffer(f"_weights_{index}", self._channel_weights(ranking.score[channels]),
                                 persistent=False)
        # prune only when the last compared layer is the backbone's deepest tap (a given Backbone may tap deeper)
        can_prune = prune and subset != "all" and net.layers[-1] == self.layers[-1]
        pruned = prune_deepest_tap(net, channels) if can_prune else None
        #: whether a layer's backbone output already holds only its selected channels (in selection order)
        self._preselected = tuple(pruned is not None and i == len(self.layers) - 1 for i in range(len(self.layers)))
        self.backbone = pruned if pruned is not None else net
        if device is not None:
            self.to(device)

    def _channel_weights(self, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.to(torch.float32)
        if self.weighting == "pe" and float(scores.sum()) > 0:
            return scores / scores.sum()
        return torch.full_like(scores, 1.0 / scores.numel())

    def selected_channels(self) -> dict[str, torch.Tensor]:
        """The channel indices used per layer, ``{layer: (K,) int64}``."""
        return {layer: getattr(self, f"_channels_{i}").clone() for i, layer in enumerate(self.layers)}

    def channel_weights(self) -> dict[str, torch.Tensor]:
        """The per-channel weights ``w_m`` per layer (sum to 1), ``{layer: (K,) float32}``."""
        return {layer: getattr(self, f"_weights_{i}").clone() for i, layer in enumerate(self.layers)}

    @property
    def min_input_size(self) -> int:
        """Smallest height/width accepted (see :attr:`pe_iqa.backbones.Backbone.min_input_size`)."""
        return self.backbone.min_input_size

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Selected (and, with ``channel_norm``, normalised) float32 features of validated images.

        Args:
            images: ``(N, 3, H, W)`` in ``[0, 1]``.

        Returns:
            One ``(N, K_k, H_k, W_k)`` float32 tensor per layer. Cache them for a reference scored many
            times and pass them to :meth:`forward` as ``target_features``.
        """
        out = self.backbone(images)
        result = []
        for index, layer in enumerate(self.layers):
            feats = out[layer]
            if not self._preselected[index]:
                feats = feats.index_select(1, getattr(self, f"_channels_{index}"))
            feats = feats.float()
            if self.channel_norm:
                norm = torch.sqrt(feats.pow(2).sum(dim=1, keepdim=True) + _NORM_EPS**2)
                feats = feats / (norm + _NORM_EPS)
            result.append(feats)
        return result

    def prepare(self, preds: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a pair and bring it to ``(N, 3, H, W)`` in ``[0, 1]`` on this module's device."""
        preds, target = check_image_pair(preds, target, self.data_range, self.check_range, self.min_input_size)
        device = self.backbone.mean.device
        if preds.device != device:
            raise ValueError(
                f"inputs are on {preds.device} but the metric is on {device}; move one with .to(device)"
            )
        return preds, target

    def layer_distances(self, preds_feats: list[torch.Tensor], target_feats: list[torch.Tensor]) -> torch.Tensor:
        """Per-layer distances ``d_k``, ``(N, L)`` float32, from :meth:`features` outputs."""
        columns = []
        for index, (a, b) in enumerate(zip(preds_feats, target_feats, strict=True)):
            weights = getattr(self, f"_weights_{index}").view(1, -1, 1, 1)
            columns.append(((a - b).pow(2) * weights).sum(dim=1).mean(dim=(1, 2)))
        return torch.stack(columns, dim=1)

    def forward(
        self,
        preds: torch.Tensor,
        target: torch.Tensor,
        target_features: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Distance between distorted ``preds`` and reference ``target``.

        Args:
            preds: ``(N, 3, H, W)`` or ``(N, 1, H, W)`` in ``[0, data_range]``.
            target: same shape as ``preds``.
            target_features: optional precomputed :meth:`features` of ``target`` (then ``target`` is only
                validated, not run through the network).

        Returns:
            A scalar (``reduction`` ``"mean"``/``"sum"``) or ``(N,)`` (``"none"``) float32 tensor.
        """
        preds, target = self.prepare(preds, target)
        preds_feats = self.features(preds)
        target_feats = target_features if target_features is not None else self.features(target)
        per_image = self.layer_distances(preds_feats, target_feats).mean(dim=1)
        if self.reduction == "mean":
            return per_image.mean()
        if self.reduction == "sum":
            return per_image.sum()
        return per_image

    def extra_repr(self) -> str:
        counts = {layer: int(getattr(self, f"_channels_{i}").numel()) for i, layer in enumerate(self.layers)}
        return (f"backbone={self.backbone.spec.name}, subset={self.subset}, top_percent={self.top_percent:g}, "
                f"score={self.score}, channels={counts}, channel_norm={self.channel_norm}, "
                f"weighting={self.weighting}, reduction={self.reduction}")


class PELoss(PEDistance):
    """:class:`PEDistance` as a training loss: no value-range check (generator outputs may overshoot).

    Gradients flow to ``preds`` (and ``target``); the backbone stays frozen.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("check_range", False)
        super().__init__(*args, **kwargs)


_MODULES: OrderedDict[tuple, PEDistance] = OrderedDict()
_MODULES_LOCK = threading.Lock()
_MAX_MODULES = 8


def _cached_module(device: torch.device, options: dict) -> PEDistance:
    key = (str(device), *sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
    with _MODULES_LOCK:
        module = _MODULES.get(key)
        if module is not None:
            _MODULES.move_to_end(key)
            return module
    module = PEDistance(**options, device=device)
    with _MODULES_LOCK:
        _MODULES[key] = module
        while len(_MODULES) > _MAX_MODULES:
            _MODULES.popitem(last=False)
    return module


def pe_distance(
    preds: torch.Tensor,
    target: torch.Tensor,
    backbone: str = DEFAULTS["backbone"],
    layers: list[str] | tuple[str, ...] | None = None,
    *,
    weights: str = "DEFAULT",
    subset: str = DEFAULTS["subset"],
    top_percent: float = DEFAULTS["top_percent"],
    channel_norm: bool = DEFAULTS["channel_norm"],
    weighting: str = DEFAULTS["weighting"],
    score: str = DEFAULTS["score"],
    reduction: str = "mean",
    data_range: float = 1.0,
    check_range: bool = True,
) -> torch.Tensor:
    """PE-selected deep-feature distance between distorted and reference images (functional form).

    The module for a given set of options is built once per device (on the inputs' device) and reused.
    Arguments are those of :class:`PEDistance`.

    Args:
        preds: distorted images, ``(N, 3, H, W)`` or ``(N, 1, H, W)``, float in ``[0, data_range]``.
        target: reference images, same shape and device.

    Returns:
        Scalar (``"mean"``/``"sum"``) or ``(N,)`` (``"none"``) float32 distance; lower = more similar.

    Raises:
        TypeError, ValueError: on invalid images or options (see :func:`~pe_iqa.input_checks.check_image_pair`).

    Example:
        >>> x = torch.rand(1, 3, 64, 64)
        >>> float(pe_distance(x, x, weights="random", layers=["relu1"]))
        0.0
    """
    device = preds.device if isinstance(preds, torch.Tensor) else torch.device("cpu")
    options = {
        "backbone": backbone, "layers": list(layers) if layers is not None else None, "weights": weights,
        "subset": subset, "top_percent": top_percent, "channel_norm": channel_norm, "weighting": weighting,
        "score": score, "reduction": reduction, "data_range": data_range, "check_range": check_range,
    }
    return _cached_module(device, options)(preds, target)
