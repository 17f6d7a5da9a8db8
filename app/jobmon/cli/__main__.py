"""``python -m jobmon.cli``: the same as the ``jobmon`` command."""

import sys

from jobmon.cli import main

sys.exit(main())
