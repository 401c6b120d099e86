"""pe-iqa: Perceptual Efficacy (PE) channel selection for deep-feature image-quality distances.

Data flows one way. The PE analysis (:mod:`pe_iqa.analysis`): stimuli → tuning curves → efficacy scores → channel
rankings → selected channels, exported per layer into the shipped selections (:mod:`~pe_iqa.selections`). A distance:
a :class:`DistanceSpec` → :mod:`~pe_iqa.resolver` (the network, and per layer the shipped selection, or the analysis
run on a miss) → the Eq. 1 kernel (:mod:`~pe_iqa.feature_distance`) run by :class:`PEDistance`. The analysis is
imported only when asked for (a key not shipped, rankings, explanations, plots): ``get_ranking``, ``measure_tuning``
and the other analysis names below load it on first access, as every public name does (``import pe_iqa`` imports no
torch). The core imports neither pyiqa nor TorchMetrics; their adapters live in the ``pe_iqa_torchmetrics`` and
``pe_iqa_pyiqa`` plugin packages.
"""

from importlib import import_module
from types import MappingProxyType

__version__ = "0.2.0"

#: Public names, each loaded from its module on first access (module ``__getattr__``): ``import pe_iqa`` alone
#: imports no torch, so the command line's ``--help`` and usage errors answer at once.
_LAZY_NAMES = MappingProxyType({
    "AnalysisConfig": ".analysis_config",
    "Backbone": ".backbones",
    "DistanceSpec": ".spec",
    "PEDistance": ".distance",
    "PELoss": ".distance",
    "PRESETS": ".presets",
    "WeightsMismatchError": ".backbones",
    "WeightsNotFoundError": ".backbones",
    "list_layers": ".backbones",
    "load_backbone": ".backbones",
    "ChannelRanking": ".analysis.ranking",
    "TuningCurves": ".analysis.tuning",
    "get_ranking": ".analysis.ranking_lookup",
    "get_rankings": ".analysis.ranking_lookup",
    "measure_tuning": ".analysis.tuning",
    "perceptual_efficacy": ".analysis.efficacy",
    "register_score": ".analysis.efficacy",
    "PEContextualLoss": ".contextual_loss",
    "pe_distance": ".functional",
})


def __getattr__(name: str) -> object:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'pe_iqa' has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES})

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
