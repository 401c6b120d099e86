"""pe-iqa: Perceptual Efficacy (PE) channel selection for deep-feature image-quality distances.

Data flows one way. The PE analysis (:mod:`pe_iqa.analysis`): stimuli → tuning curves → efficacy scores → channel
rankings → selected channels, exported per layer into the shipped selections (:mod:`~pe_iqa.selections`). A distance:
a :class:`DistanceSpec` → :mod:`~pe_iqa.resolver` (the network, and per layer the shipped selection, or the analysis
run on a miss) → the Eq. 1 kernel (:mod:`~pe_iqa.feature_distance`) run by :class:`PEDistance`. The analysis is
imported only when asked for (a key not shipped, rankings, explanations, plots): ``get_ranking``, ``measure_tuning``
and the other analysis names below load it on first access. The core imports neither pyiqa nor TorchMetrics; their
adapters live in the ``pe_iqa_torchmetrics`` and ``pe_iqa_pyiqa`` plugin packages.
"""

from importlib import import_module
from types import MappingProxyType

from .analysis_config import AnalysisConfig
from .backbones import Backbone, WeightsMismatchError, WeightsNotFoundError, list_layers, load_backbone
from .contextual_loss import PEContextualLoss
from .distance import PEDistance, PELoss
from .functional import pe_distance
from .presets import PRESETS
from .spec import DistanceSpec

__version__ = "0.2.0"

#: Public names of the PE analysis, loaded on first access (module ``__getattr__``).
_ANALYSIS_NAMES = MappingProxyType({
    "ChannelRanking": "ranking",
    "TuningCurves": "tuning",
    "get_ranking": "ranking_lookup",
    "get_rankings": "ranking_lookup",
    "measure_tuning": "tuning",
    "perceptual_efficacy": "efficacy",
    "register_score": "efficacy",
})


def __getattr__(name: str) -> object:
    module = _ANALYSIS_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'pe_iqa' has no attribute {name!r}")
    return getattr(import_module(f".analysis.{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_ANALYSIS_NAMES})

__all__ = [
    "PRESETS",
    "AnalysisConfig",
    "Backbone",
    "ChannelRanking",
    "DistanceSpec",
    "PEContextualLoss",
    "PEDistance",
    "PELoss",
    "TuningCurves",
    "WeightsMismatchError",
    "WeightsNotFoundError",
    "__version__",
    "get_ranking",
    "get_rankings",
    "list_layers",
    "load_backbone",
    "measure_tuning",
    "pe_distance",
    "perceptual_efficacy",
    "register_score",
]
