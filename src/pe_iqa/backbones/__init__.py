"""Backbones: pretrained CNNs with named layer taps, their weights and weights identity.

* :mod:`~pe_iqa.backbones.specs` — the supported networks, their layer names and input normalisation
  (``alexnet``, ``vgg16``, ``squeezenet1_1``, ``shufflenet_v2_x1_0``, ``googlenet``, ``resnet18``, ``resnet50``
  from torchvision, and any timm CNN as ``timm:<model>``);
* :mod:`~pe_iqa.backbones.weights` — building a network with its weights, strict weight-file loading, fingerprints;
* :mod:`~pe_iqa.backbones.module` — the frozen :class:`Backbone` feature extractor and :func:`load_backbone`;
* :mod:`~pe_iqa.backbones.pruning` — computing only the selected channels of the deepest tap.
"""

from .module import Backbone, BrokenWeightsError, load_backbone, network_for
from .pruning import prune_deepest_tap
from .specs import BACKBONES, BackboneSpec, backbone_spec, canonical_name, list_layers
from .weights import WeightsMismatchError, WeightsNotFoundError, check_weights

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneSpec",
    "BrokenWeightsError",
    "WeightsMismatchError",
    "WeightsNotFoundError",
    "backbone_spec",
    "canonical_name",
    "check_weights",
    "list_layers",
    "load_backbone",
    "network_for",
    "prune_deepest_tap",
]
