"""The distance on a CUDA device: same results as on the CPU, reduced precision within tolerance, device errors.

Skipped without CUDA. Convolutions are compared with TF32 off (``torch.backends.cudnn.allow_tf32``, on by
default in PyTorch, rounds conv inputs to a 10-bit mantissa, ~1e-3 relative error); a separate test bounds
the error with TF32 on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from tests.fixtures.reduced_precision import assert_autocast_close

from pe_iqa import PEDistance, PELoss, pe_distance
from pe_iqa.backbones import load_backbone

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

ALEX_LAYERS = ["relu1", "relu2", "relu3", "relu4", "relu5"]


@pytest.fixture
def no_tf32() -> Iterator[None]:
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.fixture(scope="module", autouse=True)
def _pretrained_alexnet(alexnet_weights_available: bool) -> None:
    if not alexnet_weights_available:
        pytest.skip("pretrained AlexNet weights not in $TORCH_HOME")


@pytest.fixture(scope="module")
def pairs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(6, 3, 12, 12, generator=generator)
    target = F.interpolate(coarse, size=(96, 96), mode="bicubic", align_corners=False).clamp(0, 1)
    sigma = torch.tensor([0.02, 0.05, 0.1, 0.2, 0.3, 0.5]).view(-1, 1, 1, 1)
    preds = (target + sigma * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    return preds, target


OPTIONS = {
    "default relu3 H-10": {},
    "relu1-relu5 F": {"layers": ALEX_LAYERS, "subset": "all"},
    "relu5 H-10 pe weights": {"layers": ["relu5"], "weighting": "pe"},
    "relu2+relu3 unpruned, no channels-last": {"layers": ["relu2", "relu3"], "prune": False, "channels_last": False},
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_cpu_and_cuda_agree(name: str, pairs, no_tf32: None) -> None:
    preds, target = pairs
    on_cpu = PEDistance(**OPTIONS[name], reduction="none")
    on_gpu = PEDistance(**OPTIONS[name], reduction="none", device="cuda")
    result = on_gpu(preds.cuda(), target.cuda())
    assert result.device.type == "cuda" and result.dtype == torch.float32
    torch.testing.assert_close(result.cpu(), on_cpu(preds, target), rtol=1e-4, atol=1e-7)


def test_module_moved_after_construction(pairs, no_tf32: None) -> None:
    preds, target = pairs
    metric = PEDistance(reduction="none")
    expected = metric(preds, target)
    metric.to("cuda")
    torch.testing.assert_close(metric(preds.cuda(), target.cuda()).cpu(), expected, rtol=1e-4, atol=1e-7)


def test_a_given_backbone_on_cuda_takes_the_metric_along(pairs, no_tf32: None) -> None:
    preds, target = pairs
    metric = PEDistance(backbone=load_backbone("alexnet", ["relu2", "relu3"], device="cuda"), layers=["relu2", "relu3"],
                        reduction="none")
    assert metric.device.type == "cuda"
    expected = PEDistance(layers=["relu2", "relu3"], reduction="none")(preds, target)
    torch.testing.assert_close(metric(preds.cuda(), target.cuda()).cpu(), expected, rtol=1e-4, atol=1e-7)


def test_cpu_and_cuda_agree_with_tf32(pairs) -> None:
    preds, target = pairs
    on_cpu = PEDistance(reduction="none")
    on_gpu = PEDistance(reduction="none", device="cuda")
    torch.testing.assert_close(on_gpu(preds.cuda(), target.cuda()).cpu(), on_cpu(preds, target), rtol=1e-2, atol=1e-6)


def test_functional_follows_the_inputs_device_and_dtype(pairs, no_tf32: None) -> None:
    preds, target = pairs
    expected = pe_distance(preds, target, reduction="none")
    on_gpu = pe_distance(preds.cuda(), target.cuda(), reduction="none")
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    torch.testing.assert_close(on_gpu.cpu(), expected, rtol=1e-4, atol=1e-7)
    half = pe_distance(preds.cuda().half(), target.cuda().half(), reduction="none")  # a float16 network
    assert half.dtype == torch.float32
    assert ((half.cpu() - expected).abs() / expected).max() < 3e-2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_within_tolerance(dtype: torch.dtype, pairs) -> None:
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("bfloat16 not supported on this GPU")
    preds, target = (t.cuda() for t in pairs)
    assert_autocast_close(PEDistance(reduction="none", device="cuda"), preds, target, "cuda", dtype)


def test_inputs_on_another_device_are_rejected(pairs) -> None:
    preds, target = pairs
    metric = PEDistance(reduction="none", device="cuda")
    with pytest.raises(ValueError, match=r"preds and target are on cpu but the metric is on cuda:0"):
        metric(preds, target)
    with pytest.raises(ValueError, match=r"same device, got cuda:0 and cpu"):
        metric(preds.cuda(), target)
    with pytest.raises(ValueError, match=r"images is on cpu but the metric is on cuda:0"):
        metric.features(target)


def test_value_checks_on_cuda(pairs) -> None:
    preds, target = (t.cuda() for t in pairs)
    metric = PEDistance(reduction="none", device="cuda")
    broken = preds.clone()
    broken[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="preds contains NaN or Inf"):
        metric(broken, target)
    with pytest.raises(ValueError, match=r"\[0, 255\] data"):
        metric(preds, target * 255)


def test_loss_and_cached_features_on_cuda(pairs) -> None:
    preds, target = (t.cuda() for t in pairs)
    loss_fn = PELoss(device="cuda")
    x = target.clone().requires_grad_(True)
    loss = loss_fn(x, target)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(x.grad).all()
    metric = PEDistance(reduction="none", device="cuda")
    cached = metric.features(target)
    torch.testing.assert_close(metric(preds, target, target_features=cached), metric(preds, target))
