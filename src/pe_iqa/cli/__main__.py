"""``python -m pe_iqa.cli`` is the ``pe-iqa`` command line too."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
