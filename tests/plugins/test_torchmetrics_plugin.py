"""TorchMetrics adapter: same scores as the core preset, batch-split/DDP invariance, states, device/dtype."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("torchmetrics")

from torchmetrics import MetricCollection
from torchmetrics.image import StructuralSimilarityIndexMeasure
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

from pe_iqa import PEDistance
from pe_iqa.backbones import Backbone, load_backbone
from pe_iqa_torchmetrics import PEFeatureDistance, pe_feature_distance

pytestmark = pytest.mark.slow  # AlexNet at 64 px through TorchMetrics (module fixtures ~6 s, tests 0.5–4 s)


def _pairs(n: int, size: int = 64, sigma: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(distorted, reference): smooth random references with additive noise of std ``sigma``, in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, size // 8, size // 8, generator=gen)
    reference = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    noise = torch.randn(n, 3, size, size, generator=gen)
    return (reference + sigma * noise).clamp(0, 1), reference


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    return _pairs(8)


@pytest.fixture(scope="module")
def alexnet() -> Backbone:
    """The real ImageNet AlexNet tapped at ``pe_alex``'s layer, loaded once and shared by the metrics below."""
    return load_backbone("alexnet", ["relu3"])


@pytest.fixture()
def make(alexnet):
    """``PEFeatureDistance("pe_alex", ...)`` sharing the loaded backbone (the same network, built faster)."""
    return lambda **kwargs: PEFeatureDistance("pe_alex", backbone=alexnet, **kwargs)


@pytest.fixture(scope="module")
def core_scores(images) -> torch.Tensor:
    """Per-image scores of the core ``pe_alex`` preset (real AlexNet weights)."""
    preds, target = images
    with torch.no_grad():
        return PEDistance("pe_alex", reduction="none")(preds, target)


def test_scores_equal_the_core_preset(images, core_scores):
    preds, target = images
    metric = PEFeatureDistance("pe_alex")
    metric.update(preds, target)
    assert float(metric.compute()) == pytest.approx(float(core_scores.mean()), abs=1e-6)
    assert int(metric.total) == 8
    per_sample = PEFeatureDistance("pe_alex", per_sample=True)
    per_sample.update(preds, target)
    torch.testing.assert_close(per_sample.compute(), core_scores, rtol=0, atol=1e-6)


def test_one_batch_of_8_equals_8_batches_of_1(make, images):
    preds, target = images
    whole, split = make(), make()
    whole.update(preds, target)
    for i in range(8):
        split.update(preds[i:i + 1], target[i:i + 1])
    assert int(split.total) == int(whole.total) == 8
    assert abs(float(whole.compute()) - float(split.compute())) <= 1e-6


def test_per_sample_mode_returns_every_score_in_update_order(make, images, core_scores):
    preds, target = images
    metric = make(per_sample=True)
    with pytest.warns(UserWarning, match="compute"):
        assert metric.compute().shape == (0,)  # nothing seen yet
    batch_value = metric(preds[:3], target[:3])  # forward: this batch's scores, also accumulated
    torch.testing.assert_close(batch_value, core_scores[:3], rtol=0, atol=1e-6)
    metric.update(preds[3:], target[3:])
    scores = metric.compute()
    assert scores.shape == (8,)
    torch.testing.assert_close(scores, core_scores, rtol=0, atol=1e-6)
    assert float(scores.mean()) == pytest.approx(float(metric.sum_scores / metric.total), abs=1e-6)


def test_validation_loop_reset_between_epochs(make, images):
    epochs = [_pairs(4, seed=1), _pairs(4, sigma=0.3, seed=2)]
    metric = make()
    per_epoch = []
    for preds, target in epochs:
        batch_values = [metric(preds[i:i + 2], target[i:i + 2]) for i in (0, 2)]  # validation_step
        per_epoch.append(float(metric.compute()))  # on_validation_epoch_end
        assert per_epoch[-1] == pytest.approx(float(torch.stack(batch_values).mean()), abs=1e-6)
        metric.reset()
        assert int(metric.total) == 0 and float(metric.sum_scores) == 0.0
    for (preds, target), value in zip(epochs, per_epoch, strict=True):
        fresh = make()
        fresh.update(preds, target)
        assert value == pytest.approx(float(fresh.compute()), abs=1e-6)  # nothing leaked across epochs
    assert per_epoch[1] > per_epoch[0]  # the noisier epoch is farther from its references


def test_compute_before_update_is_nan(make):
    metric = make()
    with pytest.warns(UserWarning, match="compute"):
        assert math.isnan(float(metric.compute()))


def test_metric_collection_with_lpips_and_ssim(make, images):
    preds, target = images[0][:4], images[1][:4]
    collection = MetricCollection({
        "pe": make(),
        "lpips": LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True),
        "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
    })
    for start in (0, 2):
        collection.update(preds[start:start + 2], target[start:start + 2])
    values = {name: float(value) for name, value in collection.compute().items()}
    standalone = make()
    standalone.update(preds, target)
    assert values["pe"] == pytest.approx(float(standalone.compute()), abs=1e-6)
    assert values["lpips"] > 0 and 0 < values["ssim"] < 1

    collection.reset()
    same = collection(target, target)
    assert float(same["pe"]) == 0.0 and float(same["lpips"]) < 1e-6 and float(same["ssim"]) == pytest.approx(1.0)

    # all three agree that more noise is worse (PE and LPIPS rise, SSIM falls)
    results = []
    for sigma in (0.03, 0.3):
        collection.reset()
        results.append({k: float(v) for k, v in collection(*_pairs(2, sigma=sigma, seed=3)).items()})
    assert results[1]["pe"] > results[0]["pe"] and results[1]["lpips"] > results[0]["lpips"]
    assert results[1]["ssim"] < results[0]["ssim"]


def test_state_dict_holds_only_states(make, alexnet, images):
    preds, target = images
    metric = make()
    assert not any(p.requires_grad for p in metric.parameters())  # frozen: nothing for an optimizer
    assert len(list(metric.distance.parameters())) > 0  # … though the network is a registered submodule
    # states are not persistent by default, and no network weights: nothing at all (TorchMetrics convention)
    assert metric.state_dict() == {}
    metric.persistent(True)
    metric.update(preds, target)
    assert set(metric.state_dict()) == {"sum_scores", "total", "_extra_state"}
    holder = torch.nn.ModuleDict({"val_pe": metric})  # nested as in a LightningModule
    saved = holder.state_dict()
    assert set(saved) == {"val_pe.sum_scores", "val_pe.total", "val_pe._extra_state"}
    assert saved["val_pe._extra_state"]["metric"] == "pe_alex"
    assert saved["val_pe._extra_state"]["weights_id"] == alexnet.weights_id

    restored = make()
    restored.persistent(True)
    result = torch.nn.ModuleDict({"val_pe": restored}).load_state_dict(saved, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert float(restored.compute()) == pytest.approx(float(metric.compute()), abs=0)  # no "before update" warning

    # a checkpoint that does carry (different) network weights cannot change the network
    foreign = {f"distance.{k}": torch.zeros_like(v) for k, v in metric.distance.state_dict().items()}
    before = {k: v.clone() for k, v in restored.distance.state_dict().items()}
    restored.load_state_dict({**foreign, "sum_scores": torch.tensor(1.0), "total": torch.tensor(4),
                              "_extra_state": restored.get_extra_state()})
    for key, value in restored.distance.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert float(restored.sum_scores) == 1.0 and int(restored.total) == 4


def test_states_of_a_differently_configured_metric_are_refused(make, alexnet, images):
    preds, target = images
    other = PEFeatureDistance("pe_alex_f", backbone=alexnet)  # all relu3 channels: another distance
    other.persistent(True)
    other.update(preds, target)
    saved = other.state_dict()
    mine = make()
    mine.persistent(True)
    with pytest.raises(ValueError, match="made under another configuration"):
        mine.load_state_dict(saved)
    same = PEFeatureDistance("pe_alex_f", backbone=alexnet)
    same.persistent(True)
    same.load_state_dict(saved)
    assert float(same.sum_scores) == float(other.sum_scores)


def test_device_and_dtype(make, images):
    preds, target = images
    reference = make()
    reference.update(preds, target)

    metric = PEFeatureDistance("pe_alex")  # its own network: the dtype changes below must not touch `alexnet`
    assert metric.to("cpu") is metric
    assert metric.device.type == "cpu" and metric.distance.backbone.mean.device.type == "cpu"
    metric.half()  # TorchMetrics convention: a no-op, use set_dtype
    assert metric.sum_scores.dtype == torch.float32 and metric.distance.backbone.mean.dtype == torch.float32

    metric.set_dtype(torch.float64)
    assert metric.sum_scores.dtype == torch.float64 and metric.dtype == torch.float64
    assert metric.distance.backbone.mean.dtype == torch.float64
    assert all(c.dtype == torch.int64 for c in metric.distance.selected_channels().values())
    metric.update(preds, target)  # float32 images into a float64 network
    assert metric.compute().dtype == torch.float64
    assert float(metric.compute()) == pytest.approx(float(reference.compute()), abs=1e-6)

    half_inputs = make()
    half_inputs.update(preds.double(), target.double())  # any float input dtype is accepted
    assert float(half_inputs.compute()) == pytest.approx(float(reference.compute()), abs=1e-6)

    with pytest.raises(ValueError, match="floating-point"):
        metric.set_dtype(torch.int32)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_moves_to_cuda_with_its_network(make, images, core_scores):
    preds, target = images
    metric = make(per_sample=True).to("cuda")
    assert metric.distance.backbone.mean.is_cuda and metric.sum_scores.is_cuda
    metric.update(preds.cuda(), target.cuda())
    torch.testing.assert_close(metric.compute().cpu(), core_scores, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="device"):
        metric.update(preds, target)  # CPU inputs to a CUDA metric: named error, not a crash deep inside


def test_forward_is_differentiable_without_growing_the_state_graph(make, images):
    preds, target = images
    metric = make()
    x = preds[:2].clone().requires_grad_(True)
    value = metric(x, target[:2])
    value.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert not metric.sum_scores.requires_grad  # accumulated states keep no autograd graph


def test_functional_matches_the_core(images, core_scores):
    preds, target, core_scores = images[0][:4], images[1][:4], core_scores[:4]
    none = pe_feature_distance(preds, target, reduction="none")
    torch.testing.assert_close(none, core_scores, rtol=0, atol=1e-6)
    assert float(pe_feature_distance(preds, target)) == pytest.approx(float(core_scores.mean()), abs=1e-6)
    assert float(pe_feature_distance(preds, target, reduction="sum")) == pytest.approx(
        float(core_scores.sum()), abs=1e-5)
    full = pe_feature_distance(preds, target, metric="pe_alex", subset="all", reduction=None)
    expected = PEDistance("pe_alex_f", reduction="none")(preds, target)
    torch.testing.assert_close(full, expected, rtol=0, atol=1e-6)  # an override equals the matching preset


def test_invalid_arguments_are_named(make):
    with pytest.raises(ValueError, match="metric must be one of"):
        PEFeatureDistance("pe_nope")
    with pytest.raises(ValueError, match="metric must be one of"):
        pe_feature_distance(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), metric="pe_nope")
    with pytest.raises(ValueError, match="reduction"):
        pe_feature_distance(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), reduction="max")
    with pytest.raises(TypeError, match="per_sample"):
        PEFeatureDistance("pe_alex", reduction="none")
    with pytest.raises(TypeError, match="to\\(device\\)"):
        PEFeatureDistance("pe_alex", device="cpu")
    with pytest.raises(TypeError, match="per_sample must be a bool"):
        PEFeatureDistance("pe_alex", per_sample="yes")
    with pytest.raises(ValueError, match="top_percent"):
        PEFeatureDistance("pe_alex", top_percent=0)
    with pytest.raises(ValueError, match="unknown option"):
        PEFeatureDistance("pe_alex", no_such_option=1)  # neither a distance nor a Metric option
    metric = make()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metric.update(torch.full((1, 3, 64, 64), 255.0), torch.rand(1, 3, 64, 64))


def test_plot_returns_figure(make, images):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    preds, target = images
    metric = make()
    values = [metric(preds[i:i + 4], target[i:i + 4]) for i in (0, 4)]
    fig, ax = metric.plot(values)
    assert fig is not None and ax is not None
    fig_single, _ = metric.plot()
    assert fig_single is not None
    assert "pe_alex" in ax.get_ylabel() and "lower" in ax.get_ylabel()


def test_per_sample_plot_is_one_series_with_one_legend_entry(make, images):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    preds, target = images
    metric = make(per_sample=True)
    metric.update(preds, target)
    _, ax = metric.plot()
    assert len(ax.get_lines()) == 1 and len(ax.get_lines()[0].get_ydata()) == 8
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["per image"]
    assert ax.get_xlabel() == "image" and "lower = more similar" in ax.get_ylabel()


@pytest.mark.slow  # two spawned interpreters importing torch, torchmetrics and pe_iqa
def test_two_process_ddp_equals_single_process(make, images, core_scores, tmp_path):
    import importlib
    import sys

    import torch.multiprocessing as mp

    # import the worker as a top-level module: spawned children unpickle it by name from the inherited sys.path
    # (works whatever pytest import mode gave this test module its name)
    worker_dir = str(Path(__file__).parent)
    if worker_dir not in sys.path:
        sys.path.insert(0, worker_dir)
    score_shard = importlib.import_module("ddp_worker").score_shard

    preds, target = images
    shards = [(preds[:3], target[:3]), (preds[3:], target[3:])]  # uneven: 3 and 5 images
    mp.spawn(score_shard, args=(2, str(tmp_path / "store"), str(tmp_path), shards), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    single = make()
    single.update(preds, target)
    for rank, result in enumerate(results):
        assert float(result["mean"]) == pytest.approx(float(single.compute()), abs=1e-6)
        torch.testing.assert_close(result["scores"], core_scores, rtol=0, atol=1e-6)  # gathered in rank order
        assert int(result["local_total"]) == (3, 5)[rank]  # local state restored after the synced compute


def test_non_persistent_metrics_add_nothing_to_a_module_checkpoint(make):
    """Issue 20.9: every metric added ``<name>._extra_state``; a checkpoint then did not load strictly into the model
    without the metric."""
    model = torch.nn.Linear(2, 2)
    with_metric = torch.nn.ModuleDict({"model": model, "val_pe": make()})
    saved = with_metric.state_dict()
    assert set(saved) == {"model.weight", "model.bias"}
    torch.nn.ModuleDict({"model": torch.nn.Linear(2, 2)}).load_state_dict(saved, strict=True)
    torch.nn.ModuleDict({"model": torch.nn.Linear(2, 2), "val_pe": make()}).load_state_dict(saved, strict=True)


def test_merge_state_refuses_another_distance(alexnet, images):
    """Issue 19.3: ``pe_vgg.merge_state(pe_alex)`` mixed two distances (0.02662 → 0.01604, no error)."""
    preds, target = images
    alex = PEFeatureDistance("pe_alex", backbone=alexnet)
    alex_f = PEFeatureDistance("pe_alex_f", backbone=alexnet)
    alex.update(preds, target)
    alex_f.update(preds, target)
    before = float(alex.compute())
    for incoming in (alex_f, alex_f.metric_state):
        with pytest.raises(ValueError, match=r"cannot merge: the incoming metric state holds pe_alex_f scores made"):
            alex.merge_state(incoming)
    with pytest.raises(ValueError, match="has no record for pe_alex"):
        alex.merge_state({"sum_scores": alex_f.sum_scores, "total": alex_f.total})
    assert float(alex.compute()) == before
    twin = PEFeatureDistance("pe_alex", backbone=alexnet)
    twin.update(target, target)
    alex.merge_state(twin.metric_state)
    alex.merge_state(twin)
    assert int(alex.total) == 3 * len(preds)


def test_states_without_their_record_are_refused(make, alexnet, images):
    preds, target = images
    other = PEFeatureDistance("pe_alex_f", backbone=alexnet)
    other.persistent(True)
    other.update(preds, target)
    saved = {k: v for k, v in other.state_dict().items() if k != "_extra_state"}
    mine = make()
    mine.persistent(True)
    with pytest.raises(ValueError, match="has no record for pe_alex"):
        mine.load_state_dict(saved)
    nested = torch.nn.ModuleDict({"pe": make()})
    nested["pe"].persistent(True)
    with pytest.raises(ValueError, match="has no record for pe_alex"):
        nested.load_state_dict({f"pe.{k}": v for k, v in saved.items()}, strict=False)


def test_feature_share_works_with_default_pruned_metrics(images, core_scores):
    """Issue 20.6: with the default ``prune=True`` sharing silently did not happen (TorchMetrics warned that the
    networks differ); the list form fails on TorchMetrics' naming, the dict form is the documented way."""
    import warnings

    from torchmetrics.wrappers import FeatureShare

    preds, target = images
    alone = {"pe_alex": PEFeatureDistance("pe_alex"), "pe_alex_f": PEFeatureDistance("pe_alex_f")}
    for metric in alone.values():
        metric.update(preds, target)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "network is not the same" warning
        shared = FeatureShare({"pe_alex": PEFeatureDistance("pe_alex"), "pe_alex_f": PEFeatureDistance("pe_alex_f")})
    calls = []
    network = shared["pe_alex"].distance.net.network
    assert network.min_input_size > 0 and network.activation_bytes_per_pixel() > 0  # one-off probes, not counted
    network.extractor.register_forward_hook(lambda *_: calls.append(1))  # runs only when the cache misses
    shared.update(preds, target)
    values = shared.compute()
    assert len(calls) == 2  # preds and target computed once each, for both metrics
    for name, metric in alone.items():
        assert float(values[name]) == pytest.approx(float(metric.compute()), rel=1e-6), name
    assert float(values["pe_alex"]) == pytest.approx(float(core_scores.mean()), rel=1e-6)


def test_feature_share_refuses_a_network_with_other_weights(images):
    from torchmetrics.wrappers import FeatureShare

    with pytest.raises(ValueError, match="cannot share the network"):
        FeatureShare({"a": PEFeatureDistance("pe_alex", weights="random"), "b": PEFeatureDistance("pe_alex")})
