"""Sharding a scoring run over the processes ``torchrun`` starts (``torch.distributed``; gloo on CPU, NCCL on CUDA).

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) each process takes one contiguous block of the pairs
(contiguous, so a reference's distortions — adjacent in dataset manifests — stay on one process and its features
are computed once), reads only that block of a manifest while scoring, and scores it on its own device
(``cuda:<LOCAL_RANK>`` on GPUs) into its own journal; at the end the processes exchange counts and one byte per pair
(which earlier file a resumed pair comes from), process 0 merges the journals into the output, and per-pair rows
are gathered only when the caller asked for them. Without ``torchrun`` nothing here
touches ``torch.distributed``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch

from ..env_options import env_number, positive_number

__all__ = ["TIMEOUT_ENV", "ProcessGroup", "launch_rank", "process_group", "shard_range"]


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands: ``rank`` of ``world_size`` on ``device`` (``world_size == 1``: no torchrun)."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    def all_gather(self, payload: object) -> list[object]:
        """Every process's ``payload`` (picklable), in rank order."""
        if self.world_size == 1:
            return [payload]
        import torch.distributed as dist

        gathered: list[object] = [None] * self.world_size
        dist.all_gather_object(gathered, payload)
        return gathered


def shard_range(n_items: int, rank: int, world_size: int) -> range:
    """The contiguous block of ``range(n_items)`` process ``rank`` scores (sizes differ by at most one).

    Example:
        >>> [list(shard_range(5, r, 2)) for r in range(2)]
        [[0, 1, 2], [3, 4]]
    """
    base, extra = divmod(n_items, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def launch_rank() -> tuple[int, int]:
    """This process's ``(rank, world size)`` under ``torchrun`` (from ``RANK``/``WORLD_SIZE``); ``(0, 1)`` otherwise."""
    return _env_int("RANK", 0), _env_int("WORLD_SIZE", 1)


def _env_int(name: str, default: int) -> int:
    value = env_number(name)  # validated (pe_iqa.env_options); malformed is an error, never a silent default
    return default if value is None else int(value)


def _process_device(device: torch.device, local_rank: int, world_size: int) -> torch.device:
    if device.type == "cuda" and world_size > 1 and device.index is None:
        return torch.device("cuda", local_rank)
    return device


#: How long the gather after scoring waits for the slowest process (seconds; default 24 h).
TIMEOUT_ENV = "PE_IQA_DIST_TIMEOUT_S"


@contextlib.contextmanager
def process_group(device: torch.device | str, timeout_s: float | None = None) -> Iterator[ProcessGroup]:
    """This process's place in a torchrun job; joins (and afterwards leaves) the process group if needed.

    Args:
        device: the device asked for; ``cuda`` without an index becomes ``cuda:<LOCAL_RANK>`` under torchrun.
        timeout_s: how long a collective waits — the fastest process waits there for the slowest to finish
            its shard (default ``$PE_IQA_DIST_TIMEOUT_S`` or 24 hours).
    """
    if timeout_s is None:
        timeout_s = positive_number(TIMEOUT_ENV, "seconds") or 24 * 3600.0
    device = torch.device(device)
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        yield ProcessGroup(0, 1, device)
        return
    import torch.distributed as dist

    local_rank = _env_int("LOCAL_RANK", 0)
    device = _process_device(device, local_rank, world_size)
    created = not dist.is_initialized()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if created:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    try:
        yield ProcessGroup(dist.get_rank(), dist.get_world_size(), device)
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()
