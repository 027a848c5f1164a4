"""A row of widgets that wraps onto more lines when the window is too narrow for it.

Rows of buttons and filters laid out in one `QHBoxLayout` make the whole window at least as wide as the
row; on a laptop at 150 % scaling (1280 × 720 to lay out) the gallery's rows alone made it wider than the
screen. `FlowLayout` lays its widgets out left to right at their preferred widths and starts a new line
where the next one does not fit, so a row needs only its widest widget. Widgets whose size policy expands
share what a line has left (the gallery's search field); `Qt.AlignRight` puts a line without such widgets
at the right, as a dialog's buttons sit.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QSizePolicy, QStyle, QWidget


class FlowLayout(QLayout):
    def __init__(self, parent: QWidget | None = None, alignment: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._align_right = bool(alignment & Qt.AlignmentFlag.AlignRight)
        self.setContentsMargins(0, 0, 0, 0)

    # -- QLayout ---------------------------------------------------------------------------

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), place=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, place=True)

    def sizeHint(self) -> QSize:
        """Everything on one line."""
        shown = self._shown()
        width = sum(item.sizeHint().width() for item in shown) + self._spacing() * max(len(shown) - 1, 0)
        height = max((item.sizeHint().height() for item in shown), default=0)
        return QSize(width, height) + self._margin_size()

    def minimumSize(self) -> QSize:
        """The widest widget alone on a line: the layout never asks for more width than that."""
        size = QSize()
        for item in self._shown():
            size = size.expandedTo(item.minimumSize())
        return size + self._margin_size()

    # -- arranging -------------------------------------------------------------------------

    def _shown(self) -> list[QLayoutItem]:
        return [item for item in self._items if not item.isEmpty()]  # a hidden widget takes no room

    def _spacing(self) -> int:
        spacing = self.spacing()
        if spacing >= 0:
            return spacing
        parent = self.parentWidget()
        style = parent.style() if parent is not None else None
        return style.pixelMetric(QStyle.PixelMetric.PM_LayoutHorizontalSpacing) if style is not None else 6

    def _margin_size(self) -> QSize:
        margins = self.contentsMargins()
        return QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def _lines(self, width: int) -> list[list[tuple[QLayoutItem, int]]]:
        """The items line by line, each with its width: its preferred one, or the whole line where that is
        wider."""
        spacing, lines, line, used = self._spacing(), [], [], 0
        for item in self._shown():
            item_width = min(max(item.sizeHint().width(), item.minimumSize().width()), width)
            if line and used + spacing + item_width > width:
                lines.append(line)
                line, used = [], 0
            used += (spacing if line else 0) + item_width
            line.append((item, item_width))
        if line:
            lines.append(line)
        return lines

    def _arrange(self, rect: QRect, place: bool) -> int:
        """Lay the items out in `rect` (when `place`); the height they take."""
        margins = self.contentsMargins()
        area = rect.adjusted(margins.left(), margins.top(), -margins.right(), -margins.bottom())
        spacing = self._spacing()
        y = area.y()
        for number, line in enumerate(self._lines(max(area.width(), 1))):
            height = max(item.sizeHint().height() for item, _ in line)
            left = area.width() - sum(width for _, width in line) - spacing * (len(line) - 1)
            growing = [item for item, _ in line if _expands(item)]
            x = area.x() + (left if self._align_right and not growing else 0)
            if number:
                y += spacing
            for item, width in line:
                if item in growing:
                    width += left // len(growing)
                if place:
                    item_height = height if item.expandingDirections() & Qt.Orientation.Vertical else min(
                        item.sizeHint().height(), height)
                    item.setGeometry(QRect(QPoint(x, y + (height - item_height) // 2), QSize(width, item_height)))
                x += width + spacing
            y += height
        return y - area.y() + margins.top() + margins.bottom()


def _expands(item: QLayoutItem) -> bool:
    widget = item.widget()
    if widget is None:
        return False
    return bool(widget.sizePolicy().horizontalPolicy().value & QSizePolicy.PolicyFlag.ExpandFlag.value)
