import sys

from memcross.cli import main

sys.exit(main())
