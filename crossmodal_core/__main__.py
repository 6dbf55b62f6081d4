"""``python -m crossmodal_core <command>``: see :mod:`crossmodal_core.cli`."""

import sys

from crossmodal_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
