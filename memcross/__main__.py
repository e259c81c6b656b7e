"""``python -m memcross``: run the command-line interface and exit with its status."""

import sys

from memcross.cli import main

sys.exit(main())
