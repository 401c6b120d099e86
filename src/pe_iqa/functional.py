"""The functional form of the PE distance: :func:`pe_distance` (a cached :class:`~pe_iqa.distance.PEDistance`)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import torch

from .analysis_config import SCORE_NAMES
from .distance import PEDistance, check_reduction, reduce
from .input_checks import check_image_structure
from .presets import DEFAULT_METRIC, resolve_spec
from .spec import DistanceSpec, check_bool

__all__ = ["pe_distance"]

_MODULES: OrderedDict[tuple, PEDistance] = OrderedDict()
_MODULES_LOCK = threading.Lock()
_MAX_MODULES = 8


def _score_identity(spec: DistanceSpec) -> object:
    """What the spec's score name means now: ``None`` for a built-in score (fixed), else the function registered
    under it (deprecated :func:`~pe_iqa.analysis.efficacy.register_score`, which can replace it)."""
    if spec.score in SCORE_NAMES:
        return None
    from .analysis.efficacy import score_function  # a registered score: the analysis is loaded already

    return score_function(spec.score)


def _weights_identity(weights: str) -> tuple[str, int, int, int, int] | None:
    """The identity of a weights file, checked on every use: ``(path, size, mtime_ns, ctime_ns, inode)``; ``None``
    for a tag (``"DEFAULT"``, ``"random:3"`` …). A file rewritten in place (same path) is a new module."""
    try:
        stat = os.stat(weights)
    except (OSError, ValueError):
        return None
    return os.path.abspath(weights), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino


def _cached_module(spec: DistanceSpec, device: torch.device, dtype: torch.dtype, check_range: bool) -> PEDistance:
    # keyed on everything the module's values depend on: a re-registered score or a rewritten weights file is a new
    # module, never a stale one
    key = (spec, _score_identity(spec), _weights_identity(spec.weights), str(device), str(dtype), check_range)
    with _MODULES_LOCK:
        module = _MODULES.get(key)
        if module is not None:
            _MODULES.move_to_end(key)
            return module
    module = PEDistance(spec, reduction="none", check_range=check_range, device=device)
    if dtype != torch.float32:
        module.backbone.to(dtype)
    with _MODULES_LOCK:
        _MODULES[key] = module
        while len(_MODULES) > _MAX_MODULES:
            _MODULES.popitem(last=False)
    return module


def pe_distance(
    preds: torch.Tensor,
    target: torch.Tensor,
    metric: str | DistanceSpec = DEFAULT_METRIC,
    *,
    reduction: str = "mean",
    check_range: bool = True,
    **options: object,
) -> torch.Tensor:
    """PE-selected deep-feature distance between distorted and reference images (functional form).

    The module for a given spec is built once per device and dtype of the inputs and reused (up to 8 kept): the
    backbone runs on the inputs' device in their dtype (e.g. float16 inputs on a GPU run a float16 network); the
    distance head and the result are float32 (float64 for float64 inputs). A weights file is identified by its path,
    size, modification times and inode, checked on every call: a file rewritten in place gets a new module.

    Args:
        preds: distorted images, ``(N, 3, H, W)`` or ``(N, 1, H, W)``, float in ``[0, data_range]``.
        target: reference images, same shape and device (converted to ``preds``' dtype).
        metric: a preset name or a :class:`~pe_iqa.spec.DistanceSpec` (as :class:`PEDistance`).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        check_range: validate values (as :class:`PEDistance`).
        **options: :class:`~pe_iqa.spec.DistanceSpec` fields replacing the preset's (``backbone`` — a name —,
            ``layers``, ``weights``, ``subset``, ``top_percent``, ``channel_norm``, ``weighting``, ``score``,
            ``config``, ``data_range``, ``layer_weights``).

    Returns:
        Scalar (``"mean"``/``"sum"``) or ``(N,)`` (``"none"``) distance; lower = more similar.

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
    reduction = check_reduction(reduction)
    spec = resolve_spec(metric, **options)
    module = _cached_module(spec, preds.device, preds.dtype, check_bool("check_range", check_range))
    return reduce(module(preds, target), reduction)
