"""Helpers for the window tests: gallery images made in code, and answering modal dialogs."""

from __future__ import annotations

import os
import time
import zlib
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
