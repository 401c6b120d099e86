"""Training protocol: an L2 pretraining per seed, then a fine-tuning per (loss, α, seed) from it.

Every loss starts from the same L2-pretrained network of its seed (the usual way perceptual SR losses are
trained, e.g. SRGAN/ESRGAN and Mechrez et al.'s SR experiments), and is fine-tuned for the same number of
steps on the same patch stream (same sampler seed), with a fresh Adam optimiser at a constant learning rate.
The ``l2`` control is fine-tuned the same way with L2 alone, so every difference between losses comes from
the fine-tuning loss. Pretrained networks are cached per seed and configuration; each (loss, α, seed) run
writes its own result file (atomically), and a rerun skips runs whose file matches the configuration.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from benchmarks.report import write_text_atomic
from pe_iqa.safe_files import save_torch

from .data import HELD_OUT, TRAIN, PatchSampler, SRImage
from .evaluate import DEFAULT_METRICS, MetricSet
from .losses import BalancedLoss, LossVariant, build_perceptual
from .model import VDSR

__all__ = ["SRConfig", "evaluate_network", "finetune", "pretrain", "read_result", "write_json_atomic"]


@dataclass(frozen=True)
class SRConfig:
    """Everything a run's numbers depend on (its hash names the cached networks and guards the result files)."""

    scale: int = 4
    patch: int = 48
    batch: int = 16
    depth: int = 10
    width: int = 32
    pretrain_steps: int = 3000
    pretrain_lr: float = 1e-3
    finetune_steps: int = 600
    finetune_lr: float = 1e-4
    backbone: str = "vgg16"
    layers: tuple[str, ...] = ("relu2_2",)
    top_percent: float = 50.0
    bandwidth: float = 0.5
    max_positions: int | None = 1024
    eval_crop: int | None = None
    train_images: tuple[str, ...] = TRAIN
    held_out: tuple[str, ...] = HELD_OUT
    metrics: tuple[str, ...] = field(default=DEFAULT_METRICS)

    def digest(self, keys: Sequence[str] | None = None) -> str:
        """Short hash of the given fields (default: all)."""
        values = asdict(self)
        chosen = {k: values[k] for k in (keys or sorted(values))}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:12]

    def pretrain_digest(self) -> str:
        return self.digest(["scale", "patch", "batch", "depth", "width", "pretrain_steps", "pretrain_lr",
                            "train_images"])


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON atomically with the core's safe writer (never a torn file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def read_result(path: Path, digest: str) -> dict | None:
    """A finished run's result if its file exists, parses and matches the configuration hash."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("config_digest") == digest else None


def _save_state_atomic(state: dict, path: Path) -> None:
    save_torch(state, path, what="SR checkpoint")


def pretrain(config: SRConfig, seed: int, images: Sequence[SRImage],
             cache_dir: Path) -> tuple[dict[str, torch.Tensor], float]:
    """The L2-pretrained network of ``seed`` as a state dict, and the seconds its training took.

    Adam at ``pretrain_lr``, divided by 10 for the last third of the steps. Cached in ``cache_dir`` per seed
    and configuration (an unreadable cache file is retrained).
    """
    path = cache_dir / f"pretrain_{config.pretrain_digest()}_s{seed}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            return saved["state"], float(saved["seconds"])
        except (OSError, RuntimeError, EOFError, KeyError, TypeError):
            path.unlink(missing_ok=True)
    start = time.perf_counter()
    torch.manual_seed(seed)
    net = VDSR(config.depth, config.width)
    sampler = PatchSampler(images, config.patch, seed=10_000 + seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.pretrain_lr)
    decay_at = (2 * config.pretrain_steps) // 3
    for step in range(config.pretrain_steps):
        if step == decay_at:
            for group in optimiser.param_groups:
                group["lr"] = config.pretrain_lr / 10
        ilr, hr = sampler.batch(config.batch)
        loss = nn.functional.mse_loss(net(ilr), hr)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    seconds = time.perf_counter() - start
    _save_state_atomic({"state": state, "seconds": torch.tensor(seconds)}, path)
    return state, seconds


def finetune(config: SRConfig, variant: LossVariant, alpha: float, seed: int, state: dict[str, torch.Tensor],
             images: Sequence[SRImage], backbone: nn.Module) -> tuple[VDSR, dict]:
    """Fine-tune the pretrained network with ``variant`` at ``alpha``; returns it and the training record."""
    torch.manual_seed(seed)
    net = VDSR(config.depth, config.width)
    net.load_state_dict(state)
    perceptual = build_perceptual(variant, backbone, config.layers, config.top_percent, config.bandwidth,
                                  config.max_positions)
    criterion = BalancedLoss(perceptual, alpha)
    sampler = PatchSampler(images, config.patch, seed=20_000 + seed)  # same patch stream for every loss
    optimiser = torch.optim.Adam(net.parameters(), lr=config.finetune_lr)
    start = time.perf_counter()
    first, last = None, []
    for _ in range(config.finetune_steps):
        ilr, hr = sampler.batch(config.batch)
        loss, terms = criterion(net(ilr), hr)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {float(loss)} ({terms})")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        first = first or terms
        last = [*last[-49:], terms]
    record = {
        "train_seconds": time.perf_counter() - start,
        "l2_0": criterion.l2_0, "x_0": criterion.x_0,
        "first_batch": first,
        "last_50_mean": {k: sum(t[k] for t in last) / len(last) for k in ("l2", "x")} if last else {},
    }
    if perceptual is not None:
        record["channels"], record["effective_channels"] = _channel_counts(perceptual)
    return net, record


def _channel_counts(perceptual: nn.Module) -> tuple[int, float]:
    """Channels used and their effective number ``(Σw)²/Σw²`` (= the count when uniform; any weight scale)."""
    channels = next(iter(perceptual.selected_channels().values()))
    weights = next(iter(perceptual.channel_weights().values()))
    if weights is None:  # PEContextualLoss: uniform over its channels (all of them when channels is None)
        all_channels = next(iter(perceptual.backbone.channels().values()))
        count = int(channels.numel()) if channels is not None else int(all_channels)
        return count, float(count)
    weights = weights.double()
    return int(weights.numel()), float(weights.sum() ** 2 / (weights**2).sum())


def evaluate_network(net: nn.Module | None, images: Sequence[SRImage], metrics: MetricSet) -> dict[str, dict]:
    """``{image name: {metric: value}}`` for the network's outputs (``None``: the bicubic ILR itself)."""
    out = {}
    with torch.inference_mode():
        for image in images:
            sr = image.ilr if net is None else net(image.ilr)
            out[image.name] = metrics.score(sr, image.hr)
    return out
