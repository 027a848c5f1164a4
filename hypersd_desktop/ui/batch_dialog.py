"""Batch jobs from the window: typed prompts or a job file, run by the worker into the gallery and
an export folder, made from nothing or from each picture in a folder (A1111's img2img batch). Stopping keeps what
is done; starting the same job again continues it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QApplication, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame,
    QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QRadioButton, QScrollArea, QSpinBox,
    QVBoxLayout, QWidget,
)

from hypersd_desktop.core.dynamic_prompts import Wildcards, wildcards_folder
from hypersd_desktop.core.errors import AppError, InputError
from hypersd_desktop.core.files import typed_path
from hypersd_desktop.core.progress import CancelToken, TransferProgress
from hypersd_desktop.core.prompt_styles import PromptStyle
from hypersd_desktop.core.settings import load_settings, save_settings
from hypersd_desktop.core.vocab import Architecture, ModelKind
from hypersd_desktop.engine.planning import reads_negative
from hypersd_desktop.engine.types import MAX_HIRES_SCALE, MAX_STEPS, GenerationRequest
from hypersd_desktop.gallery.export import FIELDS, ExportOptions, export_formats
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.ui.generate_form import (
    RecipeRules, SeedBox, base_model_label, fill_hyper_box, fill_sizes, hyper_parts, select_size,
)
from hypersd_desktop.ui.tasks import Task, describe_items, percent
from hypersd_desktop.worker.batch import (
    CANNY, BatchSpec, BatchUnit, PictureControl, UnreadPictures, follow_pictures, job_id_for, parse_job, pictures_in,
    plan_units, prompt_lines, read_pictures, unused_options, with_pictures,
)
from hypersd_desktop.worker.bridge import WorkerBridge


READING = "Reading the pictures…"
EDGES = "Finding each picture's edges…"
LAST_SHOWN = 60  # characters of the last image's picture or prompt the progress names


class BatchDialog(QDialog):
    """`defaults` (the generation controls' request, if any) preselects model, recipe, steps and size; `follows`
    says how each of its ControlNets can follow each picture of a job made from pictures (`ControlStack.
    picture_controls`)."""

    progressed = Signal()  # a unit finished: new images are in the gallery

    def __init__(self, library: ModelLibrary, bridge: WorkerBridge, defaults: GenerationRequest | None,
                 parent: QWidget | None = None, styles: Sequence[PromptStyle] = (),
                 follows: Sequence[PictureControl | None] = ()) -> None:
        super().__init__(parent)
        self.library = library
        self.bridge = bridge
        # the Generate tab's settings, but not its variation: a job's images differ by their seeds and prompts
        self.defaults = defaults.replace(variation_seed=None, variation_strength=0.0) if defaults else None
        self.job_id: int | None = None
        self._edges_task: Task | None = None  # finding the pictures' edges before the job is queued
        self._edges_for: BatchSpec | None = None  # the job queued once they are found
        self.spec: BatchSpec | None = None
        self.note: str | None = None  # what the job's A1111 lines ask for that is not used here
        settings = load_settings(library.paths)
        self.setWindowTitle("Batch job")
        screen = (parent.screen() if parent is not None else QApplication.primaryScreen()).availableGeometry()
        self.resize(680, min(780, screen.height() - 60))  # the whole form where the screen has room

        self.use_prompts = QRadioButton("Prompts, one per line")
        self.use_file = QRadioButton("A job file (text, CSV or JSON)")
        self.use_prompts.setChecked(True)
        self.prompts = QPlainTextEdit(placeholderText="a lighthouse at dusk\na fox in the snow, watercolor\n…")
        self.prompts.setToolTip("One prompt a line; # starts a comment. Lines of A1111's \"Prompts from file or "
                                "textbox\" script work too: --prompt \"…\" --negative_prompt \"…\" --steps 4 --seed 7")
        self.job_file = QLineEdit(placeholderText="prompts.txt, job.csv or job.json")
        choose_file = QPushButton("Choose…")
        choose_file.clicked.connect(self._choose_file)
        file_row = QHBoxLayout()
        file_row.addWidget(self.job_file, 1)
        file_row.addWidget(choose_file)
        seed = settings.batch_seed if settings.batch_seed >= 0 else (defaults.seed if defaults else 0)
        self.first_seed = SeedBox(seed)
        self.seeds_per_prompt = QSpinBox(minimum=1, maximum=100, value=settings.batch_seeds_per_prompt)
        self.model_box = QComboBox()
        for model in library.registry.list(kind=ModelKind.BASE):
            self.model_box.addItem(base_model_label(model), model)
        self.hyper_box = QComboBox()
        self.steps = QSpinBox(minimum=1, maximum=MAX_STEPS, value=defaults.steps or 2 if defaults else 2)
        self.size_box = QComboBox()
        self.styles = list(styles)  # the Generate tab's prompt styles, added to each prompt while this is checked
        names = ", ".join(style.name for style in self.styles)
        self.use_styles = QCheckBox(f"Add the Generate tab's styles: {names}", checked=True, visible=bool(styles))
        self.use_styles.setToolTip("Their words go into each prompt (and, where guidance reads one, each negative "
                                   "prompt), as A1111 adds the chosen styles to its prompt-file lines")
        self.detail_faces, self.detail_hands = (self._detail_box(part) for part in ("face", "hand"))
        self.use_pictures = QCheckBox("Start from each picture in", checked=bool(settings.batch_pictures))
        self.use_pictures.setToolTip("Image-to-image on every picture in the folder (not its subfolders), as A1111's "
                                     "img2img batch: each prompt once for each picture, at the picture's own size; "
                                     "{picture} in the file names is the picture's name")
        self.pictures = QLineEdit(settings.batch_pictures, placeholderText="a folder of photos or drawings")
        self.chosen_pictures: list[Path] = []  # pictures chosen elsewhere (the gallery's selection), not a folder
        choose_pictures = QPushButton("Choose…")
        choose_pictures.clicked.connect(self._choose_pictures)
        pictures_row = QHBoxLayout()
        pictures_row.addWidget(self.use_pictures)
        pictures_row.addWidget(self.pictures, 1)
        pictures_row.addWidget(choose_pictures)
        self.masks = QLineEdit(settings.batch_masks, clearButtonEnabled=True,
                               placeholderText="none (optional: a folder of masks named as the pictures, or one mask)")
        self.masks.setToolTip("Inpaint each picture through the mask of its name (white repainted), as A1111's inpaint "
                              "batch mask directory; a folder of one mask inpaints every picture through it. The "
                              "Generate tab's mask blur and inpaint area apply")
        choose_masks = QPushButton("Choose…")
        choose_masks.clicked.connect(self._choose_masks)
        self.masks_row = QWidget()
        masks_row = QHBoxLayout(self.masks_row)
        masks_row.setContentsMargins(0, 0, 0, 0)
        masks_row.addWidget(self.masks, 1)
        masks_row.addWidget(choose_masks)
        self.own_prompts = QCheckBox("Add each picture's own prompt, as its file says it was made",
                                     checked=settings.batch_picture_prompts)
        self.own_prompts.setToolTip("As A1111's img2img batch adds a picture's PNG info: the prompts a picture was "
                                    "made with (read as reuse reads them, from A1111, ComfyUI, InvokeAI, NovelAI …) "
                                    "follow the job's, which may then be left empty")
        self.strength = QDoubleSpinBox(minimum=0.01, maximum=1.0, singleStep=0.05, decimals=2,
                                       value=defaults.strength if defaults else 0.75)
        self.strength.setToolTip("How much of each picture is repainted (at 4 steps 0.5 runs 2)")
        self.enlarge = QDoubleSpinBox(minimum=1.0, maximum=MAX_HIRES_SCALE, singleStep=0.25, value=1.0, decimals=2,
                                      prefix="Enlarge × ", specialValueText="Enlarge: no")
        self.enlarge.setToolTip("Make each image this many times its picture's size: the picture enlarged (by the "
                                "Generate tab's Upscaler) and repainted at that size, Strength of it; an upscale of "
                                "each (about 0.5 adds detail and keeps the picture)")
        # the Generate tab's ControlNets that can follow each picture, as they follow its own control picture
        self.follows = tuple(follows)[:len(defaults.controls)] if defaults is not None else ()
        self.follow = QCheckBox(_follow_text(self.follows), checked=settings.batch_follow_pictures,
                                visible=any(self.follows))
        self.follow.setToolTip("As A1111's ControlNet in a batch: each image follows its own picture's map, made as "
                               "the Generate tab makes it from its ControlNet picture; unchecked, every image follows "
                               "that one picture")
        strength_row = QHBoxLayout()
        strength_row.addWidget(self.strength, 1)
        strength_row.addWidget(self.enlarge, 1)
        # the Generate tab's init image (and mask), which every image starts from unless pictures are chosen here,
        # and its Faces and hands only, which makes each picture's faces and hands again and keeps the rest
        self.from_init = self.defaults is not None and self.defaults.init_image is not None
        self.parts_only = self.defaults is not None and self.defaults.detail_only
        masked = " and its mask" if self.from_init and self.defaults.mask_image is not None else ""
        self.init_note = QLabel(f"Each image starts from the Generate tab's init image{masked} (image-to-image), at "
                                "the strength below; check the box below to start from pictures of your own instead.",
                                wordWrap=True, visible=self.from_init)
        self.parts_note = QLabel("Faces and hands only (the Generate tab's): each picture keeps all but its faces and "
                                 "hands, made again by the passes below; strength, masks and enlarging do not apply.",
                                 wordWrap=True, visible=self.parts_only)
        if self.parts_only:
            self.init_note.setText("Each image is the Generate tab's init image with its faces and hands made again "
                                   "(its Faces and hands only); check the box below to do that to pictures of your "
                                   "own.")
        self.folder = QLineEdit(settings.batch_dir or str(Path.home() / "Pictures" / "HyperSD batches"))
        choose_folder = QPushButton("Choose…")
        choose_folder.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(choose_folder)
        self.template = QLineEdit(settings.batch_template)
        self.template.setToolTip("Fields: " + " ".join(f"{{{name}}}" for name in FIELDS) + "\n{picture}: the name "
                                 "of the picture an image started from; {prompt:40} keeps 40 characters, {index:4} "
                                 "pads to 4 digits, / makes folders")
        self.format = QComboBox()
        self.format.addItems(export_formats())
        self.format.setCurrentText(settings.batch_format)
        self.prompts.setPlainText(settings.batch_prompts)
        self.job_file.setText(settings.batch_job_file)
        self.bar = QProgressBar(maximum=1000)
        self.status = QLabel("Stopping keeps what is done; starting the same job again continues where it stopped.",
                             wordWrap=True)
        self.notice = QLabel(wordWrap=True, visible=False)  # stays while the job runs, under its changing status

        form = QFormLayout()
        form.addRow(self.use_prompts)
        form.addRow(self.prompts)
        form.addRow(self.use_file)
        form.addRow(file_row)
        form.addRow(self.init_note)
        form.addRow(self.parts_note)
        form.addRow(pictures_row)
        form.addRow("Masks", self.masks_row)
        form.addRow(self.own_prompts)
        form.addRow(self.follow)
        form.addRow("Strength", strength_row)
        form.addRow("First seed", self.first_seed)
        form.addRow("Seeds per prompt", self.seeds_per_prompt)
        form.addRow(self.use_styles)
        form.addRow(self.detail_faces)
        form.addRow(self.detail_hands)
        form.addRow("Base model", self.model_box)
        form.addRow("Hyper-SD", self.hyper_box)
        form.addRow("Steps", self.steps)
        form.addRow("Size", self.size_box)
        form.addRow("Export to", folder_row)
        form.addRow("Name files by", self.template)
        form.addRow("Format", self.format)
        buttons = QDialogButtonBox()
        self.start_button = buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole)
        self.stop_button = buttons.addButton("Stop", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button = buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.stop_button.setEnabled(False)
        page = QWidget()
        page.setLayout(form)
        scroller = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)  # fits a small screen
        scroller.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroller.setWidget(page)
        scroller.setMinimumWidth(page.minimumSizeHint().width() + scroller.verticalScrollBar().sizeHint().width())
        layout = QVBoxLayout(self)
        layout.addWidget(scroller, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.notice)
        layout.addWidget(buttons)

        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.hyper_box.currentIndexChanged.connect(self._recipe_changed)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.open_button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(self.folder.text())))
        close.clicked.connect(self.reject)
        self.job_file.textChanged.connect(lambda text: self.use_file.setChecked(bool(text)) if text else None)
        self.pictures.textEdited.connect(lambda text: self.use_pictures.setChecked(bool(text.strip())))
        self.use_pictures.toggled.connect(self._pictures_toggled)
        bridge.batch_progress.connect(self._progress)
        bridge.batch_finished.connect(self._finished)
        bridge.failed.connect(self._failed)
        self._preselect()
        self.use_file.setChecked(bool(settings.batch_job_file) and not settings.batch_prompts)
        self._pictures_toggled(self.use_pictures.isChecked())
        self._show_earlier_run()

    # -- choices --------------------------------------------------------------------------

    def _preselect(self) -> None:
        if self.defaults is not None:
            for i in range(self.model_box.count()):
                if Path(self.model_box.itemData(i).path) == Path(self.defaults.base_model):
                    self.model_box.setCurrentIndex(i)
        self._model_changed()
        if self.defaults is not None:
            wanted = {str(Path(lora.path)) for lora in self.defaults.loras} | {str(Path(self.defaults.unet or "."))}
            self.hyper_box.setCurrentIndex(next((i for i in range(1, self.hyper_box.count())
                                                 if str(Path(self.hyper_box.itemData(i).path)) in wanted), 0))
            if self.defaults.steps:
                self.steps.setValue(self.defaults.steps)
        settings = load_settings(self.library.paths)
        if settings.batch_steps:
            self.steps.setValue(settings.batch_steps)
        size = (settings.batch_width, settings.batch_height) if settings.batch_width else \
            (self.defaults.width, self.defaults.height) if self.defaults else None
        if size and size[0]:
            self.select_size(*size)

    def select_size(self, width: int, height: int) -> None:
        select_size(self.size_box, width, height)

    def _model_changed(self) -> None:
        model = self.model_box.currentData()
        architecture = model.architecture if model else Architecture.SD15
        installed = fill_hyper_box(self.hyper_box, self.library, architecture, model)
        self.hyper_box.setCurrentIndex(1 if installed else 0)
        fill_sizes(self.size_box, architecture)

    def _recipe_changed(self) -> None:
        rules = RecipeRules.of(self.hyper_box.currentData())
        if rules.default_steps is not None:
            self.steps.setValue(rules.default_steps)
        rules.fit_steps(self.steps)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Batch job file", str(Path.home()),
                                              "Job files (*.txt *.csv *.tsv *.json);;All files (*)")
        if path:
            self.job_file.setText(path)
            self.use_file.setChecked(True)

    def _detail_box(self, part: str) -> QCheckBox:
        """Whether the batch's images get the Generate tab's face (`part` "face") or hand pass; shown while it is on
        there."""
        wanted = getattr(self.defaults, f"{part}_detail") if self.defaults else None
        box = QCheckBox(f"Detail {part}s, as the Generate tab does (strength {wanted.strength:g})" if wanted else "",
                        checked=True, visible=wanted is not None)
        box.setToolTip(f"Each image's {part}s made again once it is made (the {part} pass): better small {part}s, "
                       f"at the time of an inpainting a {part}")
        return box

    def _choose_pictures(self) -> None:
        start = "" if self.chosen_pictures else self.pictures.text()
        folder = QFileDialog.getExistingDirectory(self, "Start from the pictures in", start)
        if folder:
            self._set_chosen([])
            self.pictures.setText(folder)
            self.use_pictures.setChecked(True)

    def _choose_masks(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Inpaint through the masks in", self.masks.text())
        if folder:
            self.masks.setText(folder)

    def start_from_pictures(self, paths: Sequence[str | Path]) -> None:
        """Make the job from each of `paths` (the gallery's selected images) instead of a folder's pictures."""
        self._set_chosen([Path(path) for path in paths])
        self.use_pictures.setChecked(True)
        self.start_button.setText("Start")
        self._show_earlier_run()

    def _set_chosen(self, paths: list[Path]) -> None:
        self.chosen_pictures = paths
        self.pictures.setReadOnly(bool(paths))
        if paths:
            self.use_pictures.setText("Start from each of")
            self.pictures.setText(f"the {len(paths)} images chosen in the gallery")
        else:
            self.use_pictures.setText("Start from each picture in")
            self.pictures.setText(load_settings(self.library.paths).batch_pictures)

    def _pictures_toggled(self, on: bool) -> None:
        """From pictures: their strength; each image is its picture's size."""
        self.strength.setEnabled((on or self.from_init) and not self.parts_only)
        self.own_prompts.setEnabled(on)
        self.follow.setEnabled(on and not self.parts_only)  # a face pass runs without the ControlNets
        self.masks_row.setEnabled(on and not self.parts_only)
        self.enlarge.setEnabled(on and not self.parts_only)
        self.init_note.setVisible(self.from_init and not on)
        self.size_box.setEnabled(not on)
        self.size_box.setToolTip("Each picture's own size (a photo far larger than the model's size scaled down to "
                                 "it)" if on else "")

    def _enlarged(self) -> float:
        """How many times its picture's size each image is made (faces and hands alone: as it is)."""
        return 1.0 if self.parts_only else self.enlarge.value()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the batch to", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def build_spec(self, read_pictures: bool = True, follow: bool = True,
                   picture: Callable[[str, str], str] | None = None) -> BatchSpec:
        """The whole job as the worker will run it; `InputError` says what is missing or wrong. Without
        `read_pictures`, the pictures it starts from are not read (their digests are left blank): enough to find
        what an earlier run of it did; `picture` names them instead where given (`UnreadPictures`: read off the GUI
        thread). Without `follow`, its ControlNets are left to follow each picture (`_followed`)."""
        model = self.model_box.currentData()
        if model is None:
            raise InputError("No base model is installed; install one in the Models tab first.")
        pictures = self.use_pictures.isChecked()
        own = pictures and self.own_prompts.isChecked()
        if self.use_file.isChecked():
            path = typed_path(self.job_file.text())
            if path is None:
                raise InputError("Choose a job file, or type the prompts.")
            if not path.is_file():
                raise InputError(f"{path} does not exist.")
            items = parse_job(path)
        else:
            items = prompt_lines(self.prompts.toPlainText())
            if not items and own:  # the pictures' prompts alone
                items = [{"prompt": ""}]
            if not items:
                raise InputError("Type at least one prompt (one per line), or choose a job file.")
        masks_folder = typed_path(self.masks.text()) if pictures and not self.parts_only else None
        masks = pictures_in(masks_folder) if masks_folder is not None else []
        if pictures and self.chosen_pictures:
            items = with_pictures(items, self.chosen_pictures, own, masks, self._enlarged())
        elif pictures:
            folder = typed_path(self.pictures.text())
            if folder is None:
                raise InputError("Choose the folder of pictures to start from, or uncheck it.")
            items = with_pictures(items, pictures_in(folder), own, masks, self._enlarged())
        hyper = self.hyper_box.currentData()
        unet, loras = hyper_parts(hyper)
        width, height = (None, None) if pictures else self.size_box.currentData() or (None, None)
        base = self.defaults or GenerationRequest(prompt="", base_model=model.path)
        # the Generate tab's VAE goes with its model; another model takes its own automatic choice
        same = self.defaults is not None and Path(self.defaults.base_model) == Path(model.path)
        vae = base.vae if same else self.library.vae_for(model.path)
        defaults = base.replace(
            prompt="", negative_prompt="", base_model=model.path, vae=vae, seed=self.first_seed.value(), batch_size=1,
            unet=unet, loras=loras, steps=self.steps.value(), width=width, height=height, eta=None, preview="none",
            guidance=None if RecipeRules.of(hyper).recipe is not None else base.guidance,
            # the batch's own size, shown above, is what it makes
            hires_scale=None, hires_steps=None, hires_prompt=None, hires_negative_prompt=None,
            hires_guidance=None, face_detail=base.face_detail if self.detail_faces.isChecked() else None,
            hand_detail=base.hand_detail if self.detail_hands.isChecked() else None,
        )
        if pictures:  # each picture whole (or through its mask) at this strength: the Generate tab's mask is its own
            defaults = defaults.replace(strength=self.strength.value(), mask_image=None,
                                        masked_padding=defaults.masked_padding if masks else None)
        elif self.from_init:
            defaults = defaults.replace(strength=self.strength.value())
        options = ExportOptions(template=self.template.text().strip(), format=self.format.currentText())
        options.validate()
        folder = typed_path(self.folder.text())
        if folder is None:
            raise InputError("Choose the folder to export the batch to.")
        styles = self.styles if self.use_styles.isChecked() else []
        units = plan_units(items, defaults, self.seeds_per_prompt.value(), self.library.resolve,
                           self.library.embeddings_named, self.library.vae_for, self.library.loras_tagged,
                           Wildcards(wildcards_folder(self.library.paths)), styles, reads_negative,
                           picture or (self.bridge.inputs.add_file if read_pictures else _unread))
        follows = self._follows()
        if any(follows) and read_pictures and follow:
            units = self._followed(units, follows)
        job = job_id_for(items, defaults, options, self.seeds_per_prompt.value(), styles, follows)
        self.note = unused_options(items)
        return BatchSpec(job, tuple(units), folder.resolve(), options)

    def _follows(self) -> tuple[PictureControl | None, ...]:
        """How the ControlNets follow each picture (`follows`) while the follow box is on; none while it is off."""
        return self.follows if self.follow.isEnabled() and self.follow.isChecked() else ()

    def _followed(self, units: list[BatchUnit], follows: Sequence[PictureControl | None], on_progress=None,
                  cancel: CancelToken | None = None) -> list[BatchUnit]:
        return follow_pictures(units, follows, self.bridge.inputs, on_progress, cancel)

    @contextmanager
    def _reading(self):
        """A busy cursor while a job from pictures reads them (their files, and their prompts and sizes where asked
        for: milliseconds a picture, seconds for a large folder); nothing for a job of prompts alone."""
        if not self.use_pictures.isChecked():
            yield
            return
        before = self.status.text()
        self.status.setText(READING)
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            yield
        finally:
            QApplication.restoreOverrideCursor()
            if self.status.text() == READING:  # nothing said since
                self.status.setText(before)

    def _show_earlier_run(self) -> None:
        """Say so when the job as filled in was stopped part way (Start then continues it)."""
        try:
            with self._reading():
                spec = self.build_spec(read_pictures=False)
        except (AppError, ValueError, OSError):
            return
        done = spec.done_before()
        if 0 < done < len(spec.units):
            self.status.setText(f"This job was stopped after {done} of {len(spec.units)} images; Resume continues it.")
            self.start_button.setText("Resume")

    def _remember(self, spec: BatchSpec) -> None:
        settings = load_settings(self.library.paths)
        settings = settings.replace(
            batch_dir=str(spec.target), batch_prompts=self.prompts.toPlainText() if self.use_prompts.isChecked() else "",
            batch_job_file=self.job_file.text().strip() if self.use_file.isChecked() else "",
            batch_seed=self.first_seed.value(), batch_seeds_per_prompt=self.seeds_per_prompt.value(),
            batch_template=self.template.text().strip(), batch_format=self.format.currentText(),
            batch_steps=self.steps.value(), batch_width=spec.units[0].request.width or 0,
            batch_height=spec.units[0].request.height or 0,
            # a folder, kept; the gallery's chosen images leave the folder chosen before as it was
            batch_pictures=(self.pictures.text().strip() if self.use_pictures.isChecked() else "")
            if not self.chosen_pictures else settings.batch_pictures,
            batch_picture_prompts=self.own_prompts.isChecked(), batch_masks=self.masks.text().strip(),
            batch_follow_pictures=self.follow.isChecked() if any(self.follows) else settings.batch_follow_pictures,
        )
        save_settings(settings, self.library.paths)

    # -- running --------------------------------------------------------------------------

    def start(self) -> int | None:
        """Queue the job; its id, or None where it cannot run or its pictures are being read (and their edges
        found) first: it is queued once they are (`_edges_found`)."""
        unread = UnreadPictures()
        try:
            with self._reading():
                spec = self.build_spec(follow=False, picture=unread)
        except (AppError, ValueError) as error:
            self.status.setText(f"⚠ {error}")
            return None
        follows = self._follows()
        if unread.paths or any(rule is not None and rule.kind == CANNY for rule in follows):
            self._find_edges(spec, unread, follows)  # seconds to minutes for a folder of photos
            return None
        return self._submit(dataclasses.replace(spec, units=tuple(self._followed(list(spec.units), follows))))

    def _find_edges(self, spec: BatchSpec, unread: UnreadPictures,
                    follows: tuple[PictureControl | None, ...]) -> None:
        """Read the job's pictures and find each one's Canny edges off the GUI thread (a folder of photos takes
        seconds to minutes; HEIC photos are made PNG), the progress shown and Stop stopping it; then queue it."""
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.bar.setValue(0)
        self.status.setText(READING if unread.paths else EDGES)
        self._edges_for = spec

        def prepare(report, cancel) -> list[BatchUnit]:
            units = read_pictures(list(spec.units), unread, self.bridge.inputs, report, cancel)
            return self._followed(units, follows, report, cancel) if any(follows) else units

        self._edges_task = Task(prepare, self)
        self._edges_task.progress.connect(self._edges_progress)
        self._edges_task.succeeded.connect(self._edges_found)
        self._edges_task.cancelled.connect(self._edges_stopped)
        self._edges_task.failed.connect(self._edges_failed)
        self._edges_task.start()

    def _edges_progress(self, progress: TransferProgress) -> None:
        self.bar.setValue(percent(progress))
        reading = progress.label == "pictures"
        said = describe_items(progress, "pictures" if reading else "images")
        self.status.setText(f"{READING if reading else EDGES} {said}")

    def close_resources(self) -> None:
        """Closing the app: finding the pictures' edges stops (the job was not queued yet; Start begins it again)."""
        task = self._edges_task
        if task is not None and task.isRunning():
            task.cancel()
            task.wait(10_000)

    def _edges_found(self, units: list[BatchUnit]) -> None:
        self._submit(dataclasses.replace(self._edges_for, units=tuple(units)))

    def _edges_stopped(self, _message: str) -> None:
        self.status.setText("Stopped before any image was made; Start begins again.")
        self._ended()

    def _edges_failed(self, message: str) -> None:
        self.status.setText(f"⚠ {message}")
        self._ended()

    def _submit(self, spec: BatchSpec) -> int:
        self._edges_task = None
        self._remember(spec)
        self.spec = spec
        self.folder.setText(str(spec.target))  # as typed ("~/out", in quotes) it is the folder written
        done = spec.done_before()
        self.job_id = self.bridge.client.submit_batch(spec)
        self.library.registry.mark_used(path for unit in spec.units for path in unit.request.model_paths())
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.bar.setValue(int(1000 * done / len(spec.units)))
        resumed = f"; {done} were done by an earlier run and are skipped" if done else ""
        self.status.setText(f"Queued {len(spec.units)} images{resumed}.")
        self.notice.setText(self.note or "")
        self.notice.setVisible(bool(self.note))
        return self.job_id

    def stop(self) -> None:
        if self._edges_task is not None:
            self._edges_task.cancel()
        if self.job_id is not None:
            self.status.setText("Stopping after the current image…")
            self.bridge.client.cancel(self.job_id)

    def _progress(self, message) -> None:
        if message.job_id != self.job_id:
            return
        progress = TransferProgress("batch", "", message.done, message.total, message.rate, message.eta_s)
        self.bar.setValue(percent(progress))
        last = " ".join(message.item.split())  # a prompt's lines, as one
        last = f"{last[:LAST_SHOWN]}…" if len(last) > LAST_SHOWN else last
        self.status.setText(describe_items(progress) + (f" · last: {last}" if last else ""))
        self.progressed.emit()

    def _finished(self, message) -> None:
        if message.job_id != self.job_id:
            return
        self.bar.setValue(1000)
        self.status.setText(f"Done: {message.generated} generated, {message.skipped} already done, in "
                            f"{message.seconds:.1f} s. Manifest: {message.manifest}")
        self._ended()
        self.progressed.emit()

    def _failed(self, message) -> None:
        if message.job_id != self.job_id:
            return
        if message.cancelled:
            self.status.setText(f"{message.message} Start continues the job.")
            self.start_button.setText("Resume")
        else:
            self.status.setText(f"⚠ {message.message}")
        self._ended()

    def _ended(self) -> None:
        self.job_id = None
        self._edges_task = None
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)


def _unread(_path: str, _what: str) -> str:
    """A picture's digest left blank: a job's units are found by their numbers and seeds, not their pictures."""
    return "0" * 64


FOLLOWED = {CANNY: "its Canny edges", "depth": "its depth map", "pose": "its people's pose", "": "it as a scribble"}


def _follow_text(follows: Sequence[PictureControl | None]) -> str:
    """The follow box's words: what of each picture the ControlNets follow."""
    kinds = list(dict.fromkeys(FOLLOWED[rule.kind] for rule in follows if rule is not None))
    noun = "ControlNets follow" if sum(rule is not None for rule in follows) > 1 else "ControlNet follows"
    return f"The {noun} each picture: {', '.join(kinds)}"
