"""``python -m faultlens_collector.cli``."""

import sys

from faultlens_collector.cli import main

sys.exit(main())
