"""The strip of latest results on the Generate tab: looked at large, opened in the gallery, dragged out."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtTest import QTest

from ui_helpers import WAIT, drop


def two_results(qtbot, window) -> list[str]:
    """Two images generated in one job, in the strip; their files, oldest first."""
    window.prompt.setPlainText("a lighthouse at dusk")
    window.batch_count.setValue(2)
    saved: list[str] = []
    window.image_saved.connect(saved.append)
    window.generate()
    qtbot.waitUntil(lambda: len(saved) == 2 and window.jobs.active_job is None, timeout=WAIT)
    return saved


def test_a_result_is_shown_large_opened_in_the_gallery_and_dragged_as_its_file(qtbot, parts):
    window = parts.window
    saved = two_results(qtbot, window)
    strip = window.results
    assert [strip.item(row).data(Qt.ItemDataRole.UserRole) for row in range(2)] == saved[::-1]  # newest first
    older = strip.item(1)

    rect = strip.visualItemRect(older)
    QTest.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    shown = window.preview._pixmap.toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert shown == QImage(saved[0]).convertToFormat(QImage.Format.Format_RGB32), "the older image, large"
    assert strip.item(0).text() and strip.indexAt(rect.center()).row() == 1, "clicking moves nothing"

    mime = strip.mimeData([older])
    assert [url.toLocalFile() for url in mime.urls()] == [saved[0]], "dragged out, it is its file"
    drop(window.init_image, [Path(url.toLocalFile()) for url in mime.urls()])
    qtbot.waitUntil(lambda: window.init_image.digest is not None, timeout=WAIT)

    QTest.mouseDClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    browser = window.browser
    assert window.tabs.currentWidget() is browser and browser.pages.currentWidget() is browser.viewer
    assert browser.viewer.record.path == saved[0]


def test_a_click_reads_the_result_once_and_again_only_after_a_newer_image(qtbot, parts, monkeypatch):
    window = parts.window
    saved = two_results(qtbot, window)
    shown: list[int] = []  # the preview's pictures, each read from a file
    show_image = window.preview.show_image
    monkeypatch.setattr(window.preview, "show_image", lambda pixmap: (shown.append(pixmap.cacheKey()),
                                                                    show_image(pixmap)))
    strip = window.results
    older = strip.visualItemRect(strip.item(1)).center()

    QTest.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=older)
    assert len(shown) == 1, "made current and clicked: read from its file once"
    QTest.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=older)
    assert len(shown) == 1, "already in view"
    show_image(QPixmap(saved[1]))  # as a newer image would
    QTest.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=older)
    assert len(shown) == 2, "the current result again, after another image took the preview"


def test_opening_a_result_clears_gallery_filters_that_hide_it(qtbot, parts):
    window, browser = parts.window, parts.window.browser
    window.prompt.setPlainText("a quiet harbour")
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as done:
        window.generate()
    browser.search.setText("no image has these words")
    browser.apply_filters()
    assert browser.model.count() == 0
    window.open_result(window.results.item(0))
    assert browser.search.text() == "" and browser.viewer.record.path == done.args[0]


def test_an_image_held_over_the_generate_tab_opens_it_for_the_drop(qtbot, idle_app, tmp_path):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent
    from PySide6.QtWidgets import QApplication

    window = idle_app.window
    window.tabs.setCurrentWidget(window.browser)
    bar = window.tabs.tabBar()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "a.png"))])
    where = bar.tabRect(0).center()
    for event in (QDragEnterEvent(where, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                  Qt.KeyboardModifier.NoModifier),
                  QDragMoveEvent(where, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                 Qt.KeyboardModifier.NoModifier)):
        QApplication.sendEvent(bar, event)
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == 0, timeout=3000)  # the drop lands in its init image box
