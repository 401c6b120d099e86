"""Numbers read from environment variables, validated in one place.

A malformed value is a ``ValueError`` naming the variable (the command line turns it into a usage error, exit
status 2), never a silent default.
"""

from __future__ import annotations

import math
import os

__all__ = ["positive_number"]


def positive_number(name: str, unit: str) -> float | None:
    """The value of environment variable ``name`` as a finite number > 0; ``None`` when it is unset or blank.

    Args:
        name: the variable, e.g. ``"PE_IQA_MEMORY_BUDGET_GB"``.
        unit: what the number counts, for the message (``"GiB"``, ``"seconds"``).

    Raises:
        ValueError: the variable is set to anything but a finite number > 0.

    Example:
        >>> os.environ["PE_IQA_EXAMPLE_S"] = "2.5"
        >>> positive_number("PE_IQA_EXAMPLE_S", "seconds")
        2.5
        >>> os.environ["PE_IQA_EXAMPLE_S"] = "soon"
        >>> positive_number("PE_IQA_EXAMPLE_S", "seconds")
        Traceback (most recent call last):
        ...
        ValueError: PE_IQA_EXAMPLE_S must be a number of seconds > 0, got 'soon'
        >>> del os.environ["PE_IQA_EXAMPLE_S"]
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a number of {unit} > 0, got {text!r}")
    return value
