"""Settings → Compute runtime: see the hardware, then install, switch, update, repair or remove the runtime.

The work runs in a `Task` (progress in bytes, Cancel); `stop_worker` is called before anything
touches the runtime's folder and `runtime_changed` is emitted after, so the app restarts its
worker in whatever is there now.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton, QVBoxLayout, QWidget,
)

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.runtime import hardware, locks
from hypersd_desktop.runtime.install import RuntimeInstaller, Sources, runtime_dir, status
from hypersd_desktop.ui.tasks import Task, describe_bytes, percent


class RuntimeDialog(QDialog):
    runtime_changed = Signal()

    def __init__(self, paths: AppPaths, parent: QWidget | None = None, stop_worker: Callable[[], None] | None = None,
                 sources: Sources = Sources(), verify=None) -> None:
        """`sources` and `verify` go to the installer (defaults: this app's parts, the worker's handshake)."""
        super().__init__(parent)
        self.paths = paths
        self.sources = sources
        self.verify = verify
        self.stop_worker = stop_worker or (lambda: None)
        self.task: Task | None = None
        self.setWindowTitle("Compute runtime")
        self.setMinimumWidth(560)
        self.offered = {variant: locks.load_lock(variant) for variant in locks.available_variants()}
        self.state = QLabel(wordWrap=True)
        self.hardware = QLabel("Detecting the GPU…", wordWrap=True)
        self.variant = QComboBox()
        self.notes = QLabel(wordWrap=True)
        self.bar = QProgressBar(maximum=1000)
        policy = self.bar.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the dialog is laid out once, with room for the progress
        self.bar.setSizePolicy(policy)
        self.bar.hide()
        self.message = QLabel(wordWrap=True)
        self.message.setMinimumHeight(3 * self.message.fontMetrics().lineSpacing())
        self.install_button = QPushButton("Install")
        self.update_button = QPushButton("Update")
        self.repair_button = QPushButton("Repair")
        self.remove_button = QPushButton("Remove")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        close = QPushButton("Close")
        self.install_button.clicked.connect(lambda: self.install(self.variant.currentData()))
        self.update_button.clicked.connect(self.update_runtime)
        self.repair_button.clicked.connect(lambda: self.install(status(self.paths).manifest.variant, repair=True))
        self.remove_button.clicked.connect(self._ask_remove)
        self.cancel_button.clicked.connect(self.cancel)
        close.clicked.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Generation runs in a compute runtime</b>: Python with torch, built for this "
                                "machine's GPU, installed once into the app's data folder.", wordWrap=True))
        layout.addWidget(self.state)
        layout.addWidget(self.hardware)
        layout.addWidget(self.variant)
        layout.addWidget(self.notes)
        layout.addWidget(self.bar)
        layout.addWidget(self.message)
        buttons = QHBoxLayout()
        for button in (self.install_button, self.update_button, self.repair_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self._fill_variants("")
        self.variant.currentIndexChanged.connect(self.refresh)
        self.refresh()
        self.detection = Task(lambda report, cancel: hardware.detect(), self)
        self.detection.succeeded.connect(self._detected)
        self.detection.failed.connect(lambda message: self.hardware.setText(f"The hardware could not be read: {message}"))
        self.detection.start()

    # -- what is shown ---------------------------------------------------------------------

    def _fill_variants(self, recommended: str) -> None:
        self.variant.clear()
        for variant, lock in self.offered.items():
            mark = " — recommended" if variant == recommended else ""
            self.variant.addItem(f"{locks.VARIANT_TITLES[variant]}: {lock.download_bytes / 2**20:,.0f} MiB to download"
                                 f"{mark}", variant)
        index = self.variant.findData(recommended)
        if index >= 0:
            self.variant.setCurrentIndex(index)

    def _detected(self, found: hardware.Hardware) -> None:
        choice = hardware.recommend(found, {variant: lock.needs for variant, lock in self.offered.items()})
        self.hardware.setText("This machine: " + "; ".join(found.describe()) + f"\n{choice.reason}")
        self.notes.setText("\n".join(choice.notes))
        installed = status(self.paths).manifest
        self._fill_variants(choice.variant)
        if installed is not None:
            self.variant.setCurrentIndex(max(0, self.variant.findData(installed.variant)))

    def refresh(self) -> None:
        current = status(self.paths)
        self.state.setText(current.message + (f"\nFolder: {runtime_dir(self.paths)}" if current.manifest else ""))
        busy = self.task is not None and self.task.isRunning()
        chosen = self.variant.currentData()
        same = current.manifest is not None and current.manifest.variant == chosen and current.state != "broken"
        self.install_button.setText("Installed" if same else f"Switch to {chosen}" if current.manifest else "Install")
        self.install_button.setEnabled(not busy and chosen is not None and not same)
        self.update_button.setVisible(current.state == "outdated")
        self.update_button.setEnabled(not busy)
        self.repair_button.setEnabled(not busy and current.manifest is not None)
        self.remove_button.setEnabled(not busy and current.state != "none")
        self.cancel_button.setVisible(busy)

    # -- the actions -------------------------------------------------------------------------

    def install(self, variant: str, repair: bool = False) -> Task:
        verb = "Repairing" if repair else "Installing"
        return self._start(lambda installer: installer.install(variant, repair=repair), f"{verb} the {variant} runtime…")

    def update_runtime(self) -> Task:
        return self._start(lambda installer: installer.update(), "Updating the runtime for this version of the app…")

    def _ask_remove(self) -> None:
        answer = QMessageBox.question(self, "Remove the compute runtime",
                                      "Remove the compute runtime? Generation stops working until one is installed "
                                      "again. Models and images are kept.")
        if answer == QMessageBox.StandardButton.Yes:
            self.remove()

    def remove(self) -> Task:
        paths = self.paths
        return self._start(lambda installer: RuntimeInstaller.remove(paths), "Removing the runtime…", installer=False)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _start(self, action, text: str, installer: bool = True) -> Task:
        paths, sources, verify = self.paths, self.sources, self.verify
        self.stop_worker()

        def work(report, cancel):
            return action(RuntimeInstaller(paths, sources, report, cancel, verify) if installer else None)

        self.task = Task(work, self)
        self.task.progress.connect(self._progress)
        self.task.succeeded.connect(lambda _: self.message.setText("Done. " + status(self.paths).message))
        self.task.failed.connect(lambda message: self.message.setText(f"⚠ {message}"))
        self.task.cancelled.connect(lambda message: self.message.setText(f"Stopped: {message}."))
        self.task.finished.connect(self._finished)
        self.message.setText(text)
        self.bar.setValue(0)
        self.bar.setVisible(installer)
        self.task.start()
        self.refresh()
        return self.task

    def _progress(self, progress) -> None:
        self.bar.setValue(percent(progress))
        self.message.setText(f"{progress.item}: {describe_bytes(progress)}")

    def _finished(self) -> None:
        self.refresh()
        self.runtime_changed.emit()

    def done(self, result: int) -> None:
        if self.task is not None and self.task.isRunning():
            answer = QMessageBox.question(self, "Stop the install?", "Stop the runtime install? What was downloaded "
                                          "is kept, and installing again resumes.")
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.task.cancel()
            self.task.wait()
        if self.detection.isRunning():
            self.detection.wait()
        super().done(result)
