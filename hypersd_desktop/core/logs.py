"""Log files, one per kind of process, in the app's data folder: `app.log` (the window),
`cli.log` (commands), `worker.log` (the generation worker). Tracebacks go there; people see one
line that names the file."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from hypersd_desktop.core.paths import AppPaths

FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def log_file(kind: str, paths: AppPaths | None = None) -> Path:
    return (paths or AppPaths.default()).data / f"{kind}.log"


def setup_logging(kind: str, paths: AppPaths | None = None, level: int = logging.INFO) -> Path:
    """Send this process's log records to `<kind>.log` (kept under 3 × 1 MB); returns its path."""
    path = log_file(kind, paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "hypersd_log", False)]:
        if handler.baseFilename == str(path):
            return path
        root.removeHandler(handler)  # one log file per process: the one asked for last
        handler.close()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2**20, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.hypersd_log = True
    root.addHandler(handler)
    root.setLevel(level)
    return path
