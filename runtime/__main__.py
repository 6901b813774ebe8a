"""`python -m runtime` runs the nnspec command line."""

import sys

from runtime.cli.main import main

sys.exit(main())
