"""The GUI process must be able to use core, models, gallery and the engine's types without torch or Qt."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    ["hypersd_desktop.core.paths", "hypersd_desktop.core.progress", "hypersd_desktop.core.hashes",
     "hypersd_desktop.gallery.metadata", "hypersd_desktop.engine", "hypersd_desktop.engine.planning",
     "hypersd_desktop.engine.inspect", "hypersd_desktop.cli", "hypersd_desktop.engine.backend",
     "hypersd_desktop.engine.torch_backend", "hypersd_desktop.worker.client", "hypersd_desktop.worker.wire"],
)
def test_import_loads_neither_torch_nor_qt(module):
    code = (
        f"import sys, {module}\n"
        "from hypersd_desktop.engine import backend\n"
        "backend.probe_all()\n"  # the capability probe is cheap: it imports no inference library
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers', 'PySide6') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == ""
