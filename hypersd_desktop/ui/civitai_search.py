"""Search Civitai for models the app runs and download them (the Models tab's *Search Civitai…*).

The search runs in the background (`ModelLibrary.search_civitai`: SD1.5 and SDXL models in safetensors, without
mature ones unless asked). Beside the list, the selected model's base model, trigger words and a picture made
with it (its page's first one rated for everyone, fetched when selected), and its other versions the app runs to
choose from. Download, or a double click, hands the chosen version's address to the Models tab, which downloads it
as any address pasted there; the dialog stays open for the next one, and keeps its results when it is opened again
(the Models tab keeps the one dialog).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget,
)

from hypersd_desktop.core.vocab import ModelKind, architecture_label
from hypersd_desktop.models.catalog import format_size
from hypersd_desktop.models.civitai import CivitaiModel
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.ui.tables import read_only_table, table_item
from hypersd_desktop.ui.tasks import Task

COLUMNS = ("Name", "Version", "Kind", "For", "Size", "Downloads", "By")
KINDS = (("Every kind the app uses", ()), ("Checkpoints", (ModelKind.BASE,)), ("LoRAs", (ModelKind.LORA,)),
         ("Embeddings", (ModelKind.EMBEDDING,)), ("VAEs", (ModelKind.VAE,)), ("ControlNets", (ModelKind.CONTROLNET,)),
         ("Upscalers", (ModelKind.UPSCALER,)))  # made for no base model: only when asked for
ORDERS = (("Best match", ""), ("Most downloaded", "downloads"), ("Highest rated", "rating"), ("Newest", "newest"))
PREVIEW_SIDE = 300
VERSIONS = Qt.ItemDataRole.UserRole + 1  # a row's model's versions the app runs, newest first
FAMILIES = (("SD1.5 and SDXL", ()), ("SD1.5", ("sd15",)), ("SDXL (Pony, Illustrious, NoobAI)", ("sdxl",)))


class CivitaiSearch(QDialog):
    """Civitai's models for some words, of a kind and family; `chosen` carries the address of one to download."""

    chosen = Signal(str)

    def __init__(self, library: ModelLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.setWindowTitle("Search Civitai")
        self.resize(1180, 600)
        self.query = QLineEdit(placeholderText="Words of a model's name: dreamshaper, juggernaut, pixel art…")
        self.kind, self.family, self.sort = QComboBox(), QComboBox(), QComboBox()
        for box, choices in ((self.kind, KINDS), (self.family, FAMILIES), (self.sort, ORDERS)):
            for title, value in choices:
                box.addItem(title, value)
        self.kind.currentIndexChanged.connect(self._kind_chosen)
        self.mature = QCheckBox("Include mature models")
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.table = read_only_table(COLUMNS, stretch=0)
        self.more_button = QPushButton("More results", enabled=False)
        self.download_button = QPushButton("Download", enabled=False)
        self.download_button.setToolTip("Download the selected model on the Models tab (also a double click). "
                                        "Civitai asks for your API key: File → Settings → Civitai API key.")
        self.status = QLabel("Only what the app runs is listed: SD1.5 and SDXL models (and upscalers, for any) with "
                             "a safetensors file, each as its newest such version.", wordWrap=True)
        self.picture = QLabel("Select a model to see a picture made with it.", wordWrap=True,
                              alignment=Qt.AlignmentFlag.AlignCenter)
        self.picture.setFixedSize(PREVIEW_SIDE, PREVIEW_SIDE)
        self.picture.setFrameShape(QLabel.Shape.StyledPanel)
        self.version_box = QComboBox()
        self.version_box.setToolTip("The model's versions the app runs, newest first: Download takes the one shown.")
        self.version_box.setFixedWidth(PREVIEW_SIDE)
        self.version_box.currentIndexChanged.connect(self._version_chosen)
        self.details = QLabel("", wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setFixedWidth(PREVIEW_SIDE)
        self.picture_task: Task | None = None
        self._pictures: dict[str, QPixmap | str] = {}  # by address: the picture, or why there is none
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        filters = QHBoxLayout()
        filters.addWidget(self.query, 1)
        for widget in (self.kind, self.family, self.sort, self.mature, self.search_button):
            filters.addWidget(widget)
        actions = QHBoxLayout()
        actions.addWidget(self.download_button)
        actions.addWidget(self.more_button)
        actions.addWidget(self.status, 1)
        actions.addWidget(close)
        layout = QVBoxLayout(self)
        side = QVBoxLayout()
        side.addWidget(self.picture)
        side.addWidget(self.version_box)
        side.addWidget(self.details)
        side.addStretch(1)
        middle = QHBoxLayout()
        middle.addWidget(self.table, 1)
        middle.addLayout(side)
        layout.addLayout(filters)
        layout.addLayout(middle, 1)
        layout.addLayout(actions)

        self.search_button.clicked.connect(lambda: self.search())
        self.query.returnPressed.connect(self.search_button.click)
        self.more_button.clicked.connect(lambda: self.search(self._cursor))
        self.download_button.clicked.connect(self.download)
        self.table.doubleClicked.connect(lambda _index: self.download())
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemSelectionChanged.connect(self._show_selected)
        self.task: Task | None = None
        self._cursor: str | None = None
        self._asked: tuple = ()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.library.downloader.civitai_key is None and self.task is None and not self.table.rowCount():
            self.status.setText("Civitai asks for your API key to download any file: create one on civitai.com "
                                "(Account settings → API Keys), then paste it in File → Settings → Civitai API key.")

    def search(self, cursor: str | None = None) -> None:
        """Ask Civitai in the background: a new search, or (`cursor`) the next page of the last one."""
        if self.task is not None:
            return
        if cursor is None:
            if not self.query.text().strip():
                self.status.setText("Type words of a model's name first.")
                return
            self._asked = (self.query.text(), self.kind.currentData(), self.family.currentData(),
                           self.mature.isChecked(), self.sort.currentData())
            self.table.setRowCount(0)
        query, kinds, families, mature, sort = self._asked
        library = self.library
        self.task = Task(lambda _report, _cancel: library.search_civitai(query, kinds, families, mature, cursor,
                                                                         sort=sort), self)
        self.task.succeeded.connect(self._found)
        self.task.failed.connect(lambda message: self._ended(f"⚠ {message}"))
        self.status.setText("Searching Civitai…")
        self._update_buttons()
        self.task.start()

    def _found(self, result: tuple[list[CivitaiModel], str | None]) -> None:
        models, self._cursor = result
        for model in models:
            row = self.table.rowCount()
            self.table.insertRow(row)
            self._fill_row(row, model)
            self.table.item(row, 0).setData(VERSIONS, (model, *model.older))
        count = self.table.rowCount()
        found = f"{count} model{'s' if count != 1 else ''} found" if count else "Nothing found that the app runs"
        self._ended(found + (" (more with More results)." if self._cursor else "."))

    def _fill_row(self, row: int, model: CivitaiModel) -> None:
        """Show `model` (one of its versions) in the table's `row`."""
        installed = self.library.installed_address(model.address) is not None
        values = (model.name, model.version + (" · installed" if installed else ""), model.kind or "?",
                  "any model" if model.kind == ModelKind.UPSCALER else architecture_label(model.architecture),
                  format_size(model.size) if model.size else "?", f"{model.downloads:,}", model.creator)
        versions = self.table.item(row, 0).data(VERSIONS) if self.table.item(row, 0) is not None else None
        for column, value in enumerate(values):
            item = table_item(value, model if column == 0 else None)
            if column in (4, 5):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, column, item)
        if versions is not None:
            self.table.item(row, 0).setData(VERSIONS, versions)

    def _kind_chosen(self) -> None:
        """An upscaler enlarges any model's pictures: the family list does not apply to them."""
        upscalers = ModelKind.UPSCALER in (self.kind.currentData() or ())
        self.family.setEnabled(not upscalers)
        self.family.setToolTip("Upscalers are made for no base model: they enlarge any model's pictures"
                               if upscalers else "")

    def _version_chosen(self, index: int) -> None:
        """Another version of the selected model: its row, details and picture show it, and Download takes it."""
        rows = self.table.selectionModel().selectedRows()
        if not rows or index < 0:
            return
        row = rows[0].row()
        versions = self.table.item(row, 0).data(VERSIONS)
        if index < len(versions) and versions[index] != self.selected():
            self._fill_row(row, versions[index])
            self._show_selected()
            self._update_buttons()

    def _ended(self, message: str) -> None:
        if self.task is not None:
            self.task.wait()
            self.task = None
        self.status.setText(message)
        self._update_buttons()

    def selected(self) -> CivitaiModel | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None

    def download(self) -> None:
        model = self.selected()
        if model is not None and self.library.installed_address(model.address) is None:
            self.chosen.emit(model.address)
            self.status.setText(f"{model.name} {model.version} is downloading on the Models tab.")

    def _show_selected(self) -> None:
        """The selected model's trigger words and base model beside the list, and its preview, fetched once in the
        background (one fetch at a time; the newest selection's goes next)."""
        model = self.selected()
        if model is None:
            return
        versions = self.table.item(self.table.selectionModel().selectedRows()[0].row(), 0).data(VERSIONS)
        self.version_box.blockSignals(True)
        self.version_box.clear()
        for version in versions:
            self.version_box.addItem(f"{version.version} ({version.base_model})")
        self.version_box.setCurrentIndex(versions.index(model))
        self.version_box.setEnabled(len(versions) > 1)
        self.version_box.blockSignals(False)
        words = ", ".join(model.trigger_words) or "none given"
        self.details.setText(f"<b>{html.escape(model.name)}</b> {html.escape(model.version)}<br>Base model: "
                             f"{html.escape(model.base_model)}<br>Trigger words: {html.escape(words)}")
        shown = self._pictures.get(model.preview) if model.preview else "No picture to show for this model."
        if isinstance(shown, QPixmap):
            self.picture.setPixmap(shown)
        elif shown is not None:
            self.picture.setText(shown)
        else:
            self.picture.setText("Fetching a picture…")
            self._fetch(model.preview)

    def _fetch(self, address: str) -> None:
        if self.picture_task is not None:
            return  # the selection is looked at again when this one ends
        downloader = self.library.downloader
        self.picture_task = Task(lambda _report, _cancel: downloader.picture(address), self)
        self.picture_task.succeeded.connect(lambda data: self._fetched(address, data))
        self.picture_task.failed.connect(lambda message: self._fetched(address, None, message))
        self.picture_task.start()

    def _fetched(self, address: str, data: bytes | None, message: str = "") -> None:
        self.picture_task.wait()
        self.picture_task = None
        picture = QPixmap()
        if data is not None and picture.loadFromData(data):
            self._pictures[address] = picture.scaled(PREVIEW_SIDE - 4, PREVIEW_SIDE - 4,
                                                     Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.SmoothTransformation)
        else:
            self._pictures[address] = message or "The picture could not be read."
        self._show_selected()

    def _update_buttons(self) -> None:
        idle = self.task is None
        self.search_button.setEnabled(idle)
        self.more_button.setEnabled(idle and self._cursor is not None)
        model = self.selected()
        installed = model is not None and self.library.installed_address(model.address) is not None
        self.download_button.setEnabled(model is not None and not installed)
        self.download_button.setText("Installed" if installed else "Download")
