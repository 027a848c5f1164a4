"""`python -m hypersd_desktop.worker`: the generation worker program (see `worker.process`)."""

import sys

from hypersd_desktop.worker.process import main

sys.exit(main())
