"""The Draw tab: sketch on a canvas and watch a one-step image follow the pen.

The drawing steers a scribble ControlNet: the canvas's black strokes on white are sent as they are
drawn, and the engine turns them into the white-on-black scribble the ControlNet was trained on
(`engine/preprocess.py`), so the stored request names the drawing itself. A ControlNet Union model (SDXL)
reads it as its scribble type and is offered after scribble ControlNets; a sketch T2I-Adapter (SDXL's: 158 MB, read
once an image) is offered with them. The default is the
Hyper-SD drawing demo's recipe: SD1.5, the unified 1-step LoRA with TCD (eta 1), scale 1, 512².

An image is asked for after each stroke and, at most every 150 ms, during a long one; `LiveJobs`
runs one job at a time and drops stale ones. Nothing is saved until Keep, which saves the image on
screen with its drawing and settings into the gallery; reusing it brings the drawing back here.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
    QPushButton, QSpinBox, QSplitter, QToolButton, QVBoxLayout, QWidget,
)

from hypersd_desktop.core.dynamic_prompts import Wildcards, chosen, wildcards_folder
from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.images import PICTURE_SUFFIXES
from hypersd_desktop.core.prompt_styles import StyleBook, apply_styles, styles_file, take_out
from hypersd_desktop.core.settings import Settings
from hypersd_desktop.core.vocab import Architecture, Decoder, ModelKind, Preprocessor, Preview, architecture_label
from hypersd_desktop.engine.inspect import union_control_types
from hypersd_desktop.engine.types import ControlSpec, GenerationRequest
from hypersd_desktop.gallery.gallery import IMAGE_SUFFIXES, Gallery
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.banner import Banner
from hypersd_desktop.ui.emphasis_keys import EmphasisKeys
from hypersd_desktop.ui.flow_layout import FlowLayout
from hypersd_desktop.ui.generate_form import (
    RANDOM_SEEDS, RecipeRules, SeedBox, fill_base_models, fill_hyper_box, fill_sizes, hyper_parts, select_size,
)
from hypersd_desktop.ui.init_image import IMAGE_FILTER
from hypersd_desktop.ui.job_view import PreviewLabel
from hypersd_desktop.ui.live_jobs import LiveImage, LiveJobs, write_kept
from hypersd_desktop.ui.pictures import read_picture
from hypersd_desktop.ui.prompt_completer import PromptCompleter
from hypersd_desktop.ui.prompt_styles import STYLES_KEYS, StylePicker
from hypersd_desktop.ui.shortcuts import DRAW, described
from hypersd_desktop.ui.sketch_canvas import PngEncoder, SketchCanvas
from hypersd_desktop.ui.token_count import TokenCount, embeddings_of
from hypersd_desktop.worker.batch import with_tagged_loras
from hypersd_desktop.worker.bridge import WorkerBridge

DEMO_RECIPE = "Hyper-SD15-1step-lora"  # the drawing demo's: unified LoRA, TCD, 1 step, eta 1
PROMPT_PAUSE_MS = 400  # typing: a new image once the typing pauses
STATES = {
    "idle": "Ready",
    "running": "Generating…",
    "waiting": "Generating… (a newer drawing waits)",
    "paused": "Paused: drawing on, nothing generated",
}


class DrawTab(QWidget):
    kept = Signal(str)  # path of the image Keep saved
    _traced = Signal(int, object, str)  # serial, the picture (a QImage), its file's name: read off the GUI thread

    def __init__(self, library: ModelLibrary, bridge: WorkerBridge, gallery: Gallery,
                 settings: Callable[[], Settings], parent: QWidget | None = None,
                 vae_for: Callable[[InstalledModel], str | None] | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.bridge = bridge
        self.gallery = gallery
        self.settings = settings
        # the VAE a base model runs with: the Generate tab's choice for its model, else the automatic one
        self.vae_for = vae_for or (lambda model: library.vae_for(model.path, model.architecture))
        self.live = LiveJobs(bridge, self)
        self.encoder = PngEncoder(self)  # the drawing's PNG is made off the GUI thread
        self._tracing = 0  # the serial of the newest picture asked to trace
        self._trace_read = 0  # the serial of the last one read
        self._trace_reader = QThreadPool(self)  # a phone's HEIC photo takes a second to read
        self._trace_reader.setMaxThreadCount(1)
        self._encoding = 0  # the serial of the newest drawing sent to the encoder
        self._encoded_serial = 0  # and of the last one back
        self._keeping: set[int] = set()  # saved jobs that make a kept image again with the full VAE
        self.shown: LiveImage | None = None
        self._quiet = False  # while controls are set from a request: one image at the end, not one a control
        self._build()
        self._connect()
        self.reload_models()

    # -- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        self.canvas = SketchCanvas()
        self.brush_button = QToolButton(text="Brush", checkable=True, checked=True)
        self.eraser_button = QToolButton(text="Eraser", checkable=True)
        self.brush_size = QSpinBox(minimum=1, maximum=96, value=self.canvas.brush_size, suffix=" px")
        self.brush_size.setToolTip("Pen size in pixels of the image ([ and ] change it)")
        self.undo_button = QToolButton(text="Undo")
        self.redo_button = QToolButton(text="Redo")
        self.clear_button = QToolButton(text="Clear")
        self.trace_button = QToolButton(text="Trace a picture…")
        self.trace_button.setToolTip("Show a picture faintly under the canvas to draw over; it is not part of the "
                                     "drawing")
        tools = FlowLayout()  # two lines over a narrow canvas
        for widget in (self.brush_button, self.eraser_button, self.brush_size, self.undo_button, self.redo_button,
                       self.clear_button, self.trace_button):
            tools.addWidget(widget)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addLayout(tools)
        left_layout.addWidget(self.canvas, 1)

        self.result = PreviewLabel("Draw on the canvas; the image follows your strokes")
        self.busy = QProgressBar(minimum=0, maximum=0, textVisible=False)  # a moving bar while a job runs
        self.busy.setFixedWidth(80)
        self.busy.setVisible(False)
        self.state_label = QLabel(STATES["idle"])
        self.pause = QCheckBox("Pause")
        self.pause.setToolTip("Draw without generating; the newest drawing runs when the pause ends (Ctrl+P)")
        self.keep_button = QPushButton("Keep")
        self.keep_button.setToolTip("Save the image shown, its drawing and its settings to the gallery (Ctrl+S)")
        self.keep_button.setEnabled(False)
        status = QHBoxLayout()
        for widget in (self.busy, self.state_label):
            status.addWidget(widget)
        status.addStretch(1)
        status.addWidget(self.pause)
        status.addWidget(self.keep_button)

        self.prompt = QLineEdit(placeholderText="Describe what you draw…")
        self.completer = PromptCompleter(self.prompt)  # `<lora:` and embeddings, as in the Generate tab
        self.emphasis = EmphasisKeys(self, (self.prompt,), DRAW)  # Ctrl+Up and Ctrl+Down weigh words
        self.wildcards = Wildcards(wildcards_folder(self.library.paths))
        self.completer.wildcards = self.wildcards.folder
        # the Generate tab's prompt styles (the same styles file), added to the prompt typed here
        self.prompt_styles = StylePicker(StyleBook(styles_file(self.library.paths)), self.prompt, None)
        self.prompt_styles.label.hide()
        self.model_box = QComboBox()
        self.hyper_box = QComboBox()
        self.steps = QSpinBox(minimum=1, maximum=8, value=1)
        self.controlnet_box = QComboBox()
        self.scale = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=1.0, decimals=2)
        self.scale.setToolTip("How strongly the drawing steers the image (the ControlNet's conditioning scale)")
        self.size_box = QComboBox()
        self.seed = SeedBox(random.randrange(RANDOM_SEEDS))
        self.seed_random = QToolButton(text="Random")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_random)
        self.prompt_tokens = TokenCount(self.prompt.text, self.steps.value,
                                        embeddings=embeddings_of(self.library, self.model_box))
        self.prompt.textChanged.connect(self.prompt_tokens.changed)
        self.steps.valueChanged.connect(self.prompt_tokens.changed)
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(self.prompt, 1)
        prompt_row.addWidget(self.prompt_tokens)
        form = QFormLayout()
        form.addRow("Prompt", prompt_row)
        form.addRow("Styles", self.prompt_styles)
        form.addRow("Model", self.model_box)
        form.addRow("Hyper-SD", self.hyper_box)
        form.addRow("Steps", self.steps)
        form.addRow("ControlNet", self.controlnet_box)
        form.addRow("Drawing strength", self.scale)
        form.addRow("Size", self.size_box)
        form.addRow("Seed", seed_row)
        self.errors = Banner("error")
        self.notes = Banner("warning")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.errors)
        right_layout.addWidget(self.notes)
        right_layout.addWidget(self.result, 1)
        right_layout.addLayout(status)
        right_layout.addLayout(form)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([640, 640])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._prompt_timer = QTimer(self, singleShot=True, interval=PROMPT_PAUSE_MS)

    def _connect(self) -> None:
        self.canvas.changed.connect(lambda _final: self.ask())
        self.brush_button.clicked.connect(lambda: self.set_erasing(False))
        self.eraser_button.clicked.connect(lambda: self.set_erasing(True))
        self.brush_size.valueChanged.connect(lambda value: setattr(self.canvas, "brush_size", value))
        self.undo_button.clicked.connect(self.canvas.undo)
        self.redo_button.clicked.connect(self.canvas.redo)
        self.clear_button.clicked.connect(self.canvas.clear)
        self.trace_button.clicked.connect(self._choose_trace)
        self.canvas.setAcceptDrops(True)  # a picture dropped on the canvas is shown to trace
        self.canvas.installEventFilter(self)
        self._traced.connect(self._show_trace)
        self.pause.toggled.connect(self.live.set_paused)
        self.keep_button.clicked.connect(self.keep)
        self.live.shown.connect(self._show)
        self.live.state_changed.connect(self._state_changed)
        self.live.failed.connect(lambda message: self.errors.show_messages([message]))
        self.bridge.image_ready.connect(self._kept_ready)
        self.bridge.failed.connect(self._keep_failed)
        self.bridge.finished.connect(self._keep_ended)
        self.encoder.done.connect(self._encoded)
        self.prompt.textChanged.connect(lambda _text: self._prompt_timer.start())
        self._prompt_timer.timeout.connect(self.ask)
        self.prompt_styles.changed.connect(self._styles_changed)
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.hyper_box.currentIndexChanged.connect(self._recipe_changed)
        for signal in (self.steps.valueChanged, self.scale.valueChanged, self.seed.valueChanged,
                       self.controlnet_box.currentIndexChanged):
            signal.connect(lambda _value: self.ask())
        self.size_box.currentIndexChanged.connect(self._size_changed)
        self.seed_random.clicked.connect(lambda: self.seed.setValue(random.randrange(RANDOM_SEEDS)))
        for keys, what, action in (
            ("Ctrl+Z", "Undo a stroke", self.canvas.undo), ("Ctrl+Shift+Z", "Redo", self.canvas.redo),
            ("Ctrl+Y", "Redo", self.canvas.redo), ("Ctrl+S", "Keep the image shown (to the gallery)", self.keep),
            ("Ctrl+P", "Pause or go on making images", self.pause.toggle),
            (STYLES_KEYS, "Choose prompt styles (words added to the prompt)", self.prompt_styles.open_list),
            ("B", "Brush", lambda: self.set_erasing(False)), ("E", "Eraser", lambda: self.set_erasing(True)),
            ("[", "Smaller brush", lambda: self.brush_size.setValue(self.brush_size.value() - 2)),
            ("]", "Larger brush", lambda: self.brush_size.setValue(self.brush_size.value() + 2)),
        ):
            described(QShortcut(QKeySequence(keys), self, activated=action,
                                context=Qt.ShortcutContext.WidgetWithChildrenShortcut), DRAW, what)

    def set_erasing(self, erasing: bool) -> None:
        self.canvas.erasing = erasing
        self.brush_button.setChecked(not erasing)
        self.eraser_button.setChecked(erasing)

    # -- models -----------------------------------------------------------------------------

    def reload_models(self) -> None:
        fill_base_models(self.model_box, self.library)
        self._model_changed()

    def _architecture(self) -> str:
        model = self.model_box.currentData()
        return model.architecture if model is not None and model.architecture else Architecture.SD15

    def _model_changed(self) -> None:
        architecture = self._architecture()
        previous = self.hyper_box.currentData()
        self.hyper_box.blockSignals(True)
        fill_hyper_box(self.hyper_box, self.library, architecture, self.model_box.currentData())
        choices = [self.hyper_box.itemData(i) for i in range(self.hyper_box.count())]
        pick = next((i for i, entry in enumerate(choices) if entry is not None and previous is not None
                     and entry.id == previous.id), None)
        if pick is None:  # the demo's recipe, else the first Hyper-SD file, else none
            pick = next((i for i, entry in enumerate(choices) if entry is not None and entry.recipe == DEMO_RECIPE),
                        1 if len(choices) > 1 else 0)
        self.hyper_box.setCurrentIndex(pick)
        self.hyper_box.blockSignals(False)
        self.controlnet_box.blockSignals(True)
        self.controlnet_box.clear()
        controlnets = self.library.registry.list(kind=ModelKind.CONTROLNET, architecture=architecture)
        controlnets.sort(key=lambda model: (not any(word in f"{model.name} {model.catalog_id or ''}".lower()
                                                    for word in ("scribble", "sketch")),  # a sketch T2I-Adapter too
                                            union_control_types(model.path) is None))  # a Union model reads scribbles
        for model in controlnets:
            self.controlnet_box.addItem(model.name, model)
        self.controlnet_box.blockSignals(False)
        self.completer.set_models(self.library, architecture)
        self.prompt_tokens.changed()
        missing = self._missing()
        self.notes.show_messages([missing] if missing else [])
        self.size_box.blockSignals(True)
        fill_sizes(self.size_box, architecture)
        self.size_box.blockSignals(False)
        self._recipe_changed()
        self._size_changed()

    def _recipe_changed(self) -> None:
        rules = RecipeRules.of(self.hyper_box.currentData())
        self.steps.blockSignals(True)
        if not rules.steps_free:
            self.steps.setValue(rules.default_steps)
        self.steps.setEnabled(rules.steps_free)
        self.steps.blockSignals(False)
        self.ask()

    def _styles_changed(self) -> None:
        if not self._quiet:
            self.ask()

    def _size_changed(self) -> None:
        size = self.size_box.currentData()
        if size is not None:
            self.canvas.resize_drawing(*size)  # asks for an image when something was drawn

    # -- requests ---------------------------------------------------------------------------

    def build_request(self, digest: str | None = None) -> GenerationRequest:
        """The request for the drawing on the canvas, or for the drawing held as `digest`; `AppError` says what
        is missing."""
        missing = self._missing()
        if missing:
            raise AppError(missing)
        model, controlnet = self.model_box.currentData(), self.controlnet_box.currentData()
        digest = digest or self.canvas.source_digest or self.bridge.inputs.hold(self.canvas.png(), "The drawing")
        unet, loras = hyper_parts(self.hyper_box.currentData())
        rules = RecipeRules.of(self.hyper_box.currentData())
        settings = self.settings()
        width, height = self.canvas.image_size()
        taesd = self._taesd() if settings.fast_decode else None
        # the styles' words (their negative ones where the recipe reads a negative prompt), then the prompt's
        # choices ({a|b}, __wildcard__, in the styles too) made by the seed: they hold while the sketch changes
        prompt, negative = apply_styles(self.prompt.text().strip(), "", self.prompt_styles.chosen())
        prompt = chosen(prompt, self.seed.value(), self.wildcards)
        negative = chosen(negative, self.seed.value(), self.wildcards) if rules.uses_guidance else ""
        embeddings = self.library.embeddings_named(model.path, prompt, negative)
        return with_tagged_loras(GenerationRequest(
            prompt=prompt, negative_prompt=negative, base_model=model.path, unet=unet, vae=self.vae_for(model),
            loras=loras, embeddings=embeddings,
            steps=self.steps.value(), guidance=None if rules.uses_guidance else 0.0, seed=self.seed.value(),
            width=width, height=height, backend=settings.backend, device=settings.device, dtype=settings.dtype,
            attention_slicing=settings.attention_slicing, vae_tiling=settings.vae_tiling,
            cpu_offload=settings.cpu_offload, cuda_graphs=settings.cuda_graphs, compile=settings.compile_steps,
            decoder=Decoder.TAESD if taesd else Decoder.VAE, taesd=taesd, preview=Preview.NONE,
            controls=(ControlSpec(controlnet.path, digest, self.scale.value(), preprocessor=Preprocessor.SCRIBBLE),),
        ), self.library.loras_tagged)  # `<lora:NAME:WEIGHT>` in the prompt, as A1111 applies it

    def _missing(self) -> str | None:
        """What the tab lacks to make images (a base model, a scribble ControlNet), or None."""
        if self.model_box.currentData() is None:
            return ("Drawing needs a base model and a scribble ControlNet: download them in the Models tab (Ctrl+4), "
                    "\"Stable Diffusion 1.5\" with \"ControlNet Scribble (SD1.5)\", or import your own files (File → "
                    "Import models…).")
        if self.controlnet_box.currentData() is None:
            return self._missing_controlnet()
        return None

    def _missing_controlnet(self) -> str:
        if self._architecture() == Architecture.SD15:
            where = "install \"ControlNet Scribble (SD1.5)\" in the Models tab (Ctrl+4)"
        else:
            where = ("install \"T2I-Adapter Sketch (SDXL)\" (158 MB) or \"ControlNet Union ProMax (SDXL)\" (2.5 GB, "
                     "which reads scribbles too) in the Models tab (Ctrl+4), or import one with File → Import models…")
        return f"Drawing needs a scribble ControlNet for {architecture_label(self._architecture())}: {where}."

    def _taesd(self) -> str | None:
        return self.library.taesd_for(self._architecture())

    def ask(self) -> None:
        """A new image for the canvas as it is now (nothing while the canvas is blank). The drawing is encoded
        on the encoder's thread; `_encoded` asks for the image."""
        if self._quiet or self.canvas.is_blank():
            return
        missing = self._missing()
        if missing:
            self.errors.show_messages([missing])
            return
        if self.canvas.source_digest:  # a drawing brought back from the gallery, untouched: held already
            self._request(self.canvas.source_digest)
            return
        self._encoding += 1
        self.encoder.encode(self._encoding, self.canvas.snapshot())

    @property
    def encoding(self) -> bool:
        """Whether a drawing is being encoded (its image is not asked for yet)."""
        return self._encoded_serial != self._encoding

    def _encoded(self, serial: int, png: bytes) -> None:
        self._encoded_serial = serial
        if serial != self._encoding:
            return  # a newer drawing is on its way
        try:
            digest = self.bridge.inputs.hold(png, "The drawing")
        except AppError as error:
            self.errors.show_messages([str(error)])
            return
        self._request(digest)

    def _request(self, digest: str) -> None:
        try:
            request = self.build_request(digest)
        except AppError as error:
            self.errors.show_messages([str(error)])
            return
        self.errors.clear()
        self.live.request(request)

    def _show(self, image: LiveImage) -> None:
        pixmap = QPixmap()
        pixmap.loadFromData(image.png, "PNG")
        self.result.show_image(pixmap)
        self.shown = image
        self.keep_button.setEnabled(True)

    def _state_changed(self, state: str) -> None:
        self.busy.setVisible(state in ("running", "waiting"))
        made = self.live.made_in
        self.state_label.setText(f"{STATES[state]} · the last image took {made}" if made and state != "paused"
                                 else STATES[state])

    # -- keep and reuse ---------------------------------------------------------------------

    def keep(self) -> Path | None:
        """Save the image on screen, with its drawing and settings, to the gallery. An image decoded with TAESD
        (fast decode) is made again with the full VAE in a saved job: `kept` says when it is in the gallery,
        and None is returned meanwhile."""
        image = self.shown
        if image is None:
            return None
        self.keep_button.setEnabled(False)  # kept: the same image once
        self.library.registry.mark_used(image.request.model_paths())
        if image.request.decoder == Decoder.TAESD:
            self._keeping.add(self.bridge.client.submit(image.request.replace(decoder=Decoder.VAE)))
            self.state_label.setText("Keeping: decoding with the full VAE…")
            return None
        try:
            path = write_kept(image, self.bridge, self.gallery, self.library.paths.images)
        except AppError as error:
            self.errors.show_messages([f"The image could not be kept: {str(error).rstrip('.')}."])
            self.keep_button.setEnabled(True)
            return None
        self.kept.emit(str(path))
        return path

    def owns(self, job_id: int) -> bool:
        """Whether `job_id` is this tab's (a live job, or a kept image made again): the Generate tab's views
        leave those alone."""
        return self.live.owns(job_id) or job_id in self._keeping

    def _kept_ready(self, message) -> None:
        if message.job_id in self._keeping and message.path:
            self.state_label.setText(f"Kept, with the full VAE: {Path(message.path).name}")
            self.kept.emit(message.path)

    def _keep_failed(self, message) -> None:
        if message.job_id in self._keeping:
            self.errors.show_messages([f"The image could not be kept: {message.message}"])
            self.keep_button.setEnabled(self.shown is not None)
        self._keep_ended(message)

    def _keep_ended(self, message) -> None:
        # After the other views' handlers of the same message, which ask `owns` to leave it alone.
        QTimer.singleShot(0, self, lambda job_id=message.job_id: self._keeping.discard(job_id))

    def state(self) -> dict:
        """What `restore` brings back after a restart, beside the drawing itself: the prompt and settings."""
        chosen = {name: box.currentData().id if box.currentData() is not None else None
                  for name, box in (("model", self.model_box), ("hyper", self.hyper_box),
                                    ("controlnet", self.controlnet_box))}
        return {**chosen, "prompt": self.prompt.text(), "styles": self.prompt_styles.chosen_names(),
                "steps": self.steps.value(), "scale": self.scale.value(), "seed": self.seed.value()}

    def restore(self, state: dict, drawing: bytes | None) -> None:
        """Show a `state()` and its drawing (a PNG) again, without making an image: the next stroke or change
        does, as before the restart."""
        self._quiet = True
        try:
            for name, box in (("model", self.model_box), ("hyper", self.hyper_box), ("controlnet", self.controlnet_box)):
                self._select(box, lambda model, wanted=state.get(name): model.id == wanted)
            for name, control in (("steps", self.steps), ("scale", self.scale), ("seed", self.seed)):
                if isinstance(state.get(name), (int, float)) and not isinstance(state.get(name), bool):
                    control.setValue(state[name])
            self.prompt.setText(str(state.get("prompt") or ""))
            if isinstance(state.get("styles"), list):
                self.prompt_styles.choose([str(name) for name in state["styles"]])
            self._prompt_timer.stop()
            if drawing is not None and self.canvas.load(drawing):
                select_size(self.size_box, *self.canvas.image_size())
        finally:
            self._quiet = False

    def apply_request(self, request: GenerationRequest) -> list[str]:
        """Bring a kept drawing back: its drawing on the canvas and its settings; returns what could not be."""
        self._quiet = True
        try:
            notes = self._apply(request)
        finally:
            self._quiet = False
        self.notes.show_messages(notes)
        self.ask()
        return notes

    def _apply(self, request: GenerationRequest) -> list[str]:
        notes = []
        scribble = next((c for c in request.controls if c.preprocessor == Preprocessor.SCRIBBLE), None)
        self._select(self.model_box, lambda m: m.path == request.base_model)
        self._select(self.hyper_box, lambda m: (m.path == request.unet or
                                                any(m.path == lora.path for lora in request.loras)))
        if scribble is not None:
            self._select(self.controlnet_box, lambda m: m.path == scribble.model)
            self.scale.setValue(scribble.scale)
        if request.width and request.height:
            select_size(self.size_box, request.width, request.height)
        self.steps.setValue(request.steps or self.steps.value())
        self.seed.setValue(request.seed)
        # the prompt typed and the styles chosen, where the prompts end with (or are made around) styles
        self.prompt_styles.reload_if_changed()
        found, typed, _negative = take_out(request.prompt, request.negative_prompt or "",
                                           self.prompt_styles.book.styles, negative_read=bool(request.negative_prompt))
        self.prompt_styles.choose(found)
        self.prompt.setText(typed)
        self._prompt_timer.stop()
        if scribble is not None:
            try:
                data = self.bridge.inputs.read(scribble.image)
            except AppError as error:
                notes.append(str(error))
            else:
                self.canvas.load(data, scribble.image)
        return notes

    @staticmethod
    def _select(box: QComboBox, matches) -> None:
        index = next((i for i in range(box.count()) if box.itemData(i) is not None and matches(box.itemData(i))), -1)
        if index >= 0:
            box.setCurrentIndex(index)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        """A picture file dragged over the canvas is taken to trace (not the window's reuse-or-import offer)."""
        if watched is self.canvas and event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            files = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
            pictures = [path for path in files if path.suffix.lower() in (*IMAGE_SUFFIXES, *PICTURE_SUFFIXES)]
            if not pictures:
                return False
            event.acceptProposedAction()
            if event.type() == QEvent.Type.Drop:
                self.trace(pictures[0])
            return True
        return super().eventFilter(watched, event)

    def _choose_trace(self) -> None:
        if self.canvas.tracing:
            self.canvas.set_trace(None)
            self.trace_button.setText("Trace a picture…")
            return
        path, _ = QFileDialog.getOpenFileName(self, "A picture to trace", "", IMAGE_FILTER)
        if path:
            self.trace(Path(path))

    def trace(self, path: Path) -> None:
        """Show the picture at `path` faintly under the drawing, read off the GUI thread."""
        self._tracing += 1

        def run(serial: int = self._tracing) -> None:
            picture = read_picture(path)
            try:
                self._traced.emit(serial, picture, path.name)
            except RuntimeError:  # the window closed meanwhile
                pass

        self.trace_button.setText(f"Reading {path.name}…")
        self._trace_reader.start(run)

    def _show_trace(self, serial: int, picture, name: str) -> None:
        if serial != self._tracing:
            return  # another picture was asked for since
        self._trace_read = serial
        if picture.isNull():
            self.trace_button.setText("Stop tracing" if self.canvas.tracing else "Trace a picture…")
            self.errors.show_messages([f"{name} cannot be read as an image."])
            return
        self.canvas.set_trace(picture)
        self.trace_button.setText("Stop tracing")

    @property
    def reading_trace(self) -> bool:
        """Whether a picture to trace is being read."""
        return self._trace_read != self._tracing
