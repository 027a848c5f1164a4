"""Helpers for the window tests: gallery images made in code, and answering modal dialogs."""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.metadata import ImageParameters, write_png

WAIT = 180_000  # ms; the first job spawns the worker and imports the inference stack


def add_images(gallery: Gallery, prompts: list[str], model: str = "tiny-v15", steps: int = 2,
               start_seed: int = 100, size: int = 64, days_ago: float = 0.0) -> list[int]:
    """Write PNGs with A1111 parameters into the images folder and index them; returns their ids."""
    ids = []
    folder = gallery.paths.images
    for k, prompt in enumerate(prompts):
        seed = start_seed + k
        path = folder / f"{model}-{seed}-{zlib.crc32(prompt.encode()):08x}.png"
        colour = ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256)
        write_png(Image.new("RGB", (size, size), colour), path, ImageParameters(
            prompt=prompt, negative_prompt="", steps=steps, sampler="tcd", guidance=0.0, seed=seed, width=size,
            height=size, model_name=model, model_hash="0123456789", loras=(("Hyper-SD15-1step-lora", 1.0, None),)))
        stamp = time.time() - days_ago * 86400 - (len(prompts) - k)
        os.utime(path, (stamp, stamp))
        ids.append(gallery.add_file(path, source="imported"))
    return ids


def answer_next_dialog(qtbot, button_text: str) -> None:
    """Click the button whose text starts with `button_text` in the next modal dialog."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QAbstractButton, QApplication

    def click() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, click)
            return
        for button in dialog.findChildren(QAbstractButton):
            if button.text().replace("&", "").startswith(button_text):
                button.click()
                return
        raise AssertionError(f"no button {button_text!r} in {dialog.windowTitle()!r}")

    QTimer.singleShot(20, click)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".png", ".jpg", ".webp"))


def drop(widget, paths: list[Path]) -> None:
    """Drop files on a widget as a file manager would."""
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def blocking_file(path: Path) -> Callable[[], None]:
    """Make `path` a named pipe: whoever opens it to read waits (a very slow drive) until the
    returned `release()` is called; from then on it is an empty file. POSIX only."""
    path.unlink(missing_ok=True)
    os.mkfifo(path)

    def unblock() -> None:
        pipe = os.open(path, os.O_WRONLY)  # waits for the reader
        empty = path.with_name(path.name + ".empty")
        empty.touch()
        os.replace(empty, path)  # later opens find an empty file
        os.close(pipe)  # the waiting reader reads nothing

    def release() -> None:  # not on the GUI thread: opening the pipe waits for its reader
        if path.is_fifo():
            threading.Thread(target=unblock, daemon=True).start()

    return release


@contextmanager
def opened_urls() -> Iterator[list[str]]:
    """Collect the file URLs the app asks the desktop to open (QDesktopServices.openUrl), instead
    of starting the file manager."""
    from PySide6.QtCore import QObject, QUrl, Slot
    from PySide6.QtGui import QDesktopServices

    class Catcher(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.urls: list[str] = []

        @Slot(QUrl)
        def open(self, url: QUrl) -> None:
            self.urls.append(url.toLocalFile())

    catcher = Catcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        yield catcher.urls
    finally:
        QDesktopServices.unsetUrlHandler("file")


def hovered(table, row: int) -> str:
    """A cell's tooltip once the pointer rests on it (made then, not when the table is filled)."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication

    spot = table.visualItemRect(table.item(row, 0)).center()
    QApplication.sendEvent(table.viewport(), QHelpEvent(QEvent.Type.ToolTip, spot, table.viewport().mapToGlobal(spot)))
    return table.item(row, 0).toolTip()
