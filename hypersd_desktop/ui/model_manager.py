"""The Models tab: the catalog with downloads, the installed models with import, verify, remove, and the
ONNX Runtime backend's exports (made on first use of a model + LoRA set) with their size and remove.

Downloads run one at a time in the background, in the order asked for. Pause keeps the bytes
already fetched (also when the app is closed mid-download) and Resume continues from them;
Cancel deletes them. Files and whole AUTOMATIC1111/ComfyUI folders can be dropped on the tab.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QProgressBar, QPushButton, QSplitter, QVBoxLayout, QWidget,
)

from hypersd_desktop.core.dates import local_time
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import EITHER_ARCHITECTURE_KINDS, ImportStatus, ModelKind, architecture_label
from hypersd_desktop.engine.inspect import base_has_vae
from hypersd_desktop.engine.onnx.export import CachedExport, ExportCache, cache_root
from hypersd_desktop.models.catalog import CatalogEntry, format_size
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.models.model_notes import NOTED_KINDS
from hypersd_desktop.core.tool_folders import find_tool_folders
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.civitai_search import CivitaiSearch
from hypersd_desktop.ui.drops import WEB_SCHEMES
from hypersd_desktop.ui.folder_list import FolderListDialog
from hypersd_desktop.ui.tables import ModelTooltips, read_only_table, show_matching_rows, table_item
from hypersd_desktop.ui.tasks import Task, describe_bytes, percent
from hypersd_desktop.ui.trigger_words import TriggerWordsDialog

CATALOG_COLUMNS = ("Name", "For", "Kind", "Size", "Licence", "What it enables", "Status")
INSTALLED_COLUMNS = ("Name", "For", "Kind", "Disk use", "Source", "Last used", "Location")
EXPORT_COLUMNS = ("ONNX export of", "Disk use", "Export took", "Folder")
log = logging.getLogger("hypersd")

DROP_HINT = "Drop .safetensors files or A1111/ComfyUI model folders here to import them."

SOURCES = {"download": "downloaded", "hf-cache": "from the Hugging Face cache", "import-copy": "imported (copied)",
           "import-reference": "imported (linked in place)"}


def _made_for(kind: str, architecture: str | None) -> str:
    """The architecture a model is for; a VAE file that does not say, or a model making control maps, is for
    either."""
    if not architecture:
        return "SD1.5 or SDXL" if kind in EITHER_ARCHITECTURE_KINDS else "?"
    return architecture_label(architecture)


def _installed_kind(model: InstalledModel) -> str:
    """The kind of an installed model, "no VAE" for a checkpoint shared without one, and "files missing" for one
    whose files are gone from where it was imported (moved or deleted)."""
    if not Path(model.path).exists():
        return f"{model.kind}, files missing"
    return f"{model.kind}, no VAE" if model.kind == ModelKind.BASE and not base_has_vae(model.path) else model.kind


def disk_use_words(count: int, total: int, owned: int) -> str:
    """The Installed list's disk use: how many models, their size, and how much of it the app's models folder
    holds (downloads and copies) rather than the folders files were imported from."""
    if count == 0:
        return "No models yet"
    models = f"{count} model{'s' if count != 1 else ''}, {format_size(total)}"
    if owned == total:
        return f"{models}, in the app's models folder"
    if owned == 0:
        return f"{models}, used where {'they were' if count != 1 else 'it was'} imported from"
    return f"{models}; {format_size(owned)} of it in the app's models folder, the rest used where it was imported from"


class ModelManager(QWidget):
    """`in_use()` returns the model paths running or queued jobs need; those cannot be removed."""

    models_changed = Signal()

    def __init__(self, library: ModelLibrary, in_use: Callable[[], set[str]] = set,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.in_use = in_use
        self.exports = ExportCache(cache_root(library.paths.data), hash_of=library.hash_cache().sha256)
        self.download_task: Task | None = None
        self.downloading: str | None = None
        self.waiting: list[str] = []
        self._discard: set[str] = set()
        self._progress: dict[str, int] = {}
        self.side_task: Task | None = None  # an import or a verify
        self.hash_task: Task | None = None
        self.closed = False  # shut down: the library is closed, late reports are let go
        self._build()
        self.setAcceptDrops(True)
        self.refresh()
        self._complete_earlier_records()
        if self.sync_folders() is None:  # models saved in the linked folders since the last start
            self._suggest_links()

    def _build(self) -> None:
        self.catalog_table = read_only_table(CATALOG_COLUMNS, stretch=CATALOG_COLUMNS.index("What it enables"))
        self.installed_table = read_only_table(INSTALLED_COLUMNS)
        ModelTooltips(self.installed_table)  # a model's picture, name and words, found when hovered
        self.download_button = QPushButton("Download")
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel download")
        self.bar = QProgressBar(maximum=1000)
        self.bar.hide()
        self.download_label = QLabel("", wordWrap=True)  # long names wrap; the window keeps its width
        self.address = QLineEdit(placeholderText="Or paste an address: a model's page on Civitai or Hugging Face, or "
                                                 "a .safetensors file's")
        self.address.setToolTip("A model that is not in the catalog: the address of its page on Civitai (the version "
                                "shown, or its Download link; downloads from Civitai take your API key, in Settings), "
                                "or on Hugging Face (a diffusers model: what its pipeline loads is downloaded), or of "
                                "one .safetensors file there (under Files and versions). Each file is checked against "
                                "the sha256 the site publishes, and the model's kind read from its files, as an import "
                                "reads them.")
        self.address_button = QPushButton("Download from address")
        self.search_button = QPushButton("Search Civitai…")
        self.search_button.setToolTip("Find SD1.5 and SDXL checkpoints, LoRAs and embeddings on Civitai by name, "
                                      "and download them here.")
        self.search_dialog: CivitaiSearch | None = None
        self.words_dialog: TriggerWordsDialog | None = None
        catalog_buttons = QHBoxLayout()
        for button in (self.download_button, self.pause_button, self.cancel_button):
            catalog_buttons.addWidget(button)
        catalog_buttons.addWidget(self.bar, 1)
        catalog_buttons.addWidget(self.download_label, 2)
        self.import_files_button = QPushButton("Import files…")
        self.import_folder_button = QPushButton("Import folder…")
        self.folders_button = QPushButton("Linked folders…")
        self.folders_button.setToolTip("The models folders imported where they are (A1111's, ComfyUI's): looked "
                                       "through at each start for models added there since")
        self.verify_button = QPushButton("Verify")
        self.remove_button = QPushButton("Remove")
        self.reveal_button = QPushButton("Show in folder")
        self.words_button = QPushButton("Trigger words…")
        self.words_button.setToolTip("What to write in the prompt for the selected LoRA or embedding (read from its "
                                     "page or the notes beside its file), and a LoRA's suggested weight.")
        self.disk_label = QLabel("", wordWrap=True)
        self.installed_filter = QLineEdit(placeholderText="Filter: a word of a name, kind, path or trigger word",
                                          clearButtonEnabled=True)
        self.installed_filter.setMinimumWidth(320)
        self.installed_filter.textChanged.connect(self._narrow_installed)
        self.status = QLabel(DROP_HINT, wordWrap=True)
        installed_buttons = QHBoxLayout()
        for button in (self.import_files_button, self.import_folder_button, self.folders_button, self.verify_button,
                       self.remove_button, self.reveal_button, self.words_button):
            installed_buttons.addWidget(button)
        self.disk_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        installed_buttons.addWidget(self.disk_label, 1)  # the row's room: one line where it fits, two where not

        self.exports_table = read_only_table(EXPORT_COLUMNS)
        self.remove_export_button = QPushButton("Remove export")
        self.reveal_export_button = QPushButton("Show in folder")
        self.exports_label = QLabel("")
        export_buttons = QHBoxLayout()
        for button in (self.remove_export_button, self.reveal_export_button):
            export_buttons.addWidget(button)
        export_buttons.addStretch(1)
        export_buttons.addWidget(self.exports_label)

        top, bottom, exports = QWidget(), QWidget(), QWidget()
        top_layout, bottom_layout = QVBoxLayout(top), QVBoxLayout(bottom)
        top_layout.addWidget(QLabel("<b>Catalog</b> — base models, Hyper-SD LoRAs and helpers"))
        top_layout.addWidget(self.catalog_table)
        top_layout.addLayout(catalog_buttons)
        address_row = QHBoxLayout()
        address_row.addWidget(self.address, 1)
        address_row.addWidget(self.address_button)
        address_row.addWidget(self.search_button)
        top_layout.addLayout(address_row)
        installed_title = QHBoxLayout()
        installed_title.addWidget(QLabel("<b>Installed</b>"))
        installed_title.addStretch(1)
        installed_title.addWidget(self.installed_filter)
        bottom_layout.addLayout(installed_title)
        bottom_layout.addWidget(self.installed_table)
        bottom_layout.addLayout(installed_buttons)
        bottom_layout.addWidget(self.status)
        exports_layout = QVBoxLayout(exports)
        exports_layout.addWidget(QLabel("<b>ONNX exports</b> — made by the ONNX Runtime backend on first use of a "
                                        "model and LoRA set; removing one frees its disk, the next use exports again",
                                        wordWrap=True))
        exports_layout.addWidget(self.exports_table)
        exports_layout.addLayout(export_buttons)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.addWidget(exports)
        for index, stretch in enumerate((3, 2, 1)):  # the catalog, where a first start begins, is the tallest
            splitter.setStretchFactor(index, stretch)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self.download_button.clicked.connect(lambda: self.download(self._selected_entry()))
        self.pause_button.clicked.connect(self.pause)
        self.address_button.clicked.connect(lambda: self.download_address(self.address.text()))
        self.address.returnPressed.connect(self.address_button.click)
        self.search_button.clicked.connect(self.search_civitai)
        self.cancel_button.clicked.connect(lambda: self.cancel_download(self._selected_entry()))
        self.catalog_table.itemSelectionChanged.connect(self._update_buttons)
        self.installed_table.itemSelectionChanged.connect(self._update_buttons)
        self.import_files_button.clicked.connect(self.choose_files)
        self.import_folder_button.clicked.connect(self.choose_folder)
        self.folders_button.clicked.connect(self.open_linked_folders)
        self.verify_button.clicked.connect(lambda: self.verify(self._selected_model()))
        self.remove_button.clicked.connect(lambda: self.remove(self._selected_model()))
        self.reveal_button.clicked.connect(self._reveal)
        self.words_button.clicked.connect(lambda: self.edit_words(self._selected_model()))
        self.exports_table.itemSelectionChanged.connect(self._update_buttons)
        self.remove_export_button.clicked.connect(lambda: self.remove_export(self._selected_export()))
        self.reveal_export_button.clicked.connect(self._reveal_export)

    # -- tables ---------------------------------------------------------------------------

    def refresh(self) -> None:
        entries = self.library.entries()
        selected = self._selected_entry()
        self.catalog_table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            values = (entry.name, _made_for(entry.kind, entry.architecture), entry.kind or "?",
                      format_size(entry.size) if entry.size else "?", entry.licence, entry.enables,
                      self.entry_status(entry))
            for column, value in enumerate(values):
                self.catalog_table.setItem(row, column, table_item(value, entry if column == 0 else None))
            if selected is not None and entry.id == selected.id:
                self.catalog_table.selectRow(row)
        models = self.library.registry.list()
        self.installed_table.setRowCount(len(models))
        for row, model in enumerate(models):
            used = local_time("%Y-%m-%d", model.last_used) if model.last_used else "never"
            source = SOURCES.get(model.source, model.source)
            values = (model.name, _made_for(model.kind, model.architecture), _installed_kind(model),
                      format_size(model.size or 0), source, used, model.path)
            gone = not Path(model.path).exists()
            for column, value in enumerate(values):
                item = table_item(value, model if column == 0 else None)
                if gone:
                    item.setToolTip("The files are no longer at this path (moved or deleted): import them again from "
                                    "where they are now, and remove this entry.")

                self.installed_table.setItem(row, column, item)
        self._narrow_installed()
        total = sum(model.size or 0 for model in models)
        owned = sum(model.size or 0 for model in models if model.owned)
        self.disk_label.setText(disk_use_words(len(models), total, owned))
        self.refresh_exports()

    def _narrow_installed(self) -> None:
        table = self.installed_table
        show_matching_rows(table, self.installed_filter.text(), lambda row: " ".join(
            table.item(row, column).text() for column in range(table.columnCount())) + " " + " ".join(
            table.item(row, 0).data(Qt.ItemDataRole.UserRole).trigger_words))

    def refresh_exports(self) -> None:
        exports = self.exports.entries() if self.exports.root.is_dir() else []
        self.exports_table.setRowCount(len(exports))
        for row, export in enumerate(exports):
            values = (export.title, format_size(export.size_bytes), f"{export.seconds:.0f} s", str(export.folder))
            for column, value in enumerate(values):
                self.exports_table.setItem(row, column, table_item(value, export if column == 0 else None))
        total = sum(export.size_bytes for export in exports)
        count = f"{len(exports)} export" + ("s" if len(exports) != 1 else "")
        self.exports_label.setText(f"{count}, {format_size(total)}" if exports else "No exports yet")
        self._update_buttons()

    def _selected_export(self) -> CachedExport | None:
        items = self.exports_table.selectedItems()
        return self.exports_table.item(items[0].row(), 0).data(Qt.ItemDataRole.UserRole) if items else None

    def remove_export(self, export: CachedExport | None, ask: bool = True) -> bool:
        """Delete an export; the next generation with its model and LoRAs on ONNX Runtime exports again."""
        if export is None:
            return False
        if ask and QMessageBox.question(
                self, "Remove ONNX export", f"Remove the ONNX export of {export.title} "
                f"({format_size(export.size_bytes)})? Generating with it on ONNX Runtime exports it again.") != \
                QMessageBox.StandardButton.Yes:
            return False
        try:
            freed = self.exports.remove(export.key)
        except OSError as error:  # Windows keeps files open while the worker's sessions use them
            self.status.setText(f"⚠ Could not remove the export of {export.title}: {error.strerror or error}. "
                                "It may be in use by the generation worker; generate with another model, then retry.")
            return False
        self.status.setText(f"Removed the ONNX export of {export.title}; {format_size(freed)} freed.")
        self.refresh_exports()
        return True

    def _reveal_export(self) -> None:
        export = self._selected_export()
        if export is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(export.folder)))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.refresh_exports()  # the worker may have made one since

    def entry_status(self, entry: CatalogEntry) -> str:
        if self.library.installed_entry(entry) is not None:
            return "Installed"
        if entry.id == self.downloading:
            return f"Downloading {self._progress.get(entry.id, 0) / 10:.0f} %"
        if entry.id in self.waiting:
            return "Queued"
        kept = self.library.downloader.partial(entry)
        if kept:
            done = f"{100 * kept / entry.size:.0f} %" if entry.size else format_size(kept)  # an address: size unknown
            return f"Paused at {done} — Download resumes"
        return ""

    def _selected_entry(self) -> CatalogEntry | None:
        rows = self.catalog_table.selectionModel().selectedRows()
        return self.catalog_table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None

    def _selected_model(self) -> InstalledModel | None:
        rows = self.installed_table.selectionModel().selectedRows()
        return self.installed_table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None

    def select_entry(self, entry_id: str) -> None:
        for row in range(self.catalog_table.rowCount()):
            if self.catalog_table.item(row, 0).data(Qt.ItemDataRole.UserRole).id == entry_id:
                self.catalog_table.selectRow(row)
                self.catalog_table.scrollToItem(self.catalog_table.item(row, 0))

    def _update_buttons(self) -> None:
        entry = self._selected_entry()
        installed = entry is not None and self.library.installed_entry(entry) is not None
        busy = entry is not None and (entry.id == self.downloading or entry.id in self.waiting)
        partial = entry is not None and not busy and not installed and self.library.downloader.partial(entry) > 0
        self.download_button.setEnabled(entry is not None and not installed and not busy)
        self.download_button.setText("Resume" if partial else "Download")
        self.pause_button.setEnabled(entry is not None and entry.id == self.downloading)
        self.cancel_button.setEnabled(busy or partial)
        model = self._selected_model()
        idle = self.side_task is None
        for button in (self.verify_button, self.remove_button, self.reveal_button):
            button.setEnabled(model is not None and idle)
        self.words_button.setEnabled(model is not None and model.kind in NOTED_KINDS and not model.recipe)
        self.import_files_button.setEnabled(idle)
        self.import_folder_button.setEnabled(idle)
        self.folders_button.setEnabled(idle)
        for button in (self.remove_export_button, self.reveal_export_button):
            button.setEnabled(self._selected_export() is not None)

    # -- downloads ------------------------------------------------------------------------

    def download(self, entry: CatalogEntry | None) -> None:
        """Start (or resume, or queue behind the running one) the download of `entry`."""
        if entry is None or entry.id == self.downloading or entry.id in self.waiting:
            return
        if self.library.installed_entry(entry) is not None:  # chosen again in the search, or pasted again
            self.download_label.setText(f"{entry.name} is installed already.")
            return
        self.waiting.append(entry.id)
        self._next_download()
        self.refresh()

    def download_address(self, text: str) -> CatalogEntry | None:
        """List what a Hugging Face or Civitai address names with the catalog and download it; say why not
        otherwise."""
        try:
            entry = self.library.add_address(text)
        except InputError as error:
            self.download_label.setText(f"⚠ {error}")
            return None
        self.address.clear()
        self.refresh()
        self.select_entry(entry.id)
        self.download(entry)
        return entry

    def search_civitai(self) -> CivitaiSearch:
        """Open the Civitai search (the same dialog each time, its results kept); what it chooses downloads here."""
        if self.search_dialog is None:
            self.search_dialog = CivitaiSearch(self.library, self)
            self.search_dialog.chosen.connect(self.download_address)
        self.search_dialog.show()
        self.search_dialog.raise_()
        self.search_dialog.query.setFocus()
        return self.search_dialog

    def pause(self) -> None:
        if self.download_task is not None:
            self.download_label.setText("Pausing…")
            self.download_task.cancel()

    def cancel_download(self, entry: CatalogEntry | None) -> None:
        if entry is None:
            return
        if entry.id in self.waiting:
            self.waiting.remove(entry.id)
        if entry.id == self.downloading and self.download_task is not None:
            self._discard.add(entry.id)
            self.download_task.cancel()
        else:
            self.library.downloader.discard_partial(entry)
        self.refresh()

    def _next_download(self) -> None:
        if self.download_task is not None or not self.waiting:
            return
        entry_id = self.waiting.pop(0)
        self.downloading = entry_id
        library = self.library
        task = Task(lambda report, cancel: library.download(entry_id, report, cancel), self)
        task.progress.connect(self._download_progress)
        task.succeeded.connect(lambda model: self._download_ended(entry_id, f"Installed {model.name}."))
        task.cancelled.connect(lambda _: self._download_ended(entry_id, None))
        task.failed.connect(lambda message: self._download_ended(entry_id, f"⚠ {message}"))
        self.download_task = task
        self.bar.setValue(0)
        self.bar.show()
        self.download_label.setText(f"Starting {library.entry(entry_id).name}…")
        task.start()

    def _download_progress(self, progress) -> None:
        if self.downloading is None:
            return
        self._progress[self.downloading] = percent(progress)
        self.bar.setValue(percent(progress))
        name = self.library.entry(self.downloading).name
        self.download_label.setText(f"{name}: {describe_bytes(progress)}")
        for row in range(self.catalog_table.rowCount()):
            entry = self.catalog_table.item(row, 0).data(Qt.ItemDataRole.UserRole)
            if entry.id == self.downloading:
                if entry != self.library.entry(entry.id):  # an address planned since it was listed: its name, kind
                    self.refresh()  # and size are known now
                    return
                self.catalog_table.item(row, len(CATALOG_COLUMNS) - 1).setText(self.entry_status(entry))

    def _download_ended(self, entry_id: str, message: str | None) -> None:
        if self.closed:  # its end came after the app's: the bytes are kept, the library is closed
            return
        entry = self.library.entry(entry_id)
        if entry_id in self._discard:
            self._discard.discard(entry_id)
            self.library.downloader.discard_partial(entry)
            message = f"Cancelled {entry.name}; its partial files were deleted."
        elif message is None:
            message = f"Paused {entry.name}; Resume continues from {format_size(self.library.downloader.partial(entry))}."
        self.download_task.wait()
        self.download_task = None
        self.downloading = None
        self._progress.pop(entry_id, None)
        self.bar.hide()
        self.download_label.setText(message)
        self.refresh()
        if message.startswith("Installed"):
            self.models_changed.emit()
        self._next_download()

    def shutdown(self) -> None:
        """Closing the app: stop the download (its bytes are kept for the next start) and other work; what they
        report after this is let go (the library is closed next)."""
        self.closed = True
        self.waiting.clear()
        searching = self.search_dialog.task if self.search_dialog is not None else None
        for task in (self.download_task, self.side_task, self.hash_task, searching, *self.findChildren(Task)):
            if task is not None:
                task.cancel()
                task.wait(10_000)

    def _complete_earlier_records(self) -> None:
        """Models installed by an earlier version lack the hashes other tools' images name them by (reuse finds a
        renamed LoRA by them), and their trigger words; they are read once, in the background: about a second for
        each LoRA's hashes, its header and notes for its words (then the lists show them)."""
        library = self.library
        if library.lacking_hashes():
            self.hash_task = Task(lambda report, cancel: library.complete_hashes(cancel), self)
            self.hash_task.failed.connect(lambda message: log.warning("reading the models' hashes failed: %s",
                                                                      message))
            self.hash_task.start()
        if library.registry.unread_notes():
            notes = Task(lambda report, cancel: library.complete_notes(cancel), self)
            notes.succeeded.connect(lambda found: found and not self.closed and (self.refresh(),
                                                                                 self.models_changed.emit()))
            notes.failed.connect(lambda message: log.warning("reading the models' trigger words failed: %s", message))
            notes.finished.connect(notes.deleteLater)
            notes.start()

    # -- installed models -----------------------------------------------------------------

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import models", str(Path.home()),
                                                "Weights (*.safetensors);;All files (*)")
        if files:
            self.import_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a models folder (A1111, ComfyUI…)", str(Path.home()))
        if folder:
            self.import_paths([Path(folder)])

    def import_paths(self, paths: list[Path]) -> Task | None:
        """Import files and folders in the background (hashing large files takes a while)."""
        if self.side_task is not None:
            self.status.setText("Wait for the running import or verify to finish.")
            return None
        library = self.library

        def work(report, cancel):
            return [item for path in paths for item in library.import_path(path, on_progress=report, cancel=cancel)]

        return self._start_side_task(work, self._imported, "Importing")

    def sync_folders(self, asked: bool = False) -> Task | None:
        """Look through the linked folders for models added since (at start, in the background; `asked`: from the
        dialog, which then says when none came)."""
        library = self.library
        if self.side_task is not None or not library.registry.linked_folders():
            return None
        return self._start_side_task(lambda report, cancel: library.sync_folders(report, cancel),
                                     lambda items: self._synced(items, asked), "Looking through the linked folders")

    def _suggest_links(self) -> None:
        """With models installed and no folder linked (a library from before links): say where other tools keep
        models, found off the GUI thread, once the tab has nothing else to say."""
        registry = self.library.registry
        if registry.linked_folders() or not registry.list():
            return
        finding = Task(lambda _report, _cancel: find_tool_folders(), self)

        def found(folders) -> None:
            if folders and not self.closed and self.status.text() == DROP_HINT:  # nothing else said meanwhile
                self.status.setText(f"{folders[0].label}: Linked folders… uses them where they are, and installs "
                                    "the models saved there later.")

        finding.succeeded.connect(found)
        finding.finished.connect(finding.deleteLater)
        finding.start()

    def _synced(self, items, asked: bool) -> None:
        new = [item for item in items if item.status == ImportStatus.IMPORTED]
        if new:
            names = ", ".join(Path(item.path).name for item in new[:6]) + (" …" if len(new) > 6 else "")
            self.status.setText(f"{len(new)} new model{'s' if len(new) != 1 else ''} in the linked folders, "
                                f"installed: {names}.")
            self.models_changed.emit()
        else:
            self.status.setText("The linked folders hold no new model." if asked else "")

    def open_linked_folders(self) -> None:
        """The linked folders: added ones are linked and looked through at once, removed ones no longer."""
        registry, library = self.library.registry, self.library
        linked = registry.linked_folders()
        found = [(f"Add {folder.label}", folder.path) for folder in find_tool_folders(linked=linked)]
        dialog = FolderListDialog(
            "Linked model folders", "The models in these folders (A1111's models folder, ComfyUI's, a Hugging Face "
            "cache) are used where they are, and each folder is looked through at every start: a LoRA or checkpoint "
            "saved there since is installed then. A model removed here stays out of those looks.", linked,
            tuple(folder for folder in linked if not folder.is_dir()), library.check_linkable,
            ("Stop looking", "Its models stay installed; models saved there later are not"), self,
            ("Found where other tools keep their models:", found))
        if not dialog.exec():
            return
        for folder in linked:
            if folder not in dialog.folders():
                registry.unlink_folder(folder)
        for folder in dialog.added:
            library.link_folder(folder)
        self.sync_folders(asked=True)

    def _imported(self, items) -> None:
        imported = [i for i in items if i.status == ImportStatus.IMPORTED]
        problems = [f"{Path(i.path).name}: {i.status}" + (f" — {i.reason}" if i.reason else "")
                    for i in items if i.status not in (ImportStatus.IMPORTED, ImportStatus.ALREADY)]
        text = f"Imported {len(imported)} model{'s' if len(imported) != 1 else ''}"
        already = sum(i.status == ImportStatus.ALREADY for i in items)
        if already:
            text += f", {already} already installed"
        self.status.setText(text + "." + ("\n" + "\n".join(problems[:8]) if problems else ""))
        self.models_changed.emit()

    def verify(self, model: InstalledModel | None) -> Task | None:
        if model is None or self.side_task is not None:
            return None
        library = self.library

        def done(results) -> None:
            problems = [p for result in results for p in result.problems]
            self.status.setText(f"{model.name}: all files match their recorded sha256." if not problems else
                                f"⚠ {model.name}: {'; '.join(problems)}. Download or import it again.")

        return self._start_side_task(lambda report, cancel: library.verify(model.id, report, cancel), done, "Verifying")

    def remove(self, model: InstalledModel | None, ask: bool = True) -> bool:
        """Remove a model unless a running or queued job needs it; returns whether it was removed."""
        if model is None:
            return False
        if str(Path(model.path)) in self.in_use():
            self.status.setText(f"⚠ {model.name} is used by a running or queued job. Wait for it to finish or "
                                "cancel it, then remove the model.")
            return False
        what = ("Its files will be deleted." if model.owned else
                "Only the entry is removed; the files stay where they are (they were imported by reference).")
        if ask and QMessageBox.question(self, "Remove model", f"Remove {model.name}? {what}") != \
                QMessageBox.StandardButton.Yes:
            return False
        freed = self.library.remove(model.id)
        self.status.setText(f"Removed {model.name}" + (f"; {format_size(freed)} freed." if freed else "."))
        self.refresh()
        self.models_changed.emit()
        return True

    def edit_words(self, model: InstalledModel | None) -> TriggerWordsDialog | None:
        """Open the editor of a LoRA's or embedding's trigger words and suggested weight; saving records them and
        refreshes the Generate tab's list."""
        if model is None or model.kind not in NOTED_KINDS:
            return None
        if self.words_dialog is not None:
            self.words_dialog.deleteLater()  # its look-up, if running, is the tab's and ends on its own
        dialog = self.words_dialog = TriggerWordsDialog(model, self.library.civitai_notes, self)

        def save() -> None:
            self.library.registry.set_notes(model.id, dialog.words(), dialog.weight())
            self.status.setText(f"Saved the trigger words of {model.name}.")
            self.refresh()
            self.models_changed.emit()

        dialog.accepted.connect(save)
        dialog.open()
        return dialog

    def _reveal(self) -> None:
        model = self._selected_model()
        if model is not None:
            path = Path(model.path)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path if path.is_dir() else path.parent)))

    def _start_side_task(self, work, on_done, verb: str) -> Task:
        task = Task(work, self)
        task.progress.connect(lambda p: self.status.setText(f"{verb}: {describe_bytes(p)}"))
        task.succeeded.connect(lambda result: self.closed or on_done(result))  # after closing: nothing to show
        task.failed.connect(lambda message: self.status.setText(f"⚠ {message}"))
        task.cancelled.connect(lambda _: self.status.setText(f"{verb} stopped."))
        task.finished.connect(self._side_task_done)
        self.side_task = task
        self._update_buttons()
        task.start()
        return task

    def _side_task_done(self) -> None:
        self.side_task = None
        if not self.closed:  # an import stopped by closing the app ends after the library is closed
            self.refresh()

    # -- drag and drop --------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        urls = event.mimeData().urls()
        paths = [Path(url.toLocalFile()) for url in urls if url.isLocalFile()]
        event.acceptProposedAction()
        if paths:
            self.import_paths(paths)
        for url in urls:  # a link dragged from a browser: a model on Hugging Face or Civitai
            if url.scheme() in WEB_SCHEMES:
                self.download_address(url.toString())
