"""Memory a distance needs, estimated before the network runs, and the budget it must fit in.

:func:`estimate_call_bytes` adds up what one call of a :class:`~pe_iqa.PEDistance` keeps alive at its peak: the two
input batches and their normalised copies, the network's peak activation (measured once per backbone on a small
probe, :meth:`~pe_iqa.backbones.Backbone.activation_bytes_per_pixel`) and the taps of both images. A call whose
estimate exceeds :func:`memory_budget` raises :class:`MemoryBudgetError` *before* anything is allocated — the
scoring engine turns it into that pair's failure (one line naming the estimate and how to change it), never an
out-of-memory kill of the whole run; above ``pe_iqa.distance.MEMORY_WARNING_BYTES`` (4 GiB) a call warns first.

The budget is ``$PE_IQA_MEMORY_BUDGET_GB`` (GiB) when set, else 80 % of the device's memory (the machine's RAM,
or its cgroup limit, on CPU; the GPU's total memory on CUDA).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .env_options import positive_number

__all__ = ["MEMORY_BUDGET_ENV", "MemoryBudgetError", "check_memory_budget", "describe_bytes", "device_memory_bytes",
           "estimate_call_bytes", "memory_budget"]

#: Environment variable setting the memory budget of one distance call, in GiB.
MEMORY_BUDGET_ENV = "PE_IQA_MEMORY_BUDGET_GB"
_DEFAULT_FRACTION = 0.8


class MemoryBudgetError(ValueError):
    """A call would need more memory than the budget (the message names the estimate and what changes it)."""


def device_memory_bytes(device: torch.device | str = "cpu") -> int:
    """Total memory of ``device``: a CUDA GPU's, else the machine's RAM (or the cgroup limit, if lower)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 16 * 1024**3
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return int(total)


def memory_budget(device: torch.device | str = "cpu") -> int:
    """Bytes one distance call may use on ``device`` (see the module documentation).

    Raises:
        ValueError: ``$PE_IQA_MEMORY_BUDGET_GB`` is set but not a finite number > 0.
    """
    gib = positive_number(MEMORY_BUDGET_ENV, "GiB")
    if gib is not None:
        return int(gib * 1024**3)
    return int(_DEFAULT_FRACTION * device_memory_bytes(device))


def estimate_call_bytes(bytes_per_pixel: float, shape: tuple[int, ...], images: int = 2) -> int:
    """Peak bytes of a distance call on ``images`` batches of ``shape`` ``(N, C, H, W)`` (float32 inputs).

    Example:
        >>> estimate_call_bytes(30.5, (1, 3, 12000, 12000)) / 1024**3 > 7  # pe_alex on a 12000×12000 pair
        True
    """
    n, height, width = int(shape[0]), int(shape[-2]), int(shape[-1])
    pixels = n * height * width
    inputs = images * 3 * 4 * pixels  # the batches, float32 RGB
    normalised = 3 * 4 * pixels  # the backbone's normalised copy of the batch it is running
    activations = images * bytes_per_pixel * pixels  # peak of one pass + the taps of every image (upper bound)
    return int(inputs + normalised + activations)


def describe_bytes(count: float) -> str:
    """``count`` bytes in GiB (``"7.3 GiB"``)."""
    return f"{count / 1024**3:.1f} GiB"


def check_memory_budget(estimate: int, device: torch.device | str, what: str) -> None:
    """Refuse a call whose estimated peak ``estimate`` (bytes) exceeds :func:`memory_budget` of ``device``.

    Args:
        estimate: the call's estimated peak memory, e.g. from :func:`estimate_call_bytes`.
        device: where the call runs.
        what: the call, for the message (``"vgg16 on 1 4000×3000 pair(s)"``).

    Raises:
        MemoryBudgetError: naming the estimate, the budget and how to change either.
        ValueError: ``$PE_IQA_MEMORY_BUDGET_GB`` is set to a value it does not accept.
    """
    budget = memory_budget(device)
    if estimate > budget:
        raise MemoryBudgetError(
            f"{what} needs about {describe_bytes(estimate)}, above the memory budget of {describe_bytes(budget)}; "
            f"downscale the images, use smaller batches, or set {MEMORY_BUDGET_ENV}")
