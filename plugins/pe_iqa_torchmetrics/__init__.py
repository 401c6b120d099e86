"""TorchMetrics adapter for the PE feature distance: :class:`PEFeatureDistance` and :func:`pe_feature_distance`.

Thin wrappers of :class:`pe_iqa.distance.PEDistance` and the named presets of :mod:`pe_iqa.presets`
(``pe_alex``, ``pe_vgg``, ``pe_alex_f``); no computation of their own. Needs ``torchmetrics``
(``pip install pe-iqa[torchmetrics]``); the core package ``pe_iqa`` does not import it.

Example:
    >>> import torch
    >>> from torchmetrics import MetricCollection
    >>> from torchmetrics.image import StructuralSimilarityIndexMeasure
    >>> from pe_iqa_torchmetrics import PEFeatureDistance
    >>> metrics = MetricCollection({
    ...     "pe": PEFeatureDistance(weights="random", layers=["relu1"], top_percent=25),
    ...     "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
    ... })
    >>> reference = torch.rand(2, 3, 64, 64)
    >>> {name: round(float(value), 4) for name, value in metrics(reference, reference).items()}
    {'pe': 0.0, 'ssim': 1.0}
"""

from __future__ import annotations

from .functional import pe_feature_distance
from .metric import PEFeatureDistance

__all__ = ["PEFeatureDistance", "pe_feature_distance"]
