"""A worker process for the 2-process DDP test of ``PEFeatureDistance`` (gloo on CPU)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist


def score_shard(
    rank: int, world_size: int, init_file: str, out_dir: str, shards: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """Update a mean and a per-sample metric with this rank's shard, compute (synced), save the results.

    Args:
        rank: this process's rank (given by ``torch.multiprocessing.spawn``).
        world_size: number of processes.
        init_file: path of the ``file://`` rendezvous store.
        out_dir: folder receiving ``rank{rank}.pt``.
        shards: per rank, ``(preds, target)`` tensors ``(N_rank, 3, H, W)``; ranks may hold different ``N``.
    """
    from pe_iqa_torchmetrics import PEFeatureDistance

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        mean_metric = PEFeatureDistance("pe_alex")
        per_sample = PEFeatureDistance("pe_alex", per_sample=True)
        preds, target = shards[rank]
        for start in range(0, preds.shape[0], 2):  # several updates per rank
            mean_metric.update(preds[start:start + 2], target[start:start + 2])
            per_sample.update(preds[start:start + 2], target[start:start + 2])
        result = {"mean": mean_metric.compute(), "scores": per_sample.compute(),
                  "local_total": mean_metric.total.clone()}
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def mixed_shard(
    rank: int, world_size: int, init_file: str, out_dir: str, shards: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """Like :func:`score_shard`, but rank 1's metric keeps another share of channels: the synced ``compute``
    must be refused on every rank; each rank writes its error message (or ``"no error"``) to ``rank{rank}.txt``."""
    from pe_iqa_torchmetrics import PEFeatureDistance

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        metric = PEFeatureDistance("pe_alex", weights="random", layers=["relu1"], top_percent=(25, 50)[rank])
        metric.update(*shards[rank])
        try:
            metric.compute()
            message = "no error"
        except ValueError as error:
            message = str(error)
        (Path(out_dir) / f"rank{rank}.txt").write_text(message, encoding="utf-8")
    finally:
        dist.destroy_process_group()
