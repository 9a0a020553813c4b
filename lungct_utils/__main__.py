"""``python -m lungct_utils``: see :mod:`lungct_utils.app.cli`."""

import sys

from .app.cli import main

sys.exit(main())
