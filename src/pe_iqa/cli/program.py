"""The ``pe-iqa`` program: parser, dispatch to the command modules and to plugin commands, error handling."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Sequence
from importlib import metadata

from .errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandError,
    UsageError,
    debug_requested,
    exit_status,
    one_line,
    show_warnings_as_lines,
    usage_errors,
)

__all__ = ["COMMAND_ENTRY_POINTS", "build_parser", "check_environment", "main"]

#: Entry-point group of plugin commands: ``name = "module:run"`` with ``run(arguments: list[str]) -> int``;
#: the name is both the subcommand and the pe-iqa extra that installs what it needs.
COMMAND_ENTRY_POINTS = "pe_iqa.commands"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (raised as :class:`UsageError`, exit status 2)."""

    def error(self, message: str):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _plugin_commands() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in sorted(metadata.entry_points(group=COMMAND_ENTRY_POINTS), key=lambda e: e.name)}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pe-iqa`` (plugin commands are listed, and dispatched before parsing).

    Building it imports no torch (the command modules import it in ``run``), so ``--help`` and usage errors
    answer at once.
    """
    from .. import __version__
    from . import explain, layers, plot, rank, score

    parser = _Parser(
        prog="pe-iqa",
        description="Perceptual Efficacy (PE) channel selection for deep-feature image-quality distances.",
        epilog="run `pe-iqa COMMAND --help` for the options of a command; --debug shows tracebacks",
    )
    parser.add_argument("--version", action="version",
                        version=f"pe-iqa {__version__} (torch {_torch_version()}, python {sys.version.split()[0]})")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    score.add_parser(commands, [common])
    rank.add_parser(commands, [common])
    plot.add_parser(commands, [common])
    layers.add_parser(commands, [common])
    explain.add_parser(commands, [common])
    for name in _plugin_commands():
        placeholder = commands.add_parser(name, add_help=False,
                                          help=f"the {name} plugin's command line (pe-iqa {name} --help)")
        placeholder.set_defaults(func=_misplaced(name))
    return parser


def _torch_version() -> str:
    """The installed torch's version, read from its metadata (importing torch takes seconds)."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "not installed"


def _misplaced(name: str):
    def run(args: argparse.Namespace) -> int:
        raise UsageError(f"options go after the command: pe-iqa {name} ...")

    return run


def _run_plugin(entry_point: metadata.EntryPoint, arguments: list[str]) -> int:
    try:
        run = entry_point.load()
    except ImportError as error:
        raise CommandError(
            f"`pe-iqa {entry_point.name}` needs the {entry_point.name!r} extra, which is not installed ({error}): "
            f"pip install 'pe-iqa[{entry_point.name}]'"
        ) from None
    return int(run(arguments) or 0)


def _dispatch(arguments: list[str]) -> int:
    command = arguments[0] if arguments else None
    plugins = _plugin_commands() if command and not command.startswith("-") else {}
    if command in plugins:
        check_environment()
        return _run_plugin(plugins[command], arguments[1:])
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(arguments)
    except SystemExit as exit_:  # --help and --version
        return exit_.code if isinstance(exit_.code, int) else 0
    if unknown:  # named here, where the command is known: its --help lists what it takes
        where = f"pe-iqa {args.command}" if args.command else "pe-iqa"
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)} (see `{where} --help`)")
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    check_environment()
    return args.func(args)


def check_environment() -> None:
    """Refuse malformed values of the environment variables pe-iqa reads, as a usage error (exit status 2).

    Checked before any work (and before torch loads), so a wrong ``PE_IQA_MAX_IMAGE_PIXELS`` is one line, not one
    failure per pair; every numeric variable is a row of :data:`pe_iqa.env_options.NUMERIC_VARIABLES`.

    Raises:
        UsageError: naming the variable and what it accepts.
    """
    from ..env_options import check_environment as check_numbers

    with usage_errors():
        check_numbers()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pe-iqa`` command line.

    Args:
        argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 a failed command or pair, 2 a wrong command line, 130 interrupted.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in arguments if not a.startswith("-")), "")
    prefix = f"pe-iqa {command}".strip()
    debug = debug_requested(arguments)
    while arguments[:1] == ["--debug"]:
        arguments = arguments[1:]
    saved_showwarning = warnings.showwarning
    try:
        if not debug:
            show_warnings_as_lines(prefix)
        return _dispatch(arguments)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except MemoryError:
        if debug:
            raise
        print(f"{prefix}: error: out of memory", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception as error:
        if debug:
            raise
        status = exit_status(error)
        hint = "" if isinstance(error, (CommandError, ValueError, OSError, ImportError)) else \
            " (run with --debug for the traceback)"
        print(f"{prefix}: error: {one_line(error)}{hint}", file=sys.stderr, flush=True)
        return status
    finally:
        warnings.showwarning = saved_showwarning

