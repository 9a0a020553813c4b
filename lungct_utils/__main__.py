"""``python -m lungct_utils``: see :mod:`lungct_utils.cli`."""

import sys

from .cli import main

sys.exit(main())
