"""pe-iqa: Perceptual Efficacy (PE) channel selection for deep-feature image-quality distances.

Data flows one way: stimuli (:mod:`~pe_iqa.stimuli`) → tuning curves (:mod:`~pe_iqa.tuning`) → efficacy scores
(:mod:`~pe_iqa.efficacy`) → channel ranking (:mod:`~pe_iqa.ranking`, :mod:`~pe_iqa.ranking_lookup`) → selected channels
(:mod:`~pe_iqa.resolver`, from a :class:`DistanceSpec`) → distance (the Eq. 1 kernel :mod:`~pe_iqa.feature_distance`,
run by :class:`PEDistance`). The core imports neither pyiqa nor TorchMetrics; their adapters live in the
``pe_iqa_torchmetrics`` and ``pe_iqa_pyiqa`` plugin packages.
"""

from .backbones import Backbone, WeightsMismatchError, WeightsNotFoundError, list_layers, load_backbone
from .contextual_loss import PEContextualLoss
from .distance import PEDistance, PELoss
from .efficacy import perceptual_efficacy, register_score
from .functional import pe_distance
from .presets import PRESETS
from .ranking import ChannelRanking
from .ranking_lookup import get_ranking, get_rankings
from .spec import DistanceSpec
from .tuning import AnalysisConfig, TuningCurves, measure_tuning

__version__ = "0.2.0"

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
