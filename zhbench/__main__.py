"""``python -m zhbench`` runs the ``zhbench`` command."""

import sys

from zhbench.workbench.cli import main

sys.exit(main())
