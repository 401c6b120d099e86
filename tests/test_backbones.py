"""Backbones: named taps and channel counts, truncated forward, weights fingerprint, offline errors, pruning."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

from pe_iqa.backbones import (
    BACKBONES,
    Backbone,
    WeightsMismatchError,
    WeightsNotFoundError,
    backbone_spec,
    canonical_name,
    list_layers,
    load_backbone,
    prune_deepest_tap,
)

# Channels of every tap, from the architectures (torchvision model definitions / the original papers).
TORCHVISION_CHANNELS: dict[str, dict[str, int]] = {
    "alexnet": {"relu1": 64, "relu2": 192, "relu3": 384, "relu4": 256, "relu5": 256},
    "vgg16": {"relu1_1": 64, "relu1_2": 64, "relu2_1": 128, "relu2_2": 128, "relu3_1": 256, "relu3_2": 256,
              "relu3_3": 256, "relu4_1": 512, "relu4_2": 512, "relu4_3": 512, "relu5_1": 512, "relu5_2": 512,
              "relu5_3": 512},
    "squeezenet1_1": {"relu1": 64, "fire2": 128, "fire3": 128, "fire4": 256, "fire5": 256, "fire6": 384,
                      "fire7": 384, "fire8": 512, "fire9": 512},
    "shufflenet_v2_x1_0": {"conv1": 24, "stage2": 116, "stage3": 232, "stage4": 464, "conv5": 1024},
    "googlenet": {"conv1": 64, "conv2": 64, "conv3": 192, "inception3a": 256, "inception3b": 480,
                  "inception4a": 512, "inception4b": 512, "inception4c": 512, "inception4d": 528,
                  "inception4e": 832, "inception5a": 832, "inception5b": 1024},
    "resnet18": {"stem": 64, "layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512},
    "resnet50": {"stem": 64, "layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048},
}
DEFAULT_LAYERS = {
    "alexnet": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "vgg16": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),  # LPIPS's taps
}
TIMM_CHANNELS: dict[str, dict[str, int]] = {
    "timm:resnet18": {"act1": 64, "layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512},
    "timm:vgg16.tv_in1k": {"features.3": 64, "features.8": 128, "features.15": 256, "features.22": 512,
                           "features.29": 512},  # timm's own module names
    # timm feature nets that are not module dicts (run in full, taps picked from the output list)
    "timm:efficientnet_b0": {"blocks.0": 16, "blocks.2": 40, "blocks.6": 320},
    "timm:mobilenetv3_large_100": {"blocks.1": 24, "blocks.6": 960},
}


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def alexnet_random() -> Backbone:
    """AlexNet with random weights (seed 0), all five taps; shared by tests that do not modify it."""
    return load_backbone("alexnet", weights="random")


@pytest.mark.parametrize("name", sorted(TORCHVISION_CHANNELS))
@pytest.mark.slow  # 6.0 s measured (full run, 2 shared cores)
def test_torchvision_backbone_random_weights_taps_and_channels(name: str) -> None:
    expected = TORCHVISION_CHANNELS[name]
    spec = backbone_spec(name)
    assert list(spec.taps) == list(expected)  # documented names, ordered shallow to deep
    assert set(spec.default_layers) <= set(spec.taps)
    if name in DEFAULT_LAYERS:
        assert spec.default_layers == DEFAULT_LAYERS[name]
    backbone = load_backbone(name, list(expected), weights="random")
    assert backbone.layers == tuple(expected)
    with torch.inference_mode():
        out = backbone(torch.rand(2, 3, 64, 64))
    assert list(out) == list(expected)
    for layer, channels in expected.items():
        assert out[layer].shape[:2] == (2, channels), layer
        assert bool(torch.isfinite(out[layer]).all())


@pytest.mark.parametrize("name", sorted(TIMM_CHANNELS))
@pytest.mark.slow  # 4.9 s measured (full run, 2 shared cores)
def test_timm_backbone_random_weights(name: str) -> None:
    expected = TIMM_CHANNELS[name]
    spec = backbone_spec(name)
    assert spec.source == "timm"
    assert set(expected) <= set(spec.taps)
    backbone = load_backbone(name, list(expected), weights="random")
    with torch.inference_mode():
        out = backbone(torch.rand(1, 3, 64, 64))
    assert list(out) == list(expected)
    assert {layer: t.shape[1] for layer, t in out.items()} == expected


@pytest.mark.slow  # 1.0 s measured (full run, 2 shared cores)
def test_forward_stops_at_deepest_tap_torchvision() -> None:
    shallow = load_backbone("alexnet", ["relu2"], weights="random")
    deep = load_backbone("alexnet", ["relu5"], weights="random")
    names = {name for name, _ in shallow.extractor.named_modules()}
    assert "features.3" in names  # conv2
    assert not {"features.6", "features.8", "features.10"} & names  # conv3..conv5 never built
    assert not any(name.startswith(("classifier", "avgpool")) for name in names)
    assert _n_params(shallow) < _n_params(deep)
    conv1_2 = 3 * 64 * 11 * 11 + 64 + 64 * 192 * 5 * 5 + 192
    assert _n_params(shallow) == conv1_2


@pytest.mark.slow  # 1.2 s measured (quick-tier run, 2 shared cores)
def test_forward_stops_at_deepest_tap_timm() -> None:
    backbone = load_backbone("timm:resnet18", ["layer1"], weights="random")
    names = {name for name, _ in backbone.extractor.named_modules()}
    assert "layer1" in names
    assert not {"layer2", "layer3", "layer4"} & names
    with torch.inference_mode():
        out = backbone(torch.rand(1, 3, 64, 64))
    assert list(out) == ["layer1"] and out["layer1"].shape[1] == 64


@pytest.mark.slow  # 1.1 s measured (full run, 2 shared cores)
def test_layers_are_ordered_and_deduplicated() -> None:
    backbone = load_backbone("alexnet", ["relu3", "relu1", "relu3"], weights="random")
    assert backbone.layers == ("relu1", "relu3")
    assert load_backbone("alexnet", "relu2", weights="random").layers == ("relu2",)


@pytest.mark.slow  # 2.9 s measured (full run, 2 shared cores)
def test_weights_id_independent_of_taps_and_seed_dependent(alexnet_random: Backbone) -> None:
    random_id = alexnet_random.weights_id  # all five taps
    assert load_backbone("alexnet", ["relu1"], weights="random").weights_id == random_id
    assert load_backbone("alexnet", ["relu2", "relu3"], weights="random").weights_id == random_id
    assert len(random_id) == 16 and int(random_id, 16) >= 0
    assert load_backbone("alexnet", ["relu1"], weights="random:0").weights_id == random_id  # random = seed 0
    other_seed = load_backbone("alexnet", ["relu1"], weights="random:1").weights_id
    assert other_seed != random_id
    timm_ids = {load_backbone("timm:resnet18", ["layer1"], weights=w).weights_id for w in ("random", "random:1")}
    assert len(timm_ids) == 2


@pytest.mark.slow  # 0.8 s measured (full run, 2 shared cores)
def test_weights_id_pretrained_differs_from_random(alexnet_weights_available: bool, alexnet_random: Backbone) -> None:
    if not alexnet_weights_available:
        pytest.skip("ImageNet AlexNet weights not in TORCH_HOME")
    pretrained = load_backbone("alexnet", ["relu1"], weights="DEFAULT")
    assert pretrained.weights_id != alexnet_random.weights_id
    assert pretrained.weights_id == load_backbone("alexnet", ["relu5"], weights="IMAGENET1K_V1").weights_id


@pytest.mark.slow  # 1.2 s measured (full run, 2 shared cores)
def test_weights_id_follows_the_weights_loaded_from_a_file(tmp_path: Path, alexnet_random: Backbone) -> None:
    reference = alexnet_random
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torchvision.models.alexnet(weights=None)
    features = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    same = tmp_path / "same.pth"
    torch.save(features, same)
    assert load_backbone("alexnet", ["relu1"], weights=str(same)).weights_id == reference.weights_id
    features["features.8.bias"] = features["features.8.bias"] + 1e-3  # conv5: not even tapped
    edited = tmp_path / "edited.pth"
    torch.save(features, edited)
    assert load_backbone("alexnet", ["relu1"], weights=str(edited)).weights_id != reference.weights_id


def _block_downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every torch hub download fail like an offline machine; returns the URLs that were attempted."""
    attempted: list[str] = []

    def offline(url: str, *args: object, **kwargs: object) -> None:
        attempted.append(url)
        raise urllib.error.URLError("network disabled by the test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return attempted


def test_missing_torchvision_weights_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    attempted = _block_downloads(monkeypatch)
    url = torchvision.models.SqueezeNet1_1_Weights.DEFAULT.url
    expected_file = tmp_path / "torch_home" / "hub" / "checkpoints" / os.path.basename(url)
    with pytest.raises(WeightsNotFoundError) as info:
        load_backbone("squeezenet1_1", weights="DEFAULT")
    message = str(info.value)
    assert os.path.basename(url) in message
    assert str(expected_file) in message  # the TORCH_HOME path where the file is expected
    assert "random" in message  # suggests the offline alternative
    assert isinstance(info.value, FileNotFoundError)
    assert attempted == [url]
    assert not expected_file.exists()


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_missing_timm_weights_offline() -> None:
    import huggingface_hub.constants
    import timm

    if not huggingface_hub.constants.HF_HUB_OFFLINE:
        pytest.skip("huggingface_hub was imported before HF_HUB_OFFLINE=1 was set")
    hf_hub_id = timm.models.get_pretrained_cfg("resnet18").hf_hub_id
    if (Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{hf_hub_id.replace('/', '--')}").exists():
        pytest.skip(f"{hf_hub_id} is in the local Hugging Face cache")
    with pytest.raises(WeightsNotFoundError) as info:
        load_backbone("timm:resnet18", ["layer1"], weights="DEFAULT")
    message = str(info.value)
    assert hf_hub_id in message  # names what it expected to find …
    assert str(huggingface_hub.constants.HF_HUB_CACHE) in message  # … and where
    assert "weights='random'" in message


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="backbone must be one of"):
        load_backbone("lenet", weights="random")
    with pytest.raises(TypeError, match="backbone"):
        canonical_name(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timm:"):
        canonical_name("timm:")
    with pytest.raises(ValueError, match="unknown layer"):
        load_backbone("alexnet", ["conv9"], weights="random")
    with pytest.raises(ValueError, match="at least one"):
        load_backbone("alexnet", [], weights="random")
    with pytest.raises(ValueError, match="weights"):
        load_backbone("alexnet", ["relu1"], weights="IMAGENET9K_V9")
    with pytest.raises(ValueError, match="random:SEED"):
        load_backbone("alexnet", ["relu1"], weights="random:abc")
    with pytest.raises(TypeError, match="weights"):
        load_backbone("alexnet", ["relu1"], weights=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timm"):
        load_backbone("timm:no_such_model_xyz", weights="random")


def test_aliases() -> None:
    assert canonical_name("alex") == "alexnet"
    assert canonical_name("vgg") == "vgg16"
    assert set(BACKBONES) == set(TORCHVISION_CHANNELS)


@pytest.mark.slow  # 1.0 s measured (quick-tier run, 2 shared cores)
def test_backbone_is_frozen_but_differentiable_in_the_input(alexnet_random: Backbone) -> None:
    backbone = alexnet_random
    backbone.train()
    assert not backbone.training and not backbone.extractor.training
    assert not any(p.requires_grad for p in backbone.parameters())
    images = torch.rand(1, 3, 64, 64, requires_grad=True)
    backbone(images)["relu2"].sum().backward()
    assert images.grad is not None and float(images.grad.abs().sum()) > 0
    # the tapped ReLU output is not overwritten by a downstream in-place op
    assert not any(getattr(m, "inplace", False) for m in backbone.extractor.modules())


def test_input_normalisation_uses_the_spec(alexnet_random: Backbone) -> None:
    backbone = alexnet_random
    torch.testing.assert_close(backbone.mean.flatten(), torch.tensor(backbone.spec.mean))
    torch.testing.assert_close(backbone.std.flatten(), torch.tensor(backbone.spec.std))
    images = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        direct = backbone.extractor((images - backbone.mean) / backbone.std)["relu1"]
        torch.testing.assert_close(backbone(images)["relu1"], direct)


@pytest.mark.slow  # 0.9 s measured (quick-tier run, 2 shared cores)
def test_min_input_size_runs(alexnet_random: Backbone) -> None:
    backbone = alexnet_random
    size = backbone.min_input_size
    with torch.inference_mode():
        out = backbone(torch.rand(1, 3, size, size))
    assert all(t.shape[-1] >= 1 for t in out.values())
    assert backbone.channels() == TORCHVISION_CHANNELS["alexnet"]


@pytest.mark.parametrize("layers", [["relu3"], ["relu1", "relu3"]])
@pytest.mark.slow  # 0.9 s measured (full run, 2 shared cores)
def test_prune_deepest_tap_keeps_selected_channels_identical(layers: list[str]) -> None:
    backbone = load_backbone("alexnet", layers, weights="random:3")
    channels = torch.tensor([5, 0, 383, 100, 37])  # unsorted on purpose
    pruned = prune_deepest_tap(backbone, channels)
    assert isinstance(pruned, Backbone)
    images = torch.rand(2, 3, 80, 80)
    with torch.inference_mode():
        full, cut = backbone(images), pruned(images)
    assert cut["relu3"].shape[1] == channels.numel()
    torch.testing.assert_close(cut["relu3"], full["relu3"][:, channels], rtol=1e-5, atol=1e-6)
    if "relu1" in layers:
        torch.testing.assert_close(cut["relu1"], full["relu1"])
    assert pruned.weights_id == backbone.weights_id and pruned.layers == backbone.layers
    assert pruned.pruned and not backbone.pruned
    # the original is untouched and shares nothing with the copy
    conv3 = backbone.extractor.get_submodule("features.6")
    assert conv3.out_channels == 384
    assert not {id(p) for p in pruned.parameters()} & {id(p) for p in backbone.parameters()}
    assert _n_params(pruned) < _n_params(backbone)


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_prune_deepest_tap_declines_other_architectures() -> None:
    assert prune_deepest_tap(load_backbone("resnet18", ["layer1"], weights="random"), torch.tensor([0])) is None
    assert prune_deepest_tap(load_backbone("timm:resnet18", ["layer1"], weights="random"), torch.tensor([0])) is None


@pytest.mark.slow  # 1.7 s measured (quick-tier run, 2 shared cores)
def test_timm_transformers_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"transformer.*local receptive field"):
        load_backbone("timm:vit_small_patch16_224", weights="random")


def test_list_layers_gives_every_tap_shallow_to_deep() -> None:
    assert list_layers("alex") == tuple(TORCHVISION_CHANNELS["alexnet"])
    assert list_layers("vgg16")[:2] == ("relu1_1", "relu1_2")
    assert list_layers("timm:resnet18") == ("act1", "layer1", "layer2", "layer3", "layer4")
    with pytest.raises(ValueError, match="backbone must be one of"):
        list_layers("lenet")


def test_weights_id_follows_the_weights_held_now(alexnet_random: Backbone) -> None:
    backbone = load_backbone("alexnet", ["relu1", "relu2"], weights="random")
    loaded = backbone.weights_id
    assert loaded == alexnet_random.weights_id
    backbone.to(torch.float64).to(torch.float32)  # moved and back: same values, same id
    assert backbone.weights_id == loaded
    weight = backbone.extractor.get_submodule("features.3").weight
    original = float(weight[0, 0, 0, 0])
    with torch.no_grad():
        weight[0, 0, 0, 0] += 0.5  # fine-tuned in memory
    tuned = backbone.weights_id
    assert tuned != loaded and len(tuned) == 16
    with torch.no_grad():
        weight[0, 0, 0, 0] = original
    assert backbone.weights_id == loaded  # back to the loaded values


def _alexnet_state(seed: int = 0) -> dict[str, torch.Tensor]:
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torchvision.models.alexnet(weights=None).state_dict()


@pytest.mark.slow  # 4.9 s measured (full run, 2 shared cores)
def test_weight_files_load_strictly(tmp_path: Path, alexnet_random: Backbone) -> None:
    state = _alexnet_state()
    cases = {
        "empty.pth": ({}, "empty"),
        "features_only.pth": ({k: v for k, v in state.items() if k != "features.0.weight"}, "1 missing"),
        "extra.pth": ({**state, "features.99.weight": torch.zeros(1)}, "1 unexpected"),
        "shape.pth": ({**state, "features.0.bias": torch.zeros(3)}, "another shape"),
        "not_a_dict.pth": (torch.zeros(3), "not a state dict"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        torch.save(content, path)
        with pytest.raises(WeightsMismatchError, match=message):
            load_backbone("alexnet", ["relu1"], weights=str(path))


@pytest.mark.parametrize("wrap", ["module_prefix", "nested_model", "nested_state_dict_with_epoch"])
@pytest.mark.slow  # 5.3 s measured (full run, 2 shared cores)
def test_common_checkpoint_wrappers_are_unwrapped_with_a_warning(tmp_path: Path, wrap: str,
                                                                  alexnet_random: Backbone) -> None:
    state = _alexnet_state()
    content = {
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
        "nested_model": {"model": state},
        "nested_state_dict_with_epoch": {"state_dict": state, "epoch": 3},
    }[wrap]
    path = tmp_path / f"{wrap}.pth"
    torch.save(content, path)
    with pytest.warns(RuntimeWarning, match="module.|nested"):
        backbone = load_backbone("alexnet", ["relu1"], weights=str(path))
    assert backbone.weights_id == alexnet_random.weights_id  # exactly the weights of the unwrapped file


@pytest.mark.slow  # 1.1 s measured (quick-tier run, 2 shared cores)
def test_channel_counts_are_probed_once_and_the_geometry_shared_with_the_pruned_copy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pe_iqa.backbones import module

    searches = []
    search = module._smallest_valid_size
    monkeypatch.setattr(module, "_smallest_valid_size", lambda net: searches.append(net) or search(net))
    backbone = load_backbone("alexnet", ["relu1", "relu2"], weights="random")
    forwards = []
    backbone.register_forward_hook(lambda *_: forwards.append(1))
    counts = backbone.channels()
    probes = len(forwards)
    assert counts == {"relu1": 64, "relu2": 192} and backbone.channels() == counts and len(forwards) == probes
    backbone.channels()["relu1"] = 0  # a copy: the remembered counts cannot be changed from outside
    assert backbone.channels() == counts
    pruned = prune_deepest_tap(backbone, torch.arange(10))
    assert pruned.min_input_size == backbone.min_input_size and searches == []  # from the geometry: no search
    assert pruned.channels() == {"relu1": 64, "relu2": 10}
