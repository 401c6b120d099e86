"""How the command line fails: one line on standard error and an exit status, never a traceback (unless --debug).

Exit statuses: 0 success; 1 the command ran and something failed (a file, a pair, a network); 2 the command line
itself is wrong (unknown option or metric, malformed value, conflicting options, a file it names that is not there,
an output name that cannot be written, a resume over another run); 130 interrupted. :data:`EXIT_TABLE` maps each
error type to its status and :func:`exit_status` applies it: every subcommand (through :func:`pe_iqa.cli.main`),
plugin command and benchmark entry point (``benchmarks.command_line``) uses it, so the same misuse gets the same
status everywhere.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

__all__ = ["EXIT_FAILED", "EXIT_TABLE", "EXIT_USAGE", "CommandError", "UsageError", "debug_requested",
           "exit_status", "one_line", "show_warnings_as_lines", "usage_errors"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """The command ran and failed; printed as one line, exit status 1."""


class UsageError(CommandError):
    """The command line is wrong; printed as one line, exit status 2."""


#: Error type → exit status, first match wins (a subclass before its base). Types are named ``"module:Class"``
#: and looked up only if their module is loaded (an error of a module never imported cannot have been raised), so
#: this table imports nothing: the command line answers before torch loads.
EXIT_TABLE: tuple[tuple[str, int], ...] = (
    ("pe_iqa.cli.errors:UsageError", EXIT_USAGE),
    ("pe_iqa.cli.errors:CommandError", EXIT_FAILED),
    # the environment, what the command line names, and where it asks to write: the command line is wrong
    ("pe_iqa.env_options:EnvironmentValueError", EXIT_USAGE),
    ("pe_iqa.safe_files:DestinationError", EXIT_USAGE),
    ("pe_iqa.scoring.metrics:MetricUnavailableError", EXIT_USAGE),
    ("pe_iqa.scoring.output:JournalError", EXIT_USAGE),  # a journal of another run, or one that needs --resume
    ("pe_iqa.provenance:ProvenanceError", EXIT_USAGE),  # resuming over results of another configuration
    ("pe_iqa.backbones.weights:WeightsMismatchError", EXIT_USAGE),
    ("pe_iqa.backbones.weights:WeightsNotFoundError", EXIT_FAILED),  # a download failed (offline)
    ("pe_iqa_pyiqa.scoring_metrics:MetricDownloadError", EXIT_FAILED),
    ("builtins:FileNotFoundError", EXIT_USAGE),  # the command line names a file that is not there
    ("builtins:NotADirectoryError", EXIT_USAGE),
    # the command ran and an input or a resource failed: exit status 1, though these are ValueErrors
    ("pe_iqa.image_io:ImageReadError", EXIT_FAILED),
    ("pe_iqa.memory:MemoryBudgetError", EXIT_FAILED),
    ("pe_iqa.analysis.tuning_cache:CacheEntryError", EXIT_FAILED),
    # any other ValueError/TypeError reaching a command's top comes from a check of a value it was given
    ("builtins:ValueError", EXIT_USAGE),
    ("builtins:TypeError", EXIT_USAGE),
    # the command ran and failed
    ("builtins:KeyboardInterrupt", EXIT_INTERRUPTED),
    ("builtins:BaseException", EXIT_FAILED),
)


def exit_status(error: BaseException) -> int:
    """The exit status of a command that ended with ``error``, from :data:`EXIT_TABLE`.

    Example:
        >>> exit_status(UsageError("--top must be >= 1")), exit_status(FileNotFoundError("x.png"))
        (2, 2)
        >>> exit_status(RuntimeError("CUDA error")), exit_status(KeyboardInterrupt())
        (1, 130)
    """
    for name, status in EXIT_TABLE:
        module, _, attribute = name.partition(":")
        kind = getattr(sys.modules.get(module), attribute, None)
        if isinstance(kind, type) and isinstance(error, kind):
            return status
    return EXIT_FAILED


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

    from ..env_options import env_number

    quiet = bool(env_number("RANK"))  # under torchrun, process 0 speaks for all

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if not quiet:
            print(f"{prefix}: warning: {one_line(str(message))}", file=sys.stderr, flush=True)

    warnings.showwarning = show
