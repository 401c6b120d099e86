"""Numbers read from environment variables: one table, one validator, one check at every entry point.

Every numeric environment variable pe-iqa (its command line, plugins, benchmarks and losses) reads is a row of
:data:`NUMERIC_VARIABLES` and is read with :func:`env_number`: a value that is not a finite number within the
row's range is an :class:`EnvironmentValueError` naming the variable (the command lines turn it into a usage error,
exit status 2), never a silent default and never an ``OverflowError`` later (``1e300`` GiB is refused here).
:func:`check_environment` validates every row at once; each command line calls it before any work.

This module imports only the standard library, so the command line can check the environment before torch loads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["NUMERIC_VARIABLES", "EnvironmentValueError", "NumericVariable", "check_environment", "env_number",
           "positive_number"]


class EnvironmentValueError(ValueError):
    """An environment variable holds a value pe-iqa does not accept (a usage error: exit status 2)."""


@dataclass(frozen=True)
class NumericVariable:
    """One numeric environment variable and the values it accepts.

    Attributes:
        name: the variable.
        unit: what the number counts (``"GiB"``), for messages.
        low: smallest accepted value (excluded when ``low_open``).
        high: largest accepted value (finite: a bound, so that no later conversion overflows).
        integer: whole numbers only.
        low_open: ``low`` itself is refused (``> low`` rather than ``>= low``).
        note: what the value means, appended to the message (``"0 = no limit"``).
    """

    name: str
    unit: str
    low: float
    high: float
    integer: bool = False
    low_open: bool = False
    note: str = ""

    def describe(self) -> str:
        """What the variable accepts, e.g. ``"a number of GiB > 0 and <= 1e+09"``."""
        kind = "a whole number" if self.integer else "a number"
        low = f"> {self.low:g}" if self.low_open else f">= {self.low:g}"
        note = f" ({self.note})" if self.note else ""
        return f"{kind} of {self.unit} {low} and <= {self.high:g}{note}"

    def parse(self, text: str) -> float | int:
        """``text`` as this variable's value.

        Raises:
            EnvironmentValueError: not a finite number in range (or not whole, for an integer variable).
        """
        try:
            value: float | int = int(text) if self.integer else float(text)
        except ValueError:
            value = math.nan
        finite = not isinstance(value, float) or math.isfinite(value)
        above = value > self.low if self.low_open else value >= self.low
        if not (finite and above and value <= self.high):
            raise EnvironmentValueError(f"{self.name} must be {self.describe()}, got {text!r}")
        return value


#: Every numeric environment variable read anywhere in pe-iqa (torchrun's own included, read under torchrun).
NUMERIC_VARIABLES: Mapping[str, NumericVariable] = MappingProxyType({row.name: row for row in (
    NumericVariable("PE_IQA_MEMORY_BUDGET_GB", "GiB", 0, 1e9, low_open=True),
    NumericVariable("PE_IQA_DIST_TIMEOUT_S", "seconds", 0, 1e9, low_open=True),
    NumericVariable("PE_IQA_MAX_IMAGE_PIXELS", "pixels", 0, 1e15, integer=True, note="0 = no limit"),
    NumericVariable("WORLD_SIZE", "processes", 1, 2**20, integer=True, note="torchrun sets it"),
    NumericVariable("LOCAL_WORLD_SIZE", "processes", 1, 2**20, integer=True, note="torchrun sets it"),
    NumericVariable("RANK", "processes", 0, 2**20, integer=True, note="torchrun sets it"),
    NumericVariable("LOCAL_RANK", "processes", 0, 2**20, integer=True, note="torchrun sets it"),
)})


def env_number(name: str) -> float | int | None:
    """The validated value of the numeric environment variable ``name``; ``None`` when it is unset or blank.

    Args:
        name: a variable of :data:`NUMERIC_VARIABLES`.

    Raises:
        EnvironmentValueError: the value is not accepted (see :class:`NumericVariable`).
        KeyError: ``name`` is not in the table (add a row: every numeric variable is read through it).

    Example:
        >>> os.environ["PE_IQA_MEMORY_BUDGET_GB"] = "2.5"
        >>> env_number("PE_IQA_MEMORY_BUDGET_GB")
        2.5
        >>> os.environ["PE_IQA_MEMORY_BUDGET_GB"] = "1e300"
        >>> try:
        ...     env_number("PE_IQA_MEMORY_BUDGET_GB")
        ... except EnvironmentValueError as error:
        ...     print(error)
        PE_IQA_MEMORY_BUDGET_GB must be a number of GiB > 0 and <= 1e+09, got '1e300'
        >>> del os.environ["PE_IQA_MEMORY_BUDGET_GB"]
    """
    row = NUMERIC_VARIABLES[name]
    text = os.environ.get(name, "").strip()
    return row.parse(text) if text else None


def positive_number(name: str, unit: str) -> float | None:
    """The value of numeric variable ``name`` (a row of :data:`NUMERIC_VARIABLES`) as a float; ``None`` if unset.

    Kept for callers written before the table; ``unit`` is the table's (the argument is not used).

    Raises:
        EnvironmentValueError: the value is not accepted.
    """
    value = env_number(name)
    return None if value is None else float(value)


def check_environment() -> None:
    """Validate every variable of :data:`NUMERIC_VARIABLES` (call before any work: one line, not one per pair).

    Raises:
        EnvironmentValueError: the first variable whose value is not accepted, naming what it accepts.
    """
    for name in NUMERIC_VARIABLES:
        env_number(name)
