"""``python -m metarl``: the same as the ``metarl`` command."""

import sys

from metarl.cli import main

sys.exit(main())
