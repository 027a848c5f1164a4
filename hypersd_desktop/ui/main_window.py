"""The main window: the Generate tab (prompt, model and recipe controls, live preview, results,
queue), the Gallery tab and the Models tab.

Widgets build a `GenerationRequest` and hand it to the worker bridge; they never touch torch.
Images dropped on the window offer to reuse their settings or to import them; model files and
folders dropped on it are imported into the model library.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QListWidget,
    QListWidgetItem, QMainWindow, QMessageBox, QPlainTextEdit, QPushButton, QSizePolicy, QSpinBox, QSplitter,
    QTableWidget, QTableWidgetItem, QTabWidget, QToolButton, QVBoxLayout, QWidget,
)

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.settings import Settings, save_settings
from hypersd_desktop.engine.planning import plan
from hypersd_desktop.engine.recipes import ARCHITECTURE_NAMES, RECIPES_BY_ID, TCD
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.formats import ImageMetadata
from hypersd_desktop.gallery.gallery import IMAGE_SUFFIXES, Gallery, read_metadata
from hypersd_desktop.gallery.store import ImageRecord
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.banner import Banner
from hypersd_desktop.ui.generate_form import MAX_SEED, fill_hyper_box, fill_sizes, select_size
from hypersd_desktop.ui.gallery_browser import GalleryBrowser
from hypersd_desktop.ui.model_manager import ModelManager
from hypersd_desktop.worker.bridge import WorkerBridge

RESULTS_KEPT = 40


class MainWindow(QMainWindow):
    """The app's main window. `library` lists models; `bridge` runs jobs in the worker process."""

    image_saved = Signal(str)  # path of a finished image

    def __init__(self, library: ModelLibrary, bridge: WorkerBridge, settings: Settings,
                 gallery: Gallery | None = None) -> None:
        super().__init__()
        self.library = library
        self.bridge = bridge
        self.settings = settings
        self.gallery = gallery or Gallery(library.paths)
        self._job_ids: list[int] = []
        self._active_job: int | None = None
        self._load_s = 0.0  # seconds the running job spent loading its model (from its first image)
        self.setWindowTitle("HyperSD Desktop")
        self.resize(1280, 800)
        self._build()
        self._connect()
        self.reload_models()
        self._restore_choices()
        self._update_recipe_controls()

    # -- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        self.prompt = QPlainTextEdit(placeholderText="Describe the image… (Ctrl+Enter to generate)")
        self.negative = QPlainTextEdit(placeholderText="Negative prompt (only with a CFG recipe)")
        for editor, height in ((self.prompt, 110), (self.negative, 60)):
            editor.setMaximumHeight(height)
            editor.setTabChangesFocus(True)
        self.model_box = QComboBox()
        self.hyper_box = QComboBox()
        self.steps = QSpinBox(minimum=1, maximum=12, value=2)
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=15.0, singleStep=0.5, value=0.0, decimals=1)
        self.eta = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.1, value=1.0, decimals=2)
        self.seed = QSpinBox(minimum=0, maximum=MAX_SEED, value=random.randrange(MAX_SEED))
        self.seed_lock = QCheckBox("Lock")
        self.seed_random = QToolButton(text="Random")
        self.seed_random.setToolTip("New random seed")
        seed_row = QHBoxLayout()
        for widget in (self.seed, self.seed_lock, self.seed_random):
            seed_row.addWidget(widget)
        self.size_box = QComboBox()
        self.batch_size = QSpinBox(minimum=1, maximum=8, value=1)
        self.batch_count = QSpinBox(minimum=1, maximum=100, value=1)
        self.styles = QTableWidget(0, 2)
        self.styles.setHorizontalHeaderLabels(["Style LoRA", "Weight"])
        self.styles.horizontalHeader().setStretchLastSection(True)
        self.styles.setMaximumHeight(110)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.latest_wins = QCheckBox("Latest wins (replace queued jobs)")
        self.latest_wins.setChecked(self.settings.latest_wins)

        form = QFormLayout()
        form.addRow("Base model", self.model_box)
        form.addRow("Hyper-SD", self.hyper_box)
        form.addRow("Steps", self.steps)
        form.addRow("Guidance", self.guidance)
        form.addRow("Eta (TCD)", self.eta)
        form.addRow("Seed", seed_row)
        form.addRow("Size", self.size_box)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Batch count", self.batch_count)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        controls = QVBoxLayout()
        controls.addWidget(QLabel("Prompt"))
        controls.addWidget(self.prompt)
        controls.addWidget(QLabel("Negative prompt"))
        controls.addWidget(self.negative)
        controls.addLayout(form)
        controls.addWidget(self.styles)
        controls.addWidget(self.latest_wins)
        controls.addLayout(buttons)
        controls.addStretch(1)
        left = QWidget()
        left.setLayout(controls)
        left.setMinimumWidth(360)

        self.warnings = Banner("warning")
        self.errors = Banner("error")
        self.preview = QLabel("Type a prompt and press Ctrl+Enter", alignment=Qt.AlignmentFlag.AlignCenter)
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.preview.setMinimumSize(320, 320)
        self.preview.setStyleSheet("QLabel { background: palette(base); border-radius: 6px; }")
        self.timing = QLabel("", wordWrap=True)  # a long message wraps; the window keeps its width
        self.results = QListWidget(viewMode=QListWidget.ViewMode.IconMode, flow=QListWidget.Flow.LeftToRight)
        self.results.setIconSize(QSize(96, 96))
        self.results.setFixedHeight(124)
        self.results.setWrapping(False)
        self.queue = QListWidget()
        self.queue.setMaximumHeight(90)
        queue_buttons = QHBoxLayout()
        self.queue_up, self.queue_down, self.queue_remove = (QToolButton(text=t) for t in ("▲", "▼", "✕"))
        for button, tip in ((self.queue_up, "Move up"), (self.queue_down, "Move down"), (self.queue_remove, "Remove")):
            button.setToolTip(tip)
            queue_buttons.addWidget(button)
        queue_buttons.addStretch(1)
        center = QVBoxLayout()
        center.addWidget(self.errors)
        center.addWidget(self.warnings)
        center.addWidget(self.preview, 1)
        center.addWidget(self.timing)
        center.addWidget(QLabel("Latest results"))
        center.addWidget(self.results)
        center.addWidget(QLabel("Queue"))
        center.addWidget(self.queue)
        center.addLayout(queue_buttons)
        right = QWidget()
        right.setLayout(center)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        self.browser = GalleryBrowser(self.gallery)
        self.models = ModelManager(self.library, self._paths_in_use)
        self.tabs = QTabWidget()
        self.generate_page = splitter
        self.tabs.addTab(splitter, "&Generate")
        self.tabs.addTab(self.browser, "G&allery")
        self.tabs.addTab(self.models, "&Models")
        self.setCentralWidget(self.tabs)
        self.setAcceptDrops(True)

        self.device_label = QLabel("Starting the generation worker…")
        self.memory_label = QLabel("")
        self.statusBar().addWidget(self.device_label)
        self.statusBar().addPermanentWidget(self.memory_label)

        menu = self.menuBar().addMenu("&File")
        self.import_action = QAction("&Import models…", self)
        self.import_images_action = QAction("Import &images from a folder…", self)
        self.batch_action = QAction("&Batch job…", self, shortcut=QKeySequence("Ctrl+B"))
        self.export_action = QAction("&Export images…", self, shortcut=QKeySequence("Ctrl+E"))
        self.settings_action = QAction("&Settings…", self, shortcut=QKeySequence("Ctrl+,"))
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (self.import_action, self.import_images_action, self.batch_action, self.export_action,
                       self.settings_action, quit_action):
            menu.addAction(action)
        view = self.menuBar().addMenu("&View")
        self.find_action = QAction("&Search the gallery", self, shortcut=QKeySequence.StandardKey.Find)
        view.addAction(self.find_action)
        for number, title in enumerate(("&Generate", "G&allery", "&Models")):
            action = QAction(title, self, shortcut=QKeySequence(f"Ctrl+{number + 1}"))
            action.triggered.connect(lambda _=False, n=number: self.tabs.setCurrentIndex(n))
            view.addAction(action)

    def _connect(self) -> None:
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.generate)
        QShortcut(QKeySequence("Ctrl+Enter"), self, activated=self.generate)
        QShortcut(QKeySequence("Escape"), self.generate_page, activated=self.cancel,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.seed_random.clicked.connect(lambda: self.seed.setValue(random.randrange(MAX_SEED)))
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.hyper_box.currentIndexChanged.connect(self._update_recipe_controls)
        self.steps.valueChanged.connect(self._update_recipe_controls)
        self.guidance.valueChanged.connect(self._update_recipe_controls)
        self.queue_up.clicked.connect(lambda: self._move_queued(-1))
        self.queue_down.clicked.connect(lambda: self._move_queued(1))
        self.queue_remove.clicked.connect(self._remove_queued)
        self.import_action.triggered.connect(self.import_models)
        self.import_images_action.triggered.connect(self.browser.choose_import_folder)
        self.export_action.triggered.connect(self._open_export)
        self.batch_action.triggered.connect(self.open_batch)
        self.find_action.triggered.connect(self._find)
        self.browser.reuse_requested.connect(self.reuse_record)
        self.browser.status.connect(lambda text: self.statusBar().showMessage(text, 3000))
        self.models.models_changed.connect(self.reload_models)
        self._gallery_timer = QTimer(self, singleShot=True, interval=250)
        self._gallery_timer.timeout.connect(self.browser.image_added)
        self.image_saved.connect(lambda _: self._gallery_timer.start())
        self.bridge.ready.connect(self._worker_ready)
        self.bridge.started.connect(self._job_started)
        self.bridge.progress.connect(self._job_progress)
        self.bridge.image_ready.connect(self._image_ready)
        self.bridge.finished.connect(self._job_finished)
        self.bridge.batch_finished.connect(self._batch_finished)
        self.bridge.failed.connect(self._job_failed)
        self.bridge.queue_changed.connect(self._queue_changed)
        self.bridge.restarted.connect(lambda _: self.device_label.setText("Generation worker restarted"))
        self.bridge.unavailable.connect(self._worker_unavailable)

    # -- models ---------------------------------------------------------------------------

    def reload_models(self) -> None:
        """Refill the model lists from the library (after a download or import)."""
        current = self.model_box.currentData()
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for model in self.library.registry.list(kind="base"):
            label = f"{model.name}  ({ARCHITECTURE_NAMES.get(model.architecture or '', '?')})"
            self.model_box.addItem(label, model)
        self.model_box.blockSignals(False)
        if current is not None:
            index = next((i for i in range(self.model_box.count()) if self.model_box.itemData(i).id == current.id), 0)
            self.model_box.setCurrentIndex(index)
        self._model_changed()

    def current_model(self) -> InstalledModel | None:
        return self.model_box.currentData()

    def _model_changed(self) -> None:
        model = self.current_model()
        architecture = model.architecture if model else "sd15"
        previous = self.hyper_box.currentData()
        self.hyper_box.blockSignals(True)
        installed = fill_hyper_box(self.hyper_box, self.library, architecture)
        self.hyper_box.blockSignals(False)
        pick = next((i for i in range(1, self.hyper_box.count())
                     if previous is not None and self.hyper_box.itemData(i).id == previous.id), 1 if installed else 0)
        self.hyper_box.setCurrentIndex(pick)
        fill_sizes(self.size_box, architecture)
        self.styles.setRowCount(0)
        for lora in self.library.registry.list(kind="lora", architecture=architecture):
            if lora.recipe:
                continue
            row = self.styles.rowCount()
            self.styles.insertRow(row)
            item = QTableWidgetItem(lora.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, lora)
            self.styles.setItem(row, 0, item)
            weight = QDoubleSpinBox(minimum=-2.0, maximum=2.0, singleStep=0.1, value=0.8)
            self.styles.setCellWidget(row, 1, weight)
        self._update_recipe_controls()

    def _update_recipe_controls(self) -> None:
        hyper = self.hyper_box.currentData()
        recipe = RECIPES_BY_ID.get(hyper.recipe) if hyper is not None else None
        uses_guidance = recipe is None or recipe.uses_guidance
        self.guidance.setEnabled(uses_guidance)
        self.negative.setEnabled(uses_guidance and self.guidance.value() > 1.0)
        self.eta.setEnabled(recipe is not None and recipe.scheduler == TCD)
        if recipe is not None and not uses_guidance and self.guidance.value() != 0.0:
            self.guidance.setValue(0.0)
        if recipe is not None and recipe.uses_guidance and self.guidance.value() < recipe.guidance_range[0]:
            self.guidance.setValue(recipe.guidance)
        if recipe is not None and not recipe.unified and recipe.steps[0] == recipe.steps[1]:
            self.steps.blockSignals(True)
            self.steps.setValue(recipe.default_steps)
            self.steps.blockSignals(False)
        self.steps.setEnabled(recipe is None or recipe.unified)
        request = self.build_request(quiet=True)
        if request is not None and self.current_model() is not None:
            try:
                warnings = plan(request, self.current_model().architecture).warnings
            except AppError as error:
                warnings = (str(error),)
            self.warnings.show_messages(list(warnings))

    # -- requests -------------------------------------------------------------------------

    def build_request(self, quiet: bool = False) -> GenerationRequest | None:
        """The request the controls describe, or None (with an error shown unless `quiet`)."""
        model = self.current_model()
        if model is None:
            if not quiet:
                self.errors.show_messages(["No base model is installed. Use File → Import models… or the setup."])
            return None
        hyper = self.hyper_box.currentData()
        loras, unet = [], None
        if hyper is not None and hyper.kind == "unet":
            unet = hyper.path
        elif hyper is not None:
            loras.append(LoraSpec(hyper.path, 1.0))
        for row in range(self.styles.rowCount()):
            item = self.styles.item(row, 0)
            if item.checkState() == Qt.CheckState.Checked:
                loras.append(LoraSpec(item.data(Qt.ItemDataRole.UserRole).path, self.styles.cellWidget(row, 1).value()))
        width, height = self.size_box.currentData() or (None, None)
        recipe = RECIPES_BY_ID.get(hyper.recipe) if hyper is not None else None
        settings = self.settings
        try:
            return GenerationRequest(
                prompt=self.prompt.toPlainText().strip(),
                negative_prompt=self.negative.toPlainText().strip() if self.negative.isEnabled() else "",
                base_model=model.path, unet=unet, loras=tuple(loras), steps=self.steps.value(),
                guidance=self.guidance.value() if self.guidance.isEnabled() else None,
                eta=self.eta.value() if recipe is not None and recipe.scheduler == TCD else None,
                seed=self.seed.value(), width=width, height=height, batch_size=self.batch_size.value(),
                backend=settings.backend, device=settings.device, dtype=settings.dtype, attention_slicing=settings.attention_slicing,
                vae_tiling=settings.vae_tiling, cpu_offload=settings.cpu_offload,
            )
        except AppError as error:
            if not quiet:
                self.errors.show_messages([str(error)])
            return None

    def generate(self) -> None:
        request = self.build_request()
        if request is None:
            return
        if not request.prompt:
            self.errors.show_messages(["Type a prompt first."])
            return
        self.errors.clear()
        for k in range(self.batch_count.value()):
            job_request = request.replace(seed=(request.seed + k * request.batch_size) % MAX_SEED)
            self._job_ids.append(self.bridge.client.submit(job_request, latest_wins=self.latest_wins.isChecked()))
        if not self.seed_lock.isChecked():
            self.seed.setValue(random.randrange(MAX_SEED))
        self._remember_choices()

    def cancel(self) -> None:
        if self._active_job is not None:
            self.bridge.client.cancel(self._active_job)
            self.timing.setText("Cancelling…")

    def _move_queued(self, delta: int) -> None:
        row = self.queue.currentRow()
        item = self.queue.currentItem()
        if item is None or not item.data(Qt.ItemDataRole.UserRole):
            return
        offset = 1 if self.bridge.client.running is not None else 0
        self.bridge.client.move(item.data(Qt.ItemDataRole.UserRole), row - offset + delta)

    def _remove_queued(self) -> None:
        item = self.queue.currentItem()
        if item is not None and item.data(Qt.ItemDataRole.UserRole):
            self.bridge.client.cancel(item.data(Qt.ItemDataRole.UserRole))

    # -- worker events --------------------------------------------------------------------

    def _worker_ready(self, message) -> None:
        device = self.settings.device if self.settings.device != "auto" else message.default_device
        precision = self.settings.dtype if self.settings.dtype != "auto" else ("fp16" if device != "cpu" else "fp32")
        self.device_label.setText(f"Device: {device.upper()} · {precision} · available: {', '.join(message.devices)}")

    def _worker_unavailable(self, message) -> None:
        self.device_label.setText("No generation worker")
        self.errors.show_messages([message.message])

    def _job_started(self, message) -> None:
        self._active_job = message.job_id
        self.cancel_button.setEnabled(True)
        self.timing.setText("Loading the model…")

    def _job_progress(self, message) -> None:
        if message.preview:
            pixmap = QPixmap()
            pixmap.loadFromData(message.preview)
            self._show_pixmap(pixmap)
        self.timing.setText(f"Step {message.step}/{message.total_steps} · {message.elapsed_s:.2f} s")

    def _image_ready(self, message) -> None:
        self._load_s = message.load_s
        pixmap = QPixmap()
        pixmap.loadFromData(message.png, "PNG")
        self._show_pixmap(pixmap)
        item = QListWidgetItem(QIcon(pixmap), f"seed {message.seed}")
        item.setData(Qt.ItemDataRole.UserRole, message.path)
        item.setToolTip(message.path)
        self.results.insertItem(0, item)
        while self.results.count() > RESULTS_KEPT:
            self.results.takeItem(self.results.count() - 1)
        self.image_saved.emit(message.path)

    def _job_finished(self, message) -> None:
        if message.job_id == self._active_job:
            self._active_job = None
            self.cancel_button.setEnabled(False)
        text = f"Done in {message.seconds:.2f} s on {message.device.upper()} ({message.dtype})"
        if self._load_s >= 0.05:  # the first image of a model: say what the next ones will not cost
            text += f", {self._load_s:.1f} s of it loading the model"
        self._load_s = 0.0
        self.timing.setText(text)
        self.warnings.show_messages(list(message.warnings))
        if message.memory_bytes is not None:
            where = "GPU memory" if message.device in ("cuda", "mps") else "Worker memory"
            self.memory_label.setText(f"{where} in use: {message.memory_bytes / 2**30:.2f} GiB")

    def _batch_finished(self, message) -> None:
        if message.job_id == self._active_job:
            self._active_job = None
            self.cancel_button.setEnabled(False)
        self.timing.setText(f"Batch done in {message.seconds:.1f} s: {message.generated} generated, "
                            f"{message.skipped} already done")

    def _job_failed(self, message) -> None:
        if message.job_id == self._active_job:
            self._active_job = None
            self.cancel_button.setEnabled(False)
        if message.cancelled:
            self.timing.setText(message.message)
        else:
            self.errors.show_messages([message.message])
            self.timing.setText("Failed")

    def _queue_changed(self, message) -> None:
        self.queue.clear()
        jobs = ([(message.running, "running")] if message.running else []) + [(j, "queued") for j in message.queued]
        for job, state in jobs:
            text = f"#{job.job_id} {state}: {job.describe()}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, job.job_id if state == "queued" else 0)  # 0: running
            self.queue.addItem(item)

    def _show_pixmap(self, pixmap: QPixmap) -> None:
        if pixmap.isNull():
            return
        self._last_pixmap = pixmap
        self._rescale_preview()

    def _rescale_preview(self) -> None:
        pixmap = getattr(self, "_last_pixmap", None)
        if pixmap is not None:
            self.preview.setPixmap(pixmap.scaled(self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        QTimer.singleShot(0, self._rescale_preview)

    # -- reuse settings -------------------------------------------------------------------

    def reuse_record(self, record: ImageRecord) -> None:
        """Fill the controls from a gallery image: exactly from its stored request when it has one."""
        if record.request:
            self.apply_request(GenerationRequest.from_dict(json.loads(record.request)))
        else:
            self.apply_metadata(ImageMetadata(
                format=record.metadata_format or "none", prompt=record.prompt, negative_prompt=record.negative_prompt,
                seed=record.seed, steps=record.steps, guidance=record.guidance, width=record.width,
                height=record.height, model_name=record.model_name, model_hash=record.model_hash, loras=record.loras))
        self.tabs.setCurrentIndex(0)
        self.prompt.setFocus()

    def apply_request(self, request: GenerationRequest) -> None:
        """Set every control so that `build_request()` gives `request` back (with this machine's
        device and memory settings); what is not installed here is named in the warning banner."""
        missing: list[str] = []
        models = self.library.registry.list()
        by_path = {str(Path(m.path)): m for m in models}
        base = by_path.get(str(Path(request.base_model)))
        if base is None:
            missing.append(f"the base model {Path(request.base_model).name}")
        hyper = by_path.get(str(Path(request.unet))) if request.unet else None
        if request.unet and hyper is None:
            missing.append(f"the UNet {Path(request.unet).name}")
        styles: list[LoraSpec] = []
        for lora in request.loras:
            model = by_path.get(str(Path(lora.path)))
            if model is None:
                missing.append(f"the LoRA {Path(lora.path).name}")
            elif model.recipe and hyper is None and lora.weight == 1.0:
                hyper = model
            else:
                styles.append(lora)
        self._fill_controls(base, hyper, request.prompt, request.negative_prompt, request.steps, request.guidance,
                            request.seed, request.width, request.height, styles, request.eta)
        self.batch_size.setValue(request.batch_size)
        self._report_missing(missing)

    def apply_metadata(self, metadata: ImageMetadata) -> None:
        """Set the controls from another tool's parameters; models are matched by hash, then by name."""
        models = self.library.registry.list()

        def find(name: str | None, short_hash: str | None, kind: str | None = None) -> InstalledModel | None:
            candidates = [m for m in models if kind is None or m.kind == kind]
            for model in candidates:
                if short_hash and model.short_hash and model.short_hash.lower().startswith(short_hash.lower()[:10]):
                    return model
            wanted = (name or "").lower()
            return next((m for m in candidates if wanted and wanted in (m.name.lower(), m.id.lower(),
                                                                         Path(m.path).stem.lower())), None)

        missing: list[str] = []
        base = find(metadata.model_name, metadata.model_hash, "base")
        if base is None and (metadata.model_name or metadata.model_hash):
            missing.append(f"the base model {metadata.model_name or metadata.model_hash}")
        hyper, styles = None, []
        for name, weight, short_hash in metadata.loras:
            model = find(name, short_hash)
            if model is None:
                missing.append(f"the LoRA {name}")
            elif model.recipe and hyper is None:
                hyper = model
            else:
                styles.append(LoraSpec(model.path, weight))
        self._fill_controls(base, hyper, metadata.prompt, metadata.negative_prompt, metadata.steps, metadata.guidance,
                            metadata.seed, metadata.width, metadata.height, styles, None)
        self._report_missing(missing)

    def _fill_controls(self, base: InstalledModel | None, hyper: InstalledModel | None, prompt: str, negative: str,
                       steps: int | None, guidance: float | None, seed: int | None, width: int | None,
                       height: int | None, styles: list[LoraSpec], eta: float | None) -> None:
        if base is not None:
            self._select(self.model_box, base.id)
            self._model_changed()
        self._select(self.hyper_box, hyper.id if hyper else None)
        self.prompt.setPlainText(prompt)
        if guidance is not None:
            self.guidance.setValue(guidance)
        self.negative.setPlainText(negative)
        if steps is not None:
            self.steps.setValue(steps)
        if eta is not None:
            self.eta.setValue(eta)
        if seed is not None:
            self.seed.setValue(seed % (MAX_SEED + 1))
            self.seed_lock.setChecked(True)
        if width and height:
            select_size(self.size_box, width, height, " (from the image)")
        weights = {str(Path(lora.path)): lora.weight for lora in styles}
        for row in range(self.styles.rowCount()):
            item = self.styles.item(row, 0)
            path = str(Path(item.data(Qt.ItemDataRole.UserRole).path))
            item.setCheckState(Qt.CheckState.Checked if path in weights else Qt.CheckState.Unchecked)
            if path in weights:
                self.styles.cellWidget(row, 1).setValue(weights[path])
        self._update_recipe_controls()

    @staticmethod
    def _select(box: QComboBox, model_id: str | None) -> None:
        for i in range(box.count()):
            data = box.itemData(i)
            if (data.id if data is not None else None) == model_id:
                box.setCurrentIndex(i)
                return

    def _report_missing(self, missing: list[str]) -> None:
        if missing:
            self.errors.show_messages([f"Settings reused, but {', '.join(missing)} "
                                       f"{'is' if len(missing) == 1 else 'are'} not installed; the current choice "
                                       "is kept. Install it from the Models tab to reproduce the image exactly."])
        else:
            self.errors.clear()

    # -- drag and drop --------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        event.acceptProposedAction()
        QTimer.singleShot(0, lambda: self.open_dropped(paths))  # the drag source is not kept waiting

    def open_dropped(self, paths: list[Path]) -> None:
        """Images: offer to reuse their settings or to import them. Weights and folders: import as models."""
        images = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        others = [p for p in paths if p not in images]
        if others:
            self.tabs.setCurrentWidget(self.models)
            self.models.import_paths(others)
        if len(images) == 1:
            self.offer_dropped_image(images[0])
        elif images:  # several: into the gallery, in the background (progress under the grid)
            self.tabs.setCurrentWidget(self.browser)
            self.browser.import_files(images)

    def offer_dropped_image(self, path: Path) -> None:
        try:
            metadata, _, _, notes = read_metadata(path)
        except (OSError, ValueError, SyntaxError) as error:
            self.errors.show_messages([f"{path.name} is not a readable image ({error})."])
            return
        box = QMessageBox(self)
        box.setWindowTitle("Dropped image")
        box.setIcon(QMessageBox.Icon.Question)
        if metadata is not None:
            box.setText(f"{path.name} has {metadata.format.upper()} generation settings.")
            box.setInformativeText(f"Prompt: {metadata.prompt[:200]}")
            reuse = box.addButton("Reuse its settings", QMessageBox.ButtonRole.AcceptRole)
        else:
            box.setText(f"{path.name} carries no generation settings.")
            reuse = None
        add = box.addButton("Import into the gallery", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if reuse is not None and box.clickedButton() is reuse:
            self.apply_metadata(metadata)
            if metadata.request:
                try:
                    self.apply_request(GenerationRequest.from_dict(metadata.request))
                except (AppError, TypeError):
                    pass  # a request from another version: the A1111 fields above stand
            self.warnings.show_messages(notes)
            self.tabs.setCurrentIndex(0)
        elif box.clickedButton() is add:
            self.browser.import_files([path])
            self.tabs.setCurrentWidget(self.browser)

    # -- gallery, batch and models --------------------------------------------------------

    def _find(self) -> None:
        self.tabs.setCurrentWidget(self.browser)
        self.browser.focus_search()

    def _open_export(self) -> None:
        self.tabs.setCurrentWidget(self.browser)
        self.browser.open_export()

    def open_batch(self):
        from hypersd_desktop.ui.batch_dialog import BatchDialog

        dialog = BatchDialog(self.library, self.bridge, self.build_request(quiet=True), self)
        dialog.progressed.connect(lambda: self._gallery_timer.start())
        dialog.open()
        self._batch_dialog = dialog
        return dialog

    def _paths_in_use(self) -> set[str]:
        """Model files the running and queued jobs need: the model manager will not remove them."""
        client = self.bridge.client
        jobs = ([client.running] if client.running is not None else []) + list(client.queued())
        paths: set[str] = set()
        for job in jobs:
            for request in job.requests():
                paths.add(str(Path(request.base_model)))
                paths.update(str(Path(p)) for p in (request.unet, request.vae, request.taesd) if p)
                paths.update(str(Path(lora.path)) for lora in request.loras)
        return paths

    # -- misc -----------------------------------------------------------------------------

    def import_models(self) -> None:
        self.tabs.setCurrentWidget(self.models)
        self.models.choose_files()

    def _remember_choices(self) -> None:
        model, hyper = self.current_model(), self.hyper_box.currentData()
        self.settings = self.settings.replace(
            last_model=model.id if model else "", last_hyper=hyper.id if hyper else "", last_steps=self.steps.value(),
            last_size=self.size_box.currentText(), latest_wins=self.latest_wins.isChecked(),
        )
        save_settings(self.settings, self.library.paths)

    def _restore_choices(self) -> None:
        for box, wanted in ((self.model_box, self.settings.last_model), (self.hyper_box, self.settings.last_hyper)):
            for i in range(box.count()):
                if box.itemData(i) is not None and box.itemData(i).id == wanted:
                    box.setCurrentIndex(i)
        self.steps.setValue(self.settings.last_steps)
        index = self.size_box.findText(self.settings.last_size)
        if index >= 0:
            self.size_box.setCurrentIndex(index)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._active_job is not None and QMessageBox.question(
            self, "Quit", "An image is being generated. Quit anyway?"
        ) != QMessageBox.StandardButton.Yes:
            event.ignore()
            return
        self._remember_choices()
        self.browser.close_resources()
        self.models.shutdown()
        super().closeEvent(event)
