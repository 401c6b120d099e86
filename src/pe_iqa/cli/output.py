"""What the commands share: standard-error messages, aligned tables on standard output, device parsing.

Results (tables, reports) go to standard output; progress, timings, "wrote FILE" lines and warnings to
standard error, so ``pe-iqa rank alexnet > table.txt`` holds only the table.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    import torch

__all__ = ["format_value", "info", "parse_device", "plural", "print_table"]


def info(message: str) -> None:
    """A progress or status line on standard error."""
    print(message, file=sys.stderr, flush=True)


def plural(count: int, noun: str) -> str:
    """``"1 pair"``, ``"2 pairs"``.

    Example:
        >>> plural(1, "pair"), plural(3, "pair")
        ('1 pair', '3 pairs')
    """
    return f"{count} {noun}" + ("" if count == 1 else "s")


def format_value(value: float | None) -> str:
    """A score as printed in tables: 6 decimals, ``nan``/``inf`` as such, ``-`` for a missing one."""
    if value is None:
        return "-"
    return f"{value:.6f}" if math.isfinite(value) else str(value)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> None:
    """Print an aligned table on standard output (first column left-aligned, the others right-aligned)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for i, line in enumerate([header, *rows]):
        cells = [str(c).ljust(w) if j == 0 or (i == 0 and not rows) else str(c).rjust(w)
                 for j, (c, w) in enumerate(zip(line, widths, strict=True))]
        print(indent + "  ".join(cells).rstrip())


def parse_device(name: str | None) -> torch.device:
    """The ``--device`` value as a usable torch device (default: ``cuda`` if available, else ``cpu``).

    Raises:
        UsageError: not a device name, a device type that holds no data (``meta``) or pe-iqa does not run on,
            or a device this machine does not have.
    """
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device must be a torch device such as 'cpu' or 'cuda:0', got {name!r}") from None
    if device.type == "meta":
        raise UsageError("--device meta holds no data (it traces shapes only), so it cannot score images; "
                         "use cpu or cuda")
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise UsageError(f"--device {name}: pe-iqa runs on cpu, cuda, mps or xpu devices")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    if device.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise UsageError(f"--device {name}: no XPU device on this machine; use --device cpu")
    return device
