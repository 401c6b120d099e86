"""``python -m pe_iqa`` is the ``pe-iqa`` command line (and what ``torchrun -m pe_iqa`` runs)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
