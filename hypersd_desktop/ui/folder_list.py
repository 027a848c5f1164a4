"""A list of folders the app keeps looking at — the gallery's watched folders, the Models tab's linked folders —
with Add and a button that stops one; a folder added is checked first, and why one cannot be is said beside the
buttons."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
    QVBoxLayout, QWidget,
)

from hypersd_desktop.core.errors import InputError

Check = Callable[[Path, list[Path]], Path]  # (a folder, those listed) -> the folder resolved, or InputError


class FolderListDialog(QDialog):
    """`folders()` is the list once accepted, `added` the folders added in the dialog (a folder added above listed
    ones takes their place); `gone` are shown as not there now."""

    def __init__(self, title: str, intro: str, folders: list[Path], gone: tuple[Path, ...], check: Check,
                 stop: tuple[str, str], parent: QWidget | None = None,
                 suggested: tuple[str, list[tuple[str, Path]]] = ("", [])) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._check = check
        self.added: list[Path] = []
        self.list = QListWidget()
        for folder in folders:
            self._add_item(folder, folder in gone)
        self.add_button = QPushButton("Add a folder…")
        self.add_button.clicked.connect(self._choose)
        self.remove_button = QPushButton(stop[0])
        self.remove_button.setToolTip(stop[1])
        self.remove_button.clicked.connect(self._remove)
        self.problem = QLabel(wordWrap=True, visible=False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(intro, wordWrap=True))
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        self.suggestions: list[QPushButton] = []  # folders found that could be added: (label, folder) each
        heading, found = suggested
        if found:
            layout.addWidget(QLabel(heading, wordWrap=True))
        for label, folder in found:
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, folder=folder, button=button: self._take(folder, button))
            layout.addWidget(button)
            self.suggestions.append(button)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.list.currentRowChanged.connect(lambda row: self.remove_button.setEnabled(row >= 0))
        self.remove_button.setEnabled(False)
        self.resize(560, 320)

    def folders(self) -> list[Path]:
        return [Path(self.list.item(row).data(Qt.ItemDataRole.UserRole)) for row in range(self.list.count())]

    def add_folder(self, folder: Path) -> bool:
        """Add `folder` to the list, or say beside the buttons why it cannot be."""
        try:
            resolved = self._check(folder, self.folders())
        except InputError as error:
            self.problem.setText(f"⚠ {error}")
            self.problem.setVisible(True)
            return False
        self.problem.setVisible(False)
        for row in reversed(range(self.list.count())):  # folders inside it are looked at with it now
            inside = Path(self.list.item(row).data(Qt.ItemDataRole.UserRole))
            if resolved in inside.parents:
                self.list.takeItem(row)
                self.added = [folder for folder in self.added if folder != inside]
        self._add_item(resolved, False)
        self.added.append(resolved)
        return True

    def _take(self, folder: Path, button: QPushButton) -> None:
        """A folder suggested is added, and its button is spent."""
        if self.add_folder(folder):
            button.setEnabled(False)

    def _add_item(self, folder: Path, gone: bool) -> None:
        item = QListWidgetItem(f"{folder}  (not there now)" if gone else str(folder))
        item.setData(Qt.ItemDataRole.UserRole, str(folder))
        self.list.addItem(item)

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.windowTitle(), str(Path.home()))
        if folder:
            self.add_folder(Path(folder))

    def _remove(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            folder = Path(self.list.takeItem(row).data(Qt.ItemDataRole.UserRole))
            if folder in self.added:
                self.added.remove(folder)
