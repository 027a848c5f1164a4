"""Entry point for `python main.py` and for the frozen executable (installer/)."""

import multiprocessing
import sys

from hypersd_desktop.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the generation worker is a spawned process
    sys.exit(main())
