"""Fixtures for the model library's tests."""

from __future__ import annotations

import pytest

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.models.library import ModelLibrary


@pytest.fixture
def library(app_home):
    """The library of a fresh app home, with the catalog and no network settings."""
    library = ModelLibrary(AppPaths.default())
    yield library
    library.close()
