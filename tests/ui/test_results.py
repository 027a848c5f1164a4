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
    monkeypatch.setattr(window.preview, "show_image", lambda pixmap, *tiling: (shown.append(pixmap.cacheKey()),
                                                                              show_image(pixmap, *tiling)))
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


def block_images_folder(window) -> Path:
    """Make the images folder one that cannot be written (a file stands where it was; a full disk acts the same)."""
    import shutil

    images = window.library.paths.images
    shutil.rmtree(images)
    images.write_text("not a folder")
    return images


def test_an_image_the_disk_cannot_take_stays_on_screen_and_is_saved_elsewhere(qtbot, parts, tmp_path, monkeypatch):
    """The images folder cannot be written (here a file stands where it was; a full disk acts the same): the job
    says the image was not saved and why, the image stays in the strip marked so, and Save as… writes it (with
    its settings) where the user chooses, into the gallery, after which the strip's other commands work on it."""
    from PySide6.QtWidgets import QFileDialog

    from hypersd_desktop.gallery.metadata import read_request

    window = parts.window
    images = block_images_folder(window)
    window.prompt.setPlainText("a lighthouse at dusk")
    window.seed.setValue(4242)
    window.generate()
    qtbot.waitUntil(lambda: window.jobs.active_job is None and window.results.count() == 1, timeout=WAIT)
    qtbot.waitUntil(lambda: window.errors.isVisible(), timeout=WAIT)
    error = window.errors.text()
    assert "The image (seed 4242) was not saved" in error and str(images) in error and "Save as…" in error
    assert window.timing.text() == "Made, not saved"
    item = window.results.item(0)
    assert item.text() == "seed 4242 · not saved"
    assert window.preview.shown() is not None and not window.preview.shown().isNull()

    window.results.setCurrentItem(item)
    window.use_result_as_init_image()
    assert window.init_image.digest is None and "not saved" in window.statusBar().currentMessage()

    from PySide6.QtWidgets import QMessageBox

    asked_to_quit = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text: (asked_to_quit.append(text),
                                                                              QMessageBox.StandardButton.No)[1])
    assert not window.close() and window.isVisible()  # quitting would lose it: asked, and No keeps the window
    assert asked_to_quit == ["1 image was made but not saved (the disk could not take it). Quit anyway and lose it? "
                             "(No: right-click it in Latest results, then Save as…)"]

    chosen = tmp_path / "kept" / "lighthouse"
    chosen.parent.mkdir()
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",  # the platform's dialog, answered as a person would
                        lambda parent, title, suggested, filters: (asked.append(suggested), (str(chosen), filters))[1])
    window.activateWindow()
    window.results.setFocus()
    qtbot.keyClick(window.results, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)  # Save as…'s key
    path = chosen.with_suffix(".png")
    assert asked and path.is_file()
    assert asked[0].endswith("-4242.png")
    assert read_request(path)["seed"] == 4242 and read_request(path)["prompt"] == "a lighthouse at dusk"
    assert item.text() == "seed 4242" and window.results.path_of(item) == str(path)
    assert window.gallery.store.id_of_path(str(path)) is not None and not window.errors.isVisible()
    window.use_result_as_init_image()
    qtbot.waitUntil(lambda: window.init_image.digest is not None, timeout=WAIT)


def test_the_queue_waits_while_the_disk_cannot_take_images_and_resumes_when_asked(qtbot, parts, monkeypatch):
    """Three images queued and the first could not be saved (a file stands where the images folder was): the two
    queued after it are held, not made one by one into memory; the error says so and Resume queue, shown under the
    queue, runs them once there is room."""
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *args: QMessageBox.StandardButton.Yes)  # at the end: quit
    window = parts.window
    images = block_images_folder(window)
    window.prompt.setPlainText("a lighthouse at dusk")
    window.seed.setValue(10)
    window.seed_lock.setChecked(True)
    window.batch_count.setValue(3)
    saved: list[str] = []
    window.image_saved.connect(saved.append)
    window.generate()
    qtbot.waitUntil(lambda: window.resume_queue.isVisible(), timeout=WAIT)
    client = parts.bridge.client
    assert client.held and client.running is None and len(client.queued()) == 2
    assert [window.queue.item(row).text().split(":")[0] for row in range(window.queue.count())] == [
        f"#{job.job_id} held" for job in client.queued()]
    assert [window.queue.item(row).data(Qt.ItemDataRole.UserRole) for row in range(window.queue.count())] == [
        job.job_id for job in client.queued()]  # each can be moved or removed as a queued one
    error = window.errors.text()
    assert "The image (seed 10) was not saved" in error
    assert error.endswith("The 2 queued jobs wait: press Resume queue once there is room.")
    assert window.results.count() == 1 and saved == []

    images.unlink()  # room again
    qtbot.mouseClick(window.resume_queue, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(saved) == 2 and window.jobs.active_job is None and not client.queued(), timeout=WAIT)
    assert not client.held and not window.resume_queue.isVisible()
    assert sorted(Path(path).stem.rsplit("-", 1)[-1] for path in saved) == ["11", "12"]
    assert window.results.item(2).text() == "seed 10 · not saved"


def test_the_strip_lets_its_oldest_saved_results_go_and_keeps_a_not_saved_one(qtbot, idle_app):
    """The strip holds the latest 40 results: past that the oldest saved one goes (its file is in the gallery),
    never one that is not saved anywhere."""
    import io

    from PIL import Image

    from hypersd_desktop.ui.job_view import RESULTS_KEPT
    from hypersd_desktop.worker.protocol import ImageReady

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, format="PNG")
    png = buffer.getvalue()
    window = idle_app.window
    window.jobs._image_ready(ImageReady(1, 0, 99, "", None, png))  # the disk could not take it
    for seed in range(RESULTS_KEPT + 5):
        window.jobs._image_ready(ImageReady(2, seed, seed, f"/images/{seed}.png", seed + 1, png))
    strip = window.results
    texts = [strip.item(row).text() for row in range(strip.count())]
    assert len(texts) == RESULTS_KEPT and texts[-1] == "seed 99 · not saved"
    assert texts[:-1] == [f"seed {seed}" for seed in range(RESULTS_KEPT + 4, 5, -1)]
    strip.clear()  # nothing left unsaved: closing the window asks nothing


def test_a_result_is_compared_with_the_one_made_before_it(qtbot, parts):
    """The strip's "Compare with the image before it": the gallery's Compare view of the chosen result and the
    one made before it; the oldest result has none before it, and the status bar says so."""
    from hypersd_desktop.ui.compare_view import differences

    window = parts.window
    saved = two_results(qtbot, window)
    strip = window.results
    assert any(action.text() == "Compare with the image before it" for action in strip.actions())
    strip.setCurrentRow(0)
    dialog = window.compare_result()
    assert dialog is not None
    qtbot.addWidget(dialog)
    assert [record.path for record in dialog.records] == [saved[1], saved[0]]
    names = [name for name, _, _ in differences(*dialog.rows)[0]]
    assert "Seed" in names and "Prompt" not in names  # a batch's two images: only the seed differs
    strip.setCurrentRow(1)
    assert window.compare_result() is None and "before the chosen one" in window.statusBar().currentMessage()
