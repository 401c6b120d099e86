"""The ranking registry: (backbone, weights, layer, analysis config) → cached :class:`ChannelRanking`.

Lookup order for each layer: this process's memory → the user cache folder
(:func:`~pe_iqa.ranking_cache.default_cache_dir`) → the rankings shipped inside the package (AlexNet and
VGG-16 with their ImageNet weights, default config) → a fresh measurement, which is then written to the
user cache. Layers missing together are measured in one forward pass over the stimuli.

Only tuning curves are stored; every efficacy score (``"pe"``, ``"mu1"``, …, see
:data:`pe_iqa.efficacy.EFFICACY_SCORES`) is derived from them on load, so each score is a named ranking
cached like PE. A corrupt or stale file is reported with a warning and rebuilt. If the cache folder cannot
be written (read-only, full disk) the ranking is kept in memory with a warning.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import torch

from .backbones import Backbone, load_backbone, resolve_backbone_name
from .ranking import ChannelRanking
from .ranking_cache import CacheEntryError, RankingKey, default_cache_dir, read_entry, write_entry
from .tuning import AnalysisConfig, TuningCurves, measure_tuning

__all__ = ["SHIPPED_DIR", "clear_memory_cache", "get_ranking", "get_rankings"]

SHIPPED_DIR = Path(__file__).with_name("rankings")

_MEMORY: dict[RankingKey, TuningCurves] = {}
_LOCK = threading.Lock()


def clear_memory_cache() -> None:
    """Forget rankings held in this process (files are untouched)."""
    with _LOCK:
        _MEMORY.clear()


def _load_file(path: Path, key: RankingKey) -> TuningCurves | None:
    if not path.is_file():
        return None
    try:
        return read_entry(path, key)
    except (CacheEntryError, OSError, UnicodeDecodeError) as error:
        warnings.warn(f"ignoring untrusted ranking cache entry, rebuilding it: {error}", RuntimeWarning,
                      stacklevel=3)
        return None


def get_rankings(
    backbone: str | Backbone = "alexnet",
    layers: list[str] | tuple[str, ...] | None = None,
    *,
    weights: str = "DEFAULT",
    score: str = "pe",
    config: AnalysisConfig | None = None,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> dict[str, ChannelRanking]:
    """Rankings of the channels of several layers, from cache or freshly measured.

    Args:
        backbone: a backbone name (``"alexnet"``, ``"vgg16"``, ``"timm:resnet50"`` …) or a loaded
            :class:`~pe_iqa.backbones.Backbone` (its weights are used; its taps must cover ``layers``,
            otherwise a backbone with the missing taps is loaded with the same weights).
        layers: layer names (default: the backbone's default layers, or the given Backbone's taps).
        weights: weights tag when ``backbone`` is a name (see :func:`~pe_iqa.backbones.load_backbone`).
        score: registered efficacy score ranking the channels (default ``"pe"``).
        config: analysis configuration (default :class:`~pe_iqa.tuning.AnalysisConfig`).
        device: where to run a measurement if one is needed.
        cache_dir: user cache folder (default :func:`~pe_iqa.ranking_cache.default_cache_dir`).
        use_cache: read and write cache files and shipped rankings; ``False`` always measures afresh.
        progress: show progress bars while measuring.

    Returns:
        ``{layer: ChannelRanking}`` in the order of ``layers``.
    """
    config = config or AnalysisConfig()
    if isinstance(backbone, Backbone):
        net: Backbone | None = backbone
        name, weights = backbone.spec.name, backbone.weights
        layers = backbone.spec.check_layers(layers if layers is not None else backbone.layers)
    else:
        net = None
        name = resolve_backbone_name(backbone)
    if net is None or any(layer not in net.layers for layer in (layers or ())):
        net = load_backbone(name, layers, weights=weights, device=device)
    layers = net.spec.check_layers(layers)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    keys = {layer: RankingKey(name, net.weights_id, layer, config.key()) for layer in layers}

    found: dict[str, TuningCurves] = {}
    for layer, key in keys.items():
        with _LOCK:
            tuning = _MEMORY.get(key) if use_cache else None
        if tuning is None and use_cache:
            tuning = _load_file(folder / key.filename(), key) or _load_file(SHIPPED_DIR / key.filename(), key)
        if tuning is not None:
            found[layer] = tuning

    missing = [layer for layer in layers if layer not in found]
    if missing:
        measured = measure_tuning(net, config, device=device, progress=progress)
        for layer in missing:
            found[layer] = measured[layer]
            if use_cache:
                _store(folder, keys[layer], config, measured[layer])
    if use_cache:
        with _LOCK:
            for layer in layers:
                _MEMORY[keys[layer]] = found[layer]
    return {
        layer: ChannelRanking(name, net.weights_id, layer, config, found[layer], score) for layer in layers
    }


def get_ranking(
    backbone: str | Backbone = "alexnet",
    layer: str = "relu1",
    **kwargs,
) -> ChannelRanking:
    """Ranking of the channels of one layer; keyword arguments as :func:`get_rankings`.

    Example:
        >>> ranking = get_ranking("alexnet", "relu1", weights="random", use_cache=False)
        >>> ranking.n_channels, len(ranking.select("high", 10))
        (64, 6)
    """
    return get_rankings(backbone, [layer], **kwargs)[layer]


def _store(folder: Path, key: RankingKey, config: AnalysisConfig, tuning: TuningCurves) -> None:
    try:
        write_entry(folder, key, config, tuning)
    except OSError as error:
        warnings.warn(
            f"could not write the ranking cache in {folder} ({error}); keeping the ranking in memory only",
            RuntimeWarning,
            stacklevel=3,
        )
