"""Two gallery images compared: over one another with a divider to drag (the left part one, the right part the other),
or side by side, and the settings in which they differ (steps, seed, LoRA weight …), read as the large view reads
them (`gallery_browser.record_rows`).

Keys: Left and Right move the divider (Shift: in larger steps), S shows them side by side or over one another, X swaps
them, Esc closes.
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
SAME_ROWS = ("Created", "File", "Folder", "Time", "Source")  # rows that tell the files apart, not how they were made


class SplitView(QWidget):
    """`first` left of the divider, `second` right of it, both fitted to the same place (the second scaled to the
    first's place where their sizes differ); `side_by_side` shows them next to one another instead."""

    def __init__(self, first: QPixmap, second: QPixmap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.first, self.second = first, second
        self.divider = 0.5  # the divider's place across the picture, 0 to 1
        self.side_by_side = False
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the arrow keys move the divider while it has the focus
        self.setCursor(Qt.CursorShape.SplitHCursor)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(720, 540)

    def places(self) -> tuple[QRectF, QRectF]:
        """Where each picture is drawn: the same place over one another, or two halves side by side."""
        area = QRectF(self.rect())
        if self.side_by_side:
            half = QRectF(area.x(), area.y(), area.width() / 2 - 2, area.height())
            return _fitted(self.first, half), _fitted(self.second, half.translated(area.width() / 2 + 2, 0))
        place = _fitted(self.first, area)
        return place, place

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
        cut = first.x() + first.width() * self.divider
        painter.save()
        painter.setClipRect(QRectF(first.x(), first.y(), cut - first.x(), first.height()))
        painter.drawPixmap(first, self.first, QRectF(self.first.rect()))
        painter.setClipRect(QRectF(cut, first.y(), first.right() - cut, first.height()))
        painter.drawPixmap(first, self.second, QRectF(self.second.rect()))
        painter.restore()
        painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
        painter.drawLine(QPointF(cut, first.top()), QPointF(cut, first.bottom()))

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._follow(event.position().x())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._follow(event.position().x())

    def _follow(self, x: float) -> None:
        if self.side_by_side:
            return
        place = self.places()[0]
        if place.width() > 0:
            self.set_divider((x - place.x()) / place.width())


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
                      "the right part the second.")
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
