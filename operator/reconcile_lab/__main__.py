"""``python -m reconcile_lab`` is ``reconcile-lab``."""

import sys

from reconcile_lab.cli import main

sys.exit(main())
