"""What the runners' command lines share: a wrong input is one line on standard error and an exit status.

The status comes from the command line's one exit table (:data:`pe_iqa.cli.errors.EXIT_TABLE`): the same misuse
gets the same status from ``pe-iqa`` and from a benchmark; the environment is checked first
(:func:`pe_iqa.env_options.check_environment`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from pe_iqa.cli.errors import EXIT_USAGE, exit_status, one_line

__all__ = ["EXIT_USAGE", "run_or_exit_status"]


def run_or_exit_status(run: Callable[[], object], debug: bool = False) -> int:
    """Call ``run`` after checking the environment: 0, or the exit table's status after one ``error: …`` line.

    Args:
        run: the benchmark.
        debug: let the error propagate (a traceback) instead.

    Example:
        >>> run_or_exit_status(lambda: open("/no/such/file.csv"))
        2
    """
    from pe_iqa.env_options import check_environment

    try:
        check_environment()
        run()
    except Exception as error:
        if debug:
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        return exit_status(error)
    return 0
