"""Channel rankings of a network's layers: tuning curves found (memory, cache, shipped) or measured, then ranked.

Lookup order for each layer's tuning curves, keyed by (backbone, weights fingerprint, layer, analysis config):
this process's memory → the user cache folder (:func:`~pe_iqa.tuning_cache.default_cache_dir`) → the rankings
shipped inside the package (AlexNet and VGG-16 with their ImageNet weights, default config) → a fresh measurement,
which is then written to the user cache. Layers missing together are measured in one pass over the stimuli.

Every entry read from a file is checked against the network it is for (the layer's channel count, the stimulus grid
of the configuration, finite float32 responses; see :meth:`~pe_iqa.tuning.TuningCurves.check`) besides the file's
own checks (:func:`~pe_iqa.tuning_cache.read_entry`). An entry that fails is reported with one warning and replaced
in the user cache by a good one, so it is not met again. If the cache folder cannot be written (read-only, full
disk) the ranking is kept in memory with a warning.

A network passed in is analysed as it is: its fingerprint is taken from the weights it holds now, and it is never
reloaded by name (a fine-tuned network is not ranked on its original weights).

Only tuning curves are stored; every efficacy score (``"pe"``, ``"mu1"``, …, see
:data:`pe_iqa.efficacy.EFFICACY_SCORES`) is derived from them on load.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import torch

from .backbones import Backbone, backbone_spec, load_backbone
from .ranking import ChannelRanking
from .tuning import AnalysisConfig, TuningCurves, measure_tuning
from .tuning_cache import CacheEntryError, TuningKey, default_cache_dir, read_entry, write_entry

__all__ = ["SHIPPED_DIR", "clear_memory_cache", "get_ranking", "get_rankings", "network_for"]

SHIPPED_DIR = Path(__file__).with_name("rankings")

_MEMORY: dict[TuningKey, TuningCurves] = {}
_LOCK = threading.Lock()


def clear_memory_cache() -> None:
    """Forget rankings held in this process (files are untouched)."""
    with _LOCK:
        _MEMORY.clear()


def network_for(
    backbone: str | Backbone,
    layers: str | list[str] | tuple[str, ...] | None,
    weights: str = "DEFAULT",
    device: torch.device | str | None = None,
) -> tuple[Backbone, tuple[str, ...]]:
    """The network to analyse and the layers to analyse in it.

    Args:
        backbone: a backbone name (loaded with ``weights``) or a loaded :class:`~pe_iqa.backbones.Backbone`, used
            as it is.
        layers: layer names; default: the given Backbone's taps, or the named backbone's default layers.
        weights: weights tag when ``backbone`` is a name.
        device: where to load a named backbone.

    Raises:
        ValueError: unknown layers, a given Backbone that does not tap them, or one that was pruned.
    """
    if not isinstance(backbone, Backbone):
        net = load_backbone(backbone, layers, weights=weights, device=device)
        return net, net.layers
    if backbone.pruned:
        raise ValueError(
            f"the given {backbone.spec.name} backbone was pruned (a PEDistance's .backbone computes only its "
            f"selected channels); pass the original backbone or a backbone name instead"
        )
    chosen = backbone.spec.check_layers(layers if layers is not None else backbone.layers)
    untapped = [layer for layer in chosen if layer not in backbone.layers]
    if untapped:
        raise ValueError(
            f"the given {backbone.spec.name} backbone taps {list(backbone.layers)}, not {untapped}; build it with "
            f"load_backbone(..., layers=[...]) covering them (a given network is analysed as it is, never reloaded)"
        )
    return backbone, chosen


def _read_checked(path: Path, key: TuningKey, n_channels: int, config: AnalysisConfig) -> TuningCurves:
    tuning = TuningCurves(**read_entry(path, key, TuningCurves.ARRAYS))
    try:
        tuning.check(n_channels, config)
    except ValueError as error:
        raise CacheEntryError(f"{path}: does not fit {key.backbone} {key.layer} ({error})") from None
    return tuning


def _lookup_files(folder: Path, key: TuningKey, n_channels: int, config: AnalysisConfig
                  ) -> tuple[TuningCurves | None, bool]:
    """Tuning curves from the user cache or the shipped rankings, and whether the user entry must be rewritten."""
    user = folder / key.filename()
    bad_user_entry = False
    for path in (user, SHIPPED_DIR / key.filename()):
        try:
            if path.is_file():
                return _read_checked(path, key, n_channels, config), bad_user_entry
        except (CacheEntryError, OSError) as error:
            warnings.warn(f"ignoring untrusted ranking cache entry, replacing it: {error}", RuntimeWarning,
                          stacklevel=4)
            bad_user_entry = bad_user_entry or path == user
    return None, bad_user_entry


def get_rankings(
    backbone: str | Backbone = "alexnet",
    layers: str | list[str] | tuple[str, ...] | None = None,
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
            :class:`~pe_iqa.backbones.Backbone`, analysed as it is (its taps must cover ``layers``).
        layers: layer names (default: the backbone's default layers, or the given Backbone's taps).
        weights: weights tag when ``backbone`` is a name (see :func:`~pe_iqa.backbones.load_backbone`).
        score: registered efficacy score ranking the channels (default ``"pe"``).
        config: analysis configuration (default :class:`~pe_iqa.tuning.AnalysisConfig`).
        device: where to load a named backbone and run a measurement (default: the backbone's device).
        cache_dir: user cache folder (default :func:`~pe_iqa.tuning_cache.default_cache_dir`).
        use_cache: read and write cache files and shipped rankings; ``False`` always measures afresh.
        progress: show progress bars while measuring.

    Returns:
        ``{layer: ChannelRanking}``, shallow to deep.

    Raises:
        ValueError: unknown backbone, layer or score; a given Backbone that does not tap the layers or was pruned.
    """
    config = config or AnalysisConfig()
    if not isinstance(config, AnalysisConfig):
        raise TypeError(f"config must be an AnalysisConfig, got {type(config).__name__}")
    net, layers = network_for(backbone, layers, weights, device)
    name, weights_id = net.spec.name, net.weights_id
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    keys = {layer: TuningKey(name, weights_id, layer, config.key()) for layer in layers}
    counts = net.channels()

    found: dict[str, TuningCurves] = {}
    rewrite: set[str] = set()
    for layer, key in keys.items():
        if not use_cache:
            continue
        with _LOCK:
            tuning = _MEMORY.get(key)
        if tuning is None:
            tuning, bad = _lookup_files(folder, key, counts[layer], config)
            if bad:
                rewrite.add(layer)
        if tuning is not None:
            found[layer] = tuning

    missing = [layer for layer in layers if layer not in found]
    if missing:
        measured = measure_tuning(net, config, device=device, progress=progress)
        for layer in missing:
            found[layer] = measured[layer]
        rewrite.update(missing)
    if use_cache:
        for layer in sorted(rewrite, key=list(layers).index):
            _store(folder, keys[layer], config, found[layer])
        with _LOCK:
            for layer in layers:
                _MEMORY[keys[layer]] = found[layer]
    return {layer: ChannelRanking(name, weights_id, layer, config, found[layer], score) for layer in layers}


def get_ranking(
    backbone: str | Backbone = "alexnet",
    layer: str | None = None,
    **kwargs,
) -> ChannelRanking:
    """Ranking of the channels of one layer (default: the backbone's first default layer).

    Keyword arguments as :func:`get_rankings`.

    Example:
        >>> ranking = get_ranking("alexnet", "relu1", weights="random", use_cache=False)
        >>> ranking.n_channels, len(ranking.select("high", 10))
        (64, 6)
    """
    if layer is None:
        layer = (backbone.layers if isinstance(backbone, Backbone) else backbone_spec(backbone).default_layers)[0]
    return get_rankings(backbone, [layer], **kwargs)[layer]


def _store(folder: Path, key: TuningKey, config: AnalysisConfig, tuning: TuningCurves) -> None:
    try:
        write_entry(folder, key, config, tuning.arrays())
    except OSError as error:
        warnings.warn(
            f"could not write the ranking cache in {folder} ({error}); keeping the ranking in memory only",
            RuntimeWarning,
            stacklevel=3,
        )
