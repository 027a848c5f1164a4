"""The read-only tables of the Models tab and the Civitai search: rows selected whole, one at a time; the
narrowing of a long table by the words of a filter box; and a model's tooltip, with the picture other tools keep
beside its file."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QUrl
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from hypersd_desktop.models.model_notes import preview_beside
from hypersd_desktop.models.registry import InstalledModel

TOOLTIP_PICTURE_WIDTH = 192
_TIPPED = Qt.ItemDataRole.UserRole + 10  # a cell whose model tooltip was made


def read_only_table(columns: tuple[str, ...], stretch: int = -1) -> QTableWidget:
    """A read-only table of `columns`; column `stretch` (the last by default) takes the room the others leave."""
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    table.setAlternatingRowColors(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    # The long column (what a model enables, where it is) takes the room left and shortens its text with "…"
    # (the whole text is its tooltip) rather than widening the table past the window.
    header.setSectionResizeMode(stretch % len(columns), QHeaderView.ResizeMode.Stretch)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    return table


def table_item(text: str, data=None) -> QTableWidgetItem:
    """A cell that cannot be edited, its whole text in its tooltip (a narrow window shortens it), holding `data`."""
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    item.setToolTip(text)
    if data is not None:
        item.setData(Qt.ItemDataRole.UserRole, data)
    return item


def show_matching_rows(table: QTableWidget, text: str, row_text: Callable[[int], str],
                       kept: Callable[[int], bool] = lambda row: False) -> None:
    """Hide the rows whose `row_text` lacks one of the words of `text` (in any case), but not those `kept` keeps
    in view (a checked one)."""
    words = text.lower().split()
    for row in range(table.rowCount()):
        table.setRowHidden(row, not (kept(row) or all(word in row_text(row).lower() for word in words)))


class ModelTooltips(QObject):
    """Gives the first cells of `table`, which hold installed models, their `model_tooltip` when one is about to
    show, not when the table is filled: finding the pictures of hundreds of models on a network drive would hold
    the window up at every refill. A model whose files are gone keeps the tooltip that says so."""

    def __init__(self, table: QTableWidget) -> None:
        super().__init__(table)
        self.table = table
        table.viewport().installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.ToolTip:
            item = self.table.itemAt(event.pos())  # a model's cell: the others' tooltips are their own
            model = item.data(Qt.ItemDataRole.UserRole) if item is not None and item.column() == 0 else None
            if isinstance(model, InstalledModel) and not item.data(_TIPPED) and Path(model.path).exists():
                item.setToolTip(model_tooltip(model))
                item.setData(_TIPPED, True)
        return False


def model_tooltip(model: InstalledModel) -> str:
    """A model's tooltip: the picture other tools keep beside its file (`NAME.preview.png`…) where there is one, its
    name and its trigger words."""
    picture = preview_beside(Path(model.path))
    lines = [f'<img src="{html.escape(QUrl.fromLocalFile(str(picture)).toString())}" '
             f'width="{TOOLTIP_PICTURE_WIDTH}">'] if picture is not None else []
    lines.append(f"<b>{html.escape(model.name)}</b>")
    if model.trigger_words:
        lines.append(f"Trigger words: {html.escape(', '.join(model.trigger_words))}")
    return "<br>".join(lines)
