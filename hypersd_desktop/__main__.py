import sys

from hypersd_desktop.cli import main

sys.exit(main())
