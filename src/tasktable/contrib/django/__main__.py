"""``python -m tasktable.contrib.django [--backend ALIAS] COMMAND ...``: see ``cli.py``."""

import sys

from .cli import main

sys.exit(main())
