"""Fixtures for the worker's tests."""

from __future__ import annotations

import pytest

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.worker.service import GenerationService


@pytest.fixture
def service(app_home):
    """The generation service with the app's gallery and model library, in a fresh app home."""
    paths = AppPaths.default().ensure()
    gallery = Gallery(paths)
    library = ModelLibrary(paths)
    yield GenerationService(paths, gallery, library.hash_cache())
    gallery.close()
    library.close()
