"""Tests of the PE distance (:mod:`pe_iqa.distance`): reference equivalence with LPIPS, Eq. 1, options, loss use.

The pretrained AlexNet (conv weights in ``$TORCH_HOME``) is loaded once per module with all five taps and
shared by the metrics built here (``PEDistance(backbone=<Backbone>)`` does not copy it).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.fixtures.reduced_precision import assert_autocast_close

from pe_iqa import PEDistance, PELoss, pe_distance
from pe_iqa.backbones import load_backbone

ALEX_LAYERS = ["relu1", "relu2", "relu3", "relu4", "relu5"]


def smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    """Natural-ish images in [0, 1]: bicubically upsampled coarse random fields."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(size // 8, 2), max(size // 8, 2), generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def distorted(images: torch.Tensor, seed: int, strengths: tuple[float, ...] | None = None) -> torch.Tensor:
    """``images`` plus Gaussian noise of increasing strength per image, clamped to [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    n = images.shape[0]
    sigma = torch.tensor(strengths or [0.03 * (i + 1) for i in range(n)]).view(-1, 1, 1, 1)
    return (images + sigma * torch.randn(images.shape, generator=generator)).clamp(0, 1)


@pytest.fixture(scope="module")
def alexnet(alexnet_weights_available: bool):
    """The pretrained AlexNet tapping all five ReLUs."""
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME")
    return load_backbone("alexnet", ALEX_LAYERS)


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    x = smooth_images(3, 64, seed=0)
    return distorted(x, seed=1), x


# --------------------------------------------------------------------------------- reference equivalence


@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")  # lpips' torchvision call
@pytest.mark.slow  # 6.6 s measured (full run, 2 shared cores)
def test_all_channels_five_layers_equal_lpips_without_linear_layers(alexnet, pair) -> None:
    lpips = pytest.importorskip("lpips")
    preds, target = pair
    reference = lpips.LPIPS(net="alex", lpips=False, verbose=False).eval()
    with torch.no_grad():
        expected = reference(preds * 2 - 1, target * 2 - 1).flatten()
    # LPIPS sums over channels and layers; ours halves the channel sum and averages layers: lpips = Σ_k 2 d_k.
    total = torch.zeros(preds.shape[0])
    per_layer = []
    for layer in ALEX_LAYERS:
        metric = PEDistance(backbone=alexnet, layers=[layer], subset="all", channel_norm=True, weighting="uniform",
                            reduction="none")
        d_k = metric(preds, target)
        per_layer.append(d_k)
        total += 2 * d_k
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-5)
    # the five-layer metric is the mean of the single-layer ones
    five = PEDistance(backbone=alexnet, layers=ALEX_LAYERS, subset="all", reduction="none")
    torch.testing.assert_close(five(preds, target), torch.stack(per_layer, dim=1).mean(dim=1), rtol=1e-5, atol=1e-8)


@pytest.mark.slow  # 0.6 s measured (full run, 2 shared cores)
def test_matches_eq1_computed_by_hand(alexnet, pair) -> None:
    preds, target = pair
    feats_p, feats_t = alexnet(preds), alexnet(target)
    for channel_norm in (False, True):
        for weighting in ("uniform", "pe"):
            metric = PEDistance(backbone=alexnet, layers=["relu2", "relu3"], subset="high", top_percent=20,
                                channel_norm=channel_norm, weighting=weighting, reduction="none")
            columns = []
            for layer in ("relu2", "relu3"):
                channels = metric.selected_channels()[layer]
                score = metric.rankings[layer].score[channels].float()
                w = score / score.sum() if weighting == "pe" else torch.full_like(score, 1 / len(channels))
                if channel_norm:  # unit-normalised channels: weights average ½ (½‖â − b̂‖², the LPIPS scale halved)
                    w = w * len(channels) / 2
                a, b = feats_p[layer][:, channels], feats_t[layer][:, channels]
                if channel_norm:
                    a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
                    b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
                columns.append(((a - b) ** 2 * w.view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2)))
            expected = torch.stack(columns, dim=1).mean(dim=1)
            torch.testing.assert_close(metric(preds, target), expected, rtol=1e-5, atol=1e-9)


# --------------------------------------------------------------------------------- options


@pytest.mark.slow  # 1.7 s measured (quick-tier run, 2 shared cores)
def test_reductions(alexnet, pair) -> None:
    preds, target = pair
    per_image = PEDistance(backbone=alexnet, layers=["relu3"], reduction="none")(preds, target)
    assert per_image.shape == (preds.shape[0],) and per_image.dtype == torch.float32
    assert (per_image > 0).all()
    mean = PEDistance(backbone=alexnet, layers=["relu3"], reduction="mean")(preds, target)
    total = PEDistance(backbone=alexnet, layers=["relu3"], reduction="sum")(preds, target)
    assert mean.shape == () and total.shape == ()
    torch.testing.assert_close(mean, per_image.mean())
    torch.testing.assert_close(total, per_image.sum())


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_grayscale_equals_rgb_repeated(alexnet, pair) -> None:
    preds, target = (t.mean(dim=1, keepdim=True) for t in pair)
    metric = PEDistance(backbone=alexnet, layers=["relu2", "relu3"], reduction="none")
    torch.testing.assert_close(metric(preds, target), metric(preds.repeat(1, 3, 1, 1), target.repeat(1, 3, 1, 1)))


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_data_range_255_equals_division(alexnet, pair) -> None:
    preds, target = pair
    scaled = PEDistance(backbone=alexnet, layers=["relu3"], data_range=255, reduction="none")
    unit = PEDistance(backbone=alexnet, layers=["relu3"], reduction="none")
    torch.testing.assert_close(scaled(preds * 255, target * 255), unit(preds, target), rtol=1e-5, atol=1e-9)


@pytest.mark.slow  # 1.5 s measured (quick-tier run, 2 shared cores)
def test_float64_inputs_give_the_float32_result(alexnet, pair) -> None:
    preds, target = pair
    metric = PEDistance(backbone=alexnet, layers=["relu3"], reduction="none")
    result = metric(preds.double(), target.double())
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, metric(preds, target))


@pytest.mark.parametrize("layer", ["relu1", "relu3"])
def test_subset_sizes_and_membership(alexnet, layer: str) -> None:
    high = PEDistance(backbone=alexnet, layers=[layer], subset="high", top_percent=10)
    low = PEDistance(backbone=alexnet, layers=[layer], subset="low", top_percent=10)
    full = PEDistance(backbone=alexnet, layers=[layer], subset="all")
    ranking = high.rankings[layer]
    n = ranking.n_channels
    h, lo, f = (m.selected_channels()[layer] for m in (high, low, full))
    assert f.tolist() == list(range(n))
    expected_k = max(1, round(n * 0.10))
    assert len(h) >= expected_k and len(lo) >= expected_k  # more only for channels tied on every key
    assert torch.equal(h, ranking.select("high", 10)) and torch.equal(lo, ranking.select("low", 10))
    assert not set(h.tolist()) & set(lo.tolist())
    # H-x is the top of the ranking: every kept channel scores at least as high as every dropped one
    dropped = torch.ones(n, dtype=torch.bool)
    dropped[h] = False
    assert ranking.score[h].min() >= ranking.score[dropped].max()
    kept_low = torch.ones(n, dtype=torch.bool)
    kept_low[lo] = False
    assert ranking.score[lo].max() <= ranking.score[kept_low].min()


@pytest.mark.parametrize("channel_norm", [True, False])
def test_pe_weights_proportional_to_score_with_the_uniform_total(alexnet, channel_norm: bool) -> None:
    options = {"backbone": alexnet, "layers": ["relu2", "relu3"], "top_percent": 25, "channel_norm": channel_norm}
    metric = PEDistance(weighting="pe", **options)
    uniform = PEDistance(**options)
    for layer, weights in metric.channel_weights().items():
        channels = metric.selected_channels()[layer]
        score = metric.rankings[layer].score[channels].float()
        total = len(channels) / 2 if channel_norm else 1.0  # weights average ½ (normalised) or sum to 1 (raw)
        assert weights.dtype == torch.float32
        torch.testing.assert_close(weights.sum(), torch.tensor(total))
        torch.testing.assert_close(weights, score / score.sum() * total)
        torch.testing.assert_close(uniform.channel_weights()[layer], torch.full_like(weights, total / len(channels)))


# --------------------------------------------------------------------------------- speed options change nothing


@pytest.mark.slow  # 0.6 s measured (full run, 2 shared cores)
def test_pruning_gives_identical_results(alexnet, pair) -> None:
    preds, target = pair
    for layers in (["relu5"], ["relu3", "relu5"]):
        pruned = PEDistance(backbone=alexnet, layers=layers, reduction="none", prune=True)
        full = PEDistance(backbone=alexnet, layers=layers, reduction="none", prune=False)
        assert pruned.heads[-1].preselected and not full.heads[-1].preselected  # the deepest conv really was pruned
        conv_channels = [m.out_channels for m in pruned.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
        assert conv_channels[-1] == len(pruned.selected_channels()["relu5"])
        torch.testing.assert_close(pruned(preds, target), full(preds, target), rtol=1e-5, atol=1e-9)
        # unit-normalised features agree to float32 rounding (the smaller GEMM sums in another order)
        for a, b in zip(pruned.features(preds), full.features(preds), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_given_backbone_is_not_modified(alexnet) -> None:
    before = {k: (v.clone(), v.stride()) for k, v in alexnet.state_dict().items()}
    PEDistance(backbone=alexnet, layers=["relu5"], prune=True, channels_last=True)
    PEDistance(backbone=alexnet, layers=ALEX_LAYERS, subset="all", channels_last=True)
    for key, value in alexnet.state_dict().items():
        assert torch.equal(value, before[key][0]) and value.stride() == before[key][1], key


@pytest.mark.slow  # 3.2 s measured (quick-tier run, 2 shared cores)
def test_channels_last_gives_identical_results(alexnet, pair) -> None:
    preds, target = pair
    # fast owns its pruned copy
    fast = PEDistance(backbone=alexnet, layers=["relu2", "relu5"], reduction="none", channels_last=True)
    plain = PEDistance(backbone=alexnet, layers=["relu2", "relu5"], reduction="none", channels_last=False)
    conv = next(m for m in fast.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(preds, target), plain(preds, target), rtol=1e-5, atol=1e-9)


@pytest.mark.slow  # 5.4 s measured (full run, 2 shared cores)
def test_compile_flag_gives_identical_results(alexnet, pair) -> None:
    # "aot_eager" exercises the torch.compile path (dynamo tracing of the backbone) in ~2 s; compile=True
    # (inductor) gives the same results but needs ~20-40 s to compile on 2 CPU cores, too slow for a unit test.
    preds, target = pair
    compiled = PEDistance(backbone=alexnet, layers=["relu5"], reduction="none", compile="aot_eager")
    eager = PEDistance(backbone=alexnet, layers=["relu5"], reduction="none")
    torch.testing.assert_close(compiled(preds, target), eager(preds, target), rtol=1e-5, atol=1e-9)


@pytest.mark.slow  # 2.5 s measured (quick-tier run, 2 shared cores)
def test_cached_target_features_give_identical_results(alexnet, pair) -> None:
    preds, target = pair
    metric = PEDistance(backbone=alexnet, layers=["relu2", "relu3"], reduction="none")
    cached = metric.features(target)
    assert [f.dtype for f in cached] == [torch.float32, torch.float32]
    assert torch.equal(metric(preds, target, target_features=cached), metric(preds, target))
    with pytest.raises(ValueError, match="target_features for layer relu2 must have shape"):
        metric(preds[:2], target[:2], target_features=cached)
    with pytest.raises(ValueError, match="list of 2 tensors returned by features"):
        metric(preds, target, target_features=cached[:1])


@pytest.mark.slow  # 6.0 s measured (full run, 2 shared cores)
def test_pe_distance_matches_module_and_follows_input_dtype(alexnet, pair) -> None:
    preds, target = pair
    module = PEDistance(backbone=alexnet, layers=["relu2"], reduction="none")
    functional = pe_distance(preds, target, layers=["relu2"], reduction="none")
    torch.testing.assert_close(functional, module(preds, target), rtol=1e-5, atol=1e-9)
    as_double = pe_distance(preds.double(), target.double(), layers=["relu2"], reduction="none")
    assert as_double.dtype == torch.float64  # a float64 network computes its head in float64 too
    torch.testing.assert_close(as_double.float(), functional, rtol=1e-5, atol=1e-9)


# --------------------------------------------------------------------------------- reduced precision


@pytest.mark.slow  # 0.7 s measured (full run, 2 shared cores)
def test_autocast_bfloat16_on_cpu_within_tolerance(alexnet) -> None:
    # Measured on 6 pairs (noise 0.02–0.5): max relative error 1.1 % for AlexNet relu3 H-10 (the default),
    # 0.4 % for the five-layer F version; asserted < 3 %, ordering of the pairs preserved.
    target = smooth_images(6, 96, seed=2)
    preds = distorted(target, seed=3, strengths=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5))
    metric = PEDistance(backbone=alexnet, layers=["relu3"], reduction="none")
    assert_autocast_close(metric, preds, target, "cpu", torch.bfloat16)


# --------------------------------------------------------------------------------- as a loss


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_loss_gradients_reach_the_input_not_the_backbone(alexnet, pair) -> None:
    preds, target = pair
    loss_fn = PELoss(backbone=alexnet, layers=["relu2", "relu3"], weighting="pe")
    assert not loss_fn.check_range
    x = preds.clone().requires_grad_(True)
    loss = loss_fn(x, target)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss_fn.parameters())
    # a small step against the gradient lowers the distance
    with torch.no_grad():
        stepped = x - 0.01 * x.grad / x.grad.abs().max()
    assert loss_fn(stepped, target) < loss


@pytest.mark.slow  # 0.5 s measured (full run, 2 shared cores)
def test_loss_gradient_finite_at_identical_inputs(alexnet, pair) -> None:
    _, target = pair
    black = torch.zeros_like(target)  # all-zero features: the norm's epsilon guards sqrt'(0)
    for channel_norm in (True, False):
        loss_fn = PELoss(backbone=alexnet, layers=["relu1", "relu3"], channel_norm=channel_norm)
        for image in (target, black):
            x = image.clone().requires_grad_(True)
            loss = loss_fn(x, image)
            loss.backward()
            assert loss.item() == 0.0
            assert not torch.isnan(x.grad).any() and torch.isfinite(x.grad).all()


def test_loss_accepts_overshooting_outputs(alexnet, pair) -> None:
    preds, target = pair
    loss = PELoss(backbone=alexnet, layers=["relu3"])(preds * 1.1 - 0.05, target)
    assert torch.isfinite(loss)


@pytest.mark.slow  # 0.7 s measured (full run, 2 shared cores)
def test_layer_weights_weight_each_layers_distance(alexnet, pair) -> None:
    preds, target = pair
    single = {layer: PEDistance(backbone=alexnet, layers=[layer], reduction="none")(preds, target)
              for layer in ("relu1", "relu3")}
    # given deep-to-shallow: weights follow their layer, and are normalised
    weighted = PELoss(backbone=alexnet, layers=["relu3", "relu1"], layer_weights=[1, 3], reduction="none")
    assert weighted.spec.layers == ("relu1", "relu3") and weighted.spec.layer_weights == (0.75, 0.25)
    expected = 0.75 * single["relu1"] + 0.25 * single["relu3"]
    torch.testing.assert_close(weighted(preds, target), expected, rtol=1e-6, atol=0)
    maps = PEDistance(backbone=alexnet, layers=["relu3", "relu1"], layer_weights=[1, 3]).maps(preds, target)
    torch.testing.assert_close(maps.scores, expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(maps.combined.mean(dim=(1, 2)), expected, rtol=1e-4, atol=0)
    # equal weights are the plain average; a zero weight drops the layer
    averaged = PEDistance(backbone=alexnet, layers=["relu1", "relu3"], reduction="none")(preds, target)
    equal = PEDistance(backbone=alexnet, layers=["relu1", "relu3"], layer_weights=[2, 2], reduction="none")
    torch.testing.assert_close(equal(preds, target), averaged, rtol=1e-6, atol=0)
    only_relu3 = PEDistance(backbone=alexnet, layers=["relu1", "relu3"], layer_weights=[0, 1], reduction="none")
    torch.testing.assert_close(only_relu3(preds, target), single["relu3"], rtol=1e-6, atol=0)


@pytest.mark.parametrize(("layer_weights", "error"), [
    ([1.0], ValueError), ([1.0, -1.0], ValueError), ([0.0, 0.0], ValueError), ([1.0, float("nan")], ValueError),
    (["a", 1.0], TypeError), ("11", TypeError), ([True, 1.0], TypeError),
])
def test_invalid_layer_weights_are_refused(layer_weights: object, error: type) -> None:
    with pytest.raises(error, match="layer_weights"):
        PEDistance(weights="random", layers=["relu1", "relu2"], layer_weights=layer_weights)


@pytest.mark.slow  # 12.8 s measured (full run, 2 shared cores)
def test_float64_module_passes_gradcheck() -> None:
    # TorchMetrics' MetricTester runs gradcheck on a float64 module: the head must then run in float64 too
    metric = PEDistance(weights="random", layers=["relu1"], top_percent=25, check_range=False, reduction="none")
    metric.double()
    target = smooth_images(1, 24, seed=4).double()
    preds = distorted(target, seed=5).double().requires_grad_(True)
    assert metric(preds, target).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: metric(x, target), (preds,), eps=1e-6, atol=1e-5)


@pytest.mark.slow  # 11.2 s measured (full run, 2 shared cores)
def test_huge_inputs_warn_about_memory_before_running(monkeypatch: pytest.MonkeyPatch, alexnet) -> None:
    from pe_iqa import distance

    metric = PEDistance(backbone=alexnet, layers=["relu3"])
    x = smooth_images(1, 64, seed=9)
    monkeypatch.setattr(distance, "MEMORY_WARNING_BYTES", 1)
    with pytest.warns(ResourceWarning, match=r"alexnet on a batch of 1 64×64 images needs about"):
        metric(x, x)
    # the estimate's scale: pe_vgg on one 4000×3000 image was measured to peak at 8.5 GB (model and both images
    # included); the per-image activation estimate must put it above the 4 GiB warning threshold
    vgg = load_backbone("vgg16", ["relu2_2"], weights="random")
    estimate = vgg.activation_bytes_per_pixel() * 4000 * 3000
    assert distance.MEMORY_WARNING_BYTES == 1 and 4 * 1024**3 < estimate < 12 * 1024**3
