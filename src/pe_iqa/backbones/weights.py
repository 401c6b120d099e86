"""Building a backbone's network with its weights, loading weight files strictly, and fingerprinting weights.

Weights (``weights=`` argument of :func:`~pe_iqa.backbones.load_backbone`):
    * ``"DEFAULT"`` — the standard ImageNet weights (torchvision ``IMAGENET1K_V1``; timm's default tag), loaded the
      standard way from the torch hub cache (``$TORCH_HOME/hub/checkpoints``) or the Hugging Face cache.
    * any torchvision weight-enum name, e.g. ``"IMAGENET1K_V1"``.
    * ``"random"`` or ``"random:SEED"`` — random initialisation from a fixed seed (for tests and controls).
    * a path to a local ``.pth``/``.safetensors`` file with the model's state dict.

A weight file is loaded **strictly**: every parameter and buffer the taps use must be in the file, and the file may
hold nothing the model does not have; otherwise :class:`WeightsMismatchError` names the missing and unexpected keys
(layers left at their random initialisation would silently change every score). Two common wrappers are unwrapped,
with a warning saying so: a single nested dict (``{"state_dict": …}``, ``{"model": …}``) and the ``module.`` prefix
of ``DataParallel``/``DistributedDataParallel``. Classifier weights may be missing (no tap uses them).

Offline without the weights file, loading fails with :class:`WeightsNotFoundError`, which names the file expected and
where to put it.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .specs import BackboneSpec

__all__ = ["HEAD_PREFIXES", "WeightsMismatchError", "WeightsNotFoundError", "build_network", "check_weights",
           "fingerprint", "load_state_dict_file"]

#: Parameter-name prefixes of classification heads (no tap uses them; they may be missing from a weight file).
HEAD_PREFIXES = ("classifier.", "fc.", "aux1.", "aux2.", "head.")
_NESTING_KEYS = ("state_dict", "model", "model_state_dict", "net", "network", "params")


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are neither cached locally nor downloadable (e.g. offline)."""


class WeightsMismatchError(ValueError):
    """A weight file does not fit the network (missing or unexpected parameter names, or wrong shapes)."""


def parse_random(weights: str) -> int | None:
    """The seed of a ``"random"``/``"random:SEED"`` tag, or ``None`` for any other tag."""
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


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.pth``/``.pt``/``.bin`` (``torch.load(weights_only=True)``) or ``.safetensors`` file.

    Returns the mapping as stored; see :func:`unwrap_state_dict` for the wrappers that are removed before loading.

    Raises:
        WeightsMismatchError: if the file does not hold a mapping of names to tensors.
    """
    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsMismatchError(f"cannot read weights file {path}: {type(error).__name__}: {error}") from None
    if not isinstance(state, Mapping):
        raise WeightsMismatchError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    return dict(state)


def unwrap_state_dict(state: Mapping[str, object], source: str) -> dict[str, torch.Tensor]:
    """Remove the two unambiguous wrappers around a state dict, warning for each.

    * a mapping whose only tensor-holding entry is one of ``state_dict``, ``model``, ``model_state_dict``, ``net``,
      ``network``, ``params`` (training checkpoints; other non-tensor entries such as ``epoch`` are ignored);
    * a ``module.`` prefix on every key (``DataParallel``/``DistributedDataParallel``).

    Raises:
        WeightsMismatchError: if the result is not a mapping of names to tensors.
    """
    nested = [k for k in _NESTING_KEYS if isinstance(state.get(k), Mapping)]
    if len(nested) == 1 and not any(isinstance(v, torch.Tensor) for v in state.values()):
        warnings.warn(f"{source}: using the state dict nested under {nested[0]!r}", RuntimeWarning, stacklevel=3)
        state = state[nested[0]]  # type: ignore[assignment]
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        warnings.warn(f"{source}: removing the 'module.' prefix of a DataParallel checkpoint", RuntimeWarning,
                      stacklevel=3)
        state = {k[len("module."):]: v for k, v in state.items()}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad or not state:
        raise WeightsMismatchError(
            f"{source} is not a state dict of tensors" + (f" (non-tensor entries {bad[:5]})" if bad else " (empty)")
        )
    return dict(state)  # type: ignore[arg-type]


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                ignore: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``model``; every non-head key must match by name and shape.

    Args:
        model: the network.
        state: a state dict (after :func:`unwrap_state_dict`).
        source: the file, for messages.
        ignore: key prefixes the file may hold that the model does not have (e.g. GoogLeNet's auxiliary heads).

    Raises:
        WeightsMismatchError: naming missing keys (non-head), unexpected keys and shape mismatches.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(HEAD_PREFIXES)]
    unexpected = [k for k in state if k not in expected and not k.startswith(ignore)]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    dtypes = [f"{k}: file {state[k].dtype} vs model {expected[k].dtype}"
              for k in expected if k in state and state[k].is_floating_point() != expected[k].is_floating_point()]
    if dtypes:  # int8 values copied into float weights are not the network's weights (quantised files need scales)
        raise WeightsMismatchError(f"weights file {source} holds tensors of another kind of dtype than "
                                   f"{type(model).__name__}: {len(dtypes)} (e.g. {dtypes[:2]}); save the float "
                                   f"state_dict() of the network")
    broken = [k for k in expected if k in state and state[k].is_floating_point()
              and not bool(torch.isfinite(state[k]).all())]
    if broken:
        raise WeightsMismatchError(f"weights file {source} holds NaN or infinite values in {len(broken)} tensors "
                                   f"(e.g. {broken[:3]})")
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:4]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:4]})")
        if shapes:
            parts.append(f"{len(shapes)} with another shape (e.g. {shapes[:2]})")
        raise WeightsMismatchError(
            f"weights file {source} does not fit {type(model).__name__}: keys " + "; ".join(parts)
            + ". Save the network's own state_dict() (or pass weights='random')"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def _torchvision_weight_enum(name: str, weights: str):
    """The torchvision weight enum member of tag ``weights`` (``"DEFAULT"`` or a member name) for ``name``."""
    import torchvision

    enum = torchvision.models.get_model_weights(name)
    try:
        return enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise ValueError(
            f"weights must be 'DEFAULT', 'random[:SEED]', an existing file or one of {[w.name for w in enum]} "
            f"for {name}, got {weights!r}"
        ) from None


def check_weights(spec: BackboneSpec, weights: str) -> None:
    """Raise if ``weights`` is not a tag or file :func:`build_network` accepts for ``spec`` (nothing is loaded).

    Lets a caller refuse a wrong tag before any work (the command line: exit status 2); a file's content is
    checked only when it is loaded.

    Raises:
        TypeError: if ``weights`` is not a string.
        ValueError: an unknown tag, or ``random:SEED`` without an integer seed.

    Example:
        >>> from pe_iqa.backbones import backbone_spec
        >>> check_weights(backbone_spec("alexnet"), "random:3")
        >>> check_weights(backbone_spec("alexnet"), "IMAGENET1K_V2")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: weights must be 'DEFAULT', ... or one of ['IMAGENET1K_V1'] for alexnet, got 'IMAGENET1K_V2'
    """
    if not isinstance(weights, str):
        raise TypeError(f"weights must be a string tag or file path, got {type(weights).__name__}")
    if parse_random(weights) is not None or os.path.isfile(weights):
        return
    if spec.source == "timm":
        if weights != "DEFAULT":
            raise ValueError(f"timm weights must be 'DEFAULT', 'random[:SEED]' or an existing file, got {weights!r}")
        return
    _torchvision_weight_enum(spec.name, weights)


def _build_torchvision(name: str, weights: str) -> nn.Module:
    import torchvision

    builder = getattr(torchvision.models, name)
    seed = parse_random(weights)
    if seed is not None:
        extra = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return builder(weights=None, **extra)
    if os.path.isfile(weights):
        extra = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
        model = builder(weights=None, **extra)
        state = unwrap_state_dict(load_state_dict_file(weights), weights)
        load_strict(model, state, weights, ignore=("aux1.", "aux2."))
        return model
    weight_enum = _torchvision_weight_enum(name, weights)
    expected = _hub_checkpoint_path(weight_enum.url)
    try:
        return builder(weights=weight_enum)
    except Exception as error:  # download failure offline: URLError, socket errors, HTTP errors …
        raise WeightsNotFoundError(
            f"could not load {name} weights {weight_enum}: expected the file {expected.name} at {expected} "
            f"(the torch hub cache; set TORCH_HOME to the folder holding hub/checkpoints/). "
            f"Download {weight_enum.url} there, or pass weights='random' for an untrained network. "
            f"Cause: {type(error).__name__}: {error}"
        ) from None


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


def _build_timm(model_name: str, weights: str) -> nn.Module:
    import timm

    seed = parse_random(weights)
    kwargs: dict = {"features_only": True}
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return timm.create_model(model_name, pretrained=False, **kwargs)
    if os.path.isfile(weights):
        try:  # timm unwraps nested/module.-prefixed checkpoints itself and loads strictly
            return timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay={"file": weights}, **kwargs)
        except RuntimeError as error:
            raise WeightsMismatchError(f"weights file {weights} does not fit timm:{model_name}: {error}") from None
    try:  # weights == "DEFAULT" (build_network checked the tag)
        return timm.create_model(model_name, pretrained=True, **kwargs)
    except Exception as error:
        raise WeightsNotFoundError(
            f"could not load pretrained timm weights for {model_name!r}: offline and not cached; expected "
            f"{_timm_expected_weights(model_name)}. Put the weights file somewhere local "
            f"and pass weights='/path/to/file.pth' (loaded with pretrained_cfg_overlay=dict(file=...)), or "
            f"weights='random'. Cause: {type(error).__name__}: {error}"
        ) from None


def build_network(spec: BackboneSpec, weights: str) -> nn.Module:
    """The whole network of ``spec`` with ``weights`` (timm: its ``features_only`` model), in eval mode.

    Raises:
        TypeError: if ``weights`` is not a string.
        ValueError: on an unknown weights tag.
        WeightsNotFoundError: pretrained weights not available locally and not downloadable.
        WeightsMismatchError: a weight file that does not fit the network.
    """
    check_weights(spec, weights)
    if spec.source == "timm":
        model = _build_timm(spec.name[len("timm:"):], weights)
    else:
        model = _build_torchvision(spec.name, weights)
    return model.eval()


def fingerprint(module: nn.Module, skip_head: bool = True) -> str:
    """A 16-hex-digit hash of every parameter and buffer of ``module`` (names, shapes and values).

    Args:
        module: the network.
        skip_head: leave out the classification head (:data:`HEAD_PREFIXES`), which no tap uses.

    Returns:
        The first 16 hex digits of a SHA-256 digest; equal weights give equal fingerprints on any device.
    """
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        if skip_head and key.startswith(HEAD_PREFIXES):
            continue
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        data = tensor.detach().to("cpu").contiguous()
        if data.dtype == torch.bfloat16:
            data = data.float()
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()[:16]
