"""``python -m benchmarks quality|merge|view|targets ...`` (see :mod:`benchmarks.cli`)."""

import sys

from benchmarks.cli import main

sys.exit(main())
