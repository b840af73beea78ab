import sys

from nodegraph.cli import main

sys.exit(main())
