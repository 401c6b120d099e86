"""Bad-input matrix: every invalid image or option fails with an error that names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pe_iqa import PEDistance, PELoss, input_checks, pe_distance
from pe_iqa.backbones import Backbone, load_backbone
from pe_iqa.input_checks import check_image_pair, check_images, check_value_range


@pytest.fixture(scope="module")
def alexnet(alexnet_weights_available: bool) -> Backbone:
    """The pretrained AlexNet up to relu3 (its rankings are shipped)."""
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME")
    return load_backbone("alexnet", ["relu3"])


@pytest.fixture(scope="module")
def metric(alexnet: Backbone) -> PEDistance:
    """The default metric (AlexNet relu3 H-10)."""
    return PEDistance(backbone=alexnet, layers=alexnet.layers, reduction="none")


def images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


GOOD = images(2, 3, 64, 64)


# --------------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("preds", "exception", "message"),
    [
        (images(3, 64, 64), ValueError, r"preds must have 4 dimensions \(N, C, H, W\), got 3 .*unsqueeze\(0\)"),
        (images(1, 2, 3, 64, 64), ValueError, r"preds must have 4 dimensions \(N, C, H, W\), got 5"),
        (images(2, 2, 64, 64), ValueError, r"preds must have 1 \(grayscale\) or 3 \(RGB\) channels in dim 1, got 2"),
        (images(2, 4, 64, 64), ValueError, r"got 4 .*drop alpha channels"),
        (images(2, 64, 64, 3), ValueError, r"got 64 .*channels-last \(N, H, W, C\): use preds.permute\(0, 3, 1, 2\)"),
        (images(0, 3, 64, 64), ValueError, r"preds is an empty batch \(N = 0"),
        ((GOOD * 255).to(torch.uint8), TypeError,
         r"preds must be a floating-point tensor.*torch.uint8.*preds.float\(\) / 255"),
        (torch.ones(2, 3, 64, 64, dtype=torch.int64), TypeError, r"floating-point tensor.*torch.int64"),
        (torch.ones(2, 3, 64, 64, dtype=torch.bool), TypeError, r"floating-point tensor.*torch.bool"),
        (GOOD.numpy(), TypeError, r"preds must be a torch.Tensor of shape \(N, 3, H, W\), got ndarray"),
        (GOOD.tolist(), TypeError, r"preds must be a torch.Tensor.*got list"),
        (None, TypeError, r"preds must be a torch.Tensor.*got NoneType"),
    ],
)
def test_bad_preds(preds: object, exception: type, message: str) -> None:
    target = GOOD if not isinstance(preds, torch.Tensor) or preds.ndim != 4 else torch.zeros_like(preds).float()
    with pytest.raises(exception, match=message):
        check_image_pair(preds, target)


def test_bad_target_is_named() -> None:
    with pytest.raises(ValueError, match=r"^target must have 1 \(grayscale\) or 3 \(RGB\)"):
        check_image_pair(GOOD, images(2, 4, 64, 64))
    with pytest.raises(TypeError, match=r"^target must be a torch\.Tensor"):
        check_image_pair(GOOD, np.zeros((2, 3, 64, 64), dtype=np.float32))


@pytest.mark.parametrize(
    "other", [images(2, 3, 64, 48), images(1, 3, 64, 64), images(2, 1, 64, 64)], ids=["width", "batch", "channels"]
)
def test_mismatched_shapes(other: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"preds and target must have the same shape, got \(2, 3, 64, 64\) and"):
        check_image_pair(GOOD, other)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("which", ["preds", "target"])
def test_non_finite_values(bad: float, which: str) -> None:
    broken = GOOD.clone()
    broken[1, 2, 10, 10] = bad
    pair = (broken, GOOD) if which == "preds" else (GOOD, broken)
    with pytest.raises(ValueError, match=f"^{which} contains NaN or Inf values"):
        check_image_pair(*pair)


def test_0_255_data_suggests_division_or_data_range() -> None:
    with pytest.raises(ValueError, match=r"preds must have values in \[0, 1\], got min=.*, max=2\d\d.* "
                                         r"\[0, 255\] data: divide by 255 .*data_range=255"):
        check_image_pair(GOOD * 255, GOOD)


def test_minus_1_1_data_suggests_mapping() -> None:
    with pytest.raises(ValueError, match=r"target must have values in \[0, 1\], got min=-\d.*"
                                         r"\[-1, 1\] data: map it to \[0, 1\] with `\(target \+ 1\) / 2`"):
        check_image_pair(GOOD, GOOD * 2 - 1)


def test_overshoot_suggests_clamp_or_check_range_false() -> None:
    with pytest.raises(ValueError, match=r"max=1\.2.*clamp\(0, 1\).*check_range=False"):
        check_image_pair(GOOD * 1.2, GOOD)


def test_range_tolerance_and_data_range() -> None:
    check_image_pair(GOOD + 5e-5, GOOD - 5e-5)  # within 1e-4 · data_range
    preds, _ = check_image_pair(GOOD * 255, GOOD * 255, data_range=255)
    torch.testing.assert_close(preds, GOOD)
    with pytest.raises(ValueError, match=r"values in \[0, 255\], got min=1\.\d+, max=256 .*clamp\(0, 255\)"):
        check_image_pair(GOOD * 255 + 1, GOOD, data_range=255)
    for bad in (0, -1.0, "1", True, None):
        with pytest.raises(ValueError, match=r"data_range must be a number from"):
            check_image_pair(GOOD, GOOD, data_range=bad)


def test_grayscale_is_repeated_to_rgb() -> None:
    gray = images(2, 1, 32, 32)
    preds, _ = check_image_pair(gray, gray)
    assert preds.shape == (2, 3, 32, 32) and torch.equal(preds[:, 0], preds[:, 2])


def test_check_range_false_reads_no_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # reading values is a host sync on a GPU: with check_range=False nothing may read them
    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("values were read")

    monkeypatch.setattr(input_checks, "check_value_range", no_reading)
    preds, _ = check_image_pair(GOOD, GOOD, check_range=False)
    assert preds is GOOD
    with pytest.raises(AssertionError, match="values were read"):
        check_image_pair(GOOD, GOOD, check_range=True)


def test_meta_tensors_hold_no_data_and_are_refused() -> None:
    ghost = torch.empty(2, 3, 64, 64, device="meta")
    for call in (lambda: check_image_pair(ghost, ghost, check_range=False), lambda: check_images(ghost),
                 lambda: check_image_pair(GOOD, ghost)):
        with pytest.raises(ValueError, match="meta tensor"):
            call()


def test_value_check_covers_every_tensor_in_one_call() -> None:
    check_value_range({"a": GOOD, "b": GOOD[:1]})
    with pytest.raises(ValueError, match=r"^b contains NaN"):
        check_value_range({"a": GOOD, "b": torch.full((1, 3, 8, 8), float("nan"))})


def test_different_devices() -> None:
    # structural checks compare devices without touching them: a CUDA metric can be named without a GPU
    with pytest.raises(ValueError, match=r"preds and target are on cpu but the metric is on cuda:0; move the images"):
        check_image_pair(GOOD, GOOD, device=torch.device("cuda:0"))
    with pytest.raises(ValueError, match=r"images is on cpu but the metric is on cuda:0"):
        check_images(GOOD, device=torch.device("cuda:0"))


# --------------------------------------------------------------------------------- through the metric


@pytest.mark.slow  # 1.8 s measured (full run, 2 shared cores)
def test_metric_rejects_meta_images(metric: PEDistance) -> None:
    ghost = torch.empty(1, 3, 64, 64, device="meta")
    with pytest.raises(ValueError, match="meta tensor"):
        metric(ghost, ghost)
    with pytest.raises(ValueError, match="meta tensor"):
        metric(GOOD[:1], ghost)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metric_rejects_cuda_images_on_a_cpu_metric(metric: PEDistance) -> None:
    x = GOOD.cuda()
    with pytest.raises(ValueError, match=r"on cuda:0 but the metric is on cpu"):
        metric(x, x)


@pytest.mark.slow  # 2.0 s measured (quick-tier run, 2 shared cores)
def test_images_smaller_than_the_deepest_layer_allows(metric: PEDistance) -> None:
    size = metric.min_input_size
    assert size > 1
    ok = images(1, 3, size, size)
    assert metric(ok, ok).shape == (1,)
    small = images(1, 3, size - 1, size + 20)
    with pytest.raises(ValueError, match=rf"images must be at least {size}×{size} pixels .*got {size - 1}×{size + 20}"):
        metric(small, small)
    with pytest.raises(ValueError, match=rf"at least {size}×{size}"):
        metric.features(small)


def test_metric_messages(metric: PEDistance) -> None:
    with pytest.raises(ValueError, match=r"\[0, 255\] data"):
        metric(GOOD * 255, GOOD * 255)
    with pytest.raises(ValueError, match=r"images must have values in \[0, 1\].*\[0, 255\] data"):
        metric.features(GOOD * 255)
    with pytest.raises(TypeError, match="floating-point"):
        metric((GOOD * 255).byte(), (GOOD * 255).byte())


def test_loss_skips_value_checks_so_nan_propagates(alexnet: Backbone) -> None:
    loss = PELoss(backbone=alexnet, layers=alexnet.layers, reduction="none")
    nan = GOOD.clone()
    nan[0] = float("nan")
    result = loss(nan, GOOD)
    assert torch.isnan(result[0]) and torch.isfinite(result[1])


# --------------------------------------------------------------------------------- options (checked before loading)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"subset": "top"}, r"subset must be one of \('high', 'low', 'all'\), got 'top'"),
        ({"weighting": "score"}, r"weighting must be one of \('uniform', 'pe'\), got 'score'"),
        ({"reduction": "max"}, r"reduction must be one of \('mean', 'sum', 'none'\), got 'max'"),
        ({"top_percent": 0}, r"top_percent must be a number in \(0, 100\] .*got 0"),
        ({"top_percent": 150}, r"top_percent must be a number in \(0, 100\] .*got 150"),
        ({"top_percent": -5.0}, r"top_percent must be .*got -5.0"),
        ({"top_percent": "10"}, r"top_percent must be a number .*got '10'"),
        ({"score": "efficacy"}, r"score must be one of \[.*'pe'.*\], got 'efficacy'"),
        ({"data_range": 0}, r"data_range must be a number from"),
        ({"data_range": float("inf")}, r"data_range must be a number from"),
        ({"data_range": float("nan")}, r"data_range must be a number from"),
        ({"top_percent": True}, r"top_percent must be a number .*got True"),
        ({"backbone": "resnet1000"}, r"backbone must be one of \[.*'alexnet'.*\] or 'timm:<name>', got 'resnet1000'"),
        ({"layers": ["relu9"]}, r"unknown layer\(s\) \['relu9'\] for backbone 'alexnet'; choose from \['relu1'"),
        ({"layers": []}, r"layers must name at least one of"),
    ],
)
def test_invalid_options(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PEDistance(weights="random", **options)
    if "layers" not in options:  # the functional form validates the same options
        with pytest.raises(ValueError, match=message):
            pe_distance(GOOD, GOOD, weights="random", **options)


def test_functional_rejects_bad_images_before_building_anything() -> None:
    with pytest.raises(TypeError, match=r"preds must be a torch\.Tensor"):
        pe_distance(GOOD.numpy(), GOOD, backbone="no-such-backbone")
    with pytest.raises(ValueError, match="target must have 4 dimensions"):
        pe_distance(GOOD, GOOD[0], backbone="no-such-backbone")


def test_unknown_weights_tag() -> None:
    with pytest.raises(ValueError, match=r"weights must be 'DEFAULT', 'random\[:SEED\]', an existing file or one of"):
        PEDistance(weights="IMAGENET9K")


def test_a_pruned_backbone_cannot_be_reused(metric: PEDistance) -> None:
    # metric.backbone computes only the selected relu3 channels; its ranking covers all of them
    with pytest.raises(ValueError, match=r"backbone was pruned .*pass the original backbone"):
        PEDistance(backbone=metric.backbone)


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"channel_norm": "no"}, TypeError, r"channel_norm must be True or False, got 'no'"),
    ({"channel_norm": 1}, TypeError, r"channel_norm must be True or False"),
    ({"layers": 3}, TypeError, r"layers must be a layer name or a sequence"),
    ({"config": {"size": 64}}, TypeError, r"config must be an AnalysisConfig"),
    ({"weights": 3}, TypeError, r"weights must be a string"),
    ({"frequency": 3}, TypeError, r"unknown distance option\(s\) \['frequency'\]"),
])
def test_option_types_are_strict(options: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        PEDistance(**{"weights": "random", **options})


@pytest.mark.slow  # 2.3 s measured (full run, 2 shared cores)
def test_numpy_numbers_are_numbers() -> None:
    metric = PEDistance(weights="random", layers=["relu1"], top_percent=np.float32(25), data_range=np.float64(1))
    assert metric.spec.top_percent == 25.0 and isinstance(metric.spec.top_percent, float)
    assert metric.spec.data_range == 1.0


def test_check_range_is_strictly_boolean() -> None:
    with pytest.raises(TypeError, match=r"check_range must be True or False, got 'no'"):
        PEDistance(weights="random", layers=["relu1"], check_range="no")


def test_meta_tensors_are_refused_with_the_reason() -> None:
    meta = torch.empty(1, 3, 64, 64, device="meta")
    with pytest.raises(ValueError, match="meta tensor"):
        pe_distance(meta, meta, weights="random", layers=["relu1"])


def test_a_backbone_name_in_the_preset_slot_gets_a_hint() -> None:
    with pytest.raises(ValueError, match=r"'vgg16' is a backbone: use backbone='vgg16'"):
        PEDistance("vgg16")
    with pytest.raises(ValueError, match=r"metric must be one of \['pe_alex', 'pe_alex_f', 'pe_vgg'\]"):
        pe_distance(GOOD, GOOD, "pe_foo")


@pytest.mark.parametrize(("shape", "fix"), [
    ((256, 256, 3), "preds.permute(2, 0, 1).unsqueeze(0)"),
    ((64, 48, 4), "preds[..., :3].permute(2, 0, 1).unsqueeze(0)"),
    ((2, 64, 48, 3), "preds.permute(0, 3, 1, 2)"),
    ((64, 48), "preds.unsqueeze(0).unsqueeze(0)"),
    ((3, 64, 48), ".unsqueeze(0)"),
])
def test_a_wrong_layout_gets_the_call_that_fixes_it(shape, fix) -> None:
    """Issue 27: a channels-last (H, W, 3) tensor got "add a batch dimension with .unsqueeze(0)"."""
    from pe_iqa import PEDistance

    metric = PEDistance("pe_alex", weights="random")
    with pytest.raises(ValueError) as error:
        metric(torch.rand(shape), torch.rand(shape))
    assert str(error.value).endswith(fix)
    if len(shape) == 3 and shape[0] != 3:
        fixed = eval(fix.replace("preds", "x"), {"x": torch.rand(shape)})  # the suggested call works
        assert fixed.shape[:2] == (1, 3)
