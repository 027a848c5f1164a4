"""Every folder the app writes to, from one place.

`HYPERSD_HOME` moves them all under one folder (tests point it at a temporary directory);
otherwise the platform's conventions apply (platformdirs). Nothing is written next to the
install or into the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "HyperSD Desktop"
HOME_ENV = "HYPERSD_HOME"


@dataclass(frozen=True)
class AppPaths:
    """Data, models, images, cache and config folders. Created on first use by `ensure()`."""

    data: Path
    config: Path
    cache: Path

    @classmethod
    def default(cls) -> AppPaths:
        home = os.environ.get(HOME_ENV)
        if home:
            root = Path(home)
            return cls(data=root / "data", config=root / "config", cache=root / "cache")
        return cls(
            data=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            cache=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        )

    @property
    def inputs(self) -> Path:
        """Input images of requests (init images, masks, control images) by sha256 (`core/images.py`)."""
        return self.data / "inputs"

    @property
    def models(self) -> Path:
        return self._chosen("models_dir") or self.data / "models"

    @property
    def images(self) -> Path:
        return self._chosen("images_dir") or self.data / "images"

    def _chosen(self, key: str) -> Path | None:
        """A folder the user chose in Settings (read from the settings file, so every process agrees)."""
        import json

        try:
            value = json.loads((self.config / "settings.json").read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError, AttributeError):
            return None
        return Path(value).expanduser() if isinstance(value, str) and value else None  # "~/…" from an edited file

    def ensure(self) -> AppPaths:
        """The folders, created where missing. The models and images folders may be ones the user chose on a drive
        that is not there now (unplugged, a network share offline): those are left to be made when something is
        written there, which then says what is wrong, and the app starts."""
        for folder in (self.data, self.config, self.cache):
            folder.mkdir(parents=True, exist_ok=True)
        for folder in (self.models, self.images):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass
        return self
