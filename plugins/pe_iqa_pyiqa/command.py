"""``pe-iqa pyiqa ...``: pyiqa's own command line with the PE presets registered (entry point ``pe_iqa.commands``).

Declared as ``[project.entry-points."pe_iqa.commands"] pyiqa = "pe_iqa_pyiqa.command:run"``. The arguments are
pyiqa's (``METRIC ... -t DIST [-r REF] [-v] [--device D] [-ls]``); they are checked first so that a missing
metric, image, option or argument is one line (exit status 2), not pyiqa's traceback or a silent default. pyiqa
reads the image files itself, with its own reader (see the README on where it differs from pe-iqa's).
"""

from __future__ import annotations

import argparse
import os
import sys

from pe_iqa.cli.errors import CommandError, UsageError

from .download_errors import explain_download_failure

__all__ = ["run"]

_USAGE = ("pe-iqa pyiqa METRIC [METRIC ...] -t DIST [-r REF] [-v] [--device D] "
          "(pyiqa's command line; list the metrics with pe-iqa pyiqa -ls)")


def _known_arguments(arguments: list[str]) -> argparse.Namespace:
    """The arguments as pyiqa's command line reads them (its options, mirrored); pyiqa itself ignores unknown
    options (``parse_known_args``), so a misspelled one (``--devcie``) would run with the default: refused here."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("metric", nargs="*")
    parser.add_argument("-t", "--target")
    parser.add_argument("-r", "--ref")
    parser.add_argument("--isc_splits", type=int)
    parser.add_argument("--fid_mode")
    parser.add_argument("--device")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-ls", "--list_models", action="store_true")
    parser.add_argument("-h", "--help", action="store_true")
    try:
        known, unknown = parser.parse_known_args(arguments)
    except SystemExit:
        raise UsageError(f"usage: {_USAGE}") from None
    if unknown:
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)}; usage: {_USAGE}")
    return known


def _check(arguments: list[str]) -> None:
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    known = _known_arguments(arguments)
    if known.help or known.list_models:
        return
    if not known.metric:
        raise UsageError(f"no metric given; usage: {_USAGE}")
    unknown = [name for name in known.metric if name not in DEFAULT_CONFIGS]
    if unknown:
        raise UsageError(f"unknown metric(s) {', '.join(map(repr, unknown))}: neither pyiqa metrics nor pe-iqa "
                         f"presets (list them with pe-iqa pyiqa -ls)")
    if not known.target:
        raise UsageError(f"give the images to score with -t DIST; usage: {_USAGE}")
    for option, path in (("-t", known.target), ("-r", known.ref)):
        if path is not None and not os.path.exists(path):
            raise UsageError(f"{option} {path}: no such file or folder")


def run(arguments: list[str]) -> int:
    """Run pyiqa's command line on ``arguments`` with the PE presets registered.

    Returns:
        pyiqa's exit status (0 on success).

    Raises:
        UsageError: no arguments, no or unknown metric or option, no ``-t``, a missing image path.
        CommandError: a weight file that cannot be downloaded, or pyiqa failing.
    """
    from pyiqa import pyiqa_cmd  # importing this package already registered the presets

    if not arguments:
        raise UsageError(f"usage: {_USAGE}")
    _check(arguments)
    saved = sys.argv
    sys.argv = ["pe-iqa pyiqa", *arguments]
    try:
        pyiqa_cmd.main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except Exception as error:
        message = explain_download_failure(error)
        if message is not None:
            raise CommandError(message) from error
        raise CommandError(f"pyiqa failed: {type(error).__name__}: {error}") from error
    finally:
        sys.argv = saved
    return 0
