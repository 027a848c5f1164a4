"""First run: show the hardware, offer what to download, or import files the user already has — picked, or the
models folders of the other tools found on this computer (core/tool_folders.py)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog, QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget,
)

from hypersd_desktop.core.vocab import ModelKind
from hypersd_desktop.models.catalog import format_size
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.core.tool_folders import ToolFolder, find_tool_folders
from hypersd_desktop.ui.tasks import Task, describe_bytes, percent

OFFERS = (
    ("SD1.5 + Hyper-SD unified LoRA", ("sd15", "hyper-sd15-1step-lora"), "fast on any GPU, 512 × 512"),
    ("SDXL + Hyper-SDXL unified LoRA", ("sdxl", "hyper-sdxl-1step-lora"), "best quality, 1024 × 1024, 8 GB+ VRAM"),
)


class FirstRunDialog(QDialog):
    """Closes with accept() once a base model is installed; the user may also skip."""

    def __init__(self, library: ModelLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self._thread: Task | None = None
        self.setWindowTitle("Welcome to HyperSD Desktop")
        self.hardware = QLabel("Detecting the GPU…")
        self.status = QLabel("", wordWrap=True)
        self.bar = QProgressBar()
        self.bar.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Set up a model</h2>Nothing is installed yet. Choose what to download, or use "
                                "files you already have (this works offline)."))
        layout.addWidget(self.hardware)
        self.offer_buttons = []
        for title, ids, note in OFFERS:
            size = sum(library.catalog.get(i).size for i in ids)
            button = QPushButton(f"Download {title} — {format_size(size)}\n{note}")
            button.clicked.connect(lambda _=False, ids=ids: self.download(ids))
            layout.addWidget(button)
            self.offer_buttons.append(button)
        self.import_button = QPushButton("Import files I already have…")
        self.import_button.clicked.connect(self._choose_files)
        layout.addWidget(self.import_button)
        self.found_label = QLabel("Or use the models another tool keeps on this computer, where they are:",
                                  visible=False)
        self.found_label.setToolTip("Nothing is copied; models saved in that folder later are installed at the "
                                    "next start (the Models tab's Linked folders…)")
        layout.addWidget(self.found_label)
        self.found_layout = QVBoxLayout()
        layout.addLayout(self.found_layout)
        self.found_buttons: list[QPushButton] = []
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        row = QHBoxLayout()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self._cancel)
        skip = QPushButton("Skip for now")
        skip.clicked.connect(self.reject)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        row.addWidget(skip)
        layout.addLayout(row)
        self.finding = Task(lambda _report, _cancel: find_tool_folders(linked=library.registry.linked_folders()),
                            self)  # a walk of a few folders: off the GUI thread all the same (a slow drive)
        self.finding.succeeded.connect(self._found)
        self.finding.start()

    def _found(self, folders: list[ToolFolder]) -> None:
        """Offer each models folder of another tool found on this computer."""
        for folder in folders:
            button = QPushButton(f"Use {folder.label}")
            button.clicked.connect(lambda _=False, path=folder.path: self.import_paths([path]))
            button.setEnabled(self._thread is None or not self._thread.isRunning())
            self.found_layout.addWidget(button)
            self.found_buttons.append(button)
        self.found_label.setVisible(bool(folders))
        if folders:
            self.adjustSize()  # shown already: grown to hold them

    def set_hardware(self, devices: tuple[str, ...]) -> None:
        names = {"cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (Metal)", "cpu": "CPU only — generation will be slow"}
        self.hardware.setText("Detected: " + ", ".join(names.get(d, d) for d in devices))

    def hardware_unknown(self) -> None:
        """No worker to ask: downloads and imports still work; the banner says why generation cannot."""
        self.hardware.setText("The GPU could not be detected: generation is not available yet (see the message in "
                              "the window). Models can be downloaded or imported now.")

    def import_paths(self, paths: list[Path]) -> Task:
        """Import in the background (a checkpoint is hashed once, which takes a while); the dialog
        closes by itself once a base model is installed."""
        library = self.library

        def work(report, cancel) -> list:
            return [item for path in paths for item in library.import_path(path, on_progress=report, cancel=cancel)]

        def imported(items) -> None:
            self.status.setText("\n".join(f"{Path(i.path).name}: {i.status}" + (f" ({i.reason})" if i.reason else "")
                                          for i in items))

        return self._start(work, "Import stopped; nothing half-imported was kept.", imported)

    def _choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Choose model files", str(Path.home()), "Weights (*.safetensors)")
        if paths:
            self.import_paths([Path(p) for p in paths])

    def download(self, entry_ids: tuple[str, ...]) -> Task:
        library = self.library

        def work(report, cancel) -> None:
            for entry_id in entry_ids:
                library.download(entry_id, report, cancel)

        return self._start(work, "Download stopped; what was fetched is kept, and downloading again continues "
                                 "from it.", None)

    def _start(self, work, stopped: str, on_success) -> Task:
        self._thread = Task(work, self)
        self._thread.progress.connect(self._progress)
        self._thread.failed.connect(lambda message: self.status.setText(f"⚠ {message}"))
        self._thread.cancelled.connect(lambda _: self.status.setText(stopped))
        if on_success is not None:
            self._thread.succeeded.connect(on_success)
        self._thread.finished.connect(self._task_done)
        for button in (*self.offer_buttons, self.import_button, *self.found_buttons):
            button.setEnabled(False)
        self.bar.show()
        self.cancel_button.show()
        self._thread.start()
        return self._thread

    def _progress(self, progress) -> None:
        self.bar.setMaximum(1000)
        self.bar.setValue(percent(progress))
        self.status.setText(f"{progress.label}: {describe_bytes(progress)}")

    def _cancel(self) -> None:
        if self._thread is not None:
            self._thread.cancel()

    def _task_done(self) -> None:
        self.cancel_button.hide()
        for button in (*self.offer_buttons, self.import_button, *self.found_buttons):
            button.setEnabled(True)
        if self.library.registry.list(kind=ModelKind.BASE):
            self.accept()

    def done(self, result: int) -> None:
        if self._thread is not None and self._thread.isRunning():
            self._thread.cancel()
            self._thread.wait()
        self.finding.wait()
        super().done(result)
