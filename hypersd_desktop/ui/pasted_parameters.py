"""Generation data pasted as text (A1111's text, Civitai's "Copy generation data", a ComfyUI workflow …): read
into the window's settings, as a dropped image's are, instead of becoming the prompt's words."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QPlainTextEdit

from hypersd_desktop.gallery.formats import ImageMetadata, parse_text

NOTHING_TO_PASTE = ("The clipboard holds no generation parameters. Copy them as text (A1111's or Forge's, Civitai's "
                    "“Copy generation data”, a ComfyUI workflow or API graph), or copy the image's file, and paste "
                    "again.")


def pasted_metadata(source: QMimeData | None) -> ImageMetadata | None:
    """The settings the text in `source` holds, or None for text that holds none (a prompt alone)."""
    return parse_text(source.text()) if source is not None and source.hasText() else None


def clipboard_metadata() -> ImageMetadata | None:
    return pasted_metadata(QGuiApplication.clipboard().mimeData())


def clipboard_files() -> list[Path]:
    """The files on the clipboard (copied in a file manager: an image, a workflow's .json)."""
    source = QGuiApplication.clipboard().mimeData()
    if source is None or not source.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in source.urls() if url.isLocalFile()]


class PromptBox(QPlainTextEdit):
    """The prompt box. Text pasted or dropped into it that holds generation settings is not inserted: it is
    announced by `parameters_pasted`, which fills the settings from it."""

    parameters_pasted = Signal(object)  # ImageMetadata

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802 - Qt API
        metadata = pasted_metadata(source)
        if metadata is None:
            super().insertFromMimeData(source)
        else:
            self.parameters_pasted.emit(metadata)
