"""The PE feature distance as a TorchMetrics ``Metric`` (``torchmetrics.image.lpip`` counterpart)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torchmetrics.metric import Metric
from torchmetrics.utilities import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from pe_iqa.backbones import Backbone
from pe_iqa.distance import DISTANCE_OPTIONS, PEDistance
from pe_iqa.presets import DEFAULT_METRIC
from pe_iqa.provenance import Provenance, combine_records, pe_provenance
from pe_iqa.spec import DistanceSpec

__all__ = ["IDENTITY_KEY", "PEFeatureDistance"]

_DISTANCE_PREFIX = "distance."
_EXTRA_STATE = "_extra_state"
#: The entry of :attr:`PEFeatureDistance.metric_state` holding the distance's provenance record (a dict).
IDENTITY_KEY = "pe_provenance"
#: The keyword arguments of ``torchmetrics.Metric`` (TorchMetrics rejects any other with a generic message).
METRIC_OPTIONS = frozenset({"compute_on_cpu", "dist_sync_on_step", "process_group", "dist_sync_fn",
                            "distributed_available_fn", "sync_on_compute", "compute_with_cache"})
_REMEDY = "build the metric with the same options"


def _split_options(kwargs: dict) -> tuple[dict, dict]:
    """``(PEDistance options, Metric options)``; ``reduction`` and ``device`` are set by the metric itself."""
    for name, hint in (("reduction", "use per_sample=True for per-image scores"), ("device", "use .to(device)")):
        if name in kwargs:
            raise TypeError(f"{name!r} is not accepted here: {hint}")
    unknown = sorted(set(kwargs) - DISTANCE_OPTIONS - METRIC_OPTIONS)
    if unknown:
        valid = sorted(DISTANCE_OPTIONS) + sorted(METRIC_OPTIONS)
        hints = [f"{name!r} → {close[0]!r}" for name in unknown
                 if (close := difflib.get_close_matches(name, valid, n=1))]
        raise ValueError(f"unknown option(s) {unknown}{' (did you mean ' + ', '.join(hints) + '?)' if hints else ''}; "
                         f"PEFeatureDistance takes the distance options {sorted(DISTANCE_OPTIONS)} and the Metric "
                         f"options {sorted(METRIC_OPTIONS)}")
    distance = {k: v for k, v in kwargs.items() if k in DISTANCE_OPTIONS}
    return distance, {k: v for k, v in kwargs.items() if k not in DISTANCE_OPTIONS}


class PEFeatureDistance(Metric):
    """PE-selected deep-feature distance (lower = more similar), accumulated over batches.

    Wraps a :class:`pe_iqa.distance.PEDistance` (so scores equal the core's). By default the metric keeps two scalar
    states, the sum of per-image scores and the image count, so memory is constant and a DDP sync is two
    all-reduces; :meth:`compute` returns their ratio, the mean over all images seen. With ``per_sample=True`` it
    keeps every per-image score (a ``"cat"`` state) and :meth:`compute` returns the ``(N,)`` scores in update order
    (rank order under DDP).

    The distance network is configuration, not state: it is frozen (``requires_grad=False``), moves with
    ``.to(device)``, and is left out of :meth:`state_dict`; :meth:`load_state_dict` never changes it. Note that
    TorchMetrics' own LPIPS metric does save its network. As for TorchMetrics' own metrics, a metric whose states
    are not persistent (the default) adds nothing to a state dict — a Lightning checkpoint loads strictly into
    the model without the metric. Persistent states (``persistent(True)``) are saved with the distance's
    :class:`~pe_iqa.provenance.Provenance` record (``_extra_state``: spec digest, weights fingerprint, selected
    channels, dtype, version, ``per_sample``). Every load path checks that record with
    :func:`~pe_iqa.provenance.combine_records`: :meth:`load_state_dict` (whether this metric's states are persistent
    or not) refuses states of a differently configured metric, and states whose record was removed, with one
    ``ValueError``; so does :meth:`merge_state` (its :attr:`metric_state` carries the record under
    :data:`IDENTITY_KEY`); and a distributed sync all-gathers every process's record first and refuses a mix.
    :meth:`compute` after loading states that hold data gives their value without TorchMetrics' "compute before
    update" warning.

    Sharing one network (TorchMetrics' ``FeatureShare``): ``feature_network = "shared_network"``, the full backbone.
    Metrics on the same backbone, weights and layers share it, pruned or not (a pruned metric gives up pruning,
    same scores); a network with other weights is refused. ``FeatureShare`` names list entries by class, so give
    the metrics as a dict::

        FeatureShare({"pe_alex": PEFeatureDistance("pe_alex"), "pe_alex_f": PEFeatureDistance("pe_alex_f")})

    As for every TorchMetrics metric, ``.half()``/``.float()``/``.double()`` are no-ops; :meth:`set_dtype` casts
    the states and the network's floating-point tensors (channel indices stay integer).

    As input to ``forward`` and ``update``:

    - ``preds`` (:class:`~torch.Tensor`): distorted images ``(N, 3, H, W)`` or ``(N, 1, H, W)``, float in
      ``[0, data_range]``
    - ``target`` (:class:`~torch.Tensor`): reference images, same shape and device

    As output of ``forward`` and ``compute``: a scalar mean distance, or ``(N,)`` scores with ``per_sample=True``.

    Args:
        metric: a preset of :data:`pe_iqa.presets.PRESETS` (``"pe_alex"``, ``"pe_vgg"``, ``"pe_alex_f"``), a
            :class:`~pe_iqa.spec.DistanceSpec`, or ``None`` for the default (``"pe_alex"``).
        per_sample: keep and return every per-image score instead of the running mean.
        kwargs: :class:`~pe_iqa.distance.PEDistance` options replacing the preset's (``backbone`` — a name or a
            loaded :class:`~pe_iqa.backbones.Backbone` to share —, ``layers``, ``weights``, ``subset``,
            ``top_percent``, ``channel_norm``, ``weighting``, ``score``, ``config``, ``data_range``, ``layer_weights``,
            ``check_range``, ``prune``); all other keyword arguments go to :class:`~torchmetrics.Metric`
            (``compute_on_cpu``, ``sync_on_compute``, ``dist_sync_on_step``, ``process_group`` …).

    Raises:
        TypeError: ``per_sample`` is not a bool, ``reduction``/``device`` is passed, or an option has the wrong
            type.
        ValueError: unknown preset or invalid distance option; an unknown keyword argument (the message lists the
            valid ones and the closest match, e.g. ``top_precent`` → ``top_percent``).

    Example:
        >>> import torch
        >>> from pe_iqa_torchmetrics import PEFeatureDistance
        >>> options = {"weights": "random", "layers": ["relu1"], "top_percent": 25}  # no weight files needed
        >>> metric = PEFeatureDistance("pe_alex", **options)
        >>> preds, target = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)
        >>> metric.update(preds, target)
        >>> metric.update(target, target)  # identical images score 0
        >>> bool(metric.compute() > 0), int(metric.total)
        (True, 8)
        >>> per_image = PEFeatureDistance("pe_alex", per_sample=True, **options)
        >>> per_image(target, target)
        tensor([0., 0., 0., 0.])
        >>> list(metric.state_dict())  # no network weights; the states are saved after metric.persistent(True)
        []
    """

    is_differentiable: bool = True
    higher_is_better: bool = PEDistance.higher_is_better
    full_state_update: bool = False
    plot_lower_bound: float = 0.0
    feature_network: str = "shared_network"

    sum_scores: Tensor
    total: Tensor
    scores: list[Tensor]

    def __init__(self, metric: str | DistanceSpec | None = DEFAULT_METRIC, per_sample: bool = False,
                 **kwargs) -> None:
        distance_kwargs, metric_kwargs = _split_options(kwargs)
        super().__init__(**metric_kwargs)
        if not isinstance(per_sample, bool):
            raise TypeError(f"per_sample must be a bool, got {type(per_sample).__name__}")
        self.metric = metric or DEFAULT_METRIC
        self.per_sample = per_sample
        self._distance_kwargs = distance_kwargs
        self.distance = PEDistance(self.metric, reduction="none", **distance_kwargs)
        self.add_state("sum_scores", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")
        if per_sample:
            self.add_state("scores", default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Score a batch of (distorted, reference) pairs and add it to the states."""
        scores = self.distance(preds, target).to(self.sum_scores.dtype)
        self.sum_scores = self.sum_scores + scores.sum()
        self.total = self.total + scores.numel()
        if self.per_sample:
            self.scores.append(scores)

    def compute(self) -> Tensor:
        """Mean distance over all images seen (``NaN`` before any update), or the ``(N,)`` per-image scores."""
        if self.per_sample:
            if isinstance(self.scores, list) and not self.scores:
                return torch.zeros(0, dtype=self.sum_scores.dtype, device=self.sum_scores.device)
            return dim_zero_cat(self.scores)
        return self.sum_scores / self.total

    @property
    def net(self) -> object:
        """The feature network of the distance (what ``FeatureShare`` shares; see :class:`PEFeatureDistance`)."""
        return self.distance.net

    @property
    def shared_network(self) -> Backbone:
        """The full backbone, to be shared with other metrics (what ``FeatureShare`` takes from the first metric).

        A pruned metric (the default ``prune=True``) first rebuilds its distance without pruning: a shared network
        must compute every channel of the compared layers. Same scores.
        """
        self._unprune()
        return self.distance.backbone

    def _unprune(self) -> None:
        if not self.distance.backbone.pruned:
            return
        old = self.distance
        self.distance = PEDistance(self.metric, reduction="none", **{**self._distance_kwargs, "prune": False})
        self.distance.to(old.device)
        dtype = old.backbone.mean.dtype
        if dtype != self.distance.backbone.mean.dtype:
            self.distance._apply(lambda t: t.to(dtype) if t.is_floating_point() else t)

    def _use_shared(self, network: object) -> None:
        """Score with ``network`` (a ``FeatureShare`` cache of another metric's backbone), after checking it."""
        self._unprune()
        inner = getattr(network, "network", network)
        if isinstance(inner, Backbone):
            mine = self.distance.backbone
            if inner.spec.name != mine.spec.name or inner.weights_id != mine.weights_id or not set(
                    self.distance.layers) <= set(inner.layers):
                raise ValueError(
                    f"cannot share the network: it is {inner.spec.name} ({inner.weights_id}) tapping "
                    f"{list(inner.layers)}, this metric needs {mine.spec.name} ({mine.weights_id}) at "
                    f"{list(self.distance.layers)}; share networks only between metrics of the same backbone, "
                    f"weights and layers")
        self.distance.use_network(network)  # type: ignore[arg-type]

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("shared_network", "net"):  # FeatureShare assigns a caching wrapper of the shared network
            self._use_shared(value)
            return
        super().__setattr__(name, value)

    def plot(self, val: Tensor | Sequence[Tensor] | None = None, ax: _AX_TYPE | None = None) -> _PLOT_OUT_TYPE:
        """Plot one result or a sequence of results of ``forward``/``compute`` (default: :meth:`compute`).

        Per-image scores (``per_sample=True``, or any ``(N,)`` tensor) are drawn as one series against the image
        index, with one legend entry; scalars and sequences of scalars as TorchMetrics does. The axis is labelled
        with the metric and its direction.

        Args:
            val: a value returned by ``forward`` or ``compute``, or a list of them.
            ax: a matplotlib axis to draw on.

        Returns:
            The figure and axis.

        Raises:
            ModuleNotFoundError: if matplotlib is not installed.

        Example:
            >>> import torch
            >>> from pe_iqa_torchmetrics import PEFeatureDistance
            >>> metric = PEFeatureDistance(weights="random", layers=["relu1"], top_percent=25)
            >>> values = [metric(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)) for _ in range(3)]
            >>> fig_, ax_ = metric.plot(values)
        """
        val = val if val is not None else self.compute()
        label = f"{self.metric if isinstance(self.metric, str) else 'PE distance'} (lower = more similar)"
        if isinstance(val, Tensor) and val.numel() > 1:
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots() if ax is None else (None, ax)
            values = val.detach().cpu().reshape(-1)
            ax.plot(range(len(values)), values.tolist(), marker="o", linestyle="None", label="per image")
            ax.set_xlabel("image")
            ax.legend(loc="upper right")
        else:
            fig, ax = self._plot(val, ax)
        ax.set_ylabel(label)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        if fig is not None:
            fig.tight_layout()
        return fig, ax

    def set_dtype(self, dst_type: str | torch.dtype) -> PEFeatureDistance:
        """Cast the metric states and the distance network's floating-point tensors to ``dst_type``.

        Unlike ``Metric.set_dtype`` (which casts every tensor), integer tensors such as the selected channel
        indices keep their dtype. Inputs are cast to the network's dtype; the distance head runs in float32.

        Args:
            dst_type: a floating-point ``torch.dtype`` or its name (``"float64"``, ``"torch.float64"``).

        Raises:
            TypeError, ValueError: ``dst_type`` is not a floating-point dtype.
        """
        dtype = getattr(torch, dst_type.removeprefix("torch."), None) if isinstance(dst_type, str) else dst_type
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"dst_type must be a torch.dtype or its name, got {dst_type!r}")
        if not dtype.is_floating_point:
            raise ValueError(f"dst_type must be a floating-point dtype, got {dtype}")

        def cast_floating(tensor: Tensor) -> Tensor:
            return tensor.to(dtype) if tensor.is_floating_point() else tensor

        return self._apply(cast_floating)

    def provenance(self) -> Provenance:
        """What this metric's values come from (:class:`~pe_iqa.provenance.Provenance`), ``per_sample`` included."""
        name = self.metric if isinstance(self.metric, str) else None
        return pe_provenance(self.distance, name, per_sample=self.per_sample)

    def _check_identity(self, saved: object, where: str) -> None:
        """Refuse states whose record (``saved``) is not this metric's, or is missing or unreadable (unknown)."""
        combine_records(saved, self.provenance(), where, _REMEDY, refuse_unknown=True)

    @property
    def metric_state(self) -> dict[str, object]:
        """The metric states and, under :data:`IDENTITY_KEY`, the distance's provenance record (for
        :meth:`merge_state`)."""
        return {**super().metric_state, IDENTITY_KEY: self.provenance().to_dict()}

    def merge_state(self, incoming_state: dict | Metric) -> None:
        """Merge the states of another ``PEFeatureDistance`` (or its :attr:`metric_state`) into this one.

        Raises:
            ValueError: the incoming states come from another distance, or (a dict) carry no provenance record.
        """
        if isinstance(incoming_state, PEFeatureDistance):
            saved: object = incoming_state.provenance().to_dict()
        elif isinstance(incoming_state, dict):
            saved = incoming_state.get(IDENTITY_KEY)
        else:
            saved = None
        if isinstance(incoming_state, (dict, PEFeatureDistance)):
            self._check_identity(saved, "cannot merge: the incoming metric state")
        super().merge_state(incoming_state)

    def get_extra_state(self) -> dict[str, object] | None:
        """The distance's provenance record, saved with persistent states (nothing is saved otherwise)."""
        return self.provenance().to_dict() if any(self._persistent.values()) else None

    def set_extra_state(self, state: object) -> None:
        """Refuse states saved by a differently configured metric (checked in :meth:`_load_from_state_dict`)."""

    def state_dict(self, destination: dict | None = None, prefix: str = "", keep_vars: bool = False) -> dict:
        """The persistent metric states (see ``Metric.persistent``) and the distance's identity, without the
        distance network's weights."""
        destination = super().state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)
        if not any(self._persistent.values()):
            destination.pop(prefix + _EXTRA_STATE, None)  # TorchMetrics: nothing for non-persistent states
        excluded = prefix + _DISTANCE_PREFIX
        for key in [key for key in destination if key.startswith(excluded)]:
            del destination[key]
        metadata = getattr(destination, "_metadata", None)
        if metadata is not None:
            for key in [key for key in metadata if key == excluded[:-1] or key.startswith(excluded)]:
                del metadata[key]
        return destination

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # The network is configuration: feed its own tensors back so a state dict without them (as saved by
        # state_dict above) loads strictly, and one with them (another checkpoint) cannot change the network.
        for name, tensor in self.distance.state_dict(keep_vars=True).items():
            state_dict[prefix + _DISTANCE_PREFIX + name] = tensor
        # every load path: whatever the receiving states' persistence, incoming states or an incoming record are
        # checked against this metric's record (non-persistent states are loaded by TorchMetrics all the same)
        incoming = [name for name in self._defaults if prefix + name in state_dict]
        if incoming or state_dict.get(prefix + _EXTRA_STATE) is not None:
            self._check_identity(state_dict.get(prefix + _EXTRA_STATE), "cannot load: the state dict")
        state_dict.setdefault(prefix + _EXTRA_STATE, None)  # nothing saved for non-persistent states
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if incoming:
            self._computed = None
            if self._holds_data():  # compute() of loaded data is no "compute before update"
                self._update_count = max(self._update_count, 1)

    def _holds_data(self) -> bool:
        if self.per_sample:
            scores = self.scores
            return any(t.numel() for t in scores) if isinstance(scores, list) else scores.numel() > 0
        return int(self.total) > 0

    def _sync_dist(self, dist_sync_fn: Callable = gather_all_tensors, process_group: object | None = None) -> None:
        """Refuse to sync with a process whose metric has another configuration, then sync (TorchMetrics).

        Every process all-gathers its provenance record (its JSON bytes) and compares each other process's record
        with its own; a mix is refused on every process with one line naming the first difference.
        """
        text = json.dumps(self.provenance().to_dict(), sort_keys=True).encode("utf-8")
        mine = torch.tensor(list(text), dtype=torch.int32, device=self.sum_scores.device)
        gathered = dist_sync_fn(mine, group=process_group or self.process_group)
        for rank, theirs in enumerate(gathered):
            try:
                record: object = json.loads(bytes(theirs.cpu().tolist()).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                record = None
            self._check_identity(record, f"cannot sync: process {rank}")
        super()._sync_dist(dist_sync_fn, process_group=process_group)
