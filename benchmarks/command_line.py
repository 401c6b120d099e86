"""What the runners' command lines share: a wrong input is one line on standard error and an exit status."""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["EXIT_USAGE", "run_or_exit_status"]

#: Exit status of a missing input or an impossible option (argparse's own usage errors exit with 2 too).
EXIT_USAGE = 2


def run_or_exit_status(run: Callable[[], object]) -> int:
    """Call ``run``: 0, or :data:`EXIT_USAGE` after one ``error: …`` line if an input is missing (FileNotFoundError)
    or an option is impossible (ValueError, e.g. an unknown metric); any other error propagates."""
    try:
        run()
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return 0
