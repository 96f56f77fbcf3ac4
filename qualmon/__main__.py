"""`python -m qualmon …`, the same as the `qualmon` command."""

import sys

from .cli import main

sys.exit(main())
