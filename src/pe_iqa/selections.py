"""Selected channels as data: the H-x / L-x / F subsets, and the selections the package ships.

A selection is what a distance needs from the PE analysis: per layer, the channel indices and their weights. The
package ships them (``selections.json``, written by ``python -m pe_iqa.analysis.export_selections`` from the shipped
tuning curves) for every preset and every layer of the shipped AlexNet and VGG-16 rankings, keyed by everything
they depend on (:class:`SelectionKey`: backbone, weights fingerprint, layer, analysis configuration, score, subset,
x, channel normalisation and weighting). :func:`shipped_selection` answers a key from that file, verified by its
SHA-256 checksum, so building a preset runs no analysis; any other key (another backbone, fine-tuned or random
weights, another configuration or score) is answered by the analysis (:mod:`pe_iqa.analysis`), loaded then.

The subsets (the paper's Eq. 7–8): H-x, the x % of channels with the highest score; L-x, the lowest; F, all
(:meth:`~pe_iqa.analysis.ranking.ChannelRanking.select`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch

__all__ = ["SELECTIONS_FILE", "SUBSETS", "Selection", "SelectionKey", "check_selection", "shipped_selection"]

SUBSETS = ("high", "low", "all")
#: The shipped selections.
SELECTIONS_FILE = Path(__file__).with_name("selections.json")
FORMAT_VERSION = 1


def check_selection(subset: object, percent: object) -> tuple[str, float]:
    """Validate a channel selection: ``subset`` in :data:`SUBSETS` and ``percent`` (x) a number in ``(0, 100]``.

    Returns:
        ``(subset, float(percent))``.

    Raises:
        ValueError: on an unknown subset, a percent outside ``(0, 100]`` or one that is not a real number
            (``True`` is not 1 %; NumPy numbers are accepted).

    Example:
        >>> check_selection("high", 10)
        ('high', 10.0)
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    if isinstance(percent, bool) or not isinstance(percent, numbers.Real) or not 0 < float(percent) <= 100:
        raise ValueError(f"top_percent must be a number in (0, 100] (percent of channels kept), got {percent!r}")
    return str(subset), float(percent)


@dataclass(frozen=True)
class SelectionKey:
    """Everything one layer's selected channels and their weights depend on.

    Attributes:
        backbone: canonical backbone name.
        weights_id: fingerprint of the network weights (:attr:`~pe_iqa.backbones.Backbone.weights_id`).
        layer: layer name.
        config_key: :meth:`~pe_iqa.analysis_config.AnalysisConfig.key` of the analysis.
        score: the efficacy score ranking the channels.
        subset: ``"high"``, ``"low"`` or ``"all"``.
        top_percent: x (100 for ``"all"``, which keeps every channel whatever x is).
        channel_norm: whether the channels are unit-normalised (sets the scale of the channel weights).
        weighting: ``"uniform"`` or ``"pe"`` (channel weights proportional to the score).
    """

    backbone: str
    weights_id: str
    layer: str
    config_key: str
    score: str
    subset: str
    top_percent: float
    channel_norm: bool
    weighting: str

    def __post_init__(self) -> None:
        if self.subset == "all":
            object.__setattr__(self, "top_percent", 100.0)
        object.__setattr__(self, "top_percent", float(self.top_percent))


@dataclass(frozen=True)
class Selection:
    """One layer's selected channels and their weights.

    Attributes:
        n_channels: the layer's channel count.
        channels: ``(K,)`` int64 sorted channel indices.
        channel_weights: ``(K,)`` float32 weights (:func:`~pe_iqa.feature_distance.channel_weights`).
    """

    n_channels: int
    channels: torch.Tensor
    channel_weights: torch.Tensor


def selection_checksum(entries: list[dict]) -> str:
    """SHA-256 of the entries in canonical JSON (what the shipped file's ``checksum`` holds)."""
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _shipped() -> Mapping[SelectionKey, tuple[int, tuple[int, ...], tuple[float, ...]]]:
    """The shipped file, verified, as a read-only mapping (read once; empty, with a warning, if it is damaged)."""
    try:
        document = json.loads(SELECTIONS_FILE.read_text(encoding="utf-8"))
        entries = document["entries"]
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {document.get('format_version')!r}, expected {FORMAT_VERSION}")
        if selection_checksum(entries) != document["checksum"]:
            raise ValueError("checksum mismatch (corrupt or edited file)")
        table = {}
        for entry in entries:
            key = SelectionKey(**{f.name: entry[f.name] for f in dataclasses.fields(SelectionKey)})
            table[key] = (int(entry["n_channels"]), tuple(entry["channels"]), tuple(entry["channel_weights"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        warnings.warn(f"ignoring the shipped selections {SELECTIONS_FILE} ({type(error).__name__}: {error}); "
                      f"presets are selected by the PE analysis instead (reinstall pe-iqa to restore the file)",
                      RuntimeWarning, stacklevel=3)
        table = {}
    return MappingProxyType(table)


def shipped_selection(key: SelectionKey) -> Selection | None:
    """The shipped selection of ``key``, or ``None`` if the package ships none for it.

    Example:
        >>> from pe_iqa.analysis_config import AnalysisConfig
        >>> key = SelectionKey("alexnet", "0" * 16, "relu3", AnalysisConfig().key(), "pe", "high", 10, True, "uniform")
        >>> shipped_selection(key) is None  # no such weights
        True
    """
    found = _shipped().get(key)
    if found is None:
        return None
    n_channels, channels, weights = found
    return Selection(n_channels, torch.tensor(channels, dtype=torch.int64),
                     torch.tensor(weights, dtype=torch.float32))


def shipped_keys() -> tuple[SelectionKey, ...]:
    """Every key the package ships a selection for."""
    return tuple(_shipped())
