"""The Generate tab's init image: start from a picture instead of noise (image-to-image).

A picture comes in by dropping a file on the box, Choose…, Paste (an image or an image file on the
clipboard), or a result's "Use as init image". It is kept in the input store by the sha256 of its
bytes, which is what the request names; Strength says how much of it is repainted. Clear goes back
to text-to-image.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import (
    QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget,
)

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif)"


class InitImageBox(QWidget):
    """A thumbnail that takes drops, with Choose…, Paste and Clear, and the strength."""

    changed = Signal()
    failed = Signal(str)  # a message for the error banner

    def __init__(self, inputs: InputImages, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.inputs = inputs
        self.digest: str | None = None
        self.image_size: tuple[int, int] | None = None
        self.setAcceptDrops(True)
        self.thumbnail = QLabel("Drop a picture here to start from it", alignment=Qt.AlignmentFlag.AlignCenter,
                                wordWrap=True)
        self.thumbnail.setMinimumHeight(64)
        self.thumbnail.setFrameShape(QLabel.Shape.StyledPanel)
        self.caption = QLabel("", wordWrap=True)
        self.choose_button = QToolButton(text="Choose…")
        self.paste_button = QToolButton(text="Paste")
        self.clear_button = QToolButton(text="Clear")
        self.strength = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, value=0.75, decimals=2)
        self.strength.setPrefix("Strength ")
        self.strength.setToolTip("How much of the picture is repainted: 1 repaints all of it. With few steps it "
                                 "moves in jumps: at 4 steps, 0.5 runs the last 2.")
        buttons = QHBoxLayout()
        for widget in (self.choose_button, self.paste_button, self.clear_button, self.strength):
            buttons.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.thumbnail)
        layout.addWidget(self.caption)
        layout.addLayout(buttons)
        self.choose_button.clicked.connect(self._choose)
        self.paste_button.clicked.connect(self.paste)
        self.clear_button.clicked.connect(self.clear)
        self.strength.valueChanged.connect(lambda _value: self.changed.emit())
        self._show()

    # -- ways in --------------------------------------------------------------------------

    def load_file(self, path: Path) -> bool:
        return self._load(lambda: self.inputs.add_file(Path(path), Path(path).name))

    def load_bytes(self, data: bytes, name: str = "The pasted picture") -> bool:
        return self._load(lambda: self.inputs.add(data, name))

    def _load(self, add) -> bool:
        try:
            digest = add()
        except InputError as error:
            self.failed.emit(str(error))
            return False
        self.set_digest(digest)
        return True

    def set_digest(self, digest: str | None) -> None:
        """Show the stored picture `digest` (a request's init image), or nothing."""
        self.digest = digest if digest is not None and self.inputs.find(digest) is not None else None
        self._show()
        self.changed.emit()

    def paste(self) -> None:
        clipboard = QGuiApplication.clipboard().mimeData()
        files = [Path(url.toLocalFile()) for url in clipboard.urls() if url.isLocalFile()] if clipboard else []
        if files:
            self.load_file(files[0])
        elif clipboard is not None and clipboard.hasImage():
            self.load_bytes(png_bytes(QImage(clipboard.imageData())))
        else:
            self.failed.emit("The clipboard holds no picture; copy an image or an image file first.")

    def clear(self) -> None:
        self.set_digest(None)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Start from a picture", "", IMAGE_FILTER)
        if path:
            self.load_file(Path(path))

    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()) or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            self.load_file(files[0])
        elif event.mimeData().hasImage():
            self.load_bytes(png_bytes(QImage(event.mimeData().imageData())))
        event.acceptProposedAction()

    # -- showing --------------------------------------------------------------------------

    def _show(self) -> None:
        self.clear_button.setEnabled(self.digest is not None)
        self.strength.setEnabled(self.digest is not None)
        if self.digest is None:
            self.image_size = None
            self.thumbnail.setPixmap(QPixmap())
            self.thumbnail.setText("Drop a picture here to start from it")
            self.caption.hide()
            return
        pixmap = QPixmap(str(self.inputs.find(self.digest)))
        self.image_size = (pixmap.width(), pixmap.height())
        self.thumbnail.setPixmap(pixmap.scaled(160, 96, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))
        self.caption.setText(f"{pixmap.width()} × {pixmap.height()}: the result takes this size")
        self.caption.show()


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())
