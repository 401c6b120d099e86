"""The PE-selected deep-feature distance: functional :func:`pe_distance` and the :class:`PEDistance` module.

For each layer ``k`` and its selected channels ``S_k`` (H-x, L-x or F of a :class:`~pe_iqa.ranking.ChannelRanking`)::

    d_k(x, y) = Σ_{m ∈ S_k} w_m · 1/(H_k W_k) · Σ_{h,w} (φ_m(x) − φ_m(y))²        (Eq. 1 of the paper)
    d(x, y)   = mean_k d_k(x, y)

with ``w_m = 1/|S_k|`` (``weighting="uniform"``: exactly Eq. 1's ``1/(M·H·W)``) or ``w_m ∝ PE_m`` summing to 1
(``weighting="pe"``, as the paper's super-resolution loss). With ``channel_norm=True`` the selected channels
are first unit-normalised at every position, ``φ / (‖φ‖₂ + 1e-10)`` over ``S_k``, as LPIPS does for all
channels. Lower = more similar; 0 for identical images. ``d(x, y) = d(y, x)``: both images go through the
same network and every term is a squared difference.

Inputs are ``(N, 3, H, W)`` (or ``(N, 1, H, W)``, repeated to RGB) in ``[0, 1]`` and validated (see
:mod:`pe_iqa.input_checks`). The backbone is frozen and stops at the deepest layer used; channels are
selected before any per-channel arithmetic; the distance head runs in float32 even under ``torch.autocast``;
gradients flow to the inputs and are finite at identical inputs.

Speed (results unchanged, see ``benchmarks/throughput.py``): the deepest convolution computes only the
selected channels (``prune``), the backbone weights are stored channels-last (``channels_last``, 5–27 % less
CPU time with oneDNN), the value check costs one host sync per call (none with ``check_range=False``), a
reference scored many times can be encoded once (:meth:`PEDistance.features` + ``target_features=``), and
``compile=True`` wraps the backbone in :func:`torch.compile`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .backbones import Backbone, load_backbone, prune_deepest_tap
from .efficacy import EFFICACY_SCORES
from .input_checks import check_image_pair, check_image_structure, check_images
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


def _check_options(subset: str, top_percent: float, weighting: str, score: str, reduction: str,
                   data_range: float) -> None:
    """Validate the distance options before any network is loaded or ranking measured."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    if weighting not in _WEIGHTINGS:
        raise ValueError(f"weighting must be one of {_WEIGHTINGS}, got {weighting!r}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if score not in EFFICACY_SCORES:
        raise ValueError(f"score must be one of {sorted(EFFICACY_SCORES)}, got {score!r}")
    if isinstance(top_percent, bool) or not isinstance(top_percent, (int, float)) or not 0 < top_percent <= 100:
        raise ValueError(f"top_percent must be a number in (0, 100] (percent of channels kept), got {top_percent!r}")
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"data_range must be a number > 0 (1.0 for [0, 1] images), got {data_range!r}")


def _check_channel_counts(net: Backbone, rankings: dict) -> None:
    """A given Backbone must compute every channel its rankings cover (not, e.g., another metric's pruned copy)."""
    counts = net.channels()
    for layer, ranking in rankings.items():
        if counts[layer] != ranking.n_channels:
            raise ValueError(
                f"layer {layer} of the given backbone has {counts[layer]} channels but its ranking has "
                f"{ranking.n_channels}: it was pruned (a PEDistance's .backbone computes only the selected "
                f"channels); pass the original backbone or a backbone name instead"
            )


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
        check_range: validate that values are finite and within ``[0, data_range]`` (one host sync per call
            for both inputs); ``False`` checks no values (no sync; NaN inputs then give NaN).
        prune: compute only the selected channels of the deepest layer (same result, less work; see
            :func:`~pe_iqa.backbones.prune_deepest_tap`). The given backbone is never modified.
        channels_last: store the backbone's weights channels-last (same result; faster oneDNN convolutions on
            CPU). Applied only to a backbone this module owns (loaded by name, or the pruned copy).
        compile: run the backbone through :func:`torch.compile`: ``True`` for its default backend (inductor),
            or a backend name (e.g. ``"aot_eager"``). Same results within float rounding. With inductor the first
            call per input shape compiles (≈20–40 s on 2 CPU cores for AlexNet), then runs ≈5 % faster on CPU.
        device: where to place the module.

    Inputs must be on the module's device; their dtype is converted to the backbone's (float32 unless the
    module was cast) — use ``torch.autocast`` for reduced precision.

    Raises:
        ValueError: on an unknown subset, weighting, reduction, score, backbone or layer, ``top_percent``
            outside ``(0, 100]``, ``data_range <= 0``, or a given Backbone that was pruned (another metric's
            ``.backbone``).

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
        channels_last: bool = True,
        compile: bool | str = False,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        _check_options(subset, top_percent, weighting, score, reduction, data_range)
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
        if isinstance(backbone, Backbone):
            _check_channel_counts(net, rankings)
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
        if channels_last and (pruned is not None or not isinstance(backbone, Backbone)):
            self.backbone.to(memory_format=torch.channels_last)
        # not registered as a submodule: it wraps self.backbone, whose parameters are the ones to move/save
        if isinstance(compile, str):
            run: nn.Module = torch.compile(self.backbone, backend=compile)
        else:
            run = torch.compile(self.backbone) if compile else self.backbone
        self.__dict__["_run_backbone"] = run
        # buffers follow the backbone (a given Backbone may already be on a GPU)
        self.to(device if device is not None else net.mean.device)

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

    @property
    def device(self) -> torch.device:
        """The device of the backbone (inputs must be on it)."""
        return self.backbone.mean.device

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        out = self._run_backbone(images)  # converts images to the backbone's dtype
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

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Selected (and, with ``channel_norm``, normalised) float32 features of a batch of images.

        Args:
            images: ``(N, 3, H, W)`` or ``(N, 1, H, W)`` in ``[0, data_range]`` (validated like ``forward``'s).

        Returns:
            One ``(N, K_k, H_k, W_k)`` float32 tensor per layer. Cache them for a reference scored many
            times and pass them to :meth:`forward` as ``target_features``.

        Example:
            >>> metric = PEDistance(weights="random", layers=["relu1"])
            >>> reference = torch.rand(1, 3, 64, 64)
            >>> cached = metric.features(reference)
            >>> distorted = reference.clamp(0.1, 0.9)
            >>> bool(metric(distorted, reference, target_features=cached) == metric(distorted, reference))
            True
        """
        images = check_images(images, "images", self.data_range, self.check_range, self.min_input_size,
                              self.device)
        return self._features(images)

    def prepare(self, preds: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a pair and bring it to ``(N, 3, H, W)`` in ``[0, 1]`` (see :func:`check_image_pair`).

        Raises:
            TypeError, ValueError: invalid images, or images on another device than this module.
        """
        return check_image_pair(preds, target, self.data_range, self.check_range, self.min_input_size,
                                self.device)

    def layer_distances(self, preds_feats: list[torch.Tensor], target_feats: list[torch.Tensor]) -> torch.Tensor:
        """Per-layer distances ``d_k``, ``(N, L)`` float32, from :meth:`features` outputs."""
        columns = []
        for index, (a, b) in enumerate(zip(preds_feats, target_feats, strict=True)):
            weights = getattr(self, f"_weights_{index}").float().view(1, -1, 1, 1)
            columns.append(((a - b).pow(2) * weights).sum(dim=1).mean(dim=(1, 2)))
        return torch.stack(columns, dim=1)

    def _check_target_features(self, target_features: Sequence[torch.Tensor], preds_feats: list[torch.Tensor]) -> None:
        if not isinstance(target_features, Sequence) or len(target_features) != len(preds_feats):
            raise ValueError(
                f"target_features must be the list of {len(preds_feats)} tensors returned by features(target), "
                f"got {type(target_features).__name__}"
                + (f" of length {len(target_features)}" if isinstance(target_features, Sequence) else "")
            )
        for layer, ours, theirs in zip(self.layers, preds_feats, target_features, strict=True):
            if not isinstance(theirs, torch.Tensor) or theirs.shape != ours.shape:
                got = tuple(theirs.shape) if isinstance(theirs, torch.Tensor) else type(theirs).__name__
                raise ValueError(
                    f"target_features for layer {layer} must have shape {tuple(ours.shape)} (that of preds' "
                    f"features), got {got}; compute them with features(target) on the same image size and batch"
                )

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

        Raises:
            TypeError, ValueError: invalid images (see :func:`~pe_iqa.input_checks.check_image_pair`), images on
                another device than the module, or ``target_features`` not matching ``preds``.
        """
        preds, target = self.prepare(preds, target)
        preds_feats = self._features(preds)
        if target_features is None:
            target_feats = self._features(target)
        else:
            self._check_target_features(target_features, preds_feats)
            target_feats = list(target_features)
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


def _cached_module(device: torch.device, dtype: torch.dtype, options: dict) -> PEDistance:
    key = (str(device), str(dtype),
           *sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
    with _MODULES_LOCK:
        module = _MODULES.get(key)
        if module is not None:
            _MODULES.move_to_end(key)
            return module
    module = PEDistance(**options, device=device)
    if dtype != torch.float32:
        module.backbone.to(dtype)  # the distance head stays float32
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

    The module for a given set of options is built once per device and dtype of the inputs and reused (up
    to 8 kept): the backbone runs on the inputs' device in their dtype (e.g. float16 inputs on a GPU run a
    float16 network); the distance head and the result are float32. Arguments are those of :class:`PEDistance`.

    Args:
        preds: distorted images, ``(N, 3, H, W)`` or ``(N, 1, H, W)``, float in ``[0, data_range]``.
        target: reference images, same shape and device (converted to ``preds``' dtype).

    Returns:
        Scalar (``"mean"``/``"sum"``) or ``(N,)`` (``"none"``) float32 distance; lower = more similar.

    Raises:
        TypeError, ValueError: on invalid images or options (see :func:`~pe_iqa.input_checks.check_image_pair`).

    Example:
        >>> x = torch.rand(1, 3, 64, 64)
        >>> float(pe_distance(x, x, weights="random", layers=["relu1"]))
        0.0
    """
    # fail on bad images or options before (possibly) loading a network and measuring rankings
    check_image_structure("preds", preds)
    check_image_structure("target", target)
    _check_options(subset, top_percent, weighting, score, reduction, data_range)
    options = {
        "backbone": backbone, "layers": list(layers) if layers is not None else None, "weights": weights,
        "subset": subset, "top_percent": top_percent, "channel_norm": channel_norm, "weighting": weighting,
        "score": score, "reduction": reduction, "data_range": data_range, "check_range": check_range,
    }
    return _cached_module(preds.device, preds.dtype, options)(preds, target)
