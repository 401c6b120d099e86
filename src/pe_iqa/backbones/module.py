"""The :class:`Backbone` module: a frozen feature extractor returning the activations of named layers.

:func:`load_backbone` builds one from a name, layers and a weights tag (see :mod:`pe_iqa.backbones.weights`). It
takes images in ``[0, 1]``, applies the network's input normalisation and returns the requested taps. The forward
pass stops at the deepest requested tap where the architecture allows (torchvision models are cut with ``torch.fx``
feature extraction; timm ``features_only`` models built from a module dict are truncated after the deepest tap,
others — e.g. EfficientNet, MobileNetV3 — run in full and return only the requested taps).

A backbone is identified by :attr:`Backbone.weights_id`, a fingerprint of the weights it *holds now*: fine-tune it
in memory and the id changes, so a ranking is never looked up or stored under the weights it was loaded with.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from .geometry import geometric_min_input_size
from .specs import BackboneSpec, backbone_spec
from .weights import build_network, fingerprint

__all__ = ["Backbone", "BrokenWeightsError", "check_responses", "load_backbone", "network_for"]

#: Largest activation accepted on the probe image: beyond, squared feature differences overflow float32 (3.4e38).
MAX_PROBE_RESPONSE = 1e15


class BrokenWeightsError(ValueError):
    """A network whose responses to probe images are unusable (all zero, constant, non-finite, huge, or the same
    whatever the image)."""


def _probe_images(size: int) -> torch.Tensor:
    """Two deterministic, different ``(3, size, size)`` images in ``[0, 1]`` as a batch: gratings and ramps,
    different per channel, and the same turned a quarter with the channels rotated."""
    axis = torch.linspace(0, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    red = 0.5 + 0.5 * torch.sin(2 * torch.pi * 6 * x)
    green = 0.5 + 0.5 * torch.sin(2 * torch.pi * (4 * x + 9 * y))
    blue = (x + y) / 2
    first = torch.stack([red, green, blue])
    return torch.stack([first, first.transpose(-1, -2).flip(-1).roll(1, dims=0)])


def _problem(response: torch.Tensor) -> str | None:
    """What makes a tapped layer's responses to the two probe images (``(2, C, H, W)``, float32) unusable."""
    if not bool(torch.isfinite(response).all()):
        return "non-finite values"
    largest = float(response.abs().max())
    if largest > MAX_PROBE_RESPONSE:
        return f"values up to {largest:.3g} (weights scaled far out of range?)"
    if largest == 0:
        return "all zeros"
    if float(response.max() - response.min()) == 0:
        return "one constant value"
    if float((response[0] - response[1]).abs().max()) <= 1e-6 * largest:
        return "the same values whatever the image (each channel constant)"
    return None


def check_responses(backbone: Backbone, source: str) -> None:
    """Refuse a network whose responses to two different probe images are all zero, constant, non-finite, above
    :data:`MAX_PROBE_RESPONSE` or the same for both images at a tapped layer (broken weights would make every pair
    score the same).

    One forward pass of the two 64×64 probes (224×224 for networks that need larger inputs), on the backbone's
    device.

    Raises:
        BrokenWeightsError: naming the layer and what is wrong.
    """
    device, dtype = backbone.mean.device, backbone.mean.dtype
    with torch.no_grad():
        try:
            taps = backbone(_probe_images(64).to(device, dtype))
        except RuntimeError:  # too small for this network
            taps = backbone(_probe_images(224).to(device, dtype))
    for layer in backbone.layers:
        problem = _problem(taps[layer].detach().float())
        if problem:
            raise BrokenWeightsError(
                f"{backbone.spec.name} with weights {source}: layer {layer} responds to test images with {problem}; "
                f"these weights cannot measure image differences (a damaged or wrongly converted file?)")


def _version(tensor: torch.Tensor) -> int | None:
    try:
        return tensor._version
    except RuntimeError:  # inference tensors (created under torch.inference_mode) keep no version counter
        return None


def _parameter_state(module: nn.Module) -> tuple:
    """Identity of the tensors a module holds now (object, storage, in-place version), cheap to compare."""
    tensors = module.state_dict(keep_vars=True).items()
    return tuple((name, id(t), t.data_ptr(), _version(t), t.dtype) for name, t in tensors)


class Backbone(nn.Module):
    """A frozen feature extractor: images in ``[0, 1]`` → dict of layer activations.

    Build it with :func:`load_backbone`. The module is in eval mode, has ``requires_grad=False`` on all
    parameters (gradients still flow to the *input*), and computes nothing past the deepest tap where the
    architecture allows it.

    Attributes:
        spec: the :class:`~pe_iqa.backbones.specs.BackboneSpec`.
        layers: the tapped layers, shallow to deep.
        weights: the weights tag it was built with (for display; identity is :attr:`weights_id`).
        pruned: whether the deepest tap computes only some channels (:func:`~pe_iqa.backbones.prune_deepest_tap`).
    """

    def __init__(self, spec: BackboneSpec, layers: tuple[str, ...], extractor: nn.Module, weights: str,
                 weights_id: str, outputs: tuple[int, ...] | None = None, pruned: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.layers = layers
        self.weights = weights
        self.pruned = pruned
        self.extractor = extractor
        #: positions of the taps in a list-valued extractor output (timm models that cannot be truncated)
        self._outputs = outputs
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        for module in self.extractor.modules():
            if hasattr(module, "inplace"):
                module.inplace = False  # a tapped ReLU output must not be overwritten downstream
        self.requires_grad_(False)
        self.eval()
        self._loaded_id = weights_id
        self._loaded_digest = self._digest()
        self._state = _parameter_state(self.extractor)
        self._current_id = weights_id
        self._min_size: int | None = None
        self._channels: dict[str, int] | None = None
        self._bytes_per_pixel: float | None = None

    def _digest(self) -> str:
        return fingerprint(self.extractor, skip_head=False)

    @property
    def weights_id(self) -> str:
        """A 16-hex-digit fingerprint of the weights this network holds now.

        Equal to the fingerprint of the whole network at load time (over every parameter and buffer except the
        classifier, so it does not depend on the taps) while the tapped weights are unchanged, wherever they are
        moved; a new id, derived from the load-time id and the current weights, once they change.
        """
        state = _parameter_state(self.extractor)
        if state != self._state:
            digest = self._digest()
            if digest == self._loaded_digest:
                self._current_id = self._loaded_id
            else:
                self._current_id = hashlib.sha256(f"{self._loaded_id}:{digest}".encode()).hexdigest()[:16]
            self._state = state
        return self._current_id

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
        out = self.extractor((images - self.mean) / self.std)
        if isinstance(out, dict):
            return {layer: out[layer] for layer in self.layers}
        if self._outputs is not None:
            out = [out[i] for i in self._outputs]
        return dict(zip(self.layers, out, strict=True))

    @property
    def min_input_size(self) -> int:
        """Smallest square side (pixels) the backbone accepts.

        The larger of (a) the smallest input for which every tap still has one spatial position and (b) the
        total stride of the deepest tap (below it a feature position summarises less than one stride cell).
        Deep layers' theoretical receptive fields are larger still; like LPIPS (which scores 64×64 patches
        with AlexNet relu5) we accept inputs down to this size.
        """
        if self._min_size is None:  # from the layers' geometry; probed only for graphs it cannot read
            self._min_size = geometric_min_input_size(self.extractor) or _smallest_valid_size(self)
        return self._min_size

    def channels(self) -> dict[str, int]:
        """Number of channels per tapped layer (probed once with a small input, then remembered)."""
        if self._channels is None:
            size = max(self.min_input_size, 32)
            with torch.inference_mode():
                probe = self(torch.zeros(1, 3, size, size, device=self.mean.device, dtype=self.mean.dtype))
            self._channels = {layer: int(t.shape[1]) for layer, t in probe.items()}
        return dict(self._channels)

    def activation_bytes_per_pixel(self) -> float:
        """Estimated peak activation memory of one forward pass, in bytes per input pixel and image.

        Measured once on a 128×128 probe: the largest sum of one module's input and output activations (what
        must be alive at once in inference), plus every tap's output (kept until the distance is computed).
        """
        if self._bytes_per_pixel is None:
            sizes: list[int] = []

            def record(_module: nn.Module, inputs: tuple, output: object) -> None:
                tensors = [t for t in (*inputs, output) if isinstance(t, torch.Tensor)]
                sizes.append(sum(t.numel() * t.element_size() for t in tensors))

            size = max(self.min_input_size, 128)  # (its search runs forwards too: before the hooks)
            leaves = [m for m in self.extractor.modules() if not list(m.children())]
            handles = [m.register_forward_hook(record) for m in leaves]
            try:
                with torch.inference_mode():
                    taps = self(torch.zeros(1, 3, size, size, device=self.mean.device, dtype=self.mean.dtype))
            finally:
                for handle in handles:
                    handle.remove()
            tap_bytes = sum(t.numel() * t.element_size() for t in taps.values())
            self._bytes_per_pixel = (max(sizes, default=0) + tap_bytes) / float(size * size)
        return self._bytes_per_pixel


def _runs(backbone: Backbone, size: int) -> bool:
    try:
        with torch.inference_mode():
            out = backbone(torch.zeros(1, 3, size, size, device=backbone.mean.device, dtype=backbone.mean.dtype))
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
        probe = backbone(torch.zeros(1, 3, 256, 256, device=backbone.mean.device, dtype=backbone.mean.dtype))
    stride = max(-(-256 // t.shape[-1]) for t in probe.values())
    return max(high, stride)


def _timm_extractor(model: nn.Module, spec: BackboneSpec, layers: tuple[str, ...]) -> tuple[nn.Module, tuple | None]:
    """A timm feature net returning ``layers``: truncated after the deepest one where the net is a module dict."""
    order = list(spec.taps)
    wanted = [order.index(layer) for layer in layers]
    if isinstance(model, nn.ModuleDict) and hasattr(model, "return_layers"):
        keep = {spec.taps[layer].replace(".", "_") for layer in layers}  # FeatureDictNet's module keys
        names = list(model.keys())
        last = max(names.index(name) for name in keep)
        for name in names[last + 1:]:
            del model[name]
        model.return_layers = {k: v for k, v in model.return_layers.items() if k in keep}
        return model, None
    return model, tuple(wanted)


def load_backbone(
    name: str = "alexnet",
    layers: str | list[str] | tuple[str, ...] | None = None,
    weights: str = "DEFAULT",
    device: torch.device | str | None = None,
) -> Backbone:
    """Build a frozen backbone that returns the activations of the requested layers.

    Args:
        name: backbone name, e.g. ``"alexnet"``, ``"vgg16"``, ``"timm:resnet50"`` (see :func:`~pe_iqa.list_layers`).
        layers: layer names to tap (default: the backbone's default layers).
        weights: ``"DEFAULT"``, a torchvision weight-enum name, ``"random[:SEED]"`` or a local file path
            (loaded strictly, see :mod:`pe_iqa.backbones.weights`).
        device: where to place the module (default CPU).

    Returns:
        A :class:`Backbone` in eval mode with frozen parameters.

    Raises:
        ValueError: unknown backbone, layer or weights tag; a transformer (see :mod:`pe_iqa.backbones.specs`).
        WeightsNotFoundError: pretrained weights requested but not available locally and not downloadable.
        WeightsMismatchError: a weight file that does not fit the network (names, shapes, dtype kind, NaN/Inf).
        BrokenWeightsError: the network's responses to a probe image are all zero, constant, non-finite or huge
            at a tapped layer (the layer is named).

    Example:
        >>> bb = load_backbone("alexnet", layers=["relu1", "relu2"], weights="random")
        >>> {k: tuple(v.shape) for k, v in bb(torch.rand(1, 3, 64, 64)).items()}
        {'relu1': (1, 64, 15, 15), 'relu2': (1, 192, 7, 7)}
    """
    spec = backbone_spec(name)
    chosen = spec.check_layers(layers)
    model = build_network(spec, weights)
    weights_id = fingerprint(model)
    outputs = None
    if spec.source == "timm":
        extractor, outputs = _timm_extractor(model, spec, chosen)
    else:
        from torchvision.models.feature_extraction import create_feature_extractor

        extractor = create_feature_extractor(model, return_nodes={spec.taps[layer]: layer for layer in chosen})
    backbone = Backbone(spec, chosen, extractor, weights, weights_id, outputs)
    check_responses(backbone, weights)
    return backbone.to(device) if device is not None else backbone


def network_for(
    backbone: str | Backbone,
    layers: str | list[str] | tuple[str, ...] | None,
    weights: str = "DEFAULT",
    device: torch.device | str | None = None,
) -> tuple[Backbone, tuple[str, ...]]:
    """The network of a distance or an analysis, and its layers.

    Args:
        backbone: a backbone name (loaded with ``weights``) or a loaded :class:`Backbone`, used as it is.
        layers: layer names; default: the given Backbone's taps, or the named backbone's default layers.
        weights: weights tag when ``backbone`` is a name.
        device: where to load a named backbone.

    Raises:
        ValueError: unknown layers, a given Backbone that does not tap them, or one that was pruned.
    """
    if not isinstance(backbone, Backbone):
        net = load_backbone(backbone, layers, weights=weights, device=device)
        return net, net.layers
    if backbone.pruned:
        raise ValueError(
            f"the given {backbone.spec.name} backbone was pruned (a PEDistance's .backbone computes only its "
            f"selected channels); pass the original backbone or a backbone name instead"
        )
    chosen = backbone.spec.check_layers(layers if layers is not None else backbone.layers)
    untapped = [layer for layer in chosen if layer not in backbone.layers]
    if untapped:
        raise ValueError(
            f"the given {backbone.spec.name} backbone taps {list(backbone.layers)}, not {untapped}; build it with "
            f"load_backbone(..., layers=[...]) covering them (a given network is analysed as it is, never reloaded)"
        )
    return backbone, chosen
