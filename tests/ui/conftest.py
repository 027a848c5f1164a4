"""Fixtures for the window tests: installed tiny models, and the app with its real worker process."""

from __future__ import annotations

import pytest

from ui_helpers import WAIT

# The window's size in the tests that draw, click and lay out at set places: its first size on a large screen
# (the offscreen platform's screen is 800 × 800, where the window would start smaller; test_window_size.py).
TEST_WINDOW = (1280, 800)


@pytest.fixture(autouse=True)
def empty_clipboard():
    """Leave the clipboard empty after each test. Under the offscreen and minimal platforms Qt
    keeps the clipboard's data in a global that is destroyed after Python has shut down; data
    set from Python (the gallery's copy image) then crashes the test run at exit (SIGSEGV)."""
    yield
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.instance() is not None:
        QGuiApplication.clipboard().clear()


@pytest.fixture
def parts(qtbot, installed):
    """The whole app with its worker started and ready, and a 64 × 64 size for quick images."""
    from hypersd_desktop.app import build_app

    parts = build_app(["test"])
    parts.window.resize(*TEST_WINDOW)
    parts.window.show()  # closed below, not by qtbot: a window with a running job asks before closing
    if not parts.bridge.client._ready:
        qtbot.waitSignal(parts.bridge.ready, timeout=WAIT).wait()
    parts.window.size_box.addItem("64 × 64 (test)", (64, 64))
    parts.window.size_box.setCurrentIndex(parts.window.size_box.count() - 1)
    yield parts
    close(parts)


@pytest.fixture
def idle_app(qtbot, installed):
    """The app without a worker process: for the gallery, model and export parts of the window."""
    from hypersd_desktop.app import build_app

    parts = build_app(["test"], start_worker=False)
    parts.window.resize(*TEST_WINDOW)
    parts.window.show()
    parts.window.activateWindow()  # keyboard shortcuts act only in the active window
    qtbot.waitUntil(parts.window.isActiveWindow, timeout=5000)
    yield parts
    close(parts)


def close(parts) -> None:
    parts.bridge.shutdown()
    parts.window._active_job = None
    parts.window.close()
    parts.window.deleteLater()
    parts.library.close()
