"""``python -m workbench`` runs the ``zhbench`` command (handy from a checkout that is not installed)."""

import sys

from workbench.cli import main

sys.exit(main())
