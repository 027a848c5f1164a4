"""The Generate tab's init image: start from a picture instead of noise (image-to-image), and
optionally repaint only a part of it (inpainting).

A picture comes in by dropping a file on the box, Choose…, Paste (an image or an image file on the
clipboard), or a result's "Use as init image". It is kept in the input store by the sha256 of its
bytes, which is what the request names; a phone's HEIC photo or an AVIF picture is made PNG off the
GUI thread first (a second or more), the box saying so meanwhile. Strength says how much of it is
repainted. Enlarge makes the result larger than the picture, which is enlarged (Lanczos) and
repainted at that size: an upscale, as a result's or a gallery image's "Upscale" sets up. Paint
mask… opens the picture to paint the part to repaint with a brush (white in the mask); Mask blur
softens its edge. Outpaint's arrows extend the picture on that side (by a share of its size) and mask the new
part, which the run paints at strength 1 (`preprocess.outpainted`; the request names the extended picture and
its mask, so reuse makes it again). Clear goes back to text-to-image.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QSpinBox, QToolButton,
    QVBoxLayout, QWidget,
)

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import PICTURE_SUFFIXES, InputImages, is_converted, png_data
from hypersd_desktop.engine.inputs import mask_of
from hypersd_desktop.engine.preprocess import MAX_OUTPAINTED_SIDE, outpainted
from hypersd_desktop.engine.types import MAX_HIRES_SCALE, MAX_MASKED_PADDING, MAX_SIDE, enlarged_size, init_size
from hypersd_desktop.gallery.gallery import IMAGE_SUFFIXES
from hypersd_desktop.ui.pictures import png_bytes, read_picture
from hypersd_desktop.ui.shortcuts import MASK, described
from hypersd_desktop.ui.sketch_canvas import SketchCanvas, tinted

IMAGE_FILTER = f"Images ({' '.join(f'*{suffix}' for suffix in (*IMAGE_SUFFIXES, *PICTURE_SUFFIXES))})"
THUMBNAIL = (160, 96)  # the largest a picture is shown in its box
# A file larger than this is read off the GUI thread too (a large Photoshop document, a 16-bit TIFF scan): from a
# slow or network drive, reading is seconds
READ_OFF_THREAD_BYTES = 32 * 2**20
OUTPAINT_SIDES = (("←", "left", (1, 0, 0, 0)), ("↑", "top", (0, 1, 0, 0)), ("→", "right", (0, 0, 1, 0)),
                  ("↓", "bottom", (0, 0, 0, 1)))
UPSCALE_SCALES = (1.5, 2.0)  # the enlargements "Upscale" offers on a result or a gallery image
ENLARGE_SCALES = (2.0, 4.0)  # the enlargements of an image alone, not repainted (A1111's Extras), offered beside them


class PictureInput(QWidget):
    """A thumbnail that takes dropped pictures, with Choose…, Paste and Clear; `digest` names the picture in
    the input store. `rows` are added under the buttons; `extra` widgets join the buttons' row."""

    changed = Signal()
    failed = Signal(str)  # a message for the error banner
    _read = Signal(int, object, object)  # serial, digest or None, error message or None: from the reading thread

    EMPTY_TEXT = "Drop a picture here"
    CHOOSE_TITLE = "Choose a picture"

    def __init__(self, inputs: InputImages, extra: tuple[QWidget, ...] = (), rows: tuple = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.inputs = inputs
        self.digest: str | None = None
        self.image_size: tuple[int, int] | None = None
        self._reading = 0  # the serial of the newest picture asked for; one read off the GUI thread ends with it
        self._read_serial = 0  # the serial of the last picture read
        self._reader = QThreadPool(self)
        self._reader.setMaxThreadCount(1)
        self.setAcceptDrops(True)
        self.thumbnail = QLabel(self.EMPTY_TEXT, alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.thumbnail.setMinimumHeight(THUMBNAIL[1] + 6)  # the whole thumbnail and the frame, never clipped
        self.thumbnail.setFrameShape(QLabel.Shape.StyledPanel)
        self.caption = QLabel("", wordWrap=True)
        self.choose_button = QToolButton(text="Choose…")
        self.paste_button = QToolButton(text="Paste")
        self.clear_button = QToolButton(text="Clear")
        buttons = QHBoxLayout()
        for widget in (self.choose_button, self.paste_button, self.clear_button, *extra):
            buttons.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.thumbnail)
        layout.addWidget(self.caption)
        layout.addLayout(buttons)
        for row in rows:
            layout.addLayout(row)
        self._read.connect(self._picture_read)
        self.choose_button.clicked.connect(self._choose)
        self.paste_button.clicked.connect(self.paste)
        self.clear_button.clicked.connect(self.clear)

    # -- ways in --------------------------------------------------------------------------

    def load_file(self, path: Path) -> bool:
        """Take a picture file; False (and `failed`) when it is none. A HEIC, AVIF or painting program's one, or a
        large one, is read off the GUI thread: True then says it is being read, and `reading` is True until it is
        shown."""
        path = Path(path)
        try:
            large = path.stat().st_size > READ_OFF_THREAD_BYTES
            data = b"" if large else path.read_bytes()
        except OSError as error:
            self.failed.emit(f"{path} cannot be read: {error.strerror or error}.")
            return False
        if large:
            self._reading += 1
            self._read_off_thread(path, path.name, self._reading)
            return True
        return self.load_bytes(data, path.name)

    def load_bytes(self, data: bytes, name: str = "The pasted picture") -> bool:
        self._reading += 1
        if is_converted(data):
            self._read_off_thread(data, name, self._reading)
            return True
        try:
            digest = self.inputs.add(data, name)
        except InputError as error:
            self._read_serial = self._reading
            self.failed.emit(str(error))
            return False
        self.set_digest(digest)
        return True

    @property
    def reading(self) -> bool:
        """Whether a picture is being read (a HEIC photo made PNG): the request does not have it yet."""
        return self._read_serial != self._reading

    def waiting_text(self) -> str:
        """While `reading`: what the picture waits for ("Reading photo.heic…")."""
        return self.thumbnail.text()

    def _read_off_thread(self, source: bytes | Path, name: str, serial: int) -> None:
        """Keep `source` (a file's bytes, or the file) on the reader's thread; `_picture_read` takes it back."""
        def run() -> None:
            try:
                data = source.read_bytes() if isinstance(source, Path) else source
                digest, error = self.inputs.add(data, name), None
            except InputError as failure:
                digest, error = None, str(failure)
            except OSError as failure:
                digest, error = None, f"{source} cannot be read: {failure.strerror or failure}."
            try:
                self._read.emit(serial, digest, error)
            except RuntimeError:  # the window closed meanwhile
                pass

        self.thumbnail.setPixmap(QPixmap())
        self.thumbnail.setText(f"Reading {name}…")
        self._reader.start(run)

    def _picture_read(self, serial: int, digest: str | None, error: str | None) -> None:
        if serial != self._reading:
            return  # a newer picture, or Clear, came since
        self._read_serial = serial
        if error is not None:
            self.failed.emit(error)
            self._show()  # the picture before stays
        else:
            self.set_digest(digest)

    def set_digest(self, digest: str | None) -> None:
        """Show the stored picture `digest`, or nothing."""
        self._reading += 1  # a picture still being read is not wanted any more
        self._read_serial = self._reading
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
        path, _ = QFileDialog.getOpenFileName(self, self.CHOOSE_TITLE, "", IMAGE_FILTER)
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
        if self.digest is None:
            self.image_size = None
            self.thumbnail.setPixmap(QPixmap())
            self.thumbnail.setText(self.EMPTY_TEXT)
            self.caption.hide()
            return
        picture = read_picture(self.inputs.find(self.digest))
        self.image_size = (picture.width(), picture.height())
        shown, caption = self.shown(picture)
        self.thumbnail.setPixmap(QPixmap.fromImage(shown).scaled(
            *THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        self.caption.setText(caption)
        self.caption.setVisible(bool(caption))

    def shown(self, picture: QImage) -> tuple[QImage, str]:
        """What the thumbnail shows of the picture, and the caption under it."""
        return picture, ""


class InitImageBox(PictureInput):
    """The init image with its strength, and the inpainting mask painted over it."""

    EMPTY_TEXT = "Drop a picture here to start from it"
    CHOOSE_TITLE = "Start from a picture"

    def __init__(self, inputs: InputImages, parent: QWidget | None = None) -> None:
        self.mask: str | None = None  # the painted mask's sha256 (white: repainted)
        self.model_side = 512  # the model's own size (its default side), which a large picture is scaled to
        self.strength = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, value=0.75, decimals=2)
        self.strength.setPrefix("Strength ")
        self.strength.setToolTip("How much of the picture is repainted: 1 repaints all of it. With few steps it "
                                 "moves in jumps: at 4 steps, 0.5 runs the last 2.")
        self.enlarge = QDoubleSpinBox(minimum=1.0, maximum=MAX_HIRES_SCALE, singleStep=0.25, value=1.0, decimals=2)
        self.enlarge.setPrefix("Enlarge × ")
        self.enlarge.setSpecialValueText("Enlarge: no")
        self.enlarge.setToolTip("Make the result this many times larger than the picture: it is enlarged and "
                                "repainted at that size, Strength of it (an upscale: about 0.5 adds detail and "
                                "keeps the picture)")
        self._size_override: tuple[int, int] | None = None  # a request's own size, kept exactly on reuse
        self.describe_button = QToolButton(text="Describe")
        self.describe_button.setToolTip("Write the picture's booru tags into the prompt, as a tagger reads them "
                                        "(characters, then what it shows); Ctrl+Z takes them back")
        self.mask_button = QToolButton(text="Paint mask…")
        self.mask_button.setToolTip("Paint the part of the picture to repaint (inpainting); the rest is kept")
        self.mask_blur = QSpinBox(minimum=0, maximum=64, value=4, suffix=" px")
        self.mask_blur.setPrefix("Mask blur ")
        self.mask_blur.setToolTip("Softens the mask's edge so the repainted part blends in")
        self.details_only = QCheckBox("Faces and hands only")
        self.details_only.setToolTip("Make only the picture's faces and hands again, as Detail faces and Detail hands "
                                     "are set, and nothing else of it (ADetailer's \"skip img2img\"): a picture you "
                                     "like, its hands redone")
        self.details_only.toggled.connect(lambda _on: (self._show(), self.changed.emit()))
        self.only_masked = QCheckBox("Only masked")
        self.only_masked.setToolTip("Repaint only the masked area and the padding around it, made at about the "
                                    "model's size, then laid back into the whole picture, which keeps its size: for "
                                    "a face or a hand in a large photo")
        self.masked_padding = QSpinBox(minimum=0, maximum=MAX_MASKED_PADDING, value=32, suffix=" px")
        self.masked_padding.setPrefix("Padding ")
        self.masked_padding.setToolTip("How much of the picture around the mask the model sees, to match it")
        self.outpaint_share = QSpinBox(minimum=5, maximum=100, value=25, singleStep=5, suffix=" %")
        self.outpaint_share.setPrefix("by ")
        self.outpaint_share.setToolTip("How far an outpaint arrow extends the picture: this share of its width (left, "
                                       "right) or height (up, down)")
        self.outpaint_buttons = []
        outpaint_row = QHBoxLayout()
        outpaint_row.addWidget(QLabel("Outpaint"))
        for arrow, side, unit in OUTPAINT_SIDES:
            button = QToolButton(text=arrow)
            button.setToolTip(f"Extend the picture on the {side} and paint the new part (outpainting)")
            button.setAccessibleName(f"Outpaint {side}")
            button.clicked.connect(lambda _checked=False, unit=unit: self.outpaint(unit))
            outpaint_row.addWidget(button)
            self.outpaint_buttons.append(button)
        outpaint_row.addWidget(self.outpaint_share)
        outpaint_row.addStretch(1)
        enlarge_row = QHBoxLayout()
        enlarge_row.addWidget(self.enlarge)
        enlarge_row.addWidget(self.describe_button)
        enlarge_row.addWidget(self.details_only)
        enlarge_row.addStretch(1)
        mask_row = QHBoxLayout()
        mask_row.addWidget(self.mask_button)
        mask_row.addWidget(self.mask_blur)
        mask_row.addStretch(1)
        masked_row = QHBoxLayout()
        masked_row.addWidget(self.only_masked)
        masked_row.addWidget(self.masked_padding)
        masked_row.addStretch(1)
        super().__init__(inputs, extra=(self.strength,), rows=(enlarge_row, mask_row, masked_row, outpaint_row),
                         parent=parent)
        self.strength.valueChanged.connect(lambda _value: self.changed.emit())
        self.enlarge.valueChanged.connect(self._enlarge_changed)
        self.mask_button.clicked.connect(self.paint_mask)
        self.mask_blur.valueChanged.connect(lambda _value: self.changed.emit())
        self.only_masked.toggled.connect(lambda _on: (self._show(), self.changed.emit()))
        self.masked_padding.valueChanged.connect(lambda _value: self.changed.emit())
        self._show()

    def padding(self) -> int | None:
        """The padding around the masked area when only it is repainted; None to repaint the whole picture."""
        return self.masked_padding.value() if self.mask is not None and self.only_masked.isChecked() else None

    def set_padding(self, padding: int | None) -> None:
        """Show a request's choice: only the masked area with `padding`, or the whole picture (None)."""
        self.only_masked.setChecked(padding is not None)
        if padding is not None:
            self.masked_padding.setValue(padding)

    def set_digest(self, digest: str | None, mask: str | None = None) -> None:
        """Show the stored picture `digest` (a request's init image) with `mask` (its inpainting mask), or nothing."""
        found = digest is not None and self.inputs.find(digest) is not None
        self.mask = mask if found and mask is not None and self.inputs.find(mask) is not None else None
        self._size_override = None  # a size set for another picture
        super().set_digest(digest)

    def clear(self) -> None:
        self.enlarge.setValue(1.0)  # the next picture is made at its own size until asked otherwise
        super().clear()

    def _enlarge_changed(self) -> None:
        self._size_override = None  # the size asked for now is the enlarged picture's
        self._show()
        self.changed.emit()

    def set_size(self, size: tuple[int, int] | None) -> None:
        """Show a request's size for the picture shown: None for the picture's own size (`run_size`), else the
        enlargement that makes it, the size itself kept exactly where no enlargement makes it to the pixel."""
        self.enlarge.blockSignals(True)
        self.enlarge.setValue(1.0)
        if size is not None and self.image_size is not None:
            self.enlarge.setValue(size[0] / self.image_size[0])  # rounded to the box's two decimals, within its range
        self.enlarge.blockSignals(False)
        made = self._enlarged()
        self._size_override = size if size is not None and size != made else None
        self._show()
        self.changed.emit()

    def request_size(self) -> tuple[int, int] | None:
        """The size the request names: None while the result takes the picture's size (`run_size`)."""
        if self._size_override is not None:
            return self._size_override
        return self._enlarged() if self.enlarge.value() > 1 and self.padding() is None else None

    def _enlarged(self) -> tuple[int, int] | None:
        """The size Enlarge asks for (the engine's `init_size` of the picture where it is off)."""
        if not self.image_size:
            return None
        if self.enlarge.value() > 1:
            return enlarged_size(self.image_size, self.enlarge.value())
        return init_size(self.image_size, self.model_side)

    def state(self) -> dict:
        """What `restore` brings back after a restart: the picture, its mask and their settings."""
        return {"image": self.digest, "mask": self.mask, "strength": self.strength.value(),
                "mask_blur": self.mask_blur.value(), "masked_padding": self.padding(), "size": self.request_size(),
                "details_only": self.details_only.isChecked()}

    def restore(self, state: dict) -> None:
        """Show a `state()` again; a picture no longer in the input store is left out."""
        self.strength.setValue(float(state.get("strength") or self.strength.value()))
        self.mask_blur.setValue(int(state.get("mask_blur") or 0))
        padding = state.get("masked_padding")
        self.set_padding(padding if isinstance(padding, int) else None)
        image, mask = state.get("image"), state.get("mask")
        self.set_digest(image if isinstance(image, str) else None, mask if isinstance(mask, str) else None)
        size = state.get("size")
        if self.digest is not None and isinstance(size, list) and len(size) == 2 and all(
                isinstance(side, int) and 64 <= side <= MAX_SIDE for side in size):
            self.set_size((size[0], size[1]))
        self.details_only.setChecked(state.get("details_only") is True)

    def set_mask(self, mask_png: bytes | None) -> None:
        """Use `mask_png` (white: repainted) as the mask; None: no mask."""
        self.mask = self.inputs.add(mask_png, "The mask") if mask_png is not None else None
        self._show()
        self.changed.emit()

    def outpaint(self, sides: tuple[int, int, int, int]) -> None:
        """Extend the picture on the `sides` marked 1 (left, top, right, bottom) by the Outpaint share of its size,
        masking the new part (and keeping the mask it had); the run repaints it at strength 1. The extended picture
        and its mask are new input images, made off the GUI thread (a phone photo's take a second or two), so Clear
        and a new picture go back as ever and Generate meanwhile waits for them."""
        if self.digest is None or self.reading:
            return
        picture, mask = self.digest, self.mask
        share = self.outpaint_share.value() / 100
        width, height = self.image_size
        pads = tuple(round(on * share * (width if index % 2 == 0 else height)) for index, on in enumerate(sides))
        if max(width + pads[0] + pads[2], height + pads[1] + pads[3]) > MAX_OUTPAINTED_SIDE:
            self.failed.emit(f"The picture would be over {MAX_OUTPAINTED_SIDE} pixels on a side; outpaint a smaller "
                             "share, or start from a smaller picture.")
            return
        self._reading += 1
        serial = self._reading

        def run() -> None:
            try:
                opened = self.inputs.open(picture, mode="RGB")
                earlier = mask_of(self.inputs.open(mask, mode="RGBA")) if mask else None
                if earlier is not None and earlier.size != opened.size:  # a reused request's mask of another size,
                    earlier = None  # which the run would refuse: the new parts alone are masked
                extended, painted = outpainted(opened, earlier, pads)
                made = (self.inputs.add(png_data(extended, quick=True), "The outpainted picture"),
                        self.inputs.add(png_data(painted), "The outpainting mask"))
                error = None
            except (InputError, OSError) as failure:
                made, error = None, f"The picture could not be outpainted: {failure}"
            try:
                self._read.emit(serial, made, error)
            except RuntimeError:  # the window closed meanwhile
                pass

        self.thumbnail.setText("Outpainting…")
        self._reader.start(run)

    def _picture_read(self, serial: int, digest, error: str | None) -> None:
        if not isinstance(digest, tuple):  # a picture read
            super()._picture_read(serial, digest, error)
        elif serial == self._reading:  # an outpainted picture and its mask, unless a newer picture came since
            self._read_serial = serial
            self.strength.setValue(1.0)  # the new part is only the edge's colours drawn out: painted from noise
            self.set_digest(*digest)

    def detailing(self) -> bool:
        """Whether the picture's faces and hands alone are made again (the request's `detail_only`)."""
        return self.details_only.isChecked() and self.details_only.isEnabled()

    def paint_mask(self) -> None:
        if self.digest is None:
            return
        dialog = MaskDialog(read_picture(self.inputs.find(self.digest)), self)
        if self.mask is not None:
            dialog.canvas.load(self._mask_png())
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.set_mask(None if dialog.canvas.is_blank() else dialog.canvas.png())

    def _show(self) -> None:
        super()._show()
        self.details_only.setEnabled(self.digest is not None and self.mask is None)
        whole = not self.detailing()  # the picture repainted, not only its faces and hands
        self.strength.setEnabled(self.digest is not None and whole)
        self.describe_button.setEnabled(self.digest is not None)
        self.mask_button.setEnabled(self.digest is not None)
        for button in self.outpaint_buttons:
            button.setEnabled(self.digest is not None)
        self.outpaint_share.setEnabled(self.digest is not None)
        self.enlarge.setEnabled(self.digest is not None and self.padding() is None and whole)
        self.mask_blur.setEnabled(self.mask is not None)
        self.only_masked.setEnabled(self.mask is not None)
        self.masked_padding.setEnabled(self.padding() is not None)
        self.mask_button.setText("Edit mask…" if self.mask is not None else "Paint mask…")

    def set_model_side(self, side: int) -> None:
        """The chosen model's own size: the caption says the size a picture is made at with it."""
        self.model_side = side
        self._show()
        self.changed.emit()  # the size the result takes may be another now

    def run_size(self) -> tuple[int, int] | None:
        """The size the result will have, or None without a picture: the request's (`request_size`), else the
        engine's `init_size` of the picture."""
        if not self.image_size:
            return None
        return self.request_size() or init_size(self.image_size, self.model_side)

    def shown(self, picture: QImage) -> tuple[QImage, str]:
        size = self.run_size()
        if self.request_size() is not None and self.padding() is None:
            how = "the size asked for"
            if self._size_override is None:
                how = f"enlarged × {self.enlarge.value():g}"
                if self.enlarge.value() * max(picture.width(), picture.height()) > MAX_SIDE:
                    how += f", as far as {MAX_SIDE} pixels a side allow"
            caption = f"{picture.width()} × {picture.height()}, made at {size[0]} × {size[1]} ({how})"
        elif size == self.image_size:
            caption = f"{size[0]} × {size[1]}: the result takes this size"
        elif size[0] * size[1] < picture.width() * picture.height() * 0.9:
            caption = f"{picture.width()} × {picture.height()}, made at {size[0]} × {size[1]} (the model's size)"
        else:
            caption = (f"{picture.width()} × {picture.height()}, made at {size[0]} × {size[1]} (sides cut to "
                       "multiples of 8)")
        if self.mask is None:
            return picture, caption
        if self.padding() is not None:
            area = "{} × {}".format(*self._size_override) if self._size_override else "about the model's size"
            caption = (f"{picture.width()} × {picture.height()}: the result keeps this size; the masked area is made "
                       f"at {area}")
        mask = QImage.fromData(self._mask_png())
        return tinted(picture, mask), caption + "; only the part painted red is repainted"

    def _mask_png(self) -> bytes:
        """The mask as the engine reads it (`mask_of`: a mask file with transparency is its alpha channel), as a
        grayscale PNG."""
        return png_data(mask_of(self.inputs.open(self.mask, mode="RGBA")))


class MaskDialog(QDialog):
    """Paint over the picture the part to repaint: brush, eraser, size, undo, redo, clear."""

    def __init__(self, picture: QImage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Paint the part to repaint")
        self.resize(720, 640)
        self.canvas = SketchCanvas(picture.width(), picture.height(), mask=True)
        self.canvas.brush_size = max(8, min(picture.width(), picture.height()) // 16)
        self.canvas.set_trace(picture)
        self.brush = QSpinBox(minimum=1, maximum=512, value=self.canvas.brush_size, suffix=" px")
        self.brush.setPrefix("Brush ")
        self.brush.valueChanged.connect(lambda value: setattr(self.canvas, "brush_size", value))
        eraser = QToolButton(text="Eraser", checkable=True)
        eraser.toggled.connect(lambda on: setattr(self.canvas, "erasing", on))
        tools = QHBoxLayout()
        for text, action in (("Undo", self.canvas.undo), ("Redo", self.canvas.redo), ("Clear", self.canvas.clear)):
            button = QToolButton(text=text)
            button.clicked.connect(action)
            tools.addWidget(button)
        tools.addWidget(eraser)
        tools.addWidget(self.brush)
        tools.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Paint the part of the picture to repaint; the rest is kept."))
        layout.addLayout(tools)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(buttons)
        described(QShortcut(QKeySequence.StandardKey.Undo, self, activated=self.canvas.undo), MASK, "Undo a stroke")
        described(QShortcut(QKeySequence.StandardKey.Redo, self, activated=self.canvas.redo), MASK, "Redo")

