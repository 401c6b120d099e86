"""Conversion of protocol inputs (distances, judgements) to flat finite float64 arrays."""

from __future__ import annotations

import numpy as np

__all__ = ["as_flat_finite"]


def as_flat_finite(name: str, values: object) -> np.ndarray:
    """Flatten ``values`` to a 1-D float64 array, rejecting non-numeric and non-finite input.

    Args:
        name: argument name used in error messages.
        values: array-like of real numbers, any shape.

    Returns:
        ``(N,)`` float64 array.

    Raises:
        TypeError: if ``values`` is not numeric.
        ValueError: if it contains NaN or infinite values.
    """
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers, got {type(values).__name__}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr
