"""`python -m runtime` runs the nnspec command line."""

import sys

from .cli import main

sys.exit(main())
