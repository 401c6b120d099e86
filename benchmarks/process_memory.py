"""Resident memory of this process (Linux ``/proc/self``), for the throughput benchmarks' peak-memory columns."""

from __future__ import annotations

import resource

__all__ = ["maxrss_bytes", "reset_peak_rss", "rss_status"]


def rss_status() -> dict[str, int] | None:
    """``{"VmRSS": bytes, "VmHWM": bytes}`` (current and peak resident set), from ``/proc/self/status``; else ``None``.
    """
    try:
        values = {}
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
        return values if len(values) == 2 else None
    except OSError:
        return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ≥ 4.0); ``False`` if not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def maxrss_bytes() -> int:
    """Peak resident set since the process started (``ru_maxrss``; cannot be reset)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
