"""Two gallery images compared: over one another with a divider to drag (the left part one, the right part the other),
or side by side, and the settings in which they differ (steps, seed, LoRA weight …), read as the large view reads
them (`gallery_browser.record_rows`).

Keys: Left and Right move the divider (Shift: in larger steps), S shows them side by side or over one another, X swaps
them, Esc closes. The wheel zooms both alike (up to 8×) about the pointer, a right-button drag moves them, and a
double-click fits them again, so detail can be compared at full size.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSplitter, QTextBrowser, QVBoxLayout, QWidget,
)

from hypersd_desktop.gallery.store import ImageRecord
from hypersd_desktop.ui.pictures import read_picture

STEP, LARGE_STEP = 0.02, 0.1  # how far the arrow keys move the divider (Shift: the larger)
MOST_ZOOM, ZOOM_STEP = 8.0, 1.25  # the largest zoom over the fitted size, and each wheel step's
SAME_ROWS = ("Created", "File", "Folder", "Time", "Source")  # rows that tell the files apart, not how they were made


class SplitView(QWidget):
    """`first` left of the divider, `second` right of it, both fitted to the same place (the second scaled to the
    first's place where their sizes differ); `side_by_side` shows them next to one another instead. `zoom` enlarges
    both about their fitted places' centres, moved by `offset` (pixels of the view)."""

    def __init__(self, first: QPixmap, second: QPixmap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.first, self.second = first, second
        self.divider = 0.5  # the divider's place across the part of the picture in view, 0 to 1
        self.side_by_side = False
        self.zoom, self.offset = 1.0, QPointF(0, 0)
        self._grabbed: QPointF | None = None  # where a right-button drag was, while one moves the pictures
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the arrow keys move the divider while it has the focus
        self.setCursor(Qt.CursorShape.SplitHCursor)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(720, 540)

    def places(self) -> tuple[QRectF, QRectF]:
        """Where each picture is drawn: the same place over one another, or two halves side by side, as zoomed."""
        area = QRectF(self.rect())
        if self.side_by_side:
            half = QRectF(area.x(), area.y(), area.width() / 2 - 2, area.height())
            fitted = _fitted(self.first, half), _fitted(self.second, half.translated(area.width() / 2 + 2, 0))
        else:
            fitted = (_fitted(self.first, area),) * 2
        return tuple(self._zoomed(place) for place in fitted)

    def _zoomed(self, place: QRectF) -> QRectF:
        width, height = place.width() * self.zoom, place.height() * self.zoom
        centre = place.center() + self.offset
        return QRectF(centre.x() - width / 2, centre.y() - height / 2, width, height)

    def zoom_at(self, point: QPointF, factor: float) -> None:
        """Zoom by `factor` (within 1× to `MOST_ZOOM`) keeping the picture's point under `point` where it is."""
        place = self.places()[0 if not self.side_by_side or point.x() < self.width() / 2 else 1]
        zoom = min(max(self.zoom * factor, 1.0), MOST_ZOOM)
        if place.width() <= 0 or zoom == 1.0:
            self.fit()
            return
        across, down = (point.x() - place.x()) / place.width(), (point.y() - place.y()) / place.height()
        width, height = place.width() / self.zoom * zoom, place.height() / self.zoom * zoom
        centre = QPointF(point.x() + (0.5 - across) * width, point.y() + (0.5 - down) * height)
        self.offset = centre - (place.center() - self.offset)  # the fitted place's centre stays; the offset moves
        self.zoom = zoom
        self.update()

    def fit(self) -> None:
        self.zoom, self.offset = 1.0, QPointF(0, 0)
        self.update()

    def set_divider(self, fraction: float) -> None:
        self.divider = min(max(fraction, 0.0), 1.0)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        first, second = self.places()
        if self.side_by_side:
            painter.drawPixmap(first, self.first, QRectF(self.first.rect()))
            painter.drawPixmap(second, self.second, QRectF(self.second.rect()))
            return
        seen = first.intersected(QRectF(self.rect()))
        cut = self.cut()
        painter.save()
        painter.setClipRect(QRectF(seen.x(), seen.y(), cut - seen.x(), seen.height()))
        painter.drawPixmap(first, self.first, QRectF(self.first.rect()))
        painter.setClipRect(QRectF(cut, seen.y(), seen.right() - cut, seen.height()))
        painter.drawPixmap(first, self.second, QRectF(self.second.rect()))
        painter.restore()
        painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
        painter.drawLine(QPointF(cut, seen.top()), QPointF(cut, seen.bottom()))

    def cut(self) -> float:
        """Where the divider is, across the part of the picture in view."""
        seen = self.places()[0].intersected(QRectF(self.rect()))
        return seen.x() + seen.width() * self.divider

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.RightButton:
            self._grabbed = event.position()
        else:
            self._follow(event.position().x())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._grabbed is not None and event.buttons() & Qt.MouseButton.RightButton:
            self.offset += event.position() - self._grabbed
            self._grabbed = event.position()
            self.update()
        elif event.buttons() & Qt.MouseButton.LeftButton:
            self._follow(event.position().x())

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._grabbed = None

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.fit()

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt API
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_at(event.position(), ZOOM_STEP ** steps)

    def _follow(self, x: float) -> None:
        if self.side_by_side:
            return
        seen = self.places()[0].intersected(QRectF(self.rect()))
        if seen.width() > 0:
            self.set_divider((x - seen.x()) / seen.width())


def _fitted(pixmap: QPixmap, area: QRectF) -> QRectF:
    """The largest rectangle of `pixmap`'s shape that fits `area`, centred in it."""
    if pixmap.isNull() or area.width() <= 0 or area.height() <= 0:
        return QRectF(area.x(), area.y(), 0, 0)
    scale = min(area.width() / pixmap.width(), area.height() / pixmap.height())
    width, height = pixmap.width() * scale, pixmap.height() * scale
    return QRectF(area.x() + (area.width() - width) / 2, area.y() + (area.height() - height) / 2, width, height)


def differences(first: list[tuple[str, str]], second: list[tuple[str, str]]) -> tuple[list[tuple[str, str, str]], int]:
    """The settings (the large view's rows) whose values differ, as (name, first's, second's) in the first's order
    (then the second's own), "—" where one has none; and how many are the same. The rows that tell two files apart
    rather than how they were made (`SAME_ROWS`) are left out."""
    ones, others = dict(first), dict(second)
    names = [name for name in dict.fromkeys([*ones, *others]) if name not in SAME_ROWS]
    differ = [(name, ones.get(name, "—"), others.get(name, "—")) for name in names
              if ones.get(name) != others.get(name)]
    return differ, len(names) - len(differ)


class CompareDialog(QDialog):
    """Two images and how their settings differ."""

    def __init__(self, records: tuple[ImageRecord, ImageRecord], rows: tuple[list, list],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.records, self.rows = records, rows
        self.resize(1100, 720)
        pixmaps = [QPixmap.fromImage(read_picture(record.path)) for record in records]
        self.view = SplitView(*pixmaps)
        self.names = QLabel()
        self.names.setTextFormat(Qt.TextFormat.PlainText)
        self.side_by_side = QCheckBox("Side by side (S)")
        self.swap_button = QPushButton("Swap (X)", autoDefault=False)
        self.close_button = QPushButton("Close", autoDefault=False)
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.details.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # its text can be selected, but the keys are the view's
        top = QHBoxLayout()
        top.addWidget(self.names, 1)
        for widget in (self.side_by_side, self.swap_button, self.close_button):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the arrow keys stay the divider's (S, X and Esc are theirs)
            top.addWidget(widget)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.view)
        splitter.addWidget(self.details)
        splitter.setSizes([560, 160])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        hint = QLabel("Drag across the pictures (or press ← →) to move the divider: the left part is the first image, "
                      "the right part the second. The wheel zooms both, a right-button drag moves them, a double-click "
                      "fits them again.")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.side_by_side.toggled.connect(self._arrange)
        self.swap_button.clicked.connect(self.swap)
        self.close_button.clicked.connect(self.accept)
        self._show()
        self.view.setFocus()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        """The view's keys (its own, and the keys its children leave)."""
        key, shifted = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            step = LARGE_STEP if shifted else STEP
            self.move_divider(step if key == Qt.Key.Key_Right else -step)
        elif key == Qt.Key.Key_S:
            self.side_by_side.toggle()
        elif key == Qt.Key.Key_X:
            self.swap()
        else:
            super().keyPressEvent(event)

    def move_divider(self, delta: float) -> None:
        self.view.set_divider(self.view.divider + delta)

    def swap(self) -> None:
        self.records, self.rows = self.records[::-1], self.rows[::-1]
        self.view.first, self.view.second = self.view.second, self.view.first
        self._show()
        self.view.update()

    def _arrange(self, side_by_side: bool) -> None:
        self.view.side_by_side = side_by_side
        self.view.setCursor(Qt.CursorShape.ArrowCursor if side_by_side else Qt.CursorShape.SplitHCursor)
        self.view.update()

    def _show(self) -> None:
        first, second = (Path(record.path).name for record in self.records)
        self.setWindowTitle(f"Compare {first} and {second}")
        self.names.setText(f"Left: {first}    Right: {second}")
        differ, same = differences(*self.rows)
        cells = "".join(f"<tr><td><b>{html.escape(name)}</b></td><td>{html.escape(one)}</td>"
                        f"<td>{html.escape(other)}</td></tr>" for name, one, other in differ)
        table = (f"<table cellspacing='0' cellpadding='3'><tr><th></th><th align='left'>{html.escape(first)}</th>"
                 f"<th align='left'>{html.escape(second)}</th></tr>{cells}</table>") if differ else \
            "<p>Their settings are the same.</p>"
        self.details.setHtml(f"{table}<p>{same} other setting{'s' * (same != 1)} the same.</p>")
