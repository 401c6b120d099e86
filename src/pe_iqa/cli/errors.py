"""How the command line fails: one line on standard error and an exit status, never a traceback (unless --debug).

Exit statuses: 0 success; 1 the command ran and something failed (a file, a pair, a network); 2 the command line
itself is wrong (unknown option or metric, malformed value, conflicting options); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "CommandError", "UsageError", "debug_requested", "one_line",
           "show_warnings_as_lines", "usage_errors"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """The command ran and failed; printed as one line, exit status 1."""


class UsageError(CommandError):
    """The command line is wrong; printed as one line, exit status 2."""


@contextlib.contextmanager
def usage_errors(prefix: str = "") -> Iterator[None]:
    """Turn the ``ValueError``/``TypeError`` of a check of the command line's values into a :class:`UsageError`.

    Wrap only checks of what the command line names (a backbone, layers, weights tag, score, environment
    variable): the same errors raised later, while working, are failures of the run (exit status 1).

    Example:
        >>> with usage_errors("--top"):
        ...     int("x")
        Traceback (most recent call last):
        ...
        pe_iqa.cli.errors.UsageError: --top: invalid literal for int() with base 10: 'x'
    """
    try:
        yield
    except (ValueError, TypeError) as error:
        raise UsageError(f"{prefix}: {error}" if prefix else str(error)) from None


def debug_requested(arguments: list[str]) -> bool:
    """``--debug`` anywhere on the command line, or ``PE_IQA_DEBUG`` set: show tracebacks."""
    return "--debug" in arguments or bool(os.environ.get("PE_IQA_DEBUG"))


def one_line(error: BaseException | str) -> str:
    """An error as one line: its message with line breaks folded (the exception type where it says more)."""
    if isinstance(error, str):
        text = error
    else:
        text = str(error).strip()
        plain = (CommandError, ValueError, OSError, ImportError, KeyError)
        if isinstance(error, KeyError) and error.args:
            text = str(error.args[0])
        if not text or not isinstance(error, plain):
            text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def show_warnings_as_lines(prefix: str) -> None:
    """Print every warning as ``<prefix>: warning: <message>`` on standard error (one line each)."""

    from ..scoring.distributed import launch_rank

    quiet = launch_rank()[0] != 0  # under torchrun, process 0 speaks for all

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if not quiet:
            print(f"{prefix}: warning: {one_line(str(message))}", file=sys.stderr, flush=True)

    warnings.showwarning = show
