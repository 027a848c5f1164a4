"""Picture files in the window: read upright whatever their format, and written as PNG."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QImage, QImageReader

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import kept_bytes


def read_picture(path: Path | str) -> QImage:
    """A picture file upright, as viewers show it: a phone photo turned by its EXIF orientation, as the engine
    turns it (a plain `QImage(path)` is not), so its size and a mask painted over it match the run's. A format Qt
    does not read (a HEIC photo, AVIF) is read as the input images read it; a null image if it is no picture."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    picture = reader.read()
    if picture.isNull():
        try:
            picture = QImage.fromData(kept_bytes(Path(path).read_bytes())[0])
        except (InputError, OSError):
            pass
    return picture


def png_bytes(image: QImage, quality: int = -1) -> bytes:
    """`image` as a PNG file's bytes (`quality` 0–100: smaller to faster; -1: Qt's default)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG", quality)
    return bytes(data.data())
