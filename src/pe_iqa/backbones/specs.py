"""What a backbone is: the table of supported networks, their layer taps, input normalisation and layer names.

A :class:`BackboneSpec` names a network, where its layers are tapped and the normalisation it expects. The
torchvision networks have readable tap names (``relu1`` … ``relu5`` for AlexNet, LPIPS's ``relu1_2`` … ``relu5_3``
for VGG-16); any timm CNN that supports ``features_only`` is available as ``timm:<model>`` with timm's own feature
module names as layer names (``timm:resnet18`` → ``act1``, ``layer1`` …; ``timm:convnext_tiny`` → ``stages.0`` …).
Transformers are refused: PE analyses channels with a local receptive field over a spatial map, which patch tokens
mixed by global attention are not.

:func:`backbone_spec` looks a name up (aliases such as ``"alex"`` accepted); :func:`list_layers` lists a backbone's
layer names, shallow to deep.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["BACKBONES", "IMAGENET_MEAN", "IMAGENET_STD", "BackboneSpec", "backbone_spec", "canonical_name",
           "is_transformer", "list_layers"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone is: its source, layer taps and input normalisation.

    Attributes:
        name: canonical name (``"alexnet"``, ``"vgg16"``, ``"timm:resnet50"`` …).
        source: ``"torchvision"`` or ``"timm"``.
        taps: layer name → module path in the model, ordered shallow to deep.
        default_layers: the layers used when none are requested (LPIPS's taps where LPIPS has them).
        mean: per-channel input mean of the expected normalisation (RGB).
        std: per-channel input std of the expected normalisation (RGB).
    """

    name: str
    source: str
    taps: dict[str, str] = field(hash=False)
    default_layers: tuple[str, ...]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer name, shallow to deep."""
        return tuple(self.taps)

    def check_layers(self, layers: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
        """Validate layer names, returning them ordered shallow to deep without duplicates.

        Args:
            layers: layer names, one name, or ``None`` for :attr:`default_layers`.

        Raises:
            TypeError: if ``layers`` is not a string or a sequence of strings.
            ValueError: if it is empty or names a layer the backbone does not have.
        """
        if layers is None:
            return self.default_layers
        if isinstance(layers, str):
            layers = (layers,)
        try:
            layers = tuple(layers)
        except TypeError:
            raise TypeError(f"layers must be a layer name or a sequence of them, got {type(layers).__name__}") from None
        if not all(isinstance(layer, str) for layer in layers):
            raise TypeError(f"layers must be strings, got {layers!r}")
        if not layers:
            raise ValueError(f"layers must name at least one of {list(self.taps)} for {self.name}")
        unknown = [layer for layer in layers if layer not in self.taps]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown} for backbone {self.name!r}; choose from {list(self.taps)} "
                             f"(list them with `pe-iqa layers {self.name}`)")
        order = list(self.taps)
        return tuple(sorted(set(layers), key=order.index))


def _vgg16_taps() -> dict[str, str]:
    # conv index of each ReLU in torchvision's vgg16.features
    relus = {"1_1": 1, "1_2": 3, "2_1": 6, "2_2": 8, "3_1": 11, "3_2": 13, "3_3": 15,
             "4_1": 18, "4_2": 20, "4_3": 22, "5_1": 25, "5_2": 27, "5_3": 29}
    return {f"relu{k}": f"features.{v}" for k, v in relus.items()}


_RESNET_TAPS = MappingProxyType({"stem": "relu", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3",
                                 "layer4": "layer4"})

#: The torchvision backbones, by canonical name.
BACKBONES: Mapping[str, BackboneSpec] = MappingProxyType({
    "alexnet": BackboneSpec(
        "alexnet", "torchvision",
        {"relu1": "features.1", "relu2": "features.4", "relu3": "features.7",
         "relu4": "features.9", "relu5": "features.11"},
        ("relu1", "relu2", "relu3", "relu4", "relu5"),
    ),
    "vgg16": BackboneSpec(
        "vgg16", "torchvision", _vgg16_taps(), ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
    ),
    "squeezenet1_1": BackboneSpec(
        "squeezenet1_1", "torchvision",
        {"relu1": "features.1", "fire2": "features.3", "fire3": "features.4", "fire4": "features.6",
         "fire5": "features.7", "fire6": "features.9", "fire7": "features.10", "fire8": "features.11",
         "fire9": "features.12"},
        ("relu1", "fire3", "fire5", "fire6", "fire7", "fire8", "fire9"),
    ),
    "shufflenet_v2_x1_0": BackboneSpec(
        "shufflenet_v2_x1_0", "torchvision",
        {"conv1": "conv1", "stage2": "stage2", "stage3": "stage3", "stage4": "stage4", "conv5": "conv5"},
        ("conv1", "stage2", "stage3", "stage4", "conv5"),
    ),
    "googlenet": BackboneSpec(
        "googlenet", "torchvision",
        {name: name for name in ("conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a",
                                 "inception4b", "inception4c", "inception4d", "inception4e",
                                 "inception5a", "inception5b")},
        ("conv1", "conv3", "inception3b", "inception4e", "inception5b"),
    ),
    "resnet18": BackboneSpec("resnet18", "torchvision", dict(_RESNET_TAPS), tuple(_RESNET_TAPS)),
    "resnet50": BackboneSpec("resnet50", "torchvision", dict(_RESNET_TAPS), tuple(_RESNET_TAPS)),
})

_ALIASES = MappingProxyType({"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1",
                             "squeezenet": "squeezenet1_1", "shufflenet": "shufflenet_v2_x1_0",
                             "shufflenet_v2": "shufflenet_v2_x1_0"})


def canonical_name(name: str) -> str:
    """Canonical backbone name for ``name`` (accepts aliases like ``"alex"``, ``"vgg"``).

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if the backbone is unknown.

    Example:
        >>> canonical_name("alex"), canonical_name("timm:resnet18")
        ('alexnet', 'timm:resnet18')
    """
    if not isinstance(name, str):
        raise TypeError(f"backbone must be a string, got {type(name).__name__}")
    if name.startswith("timm:"):
        if len(name) <= 5:
            raise ValueError("backbone 'timm:' needs a model name, e.g. 'timm:resnet50'")
        return name
    canonical = _ALIASES.get(name, name)
    if canonical not in BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)} or 'timm:<name>', got {name!r}")
    return canonical


def is_transformer(model: object) -> bool:
    """Whether a timm ``features_only`` model is a transformer (token features, not convolutional maps)."""
    wrapped = getattr(model, "model", model)
    return type(model).__name__ == "FeatureGetterNet" or hasattr(wrapped, "patch_embed")


@functools.lru_cache(maxsize=64)
def _timm_spec(name: str) -> BackboneSpec:
    import timm

    model_name = name[len("timm:"):]
    try:
        probe = timm.create_model(model_name, pretrained=False, features_only=True)
    except Exception as error:
        raise ValueError(f"timm cannot build {model_name!r} as a feature extractor (features_only=True): "
                         f"{type(error).__name__}: {error}") from None
    if is_transformer(probe):
        raise ValueError(
            f"{name} is a transformer: PE measures channels with a local receptive field over a spatial map, "
            f"which patch tokens mixed by global attention are not; use a CNN (e.g. timm:resnet50, "
            f"timm:efficientnet_b0, timm:convnext_tiny)"
        )
    modules = list(probe.feature_info.module_name())
    cfg = getattr(probe, "pretrained_cfg", None) or {}
    mean = tuple(float(v) for v in cfg.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in cfg.get("std", IMAGENET_STD))
    return BackboneSpec(name, "timm", {module: module for module in modules}, tuple(modules), mean, std)  # type: ignore[arg-type]


def backbone_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of a backbone name (aliases and ``timm:`` names accepted).

    A ``timm:`` name is probed once per process by building the model without weights.

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: on an unknown backbone, a timm model without ``features_only`` support, or a transformer.
    """
    canonical = canonical_name(name)
    if canonical.startswith("timm:"):
        return _timm_spec(canonical)
    return BACKBONES[canonical]


def list_layers(name: str) -> tuple[str, ...]:
    """The layer names of a backbone, shallow to deep (the names ``layers=`` accepts).

    Example:
        >>> list_layers("alexnet")
        ('relu1', 'relu2', 'relu3', 'relu4', 'relu5')
    """
    return backbone_spec(name).layers
