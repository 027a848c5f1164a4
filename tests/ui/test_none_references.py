"""PySide6 6.12 on Python 3.11 loses a reference to None whenever an empty QVariant comes back into
Python; some thousands of those abort the interpreter ("deallocating None"), which scrolling the
gallery for a minute used to do. The window's everyday paths must leave None's count alone."""

from __future__ import annotations

import sys

import pytest

from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.worker.client import QueueChanged, QueuedJob
from ui_helpers import add_images

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12")


def test_painting_and_reading_the_controls_keeps_none_alive(qtbot, idle_app):
    window = idle_app.window
    browser = window.browser
    add_images(window.gallery, [f"a field of poppies {k}" for k in range(30)])
    browser.apply_filters()
    window.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: all(browser.model._pixmaps.get(r.id) for r in browser.model.all_records()[:10]), timeout=10_000)
    base = window.current_model()
    job = QueuedJob(7, GenerationRequest(prompt="x", base_model=base.path))

    def everyday() -> None:
        browser.grid.viewport().repaint()
        window.build_request(quiet=True)
        window._update_recipe_controls()
        browser.current_query()
        window.jobs._queue_changed(QueueChanged(job, (job,)))
        window.queue.setCurrentRow(0)
        window._move_queued(1)
        window.models.refresh()
        window.models._update_buttons()

    everyday()  # first calls fill caches
    before = sys.getrefcount(None)
    for _ in range(200):
        everyday()
    assert sys.getrefcount(None) - before > -50  # one lost reference per call would be -200 or worse
