"""Where the bundled read-only resources live: the package `hypersd_desktop.resources`.

The repository keeps them in the top-level `resources/` folder; pyproject.toml maps that folder
to the package, so a source checkout (editable install), a wheel and a packaged build all find
them the same way.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resources_dir() -> Path:
    """The resources folder as a real directory (diffusers and transformers read folders by path)."""
    return Path(str(files("hypersd_desktop.resources")))
