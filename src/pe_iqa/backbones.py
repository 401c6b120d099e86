"""Backbones: pretrained CNNs with named layer taps, their input normalisation and weights identity.

A :class:`BackboneSpec` names a network, where its layers are tapped (readable names such as ``relu1`` …
``relu5`` for AlexNet, LPIPS's ``relu1_2`` … ``relu5_3`` for VGG-16) and the normalisation it expects.
:func:`load_backbone` builds a :class:`Backbone` module that takes images in ``[0, 1]`` and returns the
requested taps. The forward pass stops at the deepest requested tap (torchvision models are cut with
``torch.fx`` feature extraction, timm models with ``features_only``), so asking for ``relu2`` never runs
``conv3`` … ``conv5``.

Supported names: ``alexnet``, ``vgg16``, ``squeezenet1_1``, ``shufflenet_v2_x1_0``, ``googlenet``,
``resnet18``, ``resnet50`` (torchvision) and ``timm:<model name>`` for any timm CNN that supports
``features_only`` (e.g. ``timm:vgg16.tv_in1k``, ``timm:resnet50``).

Weights (``weights=`` argument):
    * ``"DEFAULT"`` — the standard ImageNet weights (torchvision ``IMAGENET1K_V1``; timm's default tag),
      loaded the standard way from the torch hub cache (``$TORCH_HOME/hub/checkpoints``) or the HF cache.
    * any torchvision weight-enum name, e.g. ``"IMAGENET1K_V1"``.
    * ``"random"`` or ``"random:SEED"`` — random initialisation from a fixed seed (for tests and controls).
    * a path to a local ``.pth``/``.safetensors`` file with the model's state dict (timm: passed as
      ``pretrained_cfg_overlay=dict(file=...)``).

Offline without the weights file, loading fails with :class:`WeightsNotFoundError`, which names the file
expected and where to put it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneSpec",
    "WeightsNotFoundError",
    "load_backbone",
    "prune_deepest_tap",
    "resolve_backbone_name",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are neither cached locally nor downloadable (e.g. offline)."""


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone is: its source, layer taps and input normalisation.

    Attributes:
        name: canonical name (``"alexnet"``, ``"vgg16"``, ``"timm:resnet50"`` …).
        source: ``"torchvision"`` or ``"timm"``.
        taps: readable layer name → module path in the model (ordered shallow to deep).
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

    def check_layers(self, layers: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
        """Validate layer names, returning them ordered shallow to deep without duplicates."""
        if layers is None:
            return self.default_layers
        if isinstance(layers, str):
            layers = (layers,)
        layers = tuple(layers)
        if not layers:
            raise ValueError(f"layers must name at least one of {list(self.taps)} for {self.name}")
        unknown = [layer for layer in layers if layer not in self.taps]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown} for backbone {self.name!r}; choose from {list(self.taps)}")
        order = list(self.taps)
        return tuple(sorted(set(layers), key=order.index))


def _vgg16_taps() -> dict[str, str]:
    # conv index of each ReLU in torchvision's vgg16.features
    relus = {"1_1": 1, "1_2": 3, "2_1": 6, "2_2": 8, "3_1": 11, "3_2": 13, "3_3": 15,
             "4_1": 18, "4_2": 20, "4_3": 22, "5_1": 25, "5_2": 27, "5_3": 29}
    return {f"relu{k}": f"features.{v}" for k, v in relus.items()}


BACKBONES: dict[str, BackboneSpec] = {
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
    "resnet18": BackboneSpec(
        "resnet18", "torchvision",
        {"stem": "relu", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3", "layer4": "layer4"},
        ("stem", "layer1", "layer2", "layer3", "layer4"),
    ),
    "resnet50": BackboneSpec(
        "resnet50", "torchvision",
        {"stem": "relu", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3", "layer4": "layer4"},
        ("stem", "layer1", "layer2", "layer3", "layer4"),
    ),
}

_ALIASES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1", "squeezenet": "squeezenet1_1",
            "shufflenet": "shufflenet_v2_x1_0", "shufflenet_v2": "shufflenet_v2_x1_0"}


def resolve_backbone_name(name: str) -> str:
    """Canonical backbone name for ``name`` (accepts aliases like ``"alex"``, ``"vgg"``).

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if the backbone is unknown.
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


# ---------------------------------------------------------------------------------------------- weights


def _parse_random(weights: str) -> int | None:
    if weights == "random":
        return 0
    if weights.startswith("random:"):
        try:
            return int(weights.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"weights 'random:SEED' needs an integer seed, got {weights!r}") from None
    return None


def _hub_checkpoint_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _build_torchvision(name: str, weights: str) -> nn.Module:
    import torchvision

    builder = getattr(torchvision.models, name)
    seed = _parse_random(weights)
    extra: dict = {}
    if name == "googlenet":
        extra = {"aux_logits": False, "init_weights": True} if seed is not None else {}
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return builder(weights=None, **extra)
    if os.path.isfile(weights):
        model = builder(weights=None, **({"aux_logits": False, "init_weights": False} if name == "googlenet" else {}))
        state = _load_state_dict_file(weights)
        model.load_state_dict(state, strict=False)
        return model
    enum = torchvision.models.get_model_weights(name)
    try:
        weight_enum = enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise ValueError(
            f"weights must be 'DEFAULT', 'random[:SEED]', a file path or one of {[w.name for w in enum]} "
            f"for {name}, got {weights!r}"
        ) from None
    expected = _hub_checkpoint_path(weight_enum.url)
    try:
        return builder(weights=weight_enum)
    except Exception as error:  # download failure offline: URLError, socket errors, HTTP errors …
        raise WeightsNotFoundError(
            f"could not load {name} weights {weight_enum}: expected the file {expected.name} at {expected} "
            f"(the torch hub cache; set TORCH_HOME to the folder holding hub/checkpoints/). "
            f"Download {weight_enum.url} there, or pass weights='random' for an untrained network. "
            f"Cause: {type(error).__name__}: {error}"
        ) from error


def _load_state_dict_file(path: str) -> dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def _truncate_timm(net: nn.Module, modules: list[str]) -> nn.Module:
    """Drop the stages of a timm feature net past the deepest of ``modules`` and return only those taps."""
    keep = {module.replace(".", "_") for module in modules}
    names = list(net.keys())  # FeatureDictNet/FeatureListNet are ModuleDicts of stages, in forward order
    missing = keep.difference(names)
    if missing:
        raise RuntimeError(f"timm feature net has no stage(s) {sorted(missing)}; stages: {names}")
    last = max(names.index(name) for name in keep)
    for name in names[last + 1:]:
        del net[name]
    net.return_layers = {k: v for k, v in net.return_layers.items() if k in keep}
    return net


def _build_timm(model_name: str, weights: str) -> nn.Module:
    import timm

    seed = _parse_random(weights)
    kwargs: dict = {"features_only": True}
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return timm.create_model(model_name, pretrained=False, **kwargs)
    if os.path.isfile(weights):
        return timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay={"file": weights}, **kwargs)
    if weights != "DEFAULT":
        raise ValueError(f"timm weights must be 'DEFAULT', 'random[:SEED]' or a file path, got {weights!r}")
    try:
        return timm.create_model(model_name, pretrained=True, **kwargs)
    except Exception as error:
        raise WeightsNotFoundError(
            f"could not load pretrained timm weights for {model_name!r}: offline and not cached; expected "
            f"{_timm_expected_weights(model_name)}. Put the weights file somewhere local "
            f"and pass weights='/path/to/file.pth' (loaded with pretrained_cfg_overlay=dict(file=...)), or "
            f"weights='random'. Cause: {type(error).__name__}: {error}"
        ) from error


def _timm_expected_weights(model_name: str) -> str:
    """Where timm looks for the pretrained weights of ``model_name`` (for error messages)."""
    import timm
    from huggingface_hub.constants import HF_HUB_CACHE

    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is not None and cfg.hf_hub_id:
        filename = cfg.hf_hub_filename or "model.safetensors or pytorch_model.bin"
        return f"{filename} of the Hugging Face repo {cfg.hf_hub_id} in the hub cache {HF_HUB_CACHE}"
    if cfg is not None and cfg.url:
        return f"the file {os.path.basename(cfg.url)} at {_hub_checkpoint_path(cfg.url)}"
    return f"a pretrained config for {model_name!r} (timm has none)"


def _timm_spec(name: str) -> BackboneSpec:
    import timm

    model_name = name[len("timm:"):]
    try:
        probe = timm.create_model(model_name, pretrained=False, features_only=True)
    except Exception as error:
        raise ValueError(f"timm cannot build {model_name!r} with features_only=True: {error}") from error
    modules = probe.feature_info.module_name()
    taps = {module.replace(".", "_"): module for module in modules}
    cfg = getattr(probe, "pretrained_cfg", None) or {}
    mean = tuple(cfg.get("mean", IMAGENET_MEAN))
    std = tuple(cfg.get("std", IMAGENET_STD))
    return BackboneSpec(name, "timm", taps, tuple(taps), mean, std)  # type: ignore[arg-type]


def get_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of a backbone name (aliases and ``timm:`` names accepted)."""
    canonical = resolve_backbone_name(name)
    if canonical.startswith("timm:"):
        return _timm_spec(canonical)
    return BACKBONES[canonical]


# ---------------------------------------------------------------------------------------------- module


class Backbone(nn.Module):
    """A frozen feature extractor: images in ``[0, 1]`` → dict of layer activations.

    Build it with :func:`load_backbone`. The module is in eval mode, has ``requires_grad=False`` on all
    parameters (gradients still flow to the *input*), and computes nothing past the deepest tap.

    Attributes:
        spec: the :class:`BackboneSpec`.
        layers: the tapped layers, shallow to deep.
        weights: the weights argument it was built with.
        weights_id: a 16-hex-digit fingerprint of the parameters actually used (changes with any weight).
    """

    def __init__(
        self, spec: BackboneSpec, layers: tuple[str, ...], extractor: nn.Module, weights: str, weights_id: str
    ) -> None:
        super().__init__()
        self.spec = spec
        self.layers = layers
        self.weights = weights
        self.extractor = extractor
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        for module in self.extractor.modules():
            if hasattr(module, "inplace"):
                module.inplace = False  # a tapped ReLU output must not be overwritten downstream
        self.requires_grad_(False)
        self.eval()
        self.weights_id = weights_id
        self._min_size: int | None = None

    def train(self, mode: bool = True) -> Backbone:
        """Always stays in eval mode (batch-norm statistics and dropout are frozen)."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activations of every tapped layer.

        Args:
            images: ``(N, 3, H, W)`` RGB in ``[0, 1]`` (not validated here: see :mod:`pe_iqa.input_checks`).

        Returns:
            ``{layer: (N, C_layer, H_layer, W_layer)}`` for each layer in :attr:`layers`.
        """
        images = images.to(self.mean.dtype)  # float64/half inputs with a float32 network (or the reverse)
        x = (images - self.mean) / self.std
        out = self.extractor(x)
        if isinstance(out, dict):
            return {layer: out[layer] for layer in self.layers}
        return dict(zip(self.layers, out, strict=True))

    @property
    def min_input_size(self) -> int:
        """Smallest square side (pixels) the backbone accepts.

        The larger of (a) the smallest input for which every tap still has one spatial position and (b) the
        total stride of the deepest tap (below it a feature position summarises less than one stride cell).
        Deep layers' theoretical receptive fields are larger still; like LPIPS (which scores 64×64 patches
        with AlexNet relu5) we accept inputs down to this size.
        """
        if self._min_size is None:
            self._min_size = _smallest_valid_size(self)
        return self._min_size

    def channels(self) -> dict[str, int]:
        """Number of channels per tapped layer (probed once with a small input)."""
        size = max(self.min_input_size, 32)
        with torch.inference_mode():
            probe = self(torch.zeros(1, 3, size, size, device=self.mean.device))
        return {layer: int(t.shape[1]) for layer, t in probe.items()}


_HEAD_PREFIXES = ("classifier.", "fc.", "aux1.", "aux2.", "head.")


def _fingerprint(module: nn.Module) -> str:
    """Hash of every parameter and buffer except the classification head (which no tap uses).

    Computed on the whole (untruncated) network, so it is the same whichever layers are tapped.
    """
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        if key.startswith(_HEAD_PREFIXES):
            continue
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        data = tensor.detach().to("cpu").contiguous()
        if data.dtype == torch.bfloat16:
            data = data.float()
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()[:16]


def _runs(backbone: Backbone, size: int) -> bool:
    try:
        with torch.inference_mode():
            out = backbone(torch.zeros(1, 3, size, size, device=backbone.mean.device))
    except RuntimeError:
        return False
    return all(t.shape[-1] >= 1 and t.shape[-2] >= 1 for t in out.values())


def _smallest_valid_size(backbone: Backbone) -> int:
    low, high = 1, 32
    while not _runs(backbone, high):
        low, high = high, high * 2
        if high > 4096:
            raise RuntimeError(f"{backbone.spec.name} does not run on inputs up to 4096 px")
    while low < high:  # smallest size that runs (outputs grow monotonically with input size)
        mid = (low + high) // 2
        if _runs(backbone, mid):
            high = mid
        else:
            low = mid + 1
    with torch.inference_mode():
        probe = backbone(torch.zeros(1, 3, 256, 256, device=backbone.mean.device))
    stride = max(-(-256 // t.shape[-1]) for t in probe.values())
    return max(high, stride)


def load_backbone(
    name: str = "alexnet",
    layers: list[str] | tuple[str, ...] | None = None,
    weights: str = "DEFAULT",
    device: torch.device | str | None = None,
) -> Backbone:
    """Build a frozen backbone that returns the activations of the requested layers.

    Args:
        name: backbone name (see module docstring), e.g. ``"alexnet"``, ``"vgg16"``, ``"timm:resnet50"``.
        layers: layer names to tap (default: :attr:`BackboneSpec.default_layers`).
        weights: ``"DEFAULT"``, a torchvision weight-enum name, ``"random[:SEED]"`` or a local file path.
        device: where to place the module (default CPU).

    Returns:
        A :class:`Backbone` in eval mode with frozen parameters.

    Raises:
        ValueError: unknown backbone, layer or weights tag.
        WeightsNotFoundError: pretrained weights requested but not available locally and not downloadable.

    Example:
        >>> bb = load_backbone("alexnet", layers=["relu1", "relu2"], weights="random")
        >>> {k: tuple(v.shape) for k, v in bb(torch.rand(1, 3, 64, 64)).items()}
        {'relu1': (1, 64, 15, 15), 'relu2': (1, 192, 7, 7)}
    """
    if not isinstance(weights, str):
        raise TypeError(f"weights must be a string tag or file path, got {type(weights).__name__}")
    spec = get_spec(name)
    chosen = spec.check_layers(layers)
    if spec.source == "timm":
        model = _build_timm(spec.name[len("timm:"):], weights)
        weights_id = _fingerprint(model)
        extractor = _truncate_timm(model, [spec.taps[layer] for layer in chosen])
    else:
        from torchvision.models.feature_extraction import create_feature_extractor

        model = _build_torchvision(spec.name, weights)
        model.eval()
        weights_id = _fingerprint(model)
        extractor = create_feature_extractor(model, return_nodes={spec.taps[layer]: layer for layer in chosen})
    backbone = Backbone(spec, chosen, extractor, weights, weights_id)
    return backbone.to(device) if device is not None else backbone


def prune_deepest_tap(backbone: Backbone, channels: torch.Tensor) -> Backbone | None:
    """A copy of ``backbone`` whose deepest tap computes only ``channels`` (or ``None`` if not possible).

    When the deepest tapped layer is ``Conv2d → ReLU`` in a torchvision feature extractor and nothing else
    reads that convolution, the convolution is replaced by one holding only the selected output filters, so
    the unselected channels are never computed. The pruned tap returns channels in the order of ``channels``.
    The original backbone is left untouched (the copy shares no parameters with it).

    Args:
        backbone: a torchvision-based :class:`Backbone`.
        channels: ``(K,)`` int64 indices of the channels to keep at the deepest tap.

    Returns:
        The pruned copy, or ``None`` for other architectures (timm nets, taps that are not conv→ReLU).
    """
    import copy

    from torch import fx

    extractor = backbone.extractor
    if not isinstance(extractor, fx.GraphModule):
        return None
    deepest = backbone.layers[-1]
    output = next(node for node in extractor.graph.nodes if node.op == "output")
    tap = output.args[0].get(deepest) if isinstance(output.args[0], dict) else None
    if tap is None or tap.op != "call_module" or not isinstance(extractor.get_submodule(tap.target), nn.ReLU):
        return None
    conv_node = tap.args[0]
    if conv_node.op != "call_module" or len(conv_node.users) != 1 or len(tap.users) != 1:
        return None
    conv = extractor.get_submodule(conv_node.target)
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
        return None
    index = channels.detach().to(device=conv.weight.device, dtype=torch.long)
    pruned_conv = nn.Conv2d(conv.in_channels, int(index.numel()), conv.kernel_size, conv.stride, conv.padding,
                            conv.dilation, 1, conv.bias is not None, conv.padding_mode,
                            device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        pruned_conv.weight.copy_(conv.weight.index_select(0, index))
        if conv.bias is not None:
            pruned_conv.bias.copy_(conv.bias.index_select(0, index))
    new_extractor = copy.deepcopy(extractor)
    parent_name, _, child_name = conv_node.target.rpartition(".")
    setattr(new_extractor.get_submodule(parent_name) if parent_name else new_extractor, child_name, pruned_conv)
    pruned = Backbone(backbone.spec, backbone.layers, new_extractor, backbone.weights, backbone.weights_id)
    return pruned.to(backbone.mean.device)
