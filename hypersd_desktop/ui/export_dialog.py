"""Export images to a folder: naming template with a live preview, format, metadata, collisions."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
    QPlainTextEdit, QProgressBar, QPushButton, QRadioButton, QSpinBox, QVBoxLayout, QWidget,
)

from hypersd_desktop.core.errors import AppError, InputError
from hypersd_desktop.core.files import typed_path
from hypersd_desktop.core.settings import load_settings, save_settings
from hypersd_desktop.core.vocab import CollisionRule, ExportFormat
from hypersd_desktop.gallery.export import FIELDS, ExportOptions, export_formats, export_images, plan_destination
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.store import ImageQuery
from hypersd_desktop.ui.tasks import Task, describe_items, percent

PREVIEW_COUNT = 5
COLLISION_LABELS = {"number": "Add a number (name-2.png)", "skip": "Skip the image", "overwrite": "Overwrite"}


class ExportDialog(QDialog):
    """Exports `ids` (a selection) or every image of `query`; the user picks which when both apply."""

    def __init__(self, gallery: Gallery, query: ImageQuery, ids: list[int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.query = query
        self.ids = ids
        self.task: Task | None = None
        self.result_target: Path | None = None
        settings = load_settings(gallery.paths)
        self.setWindowTitle("Export images")
        self.resize(640, 520)

        total = gallery.store.count(query)
        self.use_selection = QRadioButton(f"The {len(ids)} selected images")
        self.use_query = QRadioButton(f"All {total:,} images of the current search")
        (self.use_selection if ids else self.use_query).setChecked(True)
        self.use_selection.setEnabled(bool(ids))
        self.folder = QLineEdit(settings.export_dir or str(Path.home() / "Pictures" / "HyperSD export"))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.template = QLineEdit(settings.export_template)
        self.template.setToolTip("Fields: " + " ".join(f"{{{name}}}" for name in FIELDS if name != "picture") +
                                 "\n{prompt:40} keeps 40 characters, {index:4} pads to 4 digits, / makes folders.")
        self.format = QComboBox()
        self.format.addItems(export_formats())
        self.quality = QSpinBox(minimum=1, maximum=100, value=92, suffix=" %")
        self.keep_metadata = QCheckBox("Keep the generation parameters in the files")
        self.keep_metadata.setChecked(True)
        self.collision = QComboBox()
        for rule in CollisionRule.values():
            self.collision.addItem(COLLISION_LABELS[rule], rule)
        self.collision.setCurrentIndex(CollisionRule.values().index(CollisionRule.NUMBER))
        self.preview = QPlainTextEdit(readOnly=True)
        self.preview.setMaximumHeight(110)
        self.bar = QProgressBar(maximum=1000)
        self.bar.hide()
        self.status = QLabel("", wordWrap=True)

        form = QFormLayout()
        form.addRow("Export", self.use_selection)
        form.addRow("", self.use_query)
        form.addRow("To folder", folder_row)
        form.addRow("Name files by", self.template)
        form.addRow("First files", self.preview)
        form.addRow("Format", self.format)
        form.addRow("Quality", self.quality)
        form.addRow("", self.keep_metadata)
        form.addRow("If a file exists", self.collision)
        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.open_button = self.buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.open_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self._preview_timer = QTimer(self, singleShot=True, interval=120)
        self._preview_timer.timeout.connect(self.update_preview)
        for signal in (self.template.textChanged, self.folder.textChanged, self.format.currentIndexChanged,
                       self.collision.currentIndexChanged, self.use_selection.toggled):
            signal.connect(lambda *_: self._preview_timer.start())
        self.format.currentIndexChanged.connect(
            lambda: self.quality.setEnabled(self.format.currentText() != ExportFormat.PNG))
        self.quality.setEnabled(False)
        self.export_button.clicked.connect(self.start)
        self.open_button.clicked.connect(self.open_folder)
        self.close_button.clicked.connect(self.reject)
        self.update_preview()

    # -- choices --------------------------------------------------------------------------

    def options(self) -> ExportOptions:
        return ExportOptions(template=self.template.text().strip(), format=self.format.currentText(),
                             quality=self.quality.value(), keep_metadata=self.keep_metadata.isChecked(),
                             collision=self.collision.currentData())

    def target(self) -> Path:
        """The folder typed or chosen (`InputError` when there is none, or it is not a whole path)."""
        path = typed_path(self.folder.text())
        if path is None:
            raise InputError("Choose the folder to export to.")
        return path

    def _source(self) -> tuple[ImageQuery, int]:
        if self.use_selection.isChecked() and self.ids:
            query = ImageQuery(ids=tuple(self.ids), oldest_first=self.query.oldest_first)
        else:
            query = self.query
        return query, self.gallery.store.count(query)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def update_preview(self) -> None:
        """The first paths the export would write, with collisions resolved as they would be."""
        try:
            options = self.options()
            options.validate()
            query, count = self._source()
            target = self.target().resolve()
            claimed: set[str] = set()
            lines = []
            for index, record in enumerate(self.gallery.store.query(query, PREVIEW_COUNT).images, start=1):
                destination, status = plan_destination(record, target, options, index, count, claimed)
                claimed.add(str(destination).lower())
                lines.append(destination.relative_to(target).as_posix() + (f"   ({status})" if status else ""))
            if count > PREVIEW_COUNT:
                lines.append(f"… and {count - PREVIEW_COUNT:,} more")
            self.preview.setPlainText("\n".join(lines) or "(nothing to export)")
            self.export_button.setEnabled(count > 0 and self.task is None)
            self.status.setText("")
        except AppError as error:
            self.preview.setPlainText("")
            self.status.setText(f"⚠ {error}")
            self.export_button.setEnabled(False)

    # -- running --------------------------------------------------------------------------

    def start(self) -> Task | None:
        options, target = self.options(), self.target()
        query, count = self._source()
        settings = load_settings(self.gallery.paths).replace(export_dir=str(target), export_template=options.template)
        save_settings(settings, self.gallery.paths)
        store = self.gallery.store
        self.task = Task(lambda report, cancel: export_images(store.iterate(query), target, options, count,
                                                              report, cancel), self)
        self.task.progress.connect(self._progress)
        self.task.succeeded.connect(self._done)
        self.task.cancelled.connect(lambda message: self._ended(f"Stopped: {message}."))
        self.task.failed.connect(lambda message: self._ended(f"⚠ {message}"))
        self.bar.setValue(0)
        self.bar.show()
        self.export_button.setEnabled(False)
        self.close_button.setText("Cancel")
        self.result_target = target
        self.status.setText(f"Exporting {count:,} images…")
        self.task.start()
        return self.task

    def _progress(self, progress) -> None:
        self.bar.setValue(percent(progress))
        self.status.setText(describe_items(progress))

    def _done(self, result) -> None:
        failed = [entry for entry in result.entries if entry.status.startswith("failed")]
        skipped = sum(entry.status.startswith("skipped") for entry in result.entries)
        text = f"Exported {result.written:,} images to {self.result_target}."
        if skipped:
            text += f" {skipped} skipped (the file existed)."
        if failed:
            text += f" {len(failed)} failed, first: {failed[0].source}: {failed[0].status}."
        self._ended(text + f" Manifest: {result.manifest_csv.name}.")
        self.bar.setValue(1000)

    def _ended(self, text: str) -> None:
        self.task = None
        self.status.setText(text)
        self.close_button.setText("Close")
        self.close_button.setEnabled(True)
        self.export_button.setEnabled(True)
        self.open_button.setEnabled(self.result_target is not None and self.result_target.exists())

    def open_folder(self) -> None:
        if self.result_target is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.result_target)))

    def reject(self) -> None:
        if self.task is not None:  # Cancel while running stops the export (after the image being
            self.task.cancel()     # written, which on a slow drive may take a while); Close then closes
            self.status.setText("Stopping after the image being written…")
            self.close_button.setEnabled(False)
            return
        super().reject()
