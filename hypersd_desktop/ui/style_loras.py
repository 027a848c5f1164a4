"""The Generate tab's style LoRAs: the installed LoRAs for the base model's family, each applied when checked, at
its weight.

Checking one by hand adds its trigger words (what its makers say to write, `models.model_notes`) to the prompt,
and unchecking it takes them out again, as a click on a LoRA's card does in A1111. A LoRA with more words than a
few (a pack of characters or styles, one word each) adds none: a click on its words offers each, to add the one
wanted, as well as their editor. A check set from a reused image changes no words: its prompt has them already.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox, QHeaderView, QLineEdit, QMenu, QTableWidget, QTableWidgetItem, QWidget,
)

from hypersd_desktop.engine.types import LoraSpec
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.tables import ModelTooltips, show_matching_rows

DEFAULT_WEIGHT = 0.8
FILTER_FROM = 6  # LoRAs listed before the filter box shows
MOST_ADDED = 4  # trigger words a check adds; more are a pack's, one word for each of its characters or styles
COLUMNS = ("Style LoRA", "Weight", "Trigger words")


class StyleLoras(QTableWidget):
    """A checkable row per style LoRA; `words_added` and `words_removed` carry the trigger words to add to the
    prompt or take out of it, and `edit_words` the LoRA whose words are to be edited."""

    words_added = Signal(tuple)
    words_removed = Signal(tuple)
    edit_words = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.verticalHeader().hide()
        self.setMaximumHeight(130)
        # A models folder of hundreds of LoRAs: the list is narrowed by a word of their names or trigger words
        self.filter = QLineEdit(placeholderText="Filter the style LoRAs: a word of a name or trigger word",
                                clearButtonEnabled=True)
        self.filter.textChanged.connect(self._narrow)
        self._quiet = False
        self.itemChanged.connect(self._changed)
        self.cellClicked.connect(lambda row, column: column == 2 and self.offer_words(row))
        self.words_menu: QMenu | None = None
        ModelTooltips(self)

    def fill(self, loras: list[InstalledModel]) -> None:
        """A row per LoRA, at the weight its notes suggest (else 0.8), unchecked; one that was listed before keeps
        its check and weight (a download or an edit elsewhere refills the list)."""
        kept = {str(Path(self.lora(row).path)): (self.item(row, 0).checkState(), self.cellWidget(row, 1).value())
                for row in range(self.rowCount())}
        self._quiet = True
        try:
            self.setRowCount(0)
            for lora in loras:
                row = self.rowCount()
                self.insertRow(row)
                item = QTableWidgetItem(lora.name)
                item.setFlags((item.flags() | Qt.ItemFlag.ItemIsUserCheckable) & ~Qt.ItemFlag.ItemIsEditable)
                item.setData(Qt.ItemDataRole.UserRole, lora)
                weight = lora.preferred_weight if lora.preferred_weight is not None else DEFAULT_WEIGHT
                check, weight = kept.get(str(Path(lora.path)), (Qt.CheckState.Unchecked, weight))
                item.setCheckState(check)
                self.setItem(row, 0, item)
                self.setCellWidget(row, 1, QDoubleSpinBox(minimum=-2.0, maximum=2.0, singleStep=0.1,
                                                          value=max(-2.0, min(weight, 2.0))))
                words = QTableWidgetItem(", ".join(lora.trigger_words) or "—")
                words.setFlags(words.flags() & ~Qt.ItemFlag.ItemIsEditable)
                words.setToolTip(
                    f"Checking {lora.name} adds these to the prompt; unchecking it takes them out again. Click to "
                    "add one, or to change them." if 0 < len(lora.trigger_words) <= MOST_ADDED else
                    f"{len(lora.trigger_words)} trigger words, one for each character or style it was trained on, "
                    "most often: click to add the one you want." if lora.trigger_words else
                    "No trigger words are known for this LoRA: click to write them.")
                self.setItem(row, 2, words)
        finally:
            self._quiet = False
        self.filter.setVisible(self.rowCount() > FILTER_FROM)
        self._narrow()

    def _narrow(self) -> None:
        """Show the LoRAs whose name or trigger words hold the filter's words, and every checked one."""
        show_matching_rows(self, self.filter.text() if self.rowCount() > FILTER_FROM else "",  # else not shown
                           lambda row: " ".join((self.lora(row).name, Path(self.lora(row).path).stem,
                                                 *self.lora(row).trigger_words)),
                           lambda row: self.item(row, 0).checkState() == Qt.CheckState.Checked)

    def lora(self, row: int) -> InstalledModel:
        return self.item(row, 0).data(Qt.ItemDataRole.UserRole)

    def chosen(self) -> list[LoraSpec]:
        """The checked LoRAs at their weights."""
        return [LoraSpec(self.lora(row).path, self.cellWidget(row, 1).value()) for row in range(self.rowCount())
                if self.item(row, 0).checkState() == Qt.CheckState.Checked]

    def choose(self, weights: dict[str, float]) -> None:
        """Check the LoRAs at these paths, at these weights, and uncheck the rest; the prompt is left as it is."""
        self._quiet = True
        try:
            for row in range(self.rowCount()):
                path = str(Path(self.lora(row).path))
                self.item(row, 0).setCheckState(Qt.CheckState.Checked if path in weights else Qt.CheckState.Unchecked)
                if path in weights:
                    self.cellWidget(row, 1).setValue(weights[path])
        finally:
            self._quiet = False

    def offer_words(self, row: int) -> QMenu:
        """A menu under a LoRA's words: each word (added to the prompt when chosen), all of them, and their editor."""
        lora = self.lora(row)
        menu = self.words_menu = QMenu(self)
        for word in lora.trigger_words:
            menu.addAction(f"Add “{word}”", lambda word=word: self.words_added.emit((word,)))
        if len(lora.trigger_words) > 1:
            menu.addAction("Add all of them", lambda: self.words_added.emit(lora.trigger_words))
        if lora.trigger_words:
            menu.addSeparator()
        menu.addAction("Edit the trigger words…", lambda: self.edit_words.emit(lora))
        menu.popup(self.viewport().mapToGlobal(self.visualItemRect(self.item(row, 2)).bottomLeft()))
        return menu

    def _changed(self, item: QTableWidgetItem) -> None:
        if self._quiet or item.column() != 0:
            return
        words = self.lora(item.row()).trigger_words
        if item.checkState() == Qt.CheckState.Unchecked:
            if words:
                self.words_removed.emit(words)  # those it added, or the one chosen of many
        elif 0 < len(words) <= MOST_ADDED:
            self.words_added.emit(words)
