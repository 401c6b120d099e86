"""pe-iqa: Perceptual Efficacy (PE) channel selection for deep-feature image-quality distances.

Data flows one way: stimuli → tuning curves → efficacy scores → channel ranking → selected channels →
distance. The core imports neither pyiqa nor TorchMetrics; their adapters live in the ``pe_iqa_torchmetrics``
and ``pe_iqa_pyiqa`` plugin packages.
"""

from .backbones import BACKBONES, Backbone, BackboneSpec, WeightsNotFoundError, load_backbone
from .csf import CSF_MODELS, get_csf
from .distance import DEFAULTS, PEDistance, PELoss, pe_distance
from .efficacy import EFFICACY_SCORES, perceptual_efficacy, register_score
from .presets import METRIC_PRESETS, create_preset
from .ranking import ChannelRanking
from .registry import get_ranking, get_rankings
from .stimuli import ViewingCondition, oriented_gratings, radial_gratings
from .tuning import AnalysisConfig, TuningCurves, measure_tuning

__version__ = "0.1.0"

__all__ = [
    "BACKBONES",
    "CSF_MODELS",
    "DEFAULTS",
    "EFFICACY_SCORES",
    "METRIC_PRESETS",
    "AnalysisConfig",
    "Backbone",
    "BackboneSpec",
    "ChannelRanking",
    "PEDistance",
    "PELoss",
    "TuningCurves",
    "ViewingCondition",
    "WeightsNotFoundError",
    "__version__",
    "create_preset",
    "get_csf",
    "get_ranking",
    "get_rankings",
    "load_backbone",
    "measure_tuning",
    "oriented_gratings",
    "pe_distance",
    "perceptual_efficacy",
    "radial_gratings",
    "register_score",
]
