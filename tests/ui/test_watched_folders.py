"""Watched folders in the window: a folder added in the dialog is imported and watched; images another tool saves
there afterwards (in new folders too) come into the gallery and its search; the folders are kept for the next
start, which takes what came while the app was closed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from hypersd_desktop.core.settings import load_settings
from hypersd_desktop.gallery.store import ImageQuery
from hypersd_desktop.ui.watched_folders import FolderWatcher, WatchedFoldersDialog
from ui_helpers import WAIT


def a1111_image(path: Path, prompt: str, age: float = 0.0) -> Path:
    """An image as A1111 saves one: its settings in the PNG's `parameters` text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("parameters", f"{prompt}\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 32x32")
    Image.new("RGB", (32, 32), "teal").save(path, pnginfo=info)
    if age:
        past = time.time() - age
        os.utime(path, (past, past))
    return path


def in_dialog(action) -> None:
    """Do `action(dialog)` in the next Watched folders dialog, then press OK."""
    def act() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, WatchedFoldersDialog):
            QTimer.singleShot(20, act)
            return
        action(dialog)
        dialog.accept()

    QTimer.singleShot(20, act)


def found(store, words: str) -> list[str]:
    return [Path(record.path).name for record in store.query(ImageQuery(text=words)).images]


def test_images_saved_in_a_watched_folder_come_into_the_gallery(qtbot, parts, tmp_path, monkeypatch):
    window, browser, store = parts.window, parts.window.browser, parts.window.gallery.store
    monkeypatch.setenv("HOME", str(tmp_path))  # A1111 where its installer puts it: the dialog offers its outputs
    outputs = tmp_path / "stable-diffusion-webui" / "outputs"
    a1111_image(outputs / "txt2img-images" / "2026-12-06" / "00001-5.png", "a lighthouse at dusk", age=3600)
    window.watcher.look_every(300)
    problems = []

    def add(dialog) -> None:
        problems.append(dialog.add_folder(window.gallery.paths.images))
        problems.append(dialog.problem.text())
        (suggested,) = dialog.suggestions
        problems.append(suggested.text())
        suggested.click()

    in_dialog(add)
    with qtbot.waitSignal(window.watcher.looked, timeout=WAIT):
        browser.watch_button.click()
    assert problems[0] is False and "the app's own images folder" in problems[1]
    assert problems[2] == f"Add AUTOMATIC1111's images — {outputs.resolve()} (1 image)"
    qtbot.waitUntil(lambda: found(store, "lighthouse") == ["00001-5.png"], timeout=WAIT)  # imported when added
    assert load_settings(parts.library.paths).watched_folders == str(outputs.resolve())
    assert outputs.resolve() / "txt2img-images" / "2026-12-06" in window.watcher.watching

    with qtbot.waitSignal(window.watcher.arrived, timeout=WAIT) as arrived:  # the next image, a new day's folder
        a1111_image(outputs / "txt2img-images" / "2026-12-07" / "00002-6.png", "a red fox in snow")
    assert arrived.args[0].added == 1 and found(store, "fox") == ["00002-6.png"]
    qtbot.waitUntil(lambda: browser.notice.text() == "1 new image from the watched folders.", timeout=WAIT)
    assert browser.model.record(0).path.endswith("00002-6.png")  # at the top of the grid
    with qtbot.waitSignal(window.watcher.arrived, timeout=WAIT) as arrived:
        a1111_image(outputs / "txt2img-images" / "2026-12-07" / "00003-7.png", "a blue whale")
        (outputs / "txt2img-images" / "2026-12-07" / "00004-8.png").write_bytes(b"not a png at all, just text")
    assert (arrived.args[0].added, len(arrived.args[0].report.failed)) == (1, 1)
    assert "1 unreadable (00004-8.png)" in browser.notice.text() and found(store, "whale") == ["00003-7.png"]
    with qtbot.waitSignal(window.watcher.arrived, timeout=WAIT) as arrived:  # the unreadable one is said once
        a1111_image(outputs / "txt2img-images" / "2026-12-07" / "00006-9.png", "a green frog")
    assert (arrived.args[0].added, arrived.args[0].report.failed) == (1, ())
    count = browser.model.count()
    with qtbot.waitSignal(window.watcher.arrived, timeout=WAIT) as arrived:  # deleted in the file manager
        (outputs / "txt2img-images" / "2026-12-07" / "00003-7.png").unlink()
    assert arrived.args[0].dropped == 1 and found(store, "whale") == []
    assert browser.notice.text() == "1 deleted there, taken out of the gallery." and browser.model.count() == count - 1

    window.watcher.stop()  # as when the app closes; an image saved meanwhile comes in at the next start
    a1111_image(outputs / "img2img-images" / "00005-9.png", "a castle on a hill", age=120)
    later = FolderWatcher(window.gallery, interval_ms=300)
    with qtbot.waitSignal(later.arrived, timeout=WAIT) as arrived:
        later.watch([outputs.resolve()])
    assert arrived.args[0].added == 1 and found(store, "castle") == ["00005-9.png"]
    later.stop()

    in_dialog(lambda dialog: (dialog.list.setCurrentRow(0), dialog.remove_button.click()))
    window.open_watched_folders()
    assert load_settings(parts.library.paths).watched_folders == "" and window.watcher.folders == []
    qtbot.waitUntil(lambda: window.watcher.watching == [], timeout=WAIT)


def test_the_dialog_refuses_what_cannot_be_watched_and_folds_folders_into_one_above(qtbot, app_home, tmp_path):
    from hypersd_desktop.core.paths import AppPaths

    paths = AppPaths.default().ensure()
    comfy, usb = tmp_path / "ComfyUI" / "output", tmp_path / "usb"
    comfy.mkdir(parents=True)
    dialog = WatchedFoldersDialog([comfy, usb], (usb,), paths)
    qtbot.addWidget(dialog)
    assert [dialog.list.item(row).text() for row in range(2)] == [str(comfy), f"{usb}  (not there now)"]
    assert not dialog.add_folder(paths.cache) and "the app's own cache folder" in dialog.problem.text()
    assert not dialog.add_folder(comfy / "none") and "is not a folder" in dialog.problem.text()
    assert dialog.add_folder(tmp_path / "ComfyUI") and dialog.problem.isHidden()
    assert dialog.folders() == [usb, (tmp_path / "ComfyUI").resolve()] and dialog.added == dialog.folders()[1:]
    dialog.list.setCurrentRow(1)
    dialog.remove_button.click()
    assert dialog.folders() == [usb] and dialog.added == []
