"""Channel rankings of a network's layers: tuning curves found (memory, cache, shipped) or measured, then ranked.

Lookup order for each layer's tuning curves, keyed by (backbone, weights fingerprint, layer, analysis config):
this process's memory (the last :data:`MEMORY_ENTRIES` layers used) → the rankings shipped inside the package
(AlexNet and VGG-16 with their ImageNet weights, default config) → the user cache folder
(:func:`~pe_iqa.analysis.tuning_cache.default_cache_dir`) → a fresh measurement, which is then written to the user
cache. Layers missing together are measured in one pass over the stimuli, with a progress bar and one line on
stderr saying what is measured and where it is cached. For a key the package ships, the shipped file is trusted:
a user cache entry for it that differs is reported (one warning) and ignored.

Every entry read from a file is checked against the network it is for (the layer's channel count, the stimulus grid
of the configuration, finite float32 responses; see :meth:`~pe_iqa.tuning.TuningCurves.check`) besides the file's
own checks (:func:`~pe_iqa.tuning_cache.read_entry`). An entry that fails is reported with one warning and replaced
in the user cache by a good one, so it is not met again. If the cache folder cannot be written (read-only, full
disk) the ranking is kept in memory with a warning.

A network passed in is analysed as it is: its fingerprint is taken from the weights it holds now, and it is never
reloaded by name (a fine-tuned network is not ranked on its original weights).

Only tuning curves are stored; every efficacy score (``"pe"``, ``"mu1"``, …, see
:data:`pe_iqa.analysis.efficacy.EFFICACY_SCORES`) is derived from them on load.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

from ..analysis_config import AnalysisConfig
from ..backbones import Backbone, backbone_spec, network_for
from .ranking import ChannelRanking
from .tuning import TuningCurves, measure_tuning
from .tuning_cache import CacheEntryError, TuningKey, default_cache_dir, read_entry, write_entry

__all__ = ["MEMORY_ENTRIES", "SHIPPED_DIR", "clear_memory_cache", "get_ranking", "get_rankings"]

SHIPPED_DIR = Path(__file__).with_name("rankings")
#: How many layers' tuning curves this process keeps in memory (least recently used dropped first).
MEMORY_ENTRIES = 64

_MEMORY: OrderedDict[TuningKey, TuningCurves] = OrderedDict()  # bounded: MEMORY_ENTRIES
_LOCK = threading.Lock()


def clear_memory_cache() -> None:
    """Forget rankings held in this process (files are untouched)."""
    with _LOCK:
        _MEMORY.clear()


def _remember(key: TuningKey, tuning: TuningCurves) -> None:
    with _LOCK:
        _MEMORY[key] = tuning
        _MEMORY.move_to_end(key)
        while len(_MEMORY) > MEMORY_ENTRIES:
            _MEMORY.popitem(last=False)


def _recall(key: TuningKey) -> TuningCurves | None:
    with _LOCK:
        tuning = _MEMORY.get(key)
        if tuning is not None:
            _MEMORY.move_to_end(key)
        return tuning


def _read_checked(path: Path, key: TuningKey, n_channels: int, config: AnalysisConfig) -> TuningCurves:
    tuning = TuningCurves(**read_entry(path, key, TuningCurves.ARRAYS))
    try:
        tuning.check(n_channels, config)
    except ValueError as error:
        raise CacheEntryError(f"{path}: does not fit {key.backbone} {key.layer} ({error})") from None
    return tuning


def _lookup_files(folder: Path, key: TuningKey, n_channels: int, config: AnalysisConfig
                  ) -> tuple[TuningCurves | None, bool]:
    """Tuning curves from the shipped rankings or the user cache, and whether the user entry must be rewritten.

    A key the package ships is answered from the shipped file only: a user entry for it is never trusted over it
    (reported once if it differs, and ignored).
    """
    user, shipped = folder / key.filename(), SHIPPED_DIR / key.filename()
    if shipped.is_file():
        try:
            tuning = _read_checked(shipped, key, n_channels, config)
        except (CacheEntryError, OSError) as error:
            warnings.warn(f"ignoring a damaged shipped ranking (reinstall pe-iqa): {error}", RuntimeWarning,
                          stacklevel=4)
        else:
            try:
                differs = user.is_file() and user.read_bytes() != shipped.read_bytes()
            except OSError:
                differs = True
            if differs:
                warnings.warn(f"ignoring the user cache entry {user}: pe-iqa ships this ranking ({shipped.name}) "
                              f"and uses the shipped one", RuntimeWarning, stacklevel=4)
            return tuning, False
    try:
        if user.is_file():
            return _read_checked(user, key, n_channels, config), False
    except (CacheEntryError, OSError) as error:
        warnings.warn(f"ignoring untrusted ranking cache entry, replacing it: {error}", RuntimeWarning,
                      stacklevel=4)
        return None, True
    return None, False


def _announce(net: Backbone, layers: list[str], folder: Path, use_cache: bool) -> None:
    """One line on stderr before a measurement: what is measured, and where it is cached."""
    where = f"caching the result in {folder}" if use_cache else "not cached (use_cache=False)"
    print(f"pe-iqa: measuring the tuning curves of {net.spec.name} {', '.join(layers)} (weights {net.weights_id}) "
          f"for the PE analysis, once; {where}", file=sys.stderr, flush=True)


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
    progress: bool | None = None,
) -> dict[str, ChannelRanking]:
    """Rankings of the channels of several layers, from cache or freshly measured.

    Args:
        backbone: a backbone name (``"alexnet"``, ``"vgg16"``, ``"timm:resnet50"`` …) or a loaded
            :class:`~pe_iqa.backbones.Backbone`, analysed as it is (its taps must cover ``layers``).
        layers: layer names (default: the backbone's default layers, or the given Backbone's taps).
        weights: weights tag when ``backbone`` is a name (see :func:`~pe_iqa.backbones.load_backbone`).
        score: registered efficacy score ranking the channels (default ``"pe"``).
        config: analysis configuration (default :class:`~pe_iqa.analysis_config.AnalysisConfig`).
        device: where to load a named backbone and run a measurement (default: the backbone's device).
        cache_dir: user cache folder (default :func:`~pe_iqa.analysis.tuning_cache.default_cache_dir`).
        use_cache: read and write cache files and shipped rankings; ``False`` always measures afresh.
        progress: show a progress bar while measuring (``None``, the default: when a measurement is needed and
            ``use_cache`` is set — a first-time analysis, announced by one line on stderr).

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
        tuning = _recall(key)
        if tuning is None:
            tuning, bad = _lookup_files(folder, key, counts[layer], config)
            if bad:
                rewrite.add(layer)
        if tuning is not None:
            found[layer] = tuning

    missing = [layer for layer in layers if layer not in found]
    if missing:
        if use_cache:
            _announce(net, missing, folder, use_cache)
        measured = measure_tuning(net, config, device=device, progress=use_cache if progress is None else progress)
        for layer in missing:
            found[layer] = measured[layer]
        rewrite.update(missing)
    if use_cache:
        for layer in sorted(rewrite, key=list(layers).index):
            _store(folder, keys[layer], config, found[layer])
        for layer in layers:
            _remember(keys[layer], found[layer])
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
