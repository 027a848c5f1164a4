"""A drawing canvas: black strokes on white paper at the generation's size, shown scaled to fit.

The strokes are drawn into an image of exactly the size the generation asks for, so what is
drawn is what the ControlNet is given, pixel for pixel. A picture to trace can be shown faintly
under the strokes; it is never part of the drawing. Every stroke, clear or import can be undone.

As a mask (`mask=True`) the ink is white on black paper (white is repainted), and the picture under
it is shown as it is, with the painted part tinted red over it.

`changed(final)` is emitted when a stroke ends (final) and, at most every `live_interval_ms`,
while a long stroke goes on (not final), so a live image can follow the pen.

A pen on a drawing tablet draws thinner the lighter it presses, down to a fifth of the brush, and its
eraser end erases, as in painting programs; a mouse draws at the brush's size. A circle under the
pointer shows the brush's size on the paper.
"""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QPointF, QRectF, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPointingDevice
from PySide6.QtWidgets import QSizePolicy, QWidget

from hypersd_desktop.ui.pictures import png_bytes

UNDO_DEPTH = 50
LIVE_INTERVAL_MS = 150  # during a stroke, at most this often a new image is asked for
TRACE_OPACITY = 0.35
PRESSURE_FLOOR = 0.2  # the lightest touch of a tablet's pen draws this share of the brush's width


class SketchCanvas(QWidget):
    changed = Signal(bool)  # True when a stroke (or an undo, clear, import) is complete

    def __init__(self, width: int = 512, height: int = 512, parent: QWidget | None = None, mask: bool = False) -> None:
        super().__init__(parent)
        self.mask = mask
        self._ink, self._paper_colour = (QColor("white"), QColor("black")) if mask else (QColor("black"), QColor("white"))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(256, 256)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._brush_size = 8
        self.erasing = False
        self.live_interval_ms = LIVE_INTERVAL_MS
        self._paper = self._blank(QSize(width, height))
        self._trace: QImage | None = None
        self._undo: list[QImage] = []
        self._redo: list[QImage] = []
        self._last: QPointF | None = None  # where the stroke being drawn is, in the drawing's pixels
        self._stroke_erasing = False  # the stroke being drawn erases (the eraser button, or a pen's eraser end)
        self._hover: QPointF | None = None  # where the pointer is over the widget, for the brush's circle
        self._tinted: tuple[tuple[int, int], QImage] | None = None  # a mask's view, kept while nothing changes
        self.setMouseTracking(True)
        self._since_live = QElapsedTimer()
        self._digest: str | None = None  # the sha256 of the file this drawing was loaded from, until it changes

    @property
    def brush_size(self) -> int:
        """The brush's width in pixels of the drawing, whatever its zoom on screen."""
        return self._brush_size

    @brush_size.setter
    def brush_size(self, size: int) -> None:
        self._brush_size = size
        self.update()  # the circle under the pointer

    # -- the drawing ------------------------------------------------------------------------

    def image_size(self) -> tuple[int, int]:
        return self._paper.width(), self._paper.height()

    def resize_drawing(self, width: int, height: int) -> None:
        """Make the drawing `width` × `height`, scaling what is drawn (an undoable change)."""
        if (width, height) == self.image_size():
            return
        self._remember()
        self._paper = self._paper.scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio,
                                         Qt.TransformationMode.SmoothTransformation)
        self._finish()

    def is_blank(self) -> bool:
        return self._paper == self._blank(self._paper.size())

    def png(self) -> bytes:
        """The drawing as a grayscale PNG file (no traced picture)."""
        return drawing_png(self.snapshot())

    def snapshot(self) -> QImage:
        """The drawing as it is now, for `drawing_png` on another thread: a shallow copy (the canvas copies
        its pixels when it next paints)."""
        return QImage(self._paper)

    def painted_fraction(self) -> float:
        """How much of the drawing holds ink (a mask: the part repainted), 0 to 1."""
        import numpy as np

        gray = self._paper.convertToFormat(QImage.Format.Format_Grayscale8)
        rows = np.frombuffer(gray.constBits(), np.uint8).reshape(gray.height(), gray.bytesPerLine())[:, :gray.width()]
        return float((np.abs(rows.astype(np.int16) - self._paper_colour.lightness()) > 127).mean())

    @property
    def source_digest(self) -> str | None:
        """The sha256 of the file the drawing was loaded from, while nothing has been drawn since."""
        return self._digest

    def load(self, data: bytes, digest: str | None = None) -> bool:
        """Put a drawing file's picture on the canvas (its size becomes the drawing's); False if it is no image."""
        picture = QImage.fromData(data)
        if picture.isNull():
            return False
        self._remember()
        self._paper = picture.convertToFormat(QImage.Format.Format_RGB32)
        self._finish()
        self._digest = digest
        return True

    def set_trace(self, picture: QImage | None) -> None:
        """Show `picture` faintly under the strokes (None: no picture); it is never part of the drawing."""
        self._trace = None if picture is None or picture.isNull() else picture
        self.update()

    @property
    def tracing(self) -> bool:
        return self._trace is not None

    def clear(self) -> None:
        if self.is_blank():
            return
        self._remember()
        self._paper = self._blank(self._paper.size())
        self._finish()

    def undo(self) -> None:
        self._step(self._undo, self._redo)

    def redo(self) -> None:
        self._step(self._redo, self._undo)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def _step(self, source: list[QImage], target: list[QImage]) -> None:
        if source:
            target.append(self._paper.copy())
            self._paper = source.pop()
            self._digest = None
            self.update()
            self.changed.emit(True)

    def _remember(self) -> None:
        self._undo.append(self._paper.copy())
        del self._undo[:-UNDO_DEPTH]
        self._redo.clear()

    def _finish(self) -> None:
        self._digest = None
        self.update()
        self.changed.emit(True)

    def _blank(self, size: QSize) -> QImage:
        paper = QImage(size, QImage.Format.Format_RGB32)
        paper.fill(self._paper_colour)
        return paper

    # -- the pen ----------------------------------------------------------------------------

    def _target(self) -> QRectF:
        """Where the drawing is shown: scaled to fit the widget, centred."""
        width, height = self.image_size()
        scale = min(self.width() / width, self.height() / height)
        shown = QSize(round(width * scale), round(height * scale))
        return QRectF((self.width() - shown.width()) / 2, (self.height() - shown.height()) / 2,
                      shown.width(), shown.height())

    def _to_drawing(self, position: QPointF) -> QPointF:
        target = self._target()
        width, _ = self.image_size()
        scale = width / target.width()
        return QPointF((position.x() - target.x()) * scale, (position.y() - target.y()) * scale)

    def _draw(self, start: QPointF, end: QPointF, width: float) -> None:
        painter = QPainter(self._paper)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = self._paper_colour if self._stroke_erasing else self._ink
        painter.setPen(QPen(colour, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        if start == end:
            painter.drawPoint(start)
        else:
            painter.drawLine(start, end)
        painter.end()
        self._digest = None
        self.update()

    def _begin(self, position: QPointF, width: float, erasing: bool) -> None:
        self._remember()
        self._stroke_erasing = erasing
        self._last = self._to_drawing(position)
        self._draw(self._last, self._last, width)
        self._since_live.start()

    def _extend(self, position: QPointF, width: float) -> None:
        point = self._to_drawing(position)
        self._draw(self._last, point, width)
        self._last = point
        if self._since_live.elapsed() >= self.live_interval_ms:
            self._since_live.start()
            self.changed.emit(False)

    def _end(self, position: QPointF, width: float) -> None:
        self._draw(self._last, self._to_drawing(position), width)
        self._last = None
        self.changed.emit(True)

    def _pressed_width(self, pressure: float) -> float:
        return self.brush_size * (PRESSURE_FLOOR + (1 - PRESSURE_FLOOR) * min(max(pressure, 0.0), 1.0))

    def _hover_at(self, position: QPointF | None) -> None:
        """Move the brush's circle: only where it was and where it is are painted again."""
        if position == self._hover:
            return
        for point in (self._hover, position):
            if point is not None:
                reach = self._circle_radius(self._target()) + 3
                self.update(QRectF(point.x() - reach, point.y() - reach, 2 * reach, 2 * reach).toAlignedRect())
        self._hover = position

    def _circle_radius(self, target: QRectF) -> float:
        return self.brush_size * target.width() / self.image_size()[0] / 2

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton and self._last is None:
            self._begin(event.position(), self.brush_size, self.erasing)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._hover_at(event.position())
        if self._last is not None:
            self._extend(event.position(), self.brush_size)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._last is not None and event.button() == Qt.MouseButton.LeftButton:
            self._end(event.position(), self.brush_size)

    def tabletEvent(self, event) -> None:  # noqa: N802 - Qt API
        """A tablet's pen: its pressure sets the stroke's width, its eraser end erases. Accepted, so Qt does not
        make mouse events of it as well."""
        kind, width = event.type(), self._pressed_width(event.pressure())
        self._hover_at(event.position())
        if kind == QEvent.Type.TabletPress and event.button() == Qt.MouseButton.LeftButton and self._last is None:
            self._begin(event.position(), width,
                        self.erasing or event.pointerType() == QPointingDevice.PointerType.Eraser)
        elif kind == QEvent.Type.TabletMove and self._last is not None:
            self._extend(event.position(), width)
        elif kind == QEvent.Type.TabletRelease and self._last is not None:
            self._end(event.position(), width)
        event.accept()

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._hover_at(None)
        super().leaveEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(self.rect(), self.palette().dark())  # the paper stands out from what is around it
        target = self._target()
        if self.mask:
            painter.drawImage(target, self._mask_view())
        else:
            painter.drawImage(target, self._paper)
            if self._trace is not None:
                painter.setOpacity(TRACE_OPACITY)
                painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)
                painter.drawImage(target, self._trace)
                painter.setOpacity(1.0)
                painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
        if self._hover is not None and target.contains(self._hover):
            self._paint_brush_circle(painter, target)
        painter.end()

    def _mask_view(self) -> QImage:
        """The picture with the mask tinted over it, made again only when the mask or the picture changed (a
        phone photo's takes tens of milliseconds; the brush's circle moving over it changes neither)."""
        key = (self._paper.cacheKey(), self._trace.cacheKey() if self._trace is not None else 0)
        if self._tinted is None or self._tinted[0] != key:
            under = self._trace if self._trace is not None else self._blank(self._paper.size())
            self._tinted = (key, tinted(under, self._paper))
        return self._tinted[1]

    def _paint_brush_circle(self, painter: QPainter, target: QRectF) -> None:
        """The brush's size on the paper, where the pointer is: a dark and a light ring, seen on any paper."""
        radius = self._circle_radius(target)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for colour, grown in ((QColor("white"), 1.0), (QColor("black"), 0.0)):
            painter.setPen(QPen(colour, 1.0))
            painter.drawEllipse(self._hover, radius + grown, radius + grown)


def drawing_png(drawing: QImage) -> bytes:
    """A drawing as the grayscale PNG file a request names (grayscale encodes about three times faster than
    RGB: 1024², 17 ms against 53 ms)."""
    return png_bytes(drawing.convertToFormat(QImage.Format.Format_Grayscale8), quality=80)


class PngEncoder(QObject):
    """Encodes drawings off the GUI thread, one at a time in order; `done(serial, png)` comes on the GUI thread.
    At SDXL's 1024² an encode takes 15-30 ms, which a stroke on the GUI thread would stutter by."""

    done = Signal(int, bytes)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)

    def encode(self, serial: int, drawing: QImage) -> None:
        def run() -> None:
            data = drawing_png(drawing)
            try:
                self.done.emit(serial, data)
            except RuntimeError:  # the tab is gone (the window closed meanwhile)
                pass

        self.pool.start(run)


def tinted(picture: QImage, mask: QImage) -> QImage:
    """`picture` with the mask's white parts tinted red: how a mask is shown over its picture."""
    tint = QImage(picture.size(), QImage.Format.Format_ARGB32)
    tint.fill(QColor(230, 30, 30))
    tint.setAlphaChannel(mask.convertToFormat(QImage.Format.Format_Grayscale8).scaled(picture.size()))
    shown = picture.convertToFormat(QImage.Format.Format_ARGB32)
    painter = QPainter(shown)
    painter.setOpacity(0.55)
    painter.drawImage(0, 0, tint)
    painter.end()
    return shown
