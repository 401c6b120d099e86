"""The PE-selected deep-feature distance: the :class:`PEDistance` module and :class:`PELoss`.

A distance is named by a preset (``"pe_alex"``, the default; ``"pe_vgg"``; ``"pe_alex_f"``) or given as a
:class:`~pe_iqa.spec.DistanceSpec`, with any of its fields overridden by keyword (``layers=``, ``top_percent=`` …).
:func:`~pe_iqa.resolver.resolve` turns it into a network and selected channels; the per-layer distance is the Eq. 1
kernel of :mod:`pe_iqa.feature_distance`, and layers are averaged (or weighted by ``layer_weights``)::

    d(x, y) = mean_k  mean_{h,w}  Σ_{m ∈ S_k} w_m (φ_m(x) − φ_m(y))²

Lower = more similar; 0 for identical images; ``d(x, y) = d(y, x)``. With unit-normalised channels (every preset)
the value is ``1 − cos`` of the feature vectors, in ``[0, 1]`` for ReLU layers, whatever the number of channels.

Inputs are ``(N, 3, H, W)`` (or ``(N, 1, H, W)``, repeated to RGB) in ``[0, data_range]`` and validated (see
:mod:`pe_iqa.input_checks`). The backbone is frozen and stops at the deepest layer used; the distance head runs in
float32 (float64 for a float64 network) even under ``torch.autocast``; gradients flow to the inputs and are finite
at identical inputs.

Speed (results unchanged, see ``benchmarks/throughput.py``): the deepest convolution computes only the selected
channels (``prune``), the backbone weights are stored channels-last (``channels_last``, 5–27 % less CPU time with
oneDNN), the value check costs one host sync per call (none with ``check_range=False``), a reference scored many
times can be encoded once (:meth:`PEDistance.features` + ``target_features=``), and ``compile=True`` wraps the
backbone in :func:`torch.compile`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from .backbones import Backbone, prune_deepest_tap
from .distance_maps import DistanceMaps, combine_maps
from .feature_distance import combine_layers, distance_map, layer_distance, prepare_features
from .input_checks import check_image_pair, check_images
from .presets import DEFAULT_METRIC, resolve_spec
from .resolver import rankings_of, resolve
from .spec import DistanceSpec, check_bool

if TYPE_CHECKING:
    from .analysis.ranking import ChannelRanking

__all__ = ["DISTANCE_OPTIONS", "MODULE_OPTIONS", "REDUCTIONS", "PEDistance", "PELoss", "reduce"]

REDUCTIONS = ("mean", "sum", "none")
#: Keyword arguments of :class:`PEDistance` that say how the distance is run, not what it is (the rest are
#: :class:`~pe_iqa.spec.DistanceSpec` fields).
MODULE_OPTIONS = frozenset({"reduction", "check_range", "prune", "channels_last", "compile", "device"})
#: Every keyword argument :class:`PEDistance` accepts besides ``metric``.
DISTANCE_OPTIONS = DistanceSpec.option_names() | {"backbone"} | MODULE_OPTIONS
#: Estimated activation memory (bytes, :meth:`~pe_iqa.backbones.Backbone.activation_bytes_per_pixel`) above which
#: a call warns.
MEMORY_WARNING_BYTES = 4 * 1024**3


def check_reduction(reduction: object) -> str:
    """``reduction`` if it is one of :data:`REDUCTIONS`, else a ``ValueError``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return str(reduction)


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce per-image values ``(N,)`` over the batch: ``"mean"``, ``"sum"`` or ``"none"`` (unchanged)."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


class _LayerHead(nn.Module):
    """The selected channels of one layer and their weights (buffers that follow the module's device)."""

    def __init__(self, layer: str, channels: torch.Tensor, channel_weights: torch.Tensor, preselected: bool) -> None:
        super().__init__()
        self.layer = layer
        #: whether the backbone already returns only the selected channels, in selection order (pruned conv)
        self.preselected = preselected
        self.register_buffer("channels", channels, persistent=False)
        self.register_buffer("channel_weights", channel_weights, persistent=False)

    def extra_repr(self) -> str:
        return f"{self.layer}: {self.channels.numel()} channels"


class PEDistance(nn.Module):
    """PE-selected deep-feature distance as a frozen ``nn.Module`` (usable as a loss).

    Args:
        metric: a preset name (:data:`~pe_iqa.presets.PRESETS`: ``"pe_alex"``, ``"pe_vgg"``, ``"pe_alex_f"``) or a
            :class:`~pe_iqa.spec.DistanceSpec`.
        backbone: a backbone name, or a loaded :class:`~pe_iqa.backbones.Backbone` to use as it is (shared, not
            copied; analysed with the weights it holds). A name replaces the preset's backbone and, unless
            ``layers`` is given, its layers by the new backbone's default layers.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        check_range: validate that values are finite and within ``[0, data_range]`` (one host sync per call for
            both inputs); ``False`` checks no values (no sync; NaN inputs then give NaN).
        prune: compute only the selected channels of the deepest layer (same result, less work; see
            :func:`~pe_iqa.backbones.prune_deepest_tap`). A given backbone is never modified.
        channels_last: store the backbone's weights channels-last (same result; faster oneDNN convolutions on
            CPU). Applied only to a backbone this module owns (loaded by name, or the pruned copy).
        compile: run the backbone through :func:`torch.compile`: ``True`` for its default backend (inductor), or a
            backend name (e.g. ``"aot_eager"``). Same results within float rounding.
        device: where to place the module.
        **options: :class:`~pe_iqa.spec.DistanceSpec` fields replacing the preset's: ``layers``, ``weights``,
            ``subset``, ``top_percent``, ``channel_norm``, ``weighting``, ``score``, ``config``, ``data_range``,
            ``layer_weights``.

    Inputs must be on the module's device; their dtype is converted to the backbone's (float32 unless the module
    was cast) — use ``torch.autocast`` for reduced precision.

    Raises:
        TypeError, ValueError: an unknown preset or option, an invalid option value, or a given Backbone that does
            not tap the layers or was pruned (another metric's ``.backbone``).

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
        metric: str | DistanceSpec = DEFAULT_METRIC,
        *,
        backbone: str | Backbone | None = None,
        reduction: str = "mean",
        check_range: bool = True,
        prune: bool = True,
        channels_last: bool = True,
        compile: bool | str = False,
        device: torch.device | str | None = None,
        **options: object,
    ) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.check_range = check_bool("check_range", check_range)
        prune, channels_last = check_bool("prune", prune), check_bool("channels_last", channels_last)
        given = backbone if isinstance(backbone, Backbone) else None
        if given is not None and options.get("layers") is not None:  # the given network's layers, by name
            backbone = given.spec.name
        spec = resolve_spec(metric, backbone=None if isinstance(backbone, Backbone) else backbone, **options)
        resolved = resolve(spec, backbone=given, device=device)
        #: the :class:`~pe_iqa.spec.DistanceSpec` this module computes
        self.spec = resolved.spec
        #: fingerprint of the network weights the channels were selected for
        self.weights_id = resolved.weights_id
        self.layers = tuple(layer.name for layer in resolved.layers)
        known = {layer.name: layer.ranking for layer in resolved.layers if layer.ranking is not None}
        self._rankings: dict[str, ChannelRanking] | None = known if len(known) == len(self.layers) else None
        self.__dict__["_given_backbone"] = given  # not a submodule: analysed again on demand, never moved or saved
        net = resolved.backbone
        deepest = resolved.layers[-1]
        can_prune = prune and spec.subset != "all" and net.layers[-1] == deepest.name
        pruned = prune_deepest_tap(net, deepest.channels) if can_prune else None
        self.heads = nn.ModuleList(
            _LayerHead(layer.name, layer.channels, layer.channel_weights, pruned is not None and layer is deepest)
            for layer in resolved.layers
        )
        self.backbone = pruned if pruned is not None else net
        if channels_last and (pruned is not None or given is None):
            self.backbone.to(memory_format=torch.channels_last)
        # not registered as a submodule: it wraps self.backbone, whose parameters are the ones to move/save
        if isinstance(compile, str):
            run: Callable = torch.compile(self.backbone, backend=compile)
        else:
            run = torch.compile(self.backbone) if compile else self.backbone
        self.__dict__["_run_backbone"] = run
        layer_weights = self.spec.layer_weights
        self.register_buffer("layer_weights", None if layer_weights is None else torch.tensor(layer_weights),
                             persistent=False)
        self._warned_sizes: set[tuple[int, ...]] = set()
        # buffers follow the backbone (a given Backbone may already be on a GPU)
        self.to(device if device is not None else net.mean.device)

    #: Lower values mean more similar images (a distance).
    lower_better = True
    #: TorchMetrics' name for the same fact (from :attr:`lower_better`).
    higher_is_better = not lower_better
    #: The values a distance can take: ``1 − cos`` of ReLU feature vectors with unit-normalised channels (every
    #: preset), so ``[0, 1]``; the raw Eq. 1 (``channel_norm=False``) is unbounded above (see :attr:`value_range`).
    score_range = (0.0, 1.0)

    @property
    def value_range(self) -> tuple[float, float]:
        """The range of this distance's values (:attr:`pe_iqa.spec.DistanceSpec.value_range`): :attr:`score_range`
        with unit-normalised channels and uniform weights (every preset), else ``(0, inf)``."""
        return self.spec.value_range

    @property
    def rankings(self) -> dict[str, ChannelRanking]:
        """The channel rankings of the compared layers, ``{layer: ChannelRanking}`` (loads the PE analysis on first
        use: the shipped or cached tuning curves, ranked by the spec's score)."""
        if self._rankings is None:
            given = self.__dict__["_given_backbone"]
            rankings = rankings_of(self.spec, given, self.device if given is None else None)
            stale = [r.layer for r in rankings.values() if r.weights_id != self.weights_id]
            if stale:
                raise RuntimeError(f"the weights of {self.spec.backbone} changed since this distance selected its "
                                   f"channels ({self.weights_id}); its rankings cannot be recomputed")
            self._rankings = rankings
        return dict(self._rankings)

    @property
    def net(self) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
        """The feature network called on images (``{layer: activations}``); see :meth:`use_network`."""
        return self._run_backbone

    def use_network(self, network: Callable[[torch.Tensor], dict[str, torch.Tensor]]) -> None:
        """Call ``network`` instead of this module's own backbone (to share one network between metrics).

        TorchMetrics' ``FeatureShare`` gives every metric a caching wrapper of the first metric's network. Every
        layer's channels are then selected from that network's outputs, which must hold all channels of the
        compared layers: build metrics that share a network with ``prune=False``.
        """
        if not callable(network):
            raise TypeError(f"network must be callable, got {type(network).__name__}")
        self.__dict__["_run_backbone"] = network
        for head in self.heads:
            head.preselected = False

    def selected_channels(self) -> dict[str, torch.Tensor]:
        """The channel indices used per layer, ``{layer: (K,) int64}``."""
        return {head.layer: head.channels.clone() for head in self.heads}

    def channel_weights(self) -> dict[str, torch.Tensor]:
        """The per-channel weights per layer, ``{layer: (K,) float32}`` (see :mod:`pe_iqa.feature_distance`)."""
        return {head.layer: head.channel_weights.clone() for head in self.heads}

    @property
    def min_input_size(self) -> int:
        """Smallest height/width accepted (see :attr:`pe_iqa.backbones.Backbone.min_input_size`)."""
        return self.backbone.min_input_size

    @property
    def device(self) -> torch.device:
        """The device of the backbone (inputs must be on it)."""
        return self.backbone.mean.device

    def _head_dtype(self) -> torch.dtype:
        return torch.float64 if self.backbone.mean.dtype == torch.float64 else torch.float32

    def _warn_memory(self, images: torch.Tensor) -> None:
        """Estimate the call's peak memory before the network runs: above the budget a ``MemoryBudgetError``
        (:mod:`pe_iqa.memory`), above 4 GiB a warning (once per input shape)."""
        from .memory import MEMORY_BUDGET_ENV, MemoryBudgetError, describe_bytes, estimate_call_bytes, memory_budget

        shape = tuple(images.shape)
        estimate = estimate_call_bytes(self.backbone.activation_bytes_per_pixel(), shape)
        budget = memory_budget(images.device)
        if estimate > budget:
            raise MemoryBudgetError(
                f"{self.spec.backbone} on {shape[0]} {shape[-1]}×{shape[-2]} pair(s) needs about "
                f"{describe_bytes(estimate)}, above the memory budget of {describe_bytes(budget)}; downscale the "
                f"images, score one pair per batch, or set {MEMORY_BUDGET_ENV}")
        if shape in self._warned_sizes:
            return
        self._warned_sizes.add(shape)
        if estimate > MEMORY_WARNING_BYTES:
            warnings.warn(
                f"{self.spec.backbone} on a batch of {shape[0]} {shape[-1]}×{shape[-2]} images needs about "
                f"{describe_bytes(estimate)} of memory; score smaller batches or downscaled images",
                ResourceWarning, stacklevel=3)

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        self._warn_memory(images)
        out = self._run_backbone(images)  # converts images to the backbone's dtype
        dtype = self._head_dtype()
        return [prepare_features(out[head.layer], None if head.preselected else head.channels,
                                 self.spec.channel_norm, dtype) for head in self.heads]

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Selected (and, with ``channel_norm``, normalised) features of a batch of images.

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
        images = check_images(images, "images", self.spec.data_range, self.check_range, self.min_input_size,
                              self.device)
        return self._features(images)

    def prepare(self, preds: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a pair and bring it to ``(N, 3, H, W)`` in ``[0, 1]`` (see :func:`check_image_pair`).

        Raises:
            TypeError, ValueError: invalid images, or images on another device than this module.
        """
        return check_image_pair(preds, target, self.spec.data_range, self.check_range, self.min_input_size,
                                self.device)

    def layer_distances(self, preds_feats: list[torch.Tensor], target_feats: list[torch.Tensor]) -> torch.Tensor:
        """Per-layer distances, ``(N, L)``, from :meth:`features` outputs."""
        return torch.stack([layer_distance(a, b, head.channel_weights)
                            for head, a, b in zip(self.heads, preds_feats, target_feats, strict=True)], dim=1)

    def layer_maps(self, preds_feats: list[torch.Tensor], target_feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-layer distance maps, ``[(N, H_k, W_k)]``, from :meth:`features` outputs (each averages to its layer's
        distance)."""
        return [distance_map(a, b, head.channel_weights)
                for head, a, b in zip(self.heads, preds_feats, target_feats, strict=True)]

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

    def pair_features(self, preds: torch.Tensor, target: torch.Tensor,
                      target_features: list[torch.Tensor] | None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Validated pair → (:meth:`features` of ``preds``, those of ``target`` or the given ``target_features``)."""
        preds, target = self.prepare(preds, target)
        preds_feats = self._features(preds)
        if target_features is None:
            return preds_feats, self._features(target)
        self._check_target_features(target_features, preds_feats)
        return preds_feats, list(target_features)

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
            A scalar (``reduction`` ``"mean"``/``"sum"``) or ``(N,)`` (``"none"``) float32 tensor (float64 for a
            float64 network).

        Raises:
            TypeError, ValueError: invalid images (see :func:`~pe_iqa.input_checks.check_image_pair`), images on
                another device than the module, or ``target_features`` not matching ``preds``.
        """
        preds_feats, target_feats = self.pair_features(preds, target, target_features)
        return reduce(combine_layers(self.layer_distances(preds_feats, target_feats), self.layer_weights),
                      self.reduction)

    def maps(
        self,
        preds: torch.Tensor,
        target: torch.Tensor,
        target_features: list[torch.Tensor] | None = None,
    ) -> DistanceMaps:
        """Per-position distances of each pair: per layer and combined, at the input size (differentiable).

        Each layer's map is :func:`~pe_iqa.feature_distance.distance_map` of the selected (normalised) channels;
        it is upsampled bilinearly to the input size as LPIPS does, keeping its mean
        (:func:`~pe_iqa.distance_maps.upsample_map`), and the combined map is the mean over layers. Every map
        averages exactly (to float rounding) to the pair's score.

        Args:
            preds: ``(N, 3, H, W)`` or ``(N, 1, H, W)`` in ``[0, data_range]``.
            target: same shape as ``preds``.
            target_features: optional precomputed :meth:`features` of ``target``.

        Returns:
            A :class:`~pe_iqa.distance_maps.DistanceMaps`.

        Example:
            >>> metric = PEDistance(weights="random", layers=["relu1", "relu2"])
            >>> x = torch.rand(1, 3, 67, 61)
            >>> maps = metric.maps(x.clamp(0.2, 0.8), x)
            >>> tuple(maps.combined.shape), bool(torch.isclose(maps.combined.mean(), maps.scores[0]))
            ((1, 67, 61), True)
        """
        preds_feats, target_feats = self.pair_features(preds, target, target_features)
        return self.maps_from_features(preds_feats, target_feats, (int(preds.shape[-2]), int(preds.shape[-1])))

    def maps_from_features(self, preds_feats: list[torch.Tensor], target_feats: list[torch.Tensor],
                           size: tuple[int, int]) -> DistanceMaps:
        """:meth:`maps` from :meth:`features` outputs, upsampled to ``size`` (the images' ``(H, W)``)."""
        native = dict(zip(self.layers, self.layer_maps(preds_feats, target_feats), strict=True))
        return combine_maps(native, size, self.layer_weights)

    def extra_repr(self) -> str:
        counts = {head.layer: int(head.channels.numel()) for head in self.heads}
        return f"{self.spec.describe()}, channels={counts}, reduction={self.reduction}"


class PELoss(PEDistance):
    """The PE perceptual loss (Eq. 1 on PE-selected and/or PE-weighted channels) for training image networks.

    It is :class:`PEDistance` without the value-range check (a generator's outputs may overshoot ``[0, 1]``): same
    arguments, same values. Typical training choices, all :class:`~pe_iqa.spec.DistanceSpec` options:

    - ``metric="pe_vgg"`` (VGG-16 ``relu2_2``, the paper's loss layer) or ``backbone=`` / ``layers=`` for others;
    - ``subset="high", top_percent=x`` (H-x: only the x % most PE-efficacious channels) and/or ``weighting="pe"``
      (channel weights ∝ PE; with ``subset="all"`` every channel, weighted);
    - ``layers=[...]`` with ``layer_weights=[...]`` (one weight per layer; default: layers averaged);
    - ``reduction="mean"`` (batch mean, default), ``"sum"`` or ``"none"`` (``(N,)`` per-image losses).

    Shapes and ranges: ``preds`` and ``target`` are ``(N, 3, H, W)`` (or ``(N, 1, H, W)``) in
    ``[0, data_range]``; the value is ``≥ 0`` (``1 − cos`` of feature vectors with the default unit-normalised
    channels, ≤ 1 for ReLU layers), 0 for identical images. The backbone is frozen (``requires_grad=False``, eval
    mode); gradients flow to the inputs and are finite at ``preds == target``. Under ``torch.autocast`` the
    backbone runs in reduced precision and the head in float32; on a GPU, pass ``device=``.

    Example:
        >>> loss_fn = PELoss("pe_alex", weights="random", layers=["relu1", "relu2"], layer_weights=[3, 1],
        ...                  subset="all", weighting="pe")
        >>> preds = torch.rand(2, 3, 64, 64, requires_grad=True)
        >>> loss = loss_fn(preds, torch.rand(2, 3, 64, 64))
        >>> loss.backward()
        >>> bool(loss > 0), preds.grad.shape, any(p.requires_grad for p in loss_fn.parameters())
        (True, torch.Size([2, 3, 64, 64]), False)
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("check_range", False)
        super().__init__(*args, **kwargs)
