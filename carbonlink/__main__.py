"""``python -m carbonlink``: the same as the ``carbonlink`` command."""

import sys

from carbonlink.cli.main import main

sys.exit(main())
