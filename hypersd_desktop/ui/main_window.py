"""The main window: the Generate tab (prompt, model and recipe controls, live preview, results,
queue), the Gallery tab and the Models tab.

Widgets build a `GenerationRequest` and hand it to the worker bridge; they never touch torch.
Images dropped on the window offer to reuse their settings or to import them; model files and
folders dropped on it are imported into the model library.
"""

from __future__ import annotations

import html
import json
import random
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel,
    QLineEdit, QListWidget, QMainWindow, QMenu, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QScrollArea,
    QSpinBox, QSplitter, QTabWidget, QToolButton, QVBoxLayout, QWidget,
)

from hypersd_desktop import __version__
from hypersd_desktop.core.dynamic_prompts import Wildcards, ensure_wildcards, every, wildcards_folder
from hypersd_desktop.core.errors import AppError, InputError
from hypersd_desktop.core.files import why_not_written, write_atomic
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.settings import Settings, save_settings, with_dialog_choices
from hypersd_desktop.core.vocab import (
    Architecture, Decoder, Device, ImageSource, Preprocessor, Preview, Tiling, upscaler_families,
)
from hypersd_desktop.engine.planning import plan
from hypersd_desktop.engine.plot import PLOT_KEY, Axis, PlotSpec, joined_values, stored_axes
from hypersd_desktop.engine.recipes import RECIPES_BY_ID
from hypersd_desktop.engine.types import (
    MAX_CLIP_SKIP, MAX_HIRES_SCALE, MAX_REPAINT_TILE, MAX_STEPS, MAX_TILE_MASK_BLUR, MAX_TILE_PADDING,
    MIN_REPAINT_TILE, TILE_MASK_BLUR, TILE_PADDING, DetailPass, GenerationRequest, SeamsFix, hires_size,
)
from hypersd_desktop.gallery.formats import ImageMetadata
from hypersd_desktop.gallery.formats.common import (
    detail_pass, hires_guidance, hires_prompts, hires_settings, picture_strength, repaint_tile, seams_fix_of,
    tile_surround, tiling_of, variation_of,
)
from hypersd_desktop.core.prompt_styles import StyleBook, apply_styles, styles_file, take_out, unapplied
from hypersd_desktop.core.prompt_tags import embeddings_by_name, with_words, without_network_tags, without_words
from hypersd_desktop.gallery.formats.syntax import reused_prompts
from hypersd_desktop.gallery.gallery import Gallery, read_metadata, record_for
from hypersd_desktop.gallery.sidecars import settings_file
from hypersd_desktop.gallery.store import ImageRecord
from hypersd_desktop.gallery.watch import found_output_folders, watched_folders, watched_text
from hypersd_desktop.models.catalog import FP16_SDXL_VAE
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.banner import Banner
from hypersd_desktop.ui.control_stack import ControlStack, ReferenceStack
from hypersd_desktop.ui.control_maps import ControlMaps
from hypersd_desktop.ui.describe import Describer, described_text, tagger_name
from hypersd_desktop.ui.forever import GenerateForever
from hypersd_desktop.ui.gallery_descriptions import GalleryDescriptions
from hypersd_desktop.ui.watched_folders import FolderWatcher, WatchedFoldersDialog
from hypersd_desktop.ui.draw_tab import DrawTab
from hypersd_desktop.ui.drops import SETTINGS_SUFFIXES, WEB_SCHEMES, DroppedFiles, ImageChoice, ask_about_image
from hypersd_desktop.ui.emphasis_keys import EmphasisKeys
from hypersd_desktop.ui.form_menu import form_button
from hypersd_desktop.ui.engine_notice import EngineNoticeView
from hypersd_desktop.ui.detail_rows import DetailRows
from hypersd_desktop.ui.generate_form import (
    MAX_SEED, NO_MODEL_HINT, RANDOM_SEEDS, VARIATION_STRENGTH, RecipeRules, SeedBox, VariationRow, fill_base_models,
    fill_hyper_box, fill_sizes, fill_upscaler_box, fill_vae_box, hyper_parts, select_path, select_size,
)
from hypersd_desktop.ui.gallery_browser import GalleryBrowser
from hypersd_desktop.ui.init_image import ENLARGE_SCALES, IMAGE_FILTER, UPSCALE_SCALES, InitImageBox
from hypersd_desktop.ui.job_view import JobView, JobWidgets, PreviewLabel, ResultStrip
from hypersd_desktop.ui.live_prompt import KEEP_KEYS, LIVE_KEYS, LivePrompt
from hypersd_desktop.ui.model_manager import ModelManager
from hypersd_desktop.worker.matching import ModelMatch, match_metadata, match_request
from hypersd_desktop.ui.pasted_parameters import NOTHING_TO_PASTE, PromptBox, clipboard_files, clipboard_metadata
from hypersd_desktop.ui.plot_dialog import PlotDialog
from hypersd_desktop.ui.prompt_completer import PromptCompleter
from hypersd_desktop.ui.prompt_history import PromptHistory
from hypersd_desktop.ui.prompt_styles import STYLES_KEYS, StylePicker
from hypersd_desktop.ui.session import SessionKeeper
from hypersd_desktop.ui.shortcuts import EVERYWHERE, GENERATE, ShortcutsDialog, described
from hypersd_desktop.ui.style_loras import StyleLoras
from hypersd_desktop.ui.tile_seams import TileSeams
from hypersd_desktop.ui.token_count import TokenCount, embeddings_of
from hypersd_desktop.worker.batch import MOST_COMBINATIONS, dynamic_jobs, together, with_tagged_loras
from hypersd_desktop.worker.bridge import WorkerBridge
from hypersd_desktop.worker.protocol import PROTOCOL_VERSION, Enlargement
from hypersd_desktop.worker.service import output_path


IDLE_HINT = "Type a prompt and press Ctrl+Enter"
VARIATIONS = 4  # images "Variations of this image" makes
TILE_SIDES = (512, 640, 768, 896, 1024, 1280, 1536, 2048)  # the tile sizes In tiles offers besides the model's own
COUNT_AFTER_MS = 250  # the pause in typing after which "Each combination" counts the prompt's combinations
FIRST_SIZE = QSize(1280, 800)  # the window on a first start, where the screen has the room


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
        self._plot_dialog: PlotDialog | None = None
        self._batch_dialog = None
        self._generate_when_read = None  # the picture box being read when Generate was pressed
        self._count_when_read: int | None = None  # and the count Generate was asked for
        self.setWindowTitle("HyperSD Desktop")
        self._build()
        self._place()
        self._connect()
        self.reload_models()
        self._restore_choices()
        self.session = SessionKeeper(self, library.paths)  # the prompts, pictures and drawing of the last run
        self.session.restore()
        self.session.watch()
        self._update_recipe_controls()

    # -- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        self.prompt = PromptBox(placeholderText="Describe the image… (Ctrl+Enter to generate)")
        self.negative = QPlainTextEdit(placeholderText="Negative prompt (only with a CFG recipe)")
        for editor, height in ((self.prompt, 110), (self.negative, 60)):
            editor.setMaximumHeight(height)
            editor.setTabChangesFocus(True)
        # A1111's Styles (styles.csv): words added to the prompts typed; "style LoRAs" are LoRAs (`self.styles`)
        self.prompt_styles = StylePicker(StyleBook(styles_file(self.library.paths)), self.prompt, self.negative)
        self.model_box = QComboBox()
        self.hyper_box = QComboBox()
        self.steps = QSpinBox(minimum=1, maximum=MAX_STEPS, value=2)  # the recipe's rules narrow it
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=15.0, singleStep=0.5, value=0.0, decimals=1)
        self.eta = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.1, value=1.0, decimals=2)
        self.clip_skip = QSpinBox(minimum=1, maximum=MAX_CLIP_SKIP, value=1)
        self.clip_skip.setToolTip("Read the text encoder this many layers from its end (SD1.5 models). 2 is what "
                                  "many anime models are made for; 1 reads the last layer.")
        self.seed = SeedBox(random.randrange(RANDOM_SEEDS))
        self._reuse_notes: list[str] = []
        self.seed_lock = QCheckBox("Lock")
        self.seed_random = QToolButton(text="Random")
        self.seed_random.setToolTip("New random seed")
        seed_row = QHBoxLayout()
        for widget in (self.seed, self.seed_lock, self.seed_random):
            seed_row.addWidget(widget)
        self.variation = VariationRow()
        self.tiling = QComboBox()
        for tiling in Tiling:
            self.tiling.addItem(tiling.label.capitalize(), tiling.value)
        self.tiling.setToolTip("A seamless image: its left edge goes on from its right one, its top from its bottom, "
                               "so copies laid side by side show no seam (textures, patterns, wallpapers). A1111's "
                               "Tiling; the PyTorch backend makes them.")
        self.size_box = QComboBox()
        self.size_from_init = QLabel("")  # in the size list's place while the init image sets the size
        self.size_from_init.hide()
        size_row = QHBoxLayout()
        size_row.addWidget(self.size_box, 1)
        size_row.addWidget(self.size_from_init, 1)
        self.hires_scale = QDoubleSpinBox(minimum=1.0, maximum=MAX_HIRES_SCALE, singleStep=0.25, decimals=2,
                                          value=self.settings.last_hires_scale)
        self.hires_scale.setSpecialValueText("Off")
        self.hires_scale.setPrefix("× ")
        self.hires_strength = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, decimals=2,
                                             value=self.settings.last_hires_strength)
        self.hires_strength.setPrefix("Strength ")
        self.hires_strength.setToolTip("How much of the enlarged image is made again: more adds detail and changes "
                                       "more. With few steps it moves in jumps, as an init image's strength does.")
        self.hires_steps = QSpinBox(minimum=0, maximum=MAX_STEPS, value=self.settings.last_hires_steps)
        self.hires_steps.setSpecialValueText("Steps: by strength")
        self.hires_steps.setPrefix("Steps ")
        self.hires_guidance = QDoubleSpinBox(minimum=0.0, maximum=15.0, singleStep=0.5, decimals=1, value=0.0)
        self.hires_guidance.setSpecialValueText("CFG: same")  # 0: the guidance above
        self.hires_guidance.setPrefix("CFG ")
        self.hires_guidance.setToolTip("The second pass's own guidance, as Forge's Hires CFG Scale; above 1 it reads "
                                       "the negative prompt. Same: the guidance above.")
        hires_row = QHBoxLayout()
        for widget in (self.hires_scale, self.hires_strength, self.hires_steps, self.hires_guidance):
            hires_row.addWidget(widget)
        # the second pass's own prompts (A1111's Hires prompt): empty, the prompts above
        self.hires_prompt = QLineEdit(placeholderText="Second pass: the prompt above")
        self.hires_negative = QLineEdit(placeholderText="Negative: the one above")
        for box, which in ((self.hires_prompt, "prompt"), (self.hires_negative, "negative prompt")):
            box.setClearButtonEnabled(True)
            box.setToolTip(f"The Hires fix's second pass's own {which} (A1111's Hires {which}), for detail the "
                           f"first pass's words do not ask for; empty, it repaints with the {which} above.")
        hires_prompts = QHBoxLayout()
        hires_prompts.addWidget(self.hires_prompt, 3)
        hires_prompts.addWidget(self.hires_negative, 2)
        self.upscaler_box = QComboBox()  # what enlarges a picture before it is repainted (Hires fix, Enlarge, Upscale)
        self.upscaler_box.setToolTip("What enlarges a picture before it is repainted: a Hires fix's first pass, an "
                                     "init image made larger (Enlarge), Upscale; and what enlarges an image alone "
                                     "(a result's or a gallery image's \"Enlarge, not repainted\"). Lanczos "
                                     f"resamples it; an upscaler model ({upscaler_families('and')}: "
                                     "4x-UltraSharp, RealESRGAN_x4plus … imported in safetensors in the Models tab) "
                                     "draws sharper "
                                     "detail into it.")
        self.in_tiles = QCheckBox("In tiles", checked=self.settings.last_repaint_tiles)
        self.in_tiles.setToolTip("Repaint an enlarged picture (Hires fix, Enlarge, Upscale) a tile of the model's own "
                                 "size at a time (the Ultimate SD Upscale extension's way): each tile is made at the "
                                 "size the model was trained at, so a ×4 enlargement keeps one subject instead of "
                                 "repeating it, and the memory is one tile's. Off: the whole picture at once. A "
                                 "seamless image and an inpainting are repainted whole.")
        self.tile_size = QComboBox()  # the tiles' side: the model's own (0), or as the Ultimate SD Upscale user sets it
        self.tile_size.addItem("Model's size", 0)
        for side in TILE_SIDES:
            self.tile_size.addItem(f"{side} px", side)
        self.tile_size.setToolTip("The side of the tiles: the model's own size (512 for SD1.5, 1024 for SDXL), or "
                                  "smaller tiles for more detail from each, larger for fewer tiles")
        self._set_tile_size(self.settings.last_tile_size)
        self.in_tiles.toggled.connect(self.tile_size.setEnabled)
        self.tile_size.setEnabled(self.in_tiles.isChecked())
        # the picture around each tile and the blur of its edge (the extension's padding and mask blur)
        self.tile_padding = QSpinBox(minimum=0, maximum=MAX_TILE_PADDING, value=TILE_PADDING, suffix=" px")
        self.tile_padding.setToolTip("How much of the picture around each tile the model sees with it, to match "
                                     f"its neighbours (the extension's padding; {TILE_PADDING})")
        self.tile_mask_blur = QSpinBox(minimum=0, maximum=MAX_TILE_MASK_BLUR, value=TILE_MASK_BLUR, suffix=" px")
        self.tile_mask_blur.setToolTip("How far the edge each tile is laid back along is blurred into the tiles "
                                       f"around it (the extension's mask blur; {TILE_MASK_BLUR})")
        self.tile_edges = form_button("Edges", (("Padding", self.tile_padding), ("Mask blur", self.tile_mask_blur)))
        for box in (self.tile_padding, self.tile_mask_blur):
            box.valueChanged.connect(self._say_tile_edges)
        self._say_tile_edges()
        self.in_tiles.toggled.connect(self.tile_edges.setEnabled)
        self.tile_edges.setEnabled(self.in_tiles.isChecked())
        self.seams = TileSeams(self.settings.last_seams_fix, self.settings.last_seams_strength, self)
        self.in_tiles.toggled.connect(self.seams.set_tiles)
        self.seams.set_tiles(self.in_tiles.isChecked())
        upscaler_row = QHBoxLayout()
        upscaler_row.addWidget(self.upscaler_box, 1)
        upscaler_row.addWidget(self.in_tiles)
        upscaler_row.addWidget(self.tile_size)
        upscaler_row.addWidget(self.tile_edges)
        self.vae_box = QComboBox()
        self.face_detail = DetailRows(self.library, "face", self.settings.last_face_detail,
                                      self.settings.last_face_strength, self)
        self.hand_detail = DetailRows(self.library, "hand", self.settings.last_hand_detail,
                                      self.settings.last_hand_strength, self)
        self.batch_size = QSpinBox(minimum=1, maximum=8, value=1)
        self.batch_count = QSpinBox(minimum=1, maximum=100, value=1)
        self.every_combination = QCheckBox("Each combination")
        self.every_combination.setToolTip(
            "For a prompt with choices, {red|green|blue} or a wildcard __colors__ (a line of colors.txt in the "
            "wildcards folder: File → Open the wildcards folder): make every combination of them, each with the "
            "same seeds. Off: each image picks its own, by its seed.")
        self.wildcards = Wildcards(wildcards_folder(self.library.paths))
        self.completers = (PromptCompleter(self.prompt), PromptCompleter(self.negative))
        self.emphasis = EmphasisKeys(self, (self.prompt, self.negative, self.hires_prompt, self.hires_negative,
                                            *(box for rows in (self.face_detail, self.hand_detail)
                                              for box in (rows.prompt, rows.negative))), GENERATE)
        for completer in self.completers:
            completer.wildcards = self.wildcards.folder
        self.styles = StyleLoras()
        self.styles.words_added.connect(lambda words: self._edit_prompt(with_words, words))
        self.styles.words_removed.connect(lambda words: self._edit_prompt(without_words, words))
        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.forever = GenerateForever(self.bridge, lambda: self.generate(), self)  # A1111's Generate forever
        self.generate_button.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.generate_button.addAction(self.forever.action)
        self.forever.running_changed.connect(lambda on: self.generate_button.setText(
            "Generate (forever: Esc stops)" if on else "Generate"))
        self.forever.said.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.init_image = InitImageBox(self.bridge.inputs)
        self.control_maps = ControlMaps(self.bridge, self)  # depth and pose maps, made by the worker
        self.describer = Describer(self.bridge, self.library, self)  # a picture's tags, read by the worker
        # the gallery's images described for the search, by the same worker
        self.descriptions = GalleryDescriptions(self.bridge, self.library, self.gallery, lambda: self.settings, self)
        self.watcher = FolderWatcher(self.gallery, self)  # other tools' folders whose new images come in
        self.control_stack = ControlStack(self.bridge.inputs, self.library, self.control_maps)
        self.control_image = self.control_stack.first  # the first ControlNet's box
        self.reference_stack = ReferenceStack(self.bridge.inputs, self.library)
        self.ip_adapter = self.reference_stack.first  # the first IP-Adapter's box
        self.latest_wins = QCheckBox("Latest wins (replace queued jobs)")
        self.latest_wins.setChecked(self.settings.latest_wins)

        form = QFormLayout()
        form.addRow("Base model", self.model_box)
        form.addRow("Hyper-SD", self.hyper_box)
        form.addRow("VAE", self.vae_box)
        form.addRow("Steps", self.steps)
        form.addRow("Guidance", self.guidance)
        form.addRow("Eta (TCD)", self.eta)
        form.addRow("Clip skip", self.clip_skip)
        form.addRow("Seed", seed_row)
        form.addRow("Variation", self.variation)
        form.addRow("Size", size_row)
        form.addRow("Tiling", self.tiling)
        form.addRow("Hires fix", hires_row)
        form.addRow("Hires prompt", hires_prompts)
        form.addRow("Upscaler", upscaler_row)
        form.addRow("Tile seams", self.seams.row)
        form.addRow("Detail faces", self.face_detail.pass_row)
        form.addRow("Face prompt", self.face_detail.prompts_row)
        form.addRow("Detail hands", self.hand_detail.pass_row)
        form.addRow("Hand prompt", self.hand_detail.prompts_row)
        form.addRow("Batch size", self.batch_size)
        count_row = QHBoxLayout()
        count_row.addWidget(self.batch_count, 1)
        count_row.addWidget(self.every_combination)
        form.addRow("Batch count", count_row)
        form.addRow("Init image", self.init_image)
        form.addRow("ControlNet", self.control_stack)
        form.addRow("IP-Adapter", self.reference_stack)
        self.live = LivePrompt(self.bridge, self.gallery, lambda: self.library.paths.images, self._live_request,
                               self._keep_live_again, self._live_said, self._live_failed, self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button, 1)
        buttons.addWidget(self.live.button)
        buttons.addWidget(self.live.keep_button)
        controls = QVBoxLayout()
        embeddings = embeddings_of(self.library, self.model_box)
        self.prompt_tokens = TokenCount(self.prompt.toPlainText, self.steps.value, embeddings=embeddings)
        self.negative_tokens = TokenCount(self.negative.toPlainText, self.steps.value, "negative prompt", embeddings)
        self.history = PromptHistory(self.prompt, GENERATE)
        self.negative_history = PromptHistory(self.negative, GENERATE, "negative prompt")
        for title, editor, count, history in (("Prompt", self.prompt, self.prompt_tokens, self.history),
                                              ("Negative prompt", self.negative, self.negative_tokens,
                                               self.negative_history)):
            heading = QHBoxLayout()
            heading.addWidget(QLabel(title))
            heading.addWidget(history.button)
            heading.addWidget(count, 1)
            controls.addLayout(heading)
            controls.addWidget(editor)
            editor.textChanged.connect(count.changed)
            self.steps.valueChanged.connect(count.changed)  # an edited prompt's texts are the steps'
        controls.addWidget(self.prompt_styles)
        controls.addLayout(form)
        controls.addWidget(self.styles.filter)
        controls.addWidget(self.styles)
        controls.addWidget(self.latest_wins)
        controls.addStretch(1)
        form_page = QWidget()
        form_page.setLayout(controls)
        scroller = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)  # fits a laptop's screen
        scroller.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroller.setWidget(form_page)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroller, 1)
        left_layout.addLayout(buttons)  # always in view
        left.setMinimumWidth(max(380, form_page.minimumSizeHint().width() + scroller.verticalScrollBar().sizeHint().width()))

        self.warnings = Banner("warning")
        self.errors = Banner("error")
        self.preview = PreviewLabel(IDLE_HINT)
        self.timing = QLabel("", wordWrap=True)  # a long message wraps; the window keeps its width
        self.progress = QProgressBar(textVisible=False, visible=False)
        self.progress.setFixedWidth(160)
        self.results = ResultStrip()
        self._result_shown: tuple = (None, None)  # the strip's item in the preview, and its picture
        self._opened_folder = ""  # where File → Open an image last found one (this session)
        self._saved_folder = ""  # where Save as… last put a result (this session)
        self.results.setToolTip("Click to see an image large; double-click (or Enter) opens it in the gallery; "
                                "drag one to the init image box or out of the app")
        self.results.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        use_result = QAction("Use as init image", self.results)
        use_result.triggered.connect(self.use_result_as_init_image)
        self.results.addAction(use_result)
        vary_result = QAction(f"Variations of this image (× {VARIATIONS})", self.results)
        vary_result.triggered.connect(self.variations_of_result)
        self.results.addAction(vary_result)
        detail_result = QAction("Make its faces and hands again", self.results)
        detail_result.triggered.connect(self.detail_result)
        self.results.addAction(detail_result)
        describe_result = QAction("Describe: its tags as the prompt", self.results)
        describe_result.triggered.connect(self.describe_result)
        self.results.addAction(describe_result)
        compare_result = QAction("Compare with the image before it", self.results)
        compare_result.triggered.connect(self.compare_result)
        self.results.addAction(compare_result)
        open_result = QAction("Open in the gallery", self.results)
        open_result.triggered.connect(lambda: self.open_result(self.results.currentItem() or self.results.item(0)))
        self.results.addAction(open_result)
        save_result = QAction("Save as… (Ctrl+S)", self.results)
        save_result.triggered.connect(self.save_result_as)
        self.results.addAction(save_result)
        for scale in UPSCALE_SCALES:
            upscale = QAction(f"Upscale × {scale:g}", self.results)
            upscale.triggered.connect(lambda _checked=False, scale=scale: self.upscale_result(scale))
            self.results.addAction(upscale)
        self._enlarge_actions = []  # the results' "enlarged only" choices, named after the Upscaler chosen
        for scale in ENLARGE_SCALES:
            enlarge = QAction("", self.results)
            enlarge.triggered.connect(lambda _checked=False, scale=scale: self.enlarge_result(scale))
            self.results.addAction(enlarge)
            self._enlarge_actions.append((enlarge, scale))
        self.queue = QListWidget()
        self.queue.setMaximumHeight(90)
        self.queue.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)  # Shift/Ctrl: several
        self.queue.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.queue.setToolTip("Right-click: move to the top or bottom, remove, remove all; Delete removes the "
                              "selected")
        queue_buttons = QHBoxLayout()
        self.queue_up, self.queue_down, self.queue_remove = (QToolButton(text=t) for t in ("▲", "▼", "✕"))
        for button, tip in ((self.queue_up, "Move up"), (self.queue_down, "Move down"), (self.queue_remove, "Remove")):
            button.setToolTip(tip)
            button.setAccessibleName(tip)  # what a screen reader says instead of the arrow
            queue_buttons.addWidget(button)
        queue_buttons.addStretch(1)
        # tool buttons, as the arrows: a push button's height would not leave the window room on a 600-pixel screen
        self.resume_queue = QToolButton(text="Resume queue", visible=False)  # its tip: why they wait (JobView)
        self.pause_queue = QToolButton(text="Pause queue")
        self.pause_queue.setToolTip("Start no more images until Resume queue: the one being made is finished, the "
                                    "queued ones and any asked for meanwhile wait (to free the GPU for a while)")
        queue_buttons.addWidget(self.pause_queue)
        queue_buttons.addWidget(self.resume_queue)
        center = QVBoxLayout()
        center.addWidget(self.errors)
        center.addWidget(self.warnings)
        center.addWidget(self.preview, 1)
        timing_row = QHBoxLayout()
        timing_row.addWidget(self.timing, 1)
        timing_row.addWidget(self.progress)
        center.addLayout(timing_row)
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
        self.draw = DrawTab(self.library, self.bridge, self.gallery, lambda: self.settings, vae_for=self.vae_for)
        self.tabs = QTabWidget()
        self.generate_page = splitter
        self.tabs.addTab(splitter, "&Generate")
        self.tabs.addTab(self.draw, "&Draw")
        self.tabs.addTab(self.browser, "G&allery")
        self.tabs.addTab(self.models, "&Models")
        # An image dragged from the gallery and held over the Generate or Draw tab opens that tab, so it can be
        # dropped in the init image or ControlNet box there.
        self.tabs.tabBar().setChangeCurrentOnDrag(True)
        self.tabs.tabBar().setAcceptDrops(True)
        self.setCentralWidget(self.tabs)
        self.setAcceptDrops(True)

        self.device_label = QLabel("Starting the generation worker…")
        self.memory_label = QLabel("")
        self.engine_notice = EngineNoticeView()
        self.statusBar().addWidget(self.device_label)
        self.statusBar().addPermanentWidget(self.engine_notice)
        self.statusBar().addPermanentWidget(self.memory_label)

        menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open an image…", self, shortcut=QKeySequence.StandardKey.Open)
        self.open_action.setToolTip("Reuse an image's settings (made here or by another tool), start from it, or "
                                    "import it: as when it is dropped on the window")
        self.open_action.triggered.connect(self.choose_images)
        self.paste_action = QAction("&Paste parameters", self, shortcut=QKeySequence("Ctrl+Shift+V"))
        self.paste_action.setToolTip("Fill the settings from generation data copied as text: A1111's or Forge's, "
                                     "Civitai's “Copy generation data”, a ComfyUI workflow (pasting it into the "
                                     "prompt box does the same)")
        self.paste_action.triggered.connect(self.paste_parameters)
        self.import_action = QAction("&Import models…", self)
        self.import_images_action = QAction("Import &images from a folder…", self)
        self.watch_action = QAction("&Watched folders…", self)
        self.watch_action.setToolTip("Folders another tool saves its images in, whose new images come into the "
                                     "gallery as they arrive")
        self.watch_action.triggered.connect(self.open_watched_folders)
        self.rebuild_action = QAction("&Rebuild the gallery from the images folder", self)
        self.batch_action = QAction("&Batch job…", self, shortcut=QKeySequence("Ctrl+B"))
        self.plot_action = QAction("X/Y/Z &plot…", self, shortcut=QKeySequence("Ctrl+Shift+P"))
        self.plot_action.setToolTip("The Generate tab's image made again with settings stepped through values, and "
                                    "a grid of them with labels (A1111's X/Y/Z plot)")
        self.plot_action.triggered.connect(self.open_plot)
        self.export_action = QAction("&Export images…", self, shortcut=QKeySequence("Ctrl+E"))
        self.settings_action = QAction("&Settings…", self, shortcut=QKeySequence("Ctrl+,"))
        self.runtime_action = QAction("Compute &runtime…", self)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.wildcards_action = QAction("Open the &wildcards folder", self)
        self.wildcards_action.setToolTip("Text files of options, one a line: __name__ in a prompt is a line of "
                                         "name.txt")
        self.wildcards_action.triggered.connect(self.open_wildcards)
        for action in (self.open_action, self.paste_action, None, self.import_action, self.import_images_action,
                       self.watch_action, self.rebuild_action, self.wildcards_action, None, self.batch_action,
                       self.plot_action, self.export_action, None,
                       self.settings_action, self.runtime_action, None, quit_action):  # None: a separator
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
        view = self.menuBar().addMenu("&View")
        self.find_action = QAction("&Search the gallery", self, shortcut=QKeySequence.StandardKey.Find)
        view.addAction(self.find_action)
        for number, title in enumerate(("&Generate tab", "&Draw tab", "G&allery tab", "&Models tab")):
            action = QAction(title, self, shortcut=QKeySequence(f"Ctrl+{number + 1}"))
            action.triggered.connect(lambda _=False, n=number: self.tabs.setCurrentIndex(n))
            view.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        self.shortcuts_action = QAction("&Keyboard shortcuts", self, shortcut=QKeySequence.StandardKey.HelpContents)
        self.shortcuts_action.triggered.connect(lambda: ShortcutsDialog(self).open())
        help_menu.addAction(self.shortcuts_action)
        self.logs_action = QAction("Show the &log files", self)
        self.logs_action.setToolTip("The folder with app.log and worker.log, to attach to a bug report")
        self.logs_action.triggered.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.library.paths.data))))
        help_menu.addAction(self.logs_action)
        self.about_action = QAction("&About HyperSD Desktop", self)
        self.about_action.triggered.connect(lambda: QMessageBox.about(self, "About HyperSD Desktop", self.about_text()))
        help_menu.addAction(self.about_action)

    def about_text(self) -> str:
        """The app's, the protocol's and the compute runtime's versions, and where the logs are."""
        ready = self.bridge.client.ready
        if ready is None:
            runtime = "not running (see the banner or Settings → Worker Python)"
        else:
            backends = ", ".join(f"{b.name} {b.version}".strip() for b in ready.backends if b.available) or "none usable"
            runtime = f"HyperSD Desktop {ready.version} on Python {ready.python}; backends: {backends}"
        logs = AppPaths.default().data
        return (f"<h3>HyperSD Desktop {__version__}</h3>"
                f"<p>Worker protocol {PROTOCOL_VERSION}<br>Compute runtime: {html.escape(runtime)}<br>"
                f"Logs: {html.escape(str(logs))}</p>"
                "<p>Stable Diffusion 1.5 and SDXL with ByteDance's Hyper-SD LoRAs, in 1 to 8 steps.</p>")

    def _connect(self) -> None:
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            described(QShortcut(QKeySequence(keys), self, activated=self.generate), EVERYWHERE,
                      "Generate (the Generate tab's settings)")
        for keys in ("Ctrl+Shift+Return", "Ctrl+Shift+Enter"):
            described(QShortcut(QKeySequence(keys), self, activated=self.forever.action.toggle), EVERYWHERE,
                      "Generate forever: the image again each time the last is done (on and off; also on the "
                      "Generate button's right-click)")
        described(QShortcut(QKeySequence("Escape"), self.generate_page, activated=self.cancel,
                            context=Qt.ShortcutContext.WidgetWithChildrenShortcut), GENERATE, "Cancel the running image")
        described(QShortcut(QKeySequence("Ctrl+S"), self.generate_page, activated=self.save_result_as,
                            context=Qt.ShortcutContext.WidgetWithChildrenShortcut), GENERATE,
                  "Save the selected result (or the newest) as a file where you choose")
        described(QShortcut(QKeySequence(LIVE_KEYS), self.generate_page, activated=self.live.button.toggle,
                            context=Qt.ShortcutContext.WidgetWithChildrenShortcut), GENERATE,
                  "Live: an image as you type and change settings, saved nowhere (on and off)")
        described(QShortcut(QKeySequence(KEEP_KEYS), self.generate_page, activated=self.live.keep,
                            context=Qt.ShortcutContext.WidgetWithChildrenShortcut), GENERATE,
                  "Keep the live image shown (to the gallery)")
        described(QShortcut(QKeySequence(STYLES_KEYS), self.generate_page, activated=self.prompt_styles.open_list,
                            context=Qt.ShortcutContext.WidgetWithChildrenShortcut), GENERATE,
                  "Choose prompt styles (words added to the prompt, as A1111's Styles)")
        self.live.shown.connect(self._show_live)
        self._live_pixmap: QPixmap | None = None
        self.preview.image_changed.connect(self._preview_changed)
        self.live.kept.connect(self._live_kept)
        self.generate_button.clicked.connect(lambda: self.generate())
        self.prompt.parameters_pasted.connect(self.reuse_pasted)
        self.cancel_button.clicked.connect(self.cancel)
        self.seed_random.clicked.connect(lambda: self.seed.setValue(random.randrange(RANDOM_SEEDS)))
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.hyper_box.currentIndexChanged.connect(self._update_recipe_controls)
        self.size_box.currentIndexChanged.connect(self._update_recipe_controls)  # the control image follows it
        self.hires_scale.valueChanged.connect(lambda _value: self._update_recipe_controls())
        self.hires_guidance.valueChanged.connect(lambda _value: self._update_recipe_controls())
        for rows in (self.face_detail, self.hand_detail):
            rows.enabled.toggled.connect(lambda _on: self._update_recipe_controls())
        self.vae_box.currentIndexChanged.connect(self._update_recipe_controls)
        self.steps.valueChanged.connect(self._update_recipe_controls)
        self.guidance.valueChanged.connect(self._update_recipe_controls)
        self.queue_up.clicked.connect(lambda: self._move_queued(-1))
        self.queue_down.clicked.connect(lambda: self._move_queued(1))
        self.queue_remove.clicked.connect(self._remove_queued)
        self.queue.customContextMenuRequested.connect(self._queue_menu)
        described(QShortcut(QKeySequence.StandardKey.Delete, self.queue, activated=self._remove_queued,
                            context=Qt.ShortcutContext.WidgetShortcut), GENERATE, "Remove the selected queued jobs")
        self.resume_queue.clicked.connect(lambda: self.bridge.client.resume())
        self.pause_queue.clicked.connect(lambda: self.bridge.client.pause())
        self.bridge.queue_changed.connect(self._last_run_waits)
        self.import_action.triggered.connect(self.import_models)
        self.import_images_action.triggered.connect(self.browser.choose_import_folder)
        self.rebuild_action.triggered.connect(self._rebuild_gallery)
        self.export_action.triggered.connect(self._open_export)
        self.batch_action.triggered.connect(self.open_batch)
        self.find_action.triggered.connect(self._find)
        self.browser.reuse_requested.connect(self.reuse_record)
        self.browser.init_image_requested.connect(self.start_from_image)
        self.browser.batch_requested.connect(lambda paths: self.open_batch().start_from_pictures(paths))
        self.browser.describe_requested.connect(lambda path: (self.tabs.setCurrentIndex(0),
                                                              self.describe_file(Path(path))))
        self.browser.upscale_requested.connect(self.upscale_record)
        self.browser.search_descriptions_requested.connect(self._describe_for_search)
        self.browser.imported_unprompted.connect(self._describe_imported)
        self.browser.watch_button.clicked.connect(self.open_watched_folders)
        self.watcher.arrived.connect(self._arrived)
        self.watcher.problem.connect(self.browser.notice.setText)
        self.watcher.watch(watched_folders(self.settings.watched_folders))  # and what came while the app was closed
        self.browser.stop_describing_button.clicked.connect(self.descriptions.stop)
        self.descriptions.progress.connect(self.browser.notice.setText)
        self.descriptions.ended.connect(self._described_for_search)
        self.browser.enlarge_requested.connect(self.enlarge_image)
        self.upscaler_box.currentIndexChanged.connect(lambda _index: self._name_enlarger())
        self.browser.status.connect(lambda text: self.statusBar().showMessage(text, 3000))
        self.models.models_changed.connect(self.reload_models)
        self.styles.edit_words.connect(self.models.edit_words)
        self.draw.kept.connect(self.image_saved)
        self._gallery_timer = QTimer(self, singleShot=True, interval=250)
        self._gallery_timer.timeout.connect(self.browser.image_added)
        self.image_saved.connect(lambda _: self._gallery_timer.start())
        self.jobs = JobView(self.bridge, JobWidgets(
            self.preview, self.timing, self.cancel_button, self.results, self.queue, self.warnings, self.errors,
            self.device_label, self.memory_label, self.progress, self.resume_queue, self.pause_queue),
            lambda: self.settings, self,
            skip=lambda job_id: (self.draw.owns(job_id) or self.control_maps.owns(job_id) or self.live.owns(job_id)
                                 or self.describer.owns(job_id) or self.descriptions.describer.owns(job_id)))
        self.jobs.image_saved.connect(self.image_saved)
        self.results.currentItemChanged.connect(lambda item, _previous: self.show_result(item))
        self.results.itemClicked.connect(self._result_clicked)  # the current one again, after a newer image
        self.results.itemActivated.connect(self.open_result)
        self.bridge.ready.connect(self._worker_ready)  # the device decides some notes
        self.bridge.notice.connect(self.engine_notice.show_notice)
        self.init_image.changed.connect(self._init_image_changed)
        self.init_image.describe_button.clicked.connect(lambda: self.describe_picture(self.init_image.digest))
        self.describer.described.connect(self._described)
        self.describer.failed.connect(lambda message: (self.statusBar().clearMessage(),
                                                       self.errors.show_messages([message])))
        self.control_stack.changed.connect(self._update_recipe_controls)
        self.variation.changed.connect(self._update_recipe_controls)
        # counted once typing pauses: a large wildcard file's lines are read as choices at each count
        self._combinations_timer = QTimer(self, singleShot=True, interval=COUNT_AFTER_MS)
        self._combinations_timer.timeout.connect(self._count_combinations)
        self.prompt.textChanged.connect(self._combinations_timer.start)
        self.prompt_styles.changed.connect(self._combinations_timer.start)
        self.reference_stack.changed.connect(self._update_recipe_controls)
        for box in (self.init_image, self.control_stack, self.reference_stack):  # a stack's say its boxes'
            box.failed.connect(self._picture_failed)
            box.changed.connect(self._generate_once_read)  # after the views above follow the picture

    # -- models ---------------------------------------------------------------------------

    def reload_models(self) -> None:
        """Refill the model lists from the library (after a download or an import, here, in the Models tab or in
        the first start's dialog, or another models folder), the Draw tab's too."""
        fill_base_models(self.model_box, self.library)
        self.preview.set_idle_text(IDLE_HINT if self.model_box.count() else NO_MODEL_HINT)
        self._model_changed()
        self.draw.reload_models()

    def current_model(self) -> InstalledModel | None:
        return self.model_box.currentData()

    def _taesd(self) -> str | None:
        """The installed TAESD for the current model's architecture (TAESD or TAESDXL), if any."""
        model = self.current_model()
        return self.library.taesd_for(model.architecture) if model else None

    def vae_for(self, model: InstalledModel) -> str | None:
        """The VAE `model` runs with: the one chosen in the VAE list when `model` is the Generate tab's (the Draw
        tab follows it), else the automatic one (`ModelLibrary.vae_for`)."""
        current = self.current_model()
        chosen = self.vae_box.currentData() if current is not None and current.id == model.id else None
        return chosen or self.library.vae_for(model.path, model.architecture)

    def _model_changed(self) -> None:
        model = self.current_model()
        architecture = model.architecture if model else Architecture.SD15
        previous = self.hyper_box.currentData()
        self.hyper_box.blockSignals(True)
        installed = fill_hyper_box(self.hyper_box, self.library, architecture, model)
        self.hyper_box.blockSignals(False)
        pick = next((i for i in range(1, self.hyper_box.count())
                     if previous is not None and self.hyper_box.itemData(i).id == previous.id), 1 if installed else 0)
        self.hyper_box.setCurrentIndex(pick)
        self.size_box.blockSignals(True)
        fill_sizes(self.size_box, architecture)
        self.size_box.blockSignals(False)
        fill_vae_box(self.vae_box, self.library, model)
        fill_upscaler_box(self.upscaler_box, self.library)
        self._name_enlarger()
        self.clip_skip.setEnabled(architecture == Architecture.SD15)  # SDXL reads its second-to-last layers already
        self.init_image.set_model_side(Architecture(architecture).default_size)
        self.control_stack.fill_models(architecture)
        self.reference_stack.fill_models(architecture)
        self.styles.fill(self.library.style_loras(architecture))
        for completer in self.completers:
            completer.set_models(self.library, architecture)
        for count in (self.prompt_tokens, self.negative_tokens):
            count.changed()  # the embeddings installed for this model count as their vectors
        self._update_recipe_controls()

    def _update_hires(self) -> None:
        """Hires fix goes with images made from the prompt, with or without a ControlNet (not from an init image)."""
        free = self.init_image.digest is None
        self.hires_scale.setEnabled(free)
        self.hires_strength.setEnabled(free and self.hires_scale.value() > 1)
        plain = RecipeRules.of(self.hyper_box.currentData()).recipe is None
        self.hires_steps.setEnabled(free and self.hires_scale.value() > 1 and plain)
        for box in (self.hires_prompt, self.hires_negative):
            box.setEnabled(free and self.hires_scale.value() > 1)
        self.hires_guidance.setEnabled(free and self.hires_scale.value() > 1
                                       and RecipeRules.of(self.hyper_box.currentData()).uses_guidance)
        self.hires_steps.setToolTip(
            "The steps the second pass runs, as A1111's Hires steps: the last ones of a longer schedule, so that "
            "the strength's share of it is this many. By strength: the strength's share of the steps above (28 "
            "steps at 0.5 run 14)." if plain else
            "With a Hyper-SD file the second pass runs the strength's share of its steps, on the timesteps it was "
            "trained for; Hires steps are for plain models.")
        size = self.size_box.currentData()
        made = (" Now: {} × {}, then {} × {}.".format(*size, *hires_size(*size, self.hires_scale.value()))
                if size and self.hires_scale.value() > 1 else "")
        self.hires_scale.setToolTip(
            "Hires fix (A1111's): make the image at the size above, then again this many times larger from itself "
            f"enlarged, for detail at sizes the model was not trained at. Off: one pass.{made}" if free else
            "Hires fix enlarges an image made from the prompt; clear the init image to use it (or enlarge the "
            "picture with Enlarge under the init image).")

    def _set_tile_edges(self, padding: int, blur: int) -> None:
        """Repaint in tiles with `padding` pixels of the picture around each and their edges blurred `blur` pixels
        (a reused image's)."""
        self.tile_padding.setValue(padding)
        self.tile_mask_blur.setValue(blur)

    def _say_tile_edges(self) -> None:
        """*Edges* reads "Edges*" while the padding or blur is not the extension's, and its tooltip says them."""
        padding, blur = self.tile_padding.value(), self.tile_mask_blur.value()
        self.tile_edges.setText("Edges" if (padding, blur) == (TILE_PADDING, TILE_MASK_BLUR) else "Edges*")
        self.tile_edges.setToolTip(f"Each tile is made with {padding} pixels of the picture around it and laid back "
                                   f"along an edge blurred {blur} pixels (click to change)")

    def _set_tile_size(self, side: int) -> None:
        """Show tiles of `side` pixels (0, or a side no tile can have: the model's own size), adding a side the list
        does not have."""
        if not (MIN_REPAINT_TILE <= side <= MAX_REPAINT_TILE and side % 8 == 0):
            side = 0
        index = self.tile_size.findData(side)
        if index < 0:
            index = next((number for number in range(1, self.tile_size.count())
                          if self.tile_size.itemData(number) > side), self.tile_size.count())
            self.tile_size.insertItem(index, f"{side} px", side)
        self.tile_size.setCurrentIndex(index)

    def _enlarges(self) -> bool:
        """Whether a picture is enlarged before it is repainted: a Hires fix, or an init image made larger."""
        if self.init_image.digest is None:
            return self.hires_scale.value() > 1
        return self.init_image.enlarge.isEnabled() and self.init_image.enlarge.value() > 1

    def _worker_ready(self, _message) -> None:
        self._update_recipe_controls()

    def _update_recipe_controls(self) -> None:
        self._update_hires()
        rules = RecipeRules.of(self.hyper_box.currentData())
        self.guidance.setEnabled(rules.uses_guidance)
        if rules.guidance_for(self.guidance.value()) != self.guidance.value():
            self.guidance.setValue(rules.guidance_for(self.guidance.value()))
        self.negative.setEnabled(rules.negative_applies(self.guidance.value()))
        self.negative_history.button.setEnabled(self.negative.isEnabled())
        own_guidance = self.hires_guidance.value() if self.hires_guidance.isEnabled() else 0.0  # 0: the first's
        self.hires_negative.setEnabled(self.hires_prompt.isEnabled() and (
            rules.negative_applies(own_guidance) if own_guidance else self.negative.isEnabled()))
        for rows in (self.face_detail, self.hand_detail):
            rows.set_negative_read(self.negative.isEnabled())
        self.eta.setEnabled(rules.uses_eta)
        rules.fit_steps(self.steps)
        request = self.build_request(quiet=True)
        warnings: tuple[str, ...] = ()
        if request is not None and self.current_model() is not None:
            try:
                warnings = plan(request, self.current_model().architecture).warnings
            except AppError as error:
                warnings = (str(error),)
        if self.settings.fast_decode and self.current_model() is not None and self._taesd() is None:
            name = "TAESDXL" if self.current_model().architecture == Architecture.SDXL else "TAESD"
            warnings = (*warnings, f"Fast decode needs {name} for this model; install it in the Models tab (or import "
                                   f"a {name.lower()}_decoder file). The full VAE decodes meanwhile.")
        model = self.current_model()
        if model is not None and not Path(model.path).exists():
            warnings = (f"The files of {model.name} are no longer at {model.path} (moved or deleted): import them "
                        "again from where they are now (Models tab), or choose another model.", *warnings)
        if (model is not None and model.architecture == Architecture.SDXL and self.jobs.device == Device.CUDA
                and self.library.installed_entry(self.library.catalog.get(FP16_SDXL_VAE)) is None):
            warnings = (*warnings, "SDXL's own VAE overflows in fp16, so it decodes in bf16 (fp32, slower and with "
                                   "more memory, on GPUs before the RTX 30 series); install \"SDXL VAE (fp16 fix)\" "
                                   "in the Models tab to decode in fp16 on any GPU.")
        self.warnings.show_messages([*self._reuse_notes, *warnings])

    def say_at_start(self, notes: list[str]) -> None:
        """Warnings of the start (a database rebuilt, the last run's queue waiting), shown with the notes of the
        settings until the next Generate or reuse: not replaced by them once the worker is ready."""
        self._reuse_notes += notes
        self._update_recipe_controls()

    def _last_run_waits(self, message) -> None:
        """Once no job of the last run waits (resumed or removed), the start's note of them goes."""
        notice = self.session.notice
        if notice and not any(job.waiting for job in message.queued):
            self.session.notice = ""
            if notice in self._reuse_notes:
                self._reuse_notes.remove(notice)
                self._update_recipe_controls()

    def _edit_prompt(self, edit, words: tuple[str, ...]) -> None:
        """Add (`with_words`) or take out (`without_words`) a style LoRA's trigger words, as one step Ctrl+Z undoes."""
        text = self.prompt.toPlainText()
        edited = edit(text, words)
        if edited != text:
            cursor = self.prompt.textCursor()
            cursor.select(cursor.SelectionType.Document)
            cursor.insertText(edited)
            self.prompt.setTextCursor(cursor)

    # -- requests -------------------------------------------------------------------------

    def build_request(self, quiet: bool = False) -> GenerationRequest | None:
        """The request the controls describe, or None (with an error shown unless `quiet`)."""
        model = self.current_model()
        if model is None:
            if not quiet:
                self.errors.show_messages(["No base model is installed. Download one in the Models tab (Ctrl+4), or "
                                           "import your own files (File → Import models…)."])
            return None
        unet, hyper_loras = hyper_parts(self.hyper_box.currentData())
        loras = [*hyper_loras, *self.styles.chosen()]
        width, height = self.size_box.currentData() or (None, None)
        init = {}
        if self.init_image.digest is not None:  # the result takes the picture's size, or the enlarged picture's
            width, height = self.init_image.request_size() or (None, None)
            init = {"init_image": self.init_image.digest, "strength": self.init_image.strength.value(),
                    "detail_only": self.init_image.detailing()}
            if self.init_image.mask is not None:
                init.update(mask_image=self.init_image.mask, mask_blur=self.init_image.mask_blur.value(),
                            masked_padding=self.init_image.padding())
        # the size a ControlNet picture's edges are found at: the run's (the chosen one, or the init image's), or the
        # whole init image's when only its masked area is made (the engine cuts that area out of the edge map)
        whole = self.init_image.image_size if self.init_image.padding() is not None else None
        self.control_stack.set_run_size(whole or ((width, height) if width else self.init_image.run_size()))
        try:
            controls, adapters = self.control_stack.specs(), self.reference_stack.specs()
        except AppError as error:
            if not quiet:
                self.errors.show_messages([str(error)])
            return None
        if controls:
            init["controls"] = controls
        if adapters:
            init["ip_adapters"] = adapters
        try:
            passes = {"face_detail": self.face_detail.spec(), "hand_detail": self.hand_detail.spec()}
        except AppError as error:
            if not quiet:
                self.errors.show_messages([str(error)])
            return None
        init.update((name, wanted) for name, wanted in passes.items() if wanted is not None)
        if self.hires_scale.value() > 1 and self.init_image.digest is None:  # with or without a ControlNet
            init.update(hires_scale=self.hires_scale.value(), hires_strength=self.hires_strength.value(),
                        hires_steps=(self.hires_steps.value() or None) if self.hires_steps.isEnabled() else None,
                        hires_prompt=self.hires_prompt.text().strip() or None,
                        hires_negative_prompt=(self.hires_negative.text().strip() or None)
                        if self.hires_negative.isEnabled() else None,
                        hires_guidance=(self.hires_guidance.value() or None) if self.hires_guidance.isEnabled()
                        else None)
        if self._enlarges() and not self.init_image.detailing():
            init["upscaler"] = self.upscaler_box.currentData()
            model = self.current_model()
            whole = self.tiling.currentData() != Tiling.OFF or self.init_image.mask is not None  # repainted whole
            if self.in_tiles.isChecked() and not whole and model is not None and model.architecture:
                init["repaint_tile"] = self.tile_size.currentData() or Architecture(model.architecture).default_size
                init["tile_padding"], init["tile_mask_blur"] = self.tile_padding.value(), self.tile_mask_blur.value()
                init["seams_fix"] = self.seams.spec()
        rules = RecipeRules.of(self.hyper_box.currentData())
        settings = self.settings
        taesd = self._taesd() if settings.fast_decode else None
        fast = {"decoder": Decoder.TAESD, "taesd": taesd,
                "preview": Preview.TAESD if settings.previews else Preview.NONE} if taesd else {}
        prompt = self.prompt.toPlainText().strip()
        negative = self.negative.toPlainText().strip() if self.negative.isEnabled() else ""
        styles = self.prompt_styles.chosen()  # their words, as A1111 adds them (the negative's where it is read)
        prompt, styled_negative = apply_styles(prompt, negative, styles)
        negative = styled_negative if self.negative.isEnabled() else ""
        if init.get("hires_prompt"):  # the second pass's own prompts take them too, as in A1111
            init["hires_prompt"] = apply_styles(init["hires_prompt"], "", styles)[0]
        if init.get("hires_negative_prompt"):
            init["hires_negative_prompt"] = apply_styles("", init["hires_negative_prompt"], styles)[1]
        embeddings = self.library.embeddings_named(model.path, prompt, negative, init.get("hires_prompt") or "",
                                                   init.get("hires_negative_prompt") or "",
                                                   *(text for wanted in passes.values() if wanted
                                                     for text in (wanted.prompt, wanted.negative_prompt)))
        try:
            return with_tagged_loras(GenerationRequest(
                prompt=prompt, negative_prompt=negative, embeddings=embeddings,
                base_model=model.path, unet=unet, vae=self.vae_for(model), loras=tuple(loras), steps=self.steps.value(),
                guidance=self.guidance.value() if self.guidance.isEnabled() else None,
                eta=self.eta.value() if rules.uses_eta else None,
                clip_skip=self.clip_skip.value() if self.clip_skip.isEnabled() else 1,
                seed=self.seed.value(), **self.variation.request_fields(), tiling=self.tiling.currentData(),
                width=width, height=height,
                batch_size=self.batch_size.value(),
                backend=settings.backend, device=settings.device, dtype=settings.dtype, attention_slicing=settings.attention_slicing,
                vae_tiling=settings.vae_tiling, cpu_offload=settings.cpu_offload, cuda_graphs=settings.cuda_graphs,
                compile=settings.compile_steps, **fast, **init,
            ), self.library.loras_tagged)  # `<lora:NAME:WEIGHT>` in the prompt, as A1111 applies it
        except AppError as error:
            if not quiet:
                self.errors.show_messages([str(error)])
            return None

    def generate(self, count: int | None = None) -> list[int]:
        """Queue the request the controls describe, `count` times (the Batch count's by default); returns the ids of
        the jobs queued (none where it said why not, or waits for a picture being read)."""
        reading = next((box for box in self._picture_boxes() if box.reading), None)
        if reading is not None:  # a phone's photo being made PNG: the image is made once it is in
            self._generate_when_read, self._count_when_read = reading, count
            self.statusBar().showMessage(f"{reading.waiting_text()} The image is made once it is read.")
            return []
        request = self.build_request()
        if request is None:
            return []
        if not request.prompt:
            self.errors.show_messages(["Type a prompt first."])
            return []
        try:
            jobs, note = dynamic_jobs(request, count or self.batch_count.value(), self.every_combination.isChecked(),
                                      self.wildcards)
        except InputError as error:
            self.errors.show_messages([str(error)])
            return []
        self.errors.clear()
        self._reuse_notes = []
        self.history.remember(self.prompt.toPlainText())
        if self.negative.isEnabled():  # read by the recipe
            self.negative_history.remember(self.negative.toPlainText())
        if note:
            self.statusBar().showMessage(note, 10000)
        client = self.bridge.client
        queued = []
        for k, group in enumerate(together(jobs, request.batch_size)):  # a batch's images with their own choices
            latest = self.latest_wins.isChecked() and k == 0  # "Latest wins" replaces older jobs, not this one's
            queued.append(client.submit_together(group, latest) if len(group) > 1 else
                          client.submit(group[0], latest_wins=latest))
        self._job_ids += queued
        self.library.registry.mark_used(request.model_paths())
        if request.varied:  # variations of one seed's image: the next are varied by new seeds
            self.variation.renew()
        elif not self.seed_lock.isChecked():
            self.seed.setValue(random.randrange(RANDOM_SEEDS))
        self._remember_choices()
        return queued

    @property
    def _active_job(self) -> int | None:
        return self.jobs.active_job

    @_active_job.setter
    def _active_job(self, job_id: int | None) -> None:
        self.jobs.active_job = job_id

    def cancel(self) -> None:
        self.forever.stop()  # between two of its images too
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
        """Take the selected queued jobs off the queue (the running one stays: Cancel stops it)."""
        self.bridge.client.remove([item.data(Qt.ItemDataRole.UserRole) for item in self.queue.selectedItems()
                                   if item.data(Qt.ItemDataRole.UserRole)])

    def _remove_all_queued(self) -> None:
        self.bridge.client.remove([job.job_id for job in self.bridge.client.queued()])

    def _queued_to(self, top: bool) -> None:
        """The selected queued jobs first (or last) in the queue, in their order."""
        client = self.bridge.client
        chosen = [item.data(Qt.ItemDataRole.UserRole) for item in self.queue.selectedItems()
                  if item.data(Qt.ItemDataRole.UserRole)]
        for index, job_id in enumerate(chosen if top else reversed(chosen)):
            client.move(job_id, index if top else len(client.queued()) - 1 - index)

    def _queue_menu(self, point) -> None:
        menu = QMenu(self)
        selected = [item for item in self.queue.selectedItems() if item.data(Qt.ItemDataRole.UserRole)]
        for text, act, enabled in (("Move to the top", lambda: self._queued_to(True), bool(selected)),
                                   ("Move to the bottom", lambda: self._queued_to(False), bool(selected)),
                                   (f"Remove ({len(selected)})" if len(selected) > 1 else "Remove",
                                    self._remove_queued, bool(selected)),
                                   ("Remove all queued", self._remove_all_queued, bool(self.bridge.client.queued()))):
            action = menu.addAction(text)
            action.setEnabled(enabled)
            action.triggered.connect(act)
        menu.exec(self.queue.viewport().mapToGlobal(point))

    # -- reuse settings -------------------------------------------------------------------

    def reuse_record(self, record: ImageRecord, to_canvas: bool = True) -> None:
        """Fill the controls from a gallery image: exactly from its stored request when it has one. A drawing
        kept on the Draw tab goes back onto its canvas (unless not `to_canvas`)."""
        problem = None
        if record.request:
            try:
                request = GenerationRequest.from_json(record.request)
                drawn = any(control.preprocessor == Preprocessor.SCRIBBLE for control in request.controls)
                if drawn and request.init_image is None and to_canvas:
                    self.draw.apply_request(request)  # a kept drawing: back onto the canvas
                    self.tabs.setCurrentWidget(self.draw)
                    return
                self.apply_request(request)
                self._reuse_plot(json.loads(record.request).get(PLOT_KEY))
            except AppError as error:  # damaged, or written by another version: the gallery's fields stand
                problem = f"{str(error).rstrip('.')}; the settings the gallery shows were used instead."
        if problem is not None or not record.request:
            written = _file_metadata(record)  # what the gallery's row lacks: clip skip, the embeddings and VAE used
            self.apply_metadata(ImageMetadata(extra=written.extra if written else {},
                format=record.metadata_format or "none", prompt=record.prompt, negative_prompt=record.negative_prompt,
                seed=record.seed, steps=record.steps, guidance=record.guidance, width=record.width,
                height=record.height, model_name=record.model_name, model_hash=record.model_hash, loras=record.loras,
                clip_skip=written.clip_skip if written else None, embeddings=written.embeddings if written else (),
                vae_name=written.vae_name if written else None, vae_hash=written.vae_hash if written else None))
        if problem is not None:
            self.warnings.show_messages([problem])
        self.tabs.setCurrentIndex(0)
        self.prompt.setFocus()

    def paste_parameters(self) -> None:
        """File → Paste parameters: the settings the clipboard's text holds, or those of the file copied there (an
        image, a workflow's .json), or a message that it holds none."""
        files = clipboard_files()
        if files:
            self.reuse_file(files[0])
            return
        metadata = clipboard_metadata()
        if metadata is None:
            self.errors.show_messages([NOTHING_TO_PASTE])
        else:
            self.reuse_pasted(metadata)

    def reuse_pasted(self, metadata: ImageMetadata, source: str | None = None) -> None:
        """Fill the controls from generation data pasted as text (or read from the text file `source`, by name), as
        from a dropped image's."""
        self.apply_metadata(metadata)
        said = f"{source}'s" if source else "the pasted"
        self._reuse_notes.insert(0, f"Settings read from {said} {metadata.format.upper()} parameters.")
        self._update_recipe_controls()
        self.tabs.setCurrentIndex(0)
        self.prompt.setFocus()

    def apply_request(self, request: GenerationRequest) -> None:
        """Set every control so that `build_request()` gives `request` back (with this machine's
        device and memory settings); what is not installed here is named in the warning banner."""
        match = match_request(request, self.library.registry.list())
        self._reuse_notes = list(match.warnings)  # models found by name; otherwise nothing changes on reuse
        prompt, negative, hires_prompt, hires_negative = self._take_out_styles(
            request.prompt, request.negative_prompt, request.hires_prompt, request.hires_negative_prompt,
            negative_read=bool(request.negative_prompt) or (request.guidance or 0.0) > 1)  # (not with no guidance)
        self._fill_controls(match, prompt, negative, request.steps, request.guidance,
                            request.seed, request.width, request.height, request.eta, request.clip_skip)
        self.batch_size.setValue(request.batch_size)
        self.variation.set_variation(request.variation_seed if request.varied else None, request.variation_strength)
        self.set_tiling(request.tiling)
        self.init_image.strength.setValue(request.strength)
        self._reuse_notes += self.control_stack.set_specs(request.controls)
        self._reuse_notes += self.reference_stack.set_specs(request.ip_adapters)
        self.init_image.mask_blur.setValue(request.mask_blur)
        self.init_image.set_padding(request.masked_padding)
        self.init_image.set_digest(request.init_image, request.mask_image)
        self.init_image.details_only.setChecked(request.detail_only)
        self.init_image.set_size((request.width, request.height) if request.width and request.height else None)
        self.hires_scale.setValue(request.hires_scale or 1.0)
        self.hires_strength.setValue(request.hires_strength)
        self.hires_steps.setValue(request.hires_steps or 0)
        self._set_hires_prompts(hires_prompt, hires_negative)
        self._set_hires_guidance(request.hires_guidance)
        self._reuse_notes += self.face_detail.set_spec(request.face_detail)
        self._reuse_notes += self.hand_detail.set_spec(request.hand_detail)
        if self._enlarges():  # the upscaler it enlarged with (Lanczos: None), in tiles or whole; else they stay
            select_path(self.upscaler_box, match.upscaler.path if match.upscaler is not None else None)
            self.in_tiles.setChecked(request.repaint_tile is not None)
            if request.repaint_tile is not None:
                self._set_tile_size(request.repaint_tile)
                self.seams.set_spec(request.seams_fix)
                self._set_tile_edges(request.tile_padding, request.tile_mask_blur)
        if request.init_image is not None and self.init_image.digest is None:
            self._reuse_notes.append("The init image of this request is no longer in the input store; it was made "
                                     "from a picture that is gone, so this runs from the prompt alone.")
        self._update_recipe_controls()  # the banner says the notes

    def upscale_record(self, record: ImageRecord, scale: float) -> None:
        """Make a gallery image again `scale` times larger, as one image: its settings (as Reuse settings
        gives them), the image itself as the init image, enlarged and repainted at the Hires fix strength, without
        its ControlNet (the image itself guides now)."""
        strength = self.hires_strength.value()  # the one set here, not the image's
        self.reuse_record(record, to_canvas=False)
        if not self.init_image.load_file(Path(record.path)):
            return
        self.control_stack.set_specs(())
        self.reference_stack.set_specs(())
        self.init_image.enlarge.setValue(scale)
        rules = RecipeRules.of(self.hyper_box.currentData())
        if strength < rules.least_strength:
            strength = rules.least_strength
            self._reuse_notes.append(f"Upscale repaints at strength {strength:g} with {rules.recipe.label}: it runs "
                                     "fixed timesteps, and a lower strength would leave none of them to run.")
        self.init_image.strength.setValue(strength)
        self.batch_size.setValue(1)
        self.generate(count=1)

    def _name_enlarger(self) -> None:
        """The results' and the gallery's "enlarged only" choices say what enlarges: the Upscaler chosen."""
        name = self.upscaler_box.currentText().removesuffix(" (resampling)") or "Lanczos"
        for action, scale in self._enlarge_actions:
            action.setText(f"Enlarge × {scale:g}, not repainted ({name})")
        self.browser.set_enlarger(name)

    def enlarge_image(self, path: str, scale: float) -> None:
        """Enlarge the image at `path` alone, by the Upscaler chosen, not repainted (A1111's Extras): the copy joins
        the results and the gallery, with the image's settings."""
        upscaler = self.upscaler_box.currentData()
        self.bridge.client.submit_enlargement(Enlargement(path, scale, upscaler))
        self.tabs.setCurrentIndex(0)  # where its progress shows
        self.statusBar().showMessage(f"Enlarging {Path(path).name} × {scale:g} "
                                     f"({Path(upscaler).stem if upscaler else 'Lanczos'})…", 5000)

    def enlarge_result(self, scale: float) -> None:
        """"Enlarge, not repainted" on the selected result (or the newest)."""
        item = self.results.currentItem() or self.results.item(0)
        if item is not None and not self._unsaved(item):
            self.enlarge_image(ResultStrip.path_of(item), scale)

    def upscale_result(self, scale: float) -> None:
        """"Upscale" on the selected result (or the newest)."""
        record = self._result_record()
        if record is not None:
            self.upscale_record(record, scale)

    def _result_record(self) -> ImageRecord | None:
        """The selected result (or the newest) as the gallery records it, read from its file; None (said) for none,
        one not saved, or one that cannot be read."""
        item = self.results.currentItem() or self.results.item(0)
        if item is None or self._unsaved(item):
            return None
        path = Path(ResultStrip.path_of(item))
        try:
            metadata, width, height, _warnings = read_metadata(path)
        except OSError as error:
            self.errors.show_messages([f"{path} cannot be read ({error.strerror or error}); it may have been moved "
                                       "or deleted."])
            return None
        return record_for(path, metadata, width, height, ImageSource.GENERATED)

    def show_result(self, item) -> None:
        """A result from the strip, large in the preview."""
        if item is None:
            return
        pixmap, png = QPixmap(), ResultStrip.unsaved_png(item)
        if png is not None:
            pixmap.loadFromData(png, "PNG")
        else:
            pixmap.load(ResultStrip.path_of(item))
        if pixmap.isNull():
            self.statusBar().showMessage(f"{ResultStrip.path_of(item)} cannot be read; it may have been moved or "
                                         "deleted.", 8000)
            return
        self.preview.show_image(pixmap, ResultStrip.tiling_of(item))
        self._result_shown = (item, pixmap)

    def _result_clicked(self, item) -> None:
        """A click that made the result current has shown it already; one on the current result shows it again
        only if a newer image has taken the preview since."""
        shown_item, pixmap = self._result_shown
        if item is not shown_item or self.preview.shown() is not pixmap:
            self.show_result(item)

    def open_result(self, item) -> None:
        """A result from the strip in the gallery's large view, with its details, rating and tags."""
        if item is None or self._unsaved(item):
            return
        if self.browser.open_path(ResultStrip.path_of(item)):
            self.tabs.setCurrentWidget(self.browser)
        else:
            self.statusBar().showMessage(f"{ResultStrip.path_of(item)} is no longer in the gallery.", 8000)

    def compare_result(self):
        """The result chosen in the strip and the one made before it (next in the strip), compared as the gallery's
        Compare does."""
        item = self.results.currentItem() or self.results.item(0)
        row = self.results.row(item) if item is not None else -1
        before = self.results.item(row + 1) if row >= 0 else None
        if before is None:
            self.statusBar().showMessage("Compare needs an image made before the chosen one in the strip.", 8000)
            return None
        if self._unsaved(item) or self._unsaved(before):
            return None
        dialog = self.browser.compare_paths(ResultStrip.path_of(item), ResultStrip.path_of(before))
        if dialog is None:
            self.statusBar().showMessage("One of the two images is no longer in the gallery.", 8000)
        return dialog

    def start_from_image(self, path: str) -> None:
        """A gallery image becomes the init image, on the Generate tab."""
        if self.init_image.load_file(Path(path)):
            self.tabs.setCurrentIndex(0)
            self.prompt.setFocus()

    def _count_combinations(self) -> None:
        """Beside "Each combination", how many the prompt makes, as it is typed ("more than 100" past the most one
        Generate queues), the chosen styles' choices with the prompt's; nothing for a prompt without choices, or one
        naming a wildcard not there yet."""
        prompt = apply_styles(self.prompt.toPlainText().strip(), "", self.prompt_styles.chosen())[0]
        try:
            made, more = every(prompt, self.wildcards, MOST_COMBINATIONS)
        except InputError:
            made, more = [], False
        count = f" (more than {MOST_COMBINATIONS})" if more else f" ({len(made)})" if len(made) > 1 else ""
        self.every_combination.setText(f"Each combination{count}")

    def open_wildcards(self) -> None:
        """The wildcards folder in the file manager, made (with a sample file) the first time."""
        try:
            folder = ensure_wildcards(self.library.paths)
        except OSError as error:
            self.errors.show_messages([f"The wildcards folder cannot be made: {error}."])
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def set_tiling(self, tiling: str) -> None:
        """Show which way the image tiles; Off for a value this version does not know."""
        self.tiling.setCurrentIndex(max(self.tiling.findData(str(tiling)), 0))

    def variations_of_result(self) -> None:
        """Variations of the selected result (or the newest): its settings (as Reuse settings gives them), its
        seed kept, each image varied by a new variation seed at the Variation strength (`VARIATION_STRENGTH` when
        it is Off)."""
        record = self._result_record()
        if record is None:
            return
        self.reuse_record(record, to_canvas=False)
        self.variation.set_variation(random.randrange(RANDOM_SEEDS),
                                     self.variation.strength.value() or VARIATION_STRENGTH)
        self.generate(count=VARIATIONS)

    def detail_result(self) -> None:
        """The selected result's (or the newest's) faces and hands made again, nothing else of it (the init image's
        *Faces and hands only*): its settings, as Reuse gives them, with Detail faces and Detail hands as they are
        set here where the image had neither."""
        record = self._result_record()
        if record is None:
            return
        rows = (self.face_detail, self.hand_detail)
        before = [row.enabled.isChecked() for row in rows]
        self.reuse_record(record, to_canvas=False)
        if not any(row.enabled.isChecked() for row in rows):
            for row, on in zip(rows, before):
                row.enabled.setChecked(on)
        if not any(row.enabled.isChecked() for row in rows):
            self.errors.show_messages(["Turn Detail faces or Detail hands on first: their settings make the image's "
                                       "faces and hands again."])
            return
        if not self.init_image.load_file(Path(record.path)):
            return
        self.control_stack.set_specs(())
        self.reference_stack.set_specs(())
        self.init_image.details_only.setChecked(True)
        self.batch_size.setValue(1)
        self.generate(count=1)

    def describe_result(self) -> None:
        """The selected result's (or the newest's) booru tags become the prompt."""
        item = self.results.currentItem() or self.results.item(0)
        if item is not None:
            png = ResultStrip.unsaved_png(item)
            self.describe_file(Path(ResultStrip.path_of(item)), png)

    def describe_file(self, path: Path, data: bytes | None = None) -> None:
        """A picture file's (or its bytes', `data`) booru tags become the prompt."""
        try:
            inputs = self.bridge.inputs
            digest = inputs.hold(data) if data is not None else inputs.add_file(path, keep=False)
        except InputError as error:
            self.errors.show_messages([str(error)])
            return
        self.describe_picture(digest)

    def describe_picture(self, digest: str) -> None:
        """Ask the worker for input image `digest`'s booru tags; they replace the prompt when they come."""
        if self.describer.request(digest, self.settings.tag_threshold, self.settings.character_threshold):
            self.statusBar().showMessage("Reading the picture's tags…", 10000)

    def _describe_for_search(self, ids: list[int]) -> None:
        self.descriptions.start(ids)
        self.browser.stop_describing_button.setVisible(self.descriptions.running)

    def _describe_imported(self, ids: list[int], imported: str) -> None:
        """Pictures imported without a prompt are described for search where Settings → Describe says so and a
        tagger is installed (without one, nothing is said: the import asked for no description)."""
        if self.settings.describe_imports and self.descriptions.describer.tagger() is not None:
            self.descriptions.start(ids, said=imported)
            self.browser.stop_describing_button.setVisible(self.descriptions.running)

    def open_watched_folders(self) -> None:
        """The watched folders' dialog; folders added are imported at once (the import's progress in the notice line)
        and watched from then on."""
        dialog = WatchedFoldersDialog(self.watcher.folders, self.watcher.gone, self.gallery.paths, self,
                                      found_output_folders(self.watcher.folders))
        if not dialog.exec():
            return
        folders = dialog.folders()
        self.settings = self.settings.replace(watched_folders=watched_text(folders))
        if problem := save_settings(self.settings, self.library.paths):
            self.errors.show_messages([problem + " They hold until the app closes."])
        imported = bool(dialog.added) and self.browser.import_files([], dialog.added) is not None
        self.watcher.watch(folders, catch_up=bool(dialog.added) and not imported)  # another import runs: look later

    def _arrived(self, look) -> None:
        """The watched folders changed: images came in, moved, or left with their files (gallery/watch.py)."""
        said = []
        if look.added:
            said.append(f"{look.added:,} new image{'s' if look.added != 1 else ''} from the watched folders")
        if look.report and look.report.failed:
            names = ", ".join(Path(path).name for path, _ in look.report.failed)
            said.append(f"{len(look.report.failed):,} unreadable ({names})")
        if look.moved:
            said.append(f"{look.moved:,} moved or renamed there")
        if look.dropped:
            said.append(f"{look.dropped:,} deleted there, taken out of the gallery")
        text = "; ".join(said) + "."
        text = text[:1].upper() + text[1:]
        self.browser.images_arrived(look.added, text, rows_changed=bool(look.moved or look.dropped))
        if look.report and look.report.unprompted:
            self._describe_imported(list(look.report.unprompted), text)

    def _described_for_search(self, text: str) -> None:
        self.browser.stop_describing_button.hide()
        self.browser.notice.setText(text)
        self.browser.model.refresh()  # a search finds them now

    def _described(self, describing, description) -> None:
        description = description.without(self.settings.describe_exclude)  # Settings → Describe: left out
        if description.tags:
            self._edit_prompt(lambda _text, _words: description.prompt, ())
        self.statusBar().showMessage(
            described_text(describing, description, tagger_name(self.library, describing.tagger)), 15000)

    def use_result_as_init_image(self) -> None:
        """The selected result (or the newest) becomes the init image."""
        item = self.results.currentItem() or self.results.item(0)
        if item is not None and not self._unsaved(item):
            self.init_image.load_file(Path(ResultStrip.path_of(item)))

    def _unsaved(self, item) -> bool:
        """Whether a result is one the disk could not take; if so, says what to do first."""
        if ResultStrip.unsaved_png(item) is None:
            return False
        self.statusBar().showMessage("This image is not saved: right-click it and choose Save as… first.", 8000)
        return True

    def save_result_as(self) -> Path | None:
        """The selected result (or the newest) written where the user chooses: an image the disk could not take
        is saved at last (and joins the gallery), a saved one copied."""
        item = self.results.currentItem() or self.results.item(0)
        if item is None:
            return None
        png, source = ResultStrip.unsaved_png(item), ResultStrip.path_of(item)
        name = Path(source).name if source else output_path(Path(), ResultStrip.seed_of(item)).name
        folder = self._saved_folder or str(Path.home())
        chosen, _ = QFileDialog.getSaveFileName(self, "Save the image as", str(Path(folder) / name),
                                                "PNG images (*.png)")
        if not chosen:
            return None
        path = Path(chosen) if chosen.lower().endswith(".png") else Path(chosen + ".png")
        try:
            write_atomic(path, png if png is not None else Path(source).read_bytes())
        except OSError as error:
            self.errors.show_messages([f"The image was not saved: {why_not_written(error, path.parent)}."])
            return None
        self._saved_folder = str(path.parent)
        if png is not None:  # a file now: in the gallery, and the strip's other commands work on it
            try:
                self.gallery.add_file(path)
            except AppError as error:
                self.errors.show_messages([str(error)])
            ResultStrip.mark_saved(item, str(path))
            self.image_saved.emit(str(path))
            if not any(ResultStrip.unsaved_png(self.results.item(row)) for row in range(self.results.count())):
                self.errors.clear()  # what the banner said is mended
                self.timing.setText(f"Saved as {path.name}")
        self.statusBar().showMessage(f"Saved {path}", 8000)
        return path

    def _picture_boxes(self) -> tuple:
        """The Generate tab's pictures: the init image, the ControlNets', the IP-Adapter's."""
        return self.init_image, *self.control_stack.boxes, *self.reference_stack.boxes

    def _generate_once_read(self) -> None:
        box = self._generate_when_read
        if box is not None and not any(picture.reading for picture in self._picture_boxes()):
            self._generate_when_read = None
            self.statusBar().clearMessage()
            if box.digest is not None:  # not when the picture was cleared meanwhile
                self.generate(self._count_when_read)

    def _picture_failed(self, message: str) -> None:
        self._generate_when_read = None  # the picture asked for is not there: nothing is made without it
        self.statusBar().clearMessage()
        self.errors.show_messages([message])

    def _init_image_changed(self) -> None:
        self.control_stack.set_init(self.init_image.digest, self.init_image.mask)
        free = self.init_image.digest is None
        self.size_box.setEnabled(free)
        self.size_box.setVisible(free)  # not a size the run does not have
        self.size_from_init.setVisible(not free)
        if self.init_image.image_size is not None:
            self.size_box.setToolTip("The init image sets the size: {} × {}".format(*self.init_image.run_size()))
            self.size_from_init.setText("{} × {}, set by the init image".format(*self.init_image.run_size()))
        else:
            self.size_box.setToolTip("")
        self._update_recipe_controls()

    def apply_metadata(self, metadata: ImageMetadata) -> None:
        """Set the controls from another tool's parameters; models are matched by hash, then by name."""
        match = match_metadata(metadata, self.library.registry.list())
        steps, guidance = metadata.steps, metadata.guidance
        if match.recipe_settings:  # made without Hyper-SD: the chosen recipe's own settings
            recipe = RECIPES_BY_ID[match.hyper.recipe]
            steps, guidance = recipe.default_steps, recipe.guidance
        prompt, negative, rewritten = reused_prompts(metadata.format, metadata.prompt, metadata.negative_prompt,
                                                     metadata.extra)
        hires = hires_settings(metadata)  # the first pass's size is the image's Size; then this app's Hires fix
        prompt, negative, hires_prompt, hires_negative = self._take_out_styles(
            prompt, negative, *(hires_prompts(metadata) if hires else (None, None)))
        prompt, negative = (embeddings_by_name(text) for text in (without_network_tags(prompt), negative))
        self._fill_controls(match, prompt, negative, steps, guidance,
                            metadata.seed, metadata.width, metadata.height, None,  # LoRA tags: the LoRA table's
                            metadata.clip_skip or 1)
        strength = picture_strength(metadata)
        variation = variation_of(metadata) if strength is None else None  # only an image from the prompt varies
        self.variation.set_variation(*(variation or (None, 0.0)))
        self.set_tiling(tiling_of(metadata))
        if strength is not None:  # made from a picture: the picture given as the init image goes at its strength
            self.init_image.strength.setValue(max(strength, self.init_image.strength.minimum()))
        self.hires_scale.setValue(hires.scale if hires else 1.0)
        self._set_hires_prompts(hires_prompt, hires_negative)
        # its own CFG scale, where the image's guidance is the one run (not a Hyper-SD recipe's in its place)
        self._set_hires_guidance(hires_guidance(metadata) if hires and not match.recipe_settings else None)
        if hires:
            self.hires_strength.setValue(hires.strength)
            # A1111 runs all of the first pass's steps again (or its Hires steps); a Hyper-SD file taking the
            # place of the image's sampler runs its share of the recipe's
            self.hires_steps.setValue(0 if match.recipe_settings else hires.steps or 0)
            select_path(self.upscaler_box, match.upscaler.path if match.upscaler is not None else None)
        # shown beside the recipe's warnings until the next generation
        self._reuse_notes = [*match.warnings, *([rewritten] if rewritten else [])]
        if repaint_tile(metadata) is not None:  # Ultimate SD Upscale's tiles: an enlargement here is made in tiles
            self.in_tiles.setChecked(True)
            self._set_tile_size(repaint_tile(metadata))
            found = seams_fix_of(metadata)
            self.seams.set_spec(found and SeamsFix(*found))
            self._set_tile_edges(*tile_surround(metadata))
        for rows in (self.face_detail, self.hand_detail):  # ADetailer's face and hand passes, as the image says them
            found = detail_pass(metadata, rows.part)  # its own steps and CFG scale where the image's run here
            sampled = {} if found is None or match.recipe_settings else {"steps": found.steps,
                                                                         "guidance": found.guidance}
            self._reuse_notes += rows.set_spec(found and DetailPass(
                "", "", found.strength, found.prompt, found.negative_prompt, found.padding, found.mask_blur,
                found.confidence, found.largest, width=found.size and found.size[0],
                height=found.size and found.size[1], **sampled, **found.mask_shape()),
                say_own=False)  # the match's notes say them
        self._update_recipe_controls()
        self._reuse_plot(metadata.extra)  # another tool's X/Y/Z plot grid: its axes, where they are settings here

    def _take_out_styles(self, prompt: str, negative: str, hires_prompt: str | None, hires_negative: str | None,
                         negative_read: bool = True) -> tuple[str, str, str | None, str | None]:
        """A reused image's prompts without the styles they end with (or are made around), which are chosen, so the
        prompt boxes hold what was typed and the image is made the same again (A1111's paste); the Hires fix's own
        prompts must have had them too, or none are taken out."""
        self.prompt_styles.reload_if_changed()  # the styles file as it is now
        found, typed, typed_negative = take_out(prompt, negative, self.prompt_styles.book.styles, negative_read)
        styles = self.prompt_styles.book.named(found)
        hires = (hires_prompt, hires_negative)
        undone = [unapplied(text, styles, negative=which == 1) if text else text for which, text in enumerate(hires)]
        if found and all(text is not None for text, given in zip(undone, hires) if given):
            self.prompt_styles.choose(found)
            return typed, typed_negative, undone[0], undone[1]
        self.prompt_styles.choose([])
        return prompt, negative, hires_prompt, hires_negative

    def _set_hires_guidance(self, guidance: float | None) -> None:
        """None: the first pass's ("CFG: same", the box's 0); up to 1 (no guidance, as 0 is) shows as 1."""
        self.hires_guidance.setValue(0.0 if guidance is None else max(guidance, 1.0))

    def _set_hires_prompts(self, prompt: str | None, negative: str | None) -> None:
        for box, text in ((self.hires_prompt, prompt), (self.hires_negative, negative)):
            box.setText(" ".join((text or "").split()))  # one line: a prompt's line breaks read as spaces

    def _fill_controls(self, match: ModelMatch, prompt: str, negative: str, steps: int | None, guidance: float | None,
                       seed: int | None, width: int | None, height: int | None, eta: float | None,
                       clip_skip: int = 1) -> None:
        """Set the controls; what `match` found missing is named in the error banner."""
        if match.base is not None:
            self._select(self.model_box, match.base.id)
            self._model_changed()
        self._select(self.hyper_box, match.hyper.id if match.hyper else None)
        model = self.current_model()
        automatic = self.library.vae_for(model.path, model.architecture) if model is not None else None
        select_path(self.vae_box, match.vae.path if match.vae is not None and match.vae.path != automatic else None)
        self.prompt.setPlainText(prompt)
        if guidance is not None:
            self.guidance.setValue(guidance)
        self.negative.setPlainText(negative)
        if steps is not None:
            self.steps.setValue(steps)
        if eta is not None:
            self.eta.setValue(eta)
        self.clip_skip.setValue(min(max(clip_skip, 1), MAX_CLIP_SKIP))
        if seed is not None:
            self.seed.setValue(seed % (MAX_SEED + 1))
            self.seed_lock.setChecked(True)
        if width and height:
            select_size(self.size_box, width, height, " (from the image)")
        self.styles.choose({str(Path(lora.path)): lora.weight for lora in match.styles})
        self._update_recipe_controls()
        self._report_missing(match)

    @staticmethod
    def _select(box: QComboBox, model_id: str | None) -> None:
        for i in range(box.count()):
            data = box.itemData(i)
            if (data.id if data is not None else None) == model_id:
                box.setCurrentIndex(i)
                return

    def _report_missing(self, match: ModelMatch) -> None:
        """Name what is not installed; where the image says where it is on Civitai (or gives hashes Civitai may know
        it by), offer to download it."""
        missing, downloads = match.missing, match.downloads
        if missing:
            one = len(missing) == 1
            files = "it" if len(downloads) == 1 else f"its {len(downloads)} files"
            if match.by_hash:
                where = (f" Download from Civitai looks {'it' if len(downloads) == 1 else 'them'} up there by the "
                         f"{'hash' if len(downloads) == 1 else 'hashes'} the image gives.")
            elif downloads:
                where = (f" The image names {'it' if one else 'them'} on Civitai: Download from Civitai fetches "
                         f"{files} there.")
            else:
                where = ""
            self.errors.show_messages(
                [f"Settings reused, but {', '.join(missing)} {'is' if one else 'are'} not installed; the current "
                 f"choice is kept. Install {'it' if one else 'them'} from the Models tab to reproduce the image "
                 f"exactly.{where}"],
                ("Download from Civitai", lambda: self.download_addresses(list(downloads))) if downloads else None)
        else:
            self.errors.clear()

    def download_addresses(self, addresses: list[str]) -> None:
        """Download what these addresses name, on the Models tab (shown: its progress, and what it says)."""
        self.tabs.setCurrentWidget(self.models)
        for address in addresses:
            self.models.download_address(address)

    # -- drag and drop --------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and any(url.isLocalFile() or url.scheme() in WEB_SCHEMES
                                              for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        links = [url.toString() for url in event.mimeData().urls() if url.scheme() in WEB_SCHEMES]
        event.acceptProposedAction()
        QTimer.singleShot(0, self, lambda: self.open_dropped(paths, links))  # the drag source is not kept waiting

    def open_dropped(self, paths: list[Path], links: list[str] = ()) -> None:
        """Images: offer to reuse their settings, start from them or import them. Other pictures (a phone's HEIC
        photo): the init image. A text file of generation data (a workflow's .json): its settings, as if pasted.
        Folders of images without weights: into the gallery. Weights and other folders:
        import as models. Links (from a browser) to a model on Hugging Face or Civitai: downloaded on the Models tab;
        other links are said to be links."""
        models = [link for link in links if self.library.is_model_link(link)]
        if models:
            self.download_addresses(models)
        if len(models) < len(links):
            other = next(link for link in links if link not in models)
            self.errors.show_messages([f"{other[:120]} is a link, not a file: save what it points to (a picture, a "
                                       "model) in your browser, then drop the saved file here."])
        dropped = DroppedFiles.sort(paths)
        if dropped.models:
            self.tabs.setCurrentWidget(self.models)
            self.models.import_paths(list(dropped.models))
        if dropped.pictures:
            self.start_from_image(str(dropped.pictures[0]))
            if len(dropped.pictures) > 1:  # shown beside the recipe's warnings until the next generation
                self._reuse_notes.append(f"{dropped.pictures[0].name} is the init image; a run starts from one "
                                         "picture, so the other pictures dropped were left alone.")
                self._update_recipe_controls()
        elif len(dropped.images) == 1 and not dropped.image_folders:
            self.offer_dropped_image(dropped.images[0])
        elif dropped.settings and not dropped.images and not dropped.image_folders:
            self.reuse_settings_file(dropped.settings[0])
            if len(dropped.settings) > 1:
                self._reuse_notes.append(f"The settings are {dropped.settings[0].name}'s; the other text files "
                                         "dropped were left alone.")
                self._update_recipe_controls()
        elif dropped.images or dropped.image_folders:  # into the gallery, in the background (progress under the grid)
            self.tabs.setCurrentWidget(self.browser)
            self.browser.import_files(list(dropped.images), list(dropped.image_folders))

    def choose_images(self) -> None:
        """File → Open an image: the chosen files, as if dropped on the window."""
        names, _ = QFileDialog.getOpenFileNames(self, "Open an image", self._opened_folder,
                                                f"{IMAGE_FILTER};;Generation data (*.json *.txt);;All files (*)")
        if names:
            self._opened_folder = str(Path(names[0]).parent)
            self.open_dropped([Path(name) for name in names])

    def reuse_settings_file(self, path: Path) -> None:
        """A text file of generation data dropped or opened (a ComfyUI workflow's .json, A1111's .txt): its
        settings fill the controls, as pasted text's do."""
        try:
            metadata = settings_file(path)
        except OSError as error:
            self.errors.show_messages([f"{path.name} cannot be read ({error.strerror or error})."])
            return
        if metadata is None:
            self.errors.show_messages([f"{path.name} holds no generation settings: drop an image with its "
                                       "parameters, A1111's .txt beside one, or a ComfyUI workflow's .json."])
            return
        self.reuse_pasted(metadata, path.name)

    def reuse_file(self, path: Path) -> None:
        """The settings of a file (an image, or generation data saved as text) fill the controls, without asking
        what to do with it: Paste parameters of a copied file."""
        if path.suffix.lower() in SETTINGS_SUFFIXES:
            self.reuse_settings_file(path)
            return
        try:
            metadata, _, _, notes = read_metadata(path)
        except (OSError, ValueError, SyntaxError) as error:
            self.errors.show_messages([f"{path.name} is not a readable image ({error})."])
            return
        if metadata is None:
            self.errors.show_messages([f"{path.name} carries no generation settings."])
            return
        self._reuse_image(metadata, notes)

    def _reuse_image(self, metadata: ImageMetadata, notes: list[str]) -> None:
        self.apply_metadata(metadata)
        if metadata.request:
            try:
                self.apply_request(GenerationRequest.from_dict(metadata.request))
            except (AppError, TypeError):
                pass  # a request from another version: the A1111 fields above stand
        if notes:
            self._reuse_notes += notes
            self._update_recipe_controls()
        self.tabs.setCurrentIndex(0)

    def offer_dropped_image(self, path: Path) -> None:
        try:
            metadata, _, _, notes = read_metadata(path)
        except (OSError, ValueError, SyntaxError) as error:
            self.errors.show_messages([f"{path.name} is not a readable image ({error})."])
            return
        choice = ask_about_image(self, path, metadata)
        if choice is ImageChoice.REUSE:
            self._reuse_image(metadata, notes)
        elif choice is ImageChoice.INIT:
            self.start_from_image(str(path))
        elif choice is ImageChoice.DESCRIBE:
            self.describe_file(path)
        elif choice is ImageChoice.IMPORT:
            self.browser.import_files([path])
            self.tabs.setCurrentWidget(self.browser)

    # -- gallery, batch and models --------------------------------------------------------

    def _rebuild_gallery(self) -> None:
        self.tabs.setCurrentWidget(self.browser)
        self.browser.rebuild()

    def _find(self) -> None:
        self.tabs.setCurrentWidget(self.browser)
        self.browser.focus_search()

    def _open_export(self) -> None:
        self.tabs.setCurrentWidget(self.browser)
        self.browser.open_export()

    def open_batch(self):
        from hypersd_desktop.ui.batch_dialog import BatchDialog

        dialog = BatchDialog(self.library, self.bridge, self.build_request(quiet=True), self,
                             self.prompt_styles.chosen(), self.control_stack.picture_controls())
        dialog.progressed.connect(lambda: self._gallery_timer.start())
        dialog.open()
        self._batch_dialog = dialog
        return dialog

    def open_plot(self) -> PlotDialog:
        """The X/Y/Z plot dialog, kept with its axes while the window is open; it stays open beside the window, whose
        prompt and settings can be changed meanwhile (the plot takes them as it is made)."""
        dialog = self._plot_dialog_made()
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def _plot_dialog_made(self) -> PlotDialog:
        if self._plot_dialog is None:
            self._plot_dialog = PlotDialog(self._one_image_request, self._submit_plot, self.library.paths, self,
                                           find=self._installed_file, suggest=self._installed_names,
                                           vae_of=self._automatic_vaes, styles=lambda: self.prompt_styles.book.styles)
        return self._plot_dialog

    def _installed_file(self, name: str) -> str:
        """The installed model (or file) a plot's value names, by its name or file name, in any case."""
        model = self.library.named(name)
        if model is not None:
            return model.path
        if Path(name).expanduser().is_file():
            return str(Path(name).expanduser())
        raise InputError(f"{name!r} is no installed model: the Models tab lists them by name.")

    def _automatic_vaes(self):
        """Each model's own automatic VAE for a plot of models, where the VAE list is on Automatic; None where a
        VAE is chosen in it (then every model runs with that one)."""
        if self.vae_box.currentData():
            return None
        return lambda path: self.library.vae_for(path)

    def _installed_names(self, axis: Axis) -> str:
        """What a files' axis starts with: the Hyper-SD files or the VAEs installed for the model, or the model."""
        model = self.current_model()
        if model is None:
            return ""
        if axis == Axis.HYPER:
            return joined_values([Path(entry.path).stem for entry in self.library.hyper_files(model.architecture)])
        if axis == Axis.VAE:  # the model's own VAE, then each installed for it
            return joined_values(["None", *(entry.name for entry in self.library.vaes_for(model.architecture))])
        if axis == Axis.STYLES:  # no style, then each style of words not chosen already (at most a few)
            chosen = set(self.prompt_styles.chosen_names())
            names = [style.name for style in self.prompt_styles.book.styles if not style.empty
                     and style.name not in chosen]
            return joined_values(["None", *names[:5]])
        return joined_values([model.name])

    def _reuse_plot(self, fields: object) -> None:
        """A grid reused: its first image's settings are set; the plot dialog takes its axes, to make it again."""
        axes = stored_axes(fields)
        if axes is None:
            return
        dialog = self._plot_dialog_made()
        for row, axis in zip(dialog.rows(), axes):
            row.set_axis(axis.axis if axis else None, axis.values if axis else None)
            try:
                first = axis.parsed()[0] if axis is not None and axis.axis == Axis.STYLES else None
            except InputError:
                first = None
            chosen = self.prompt_styles.chosen_names()
            if first is not None and chosen and chosen[-1] == first:  # the first image's axis style, not one chosen
                self.prompt_styles.choose(chosen[:-1])
        self.statusBar().showMessage("An X/Y/Z plot's grid: its first image's settings are set, and File → X/Y/Z "
                                     "plot… (Ctrl+Shift+P) has its axes to make the plot again.", 15000)

    # -- live -----------------------------------------------------------------------------

    def _live_request(self) -> GenerationRequest | None:
        """The image Live makes: the Generate tab's first image (a dynamic prompt's choices by its seed)."""
        request = self._one_image_request()
        return request.replace(batch_size=1) if request is not None else None

    def _show_live(self, image) -> None:
        pixmap = QPixmap()
        pixmap.loadFromData(image.png, "PNG")
        self._live_pixmap = pixmap
        self.preview.show_image(pixmap, image.request.tiling)

    def _preview_changed(self) -> None:
        if self.live.image is not None and self.preview.shown() is not self._live_pixmap:
            self.live.let_go()  # Keep saves the live image in view only

    def _live_kept(self, path: str) -> None:
        image = self.live.image
        pixmap = QPixmap()
        pixmap.loadFromData(image.png, "PNG")
        self.jobs.add_result(pixmap, image.png, path, image.request.seed, image.request.tiling)
        self.library.registry.mark_used(image.request.model_paths())

    def _keep_live_again(self, request: GenerationRequest) -> None:
        self._job_ids.append(self.bridge.client.submit(request))

    def _live_said(self, text: str) -> None:
        if self._active_job is None:  # a generated image's progress says more
            self.timing.setText(text)

    def _live_failed(self, message: str) -> None:
        self.errors.show_messages([f"Live: {message}"])

    def _one_image_request(self) -> GenerationRequest | None:
        """The Generate tab's request as one image would be made (a dynamic prompt's choices made by its seed): what
        a plot and Live make again."""
        request = self.build_request(quiet=True)
        if request is None or not request.prompt:
            return None
        try:
            return dynamic_jobs(request, 1, False, self.wildcards)[0][0]
        except InputError:
            return None

    def _submit_plot(self, spec: PlotSpec) -> None:
        self._job_ids.append(self.bridge.client.submit_plot(spec))
        self.library.registry.mark_used(spec.base.model_paths())
        self.statusBar().showMessage(f"Queued: {spec.describe()}", 10000)

    def _paths_in_use(self) -> set[str]:
        """Model files the running and queued jobs need: the model manager will not remove them."""
        client = self.bridge.client
        jobs = ([client.running] if client.running is not None else []) + list(client.queued())
        paths: set[str] = set()
        for job in jobs:
            for request in job.requests():  # the base model, LoRAs, VAE, ControlNets, upscaler …
                paths.update(str(Path(path)) for path in request.model_paths())
            if job.enlargement is not None and job.enlargement.upscaler:
                paths.add(str(Path(job.enlargement.upscaler)))
        return paths

    # -- misc -----------------------------------------------------------------------------

    def import_models(self) -> None:
        self.tabs.setCurrentWidget(self.models)
        self.models.choose_files()

    def _place(self) -> None:
        """Where the window was when it last closed (size, place, maximised); on a first start 1280 × 800, or
        the screen's room where it has less (a laptop at 150 % scaling lays out 1280 × 720, less the taskbar)."""
        saved = self.settings.window_geometry
        if saved and self.restoreGeometry(QByteArray.fromBase64(saved.encode("ascii"))):
            return
        screen = self.screen() or QGuiApplication.primaryScreen()
        room = screen.availableGeometry().size() if screen is not None else FIRST_SIZE
        frame = QSize(16, 40)  # the title bar and borders a window manager adds around it
        self.resize(FIRST_SIZE.boundedTo(room - frame).expandedTo(self.minimumSizeHint()))

    def _remember_choices(self) -> None:
        model, hyper = self.current_model(), self.hyper_box.currentData()
        self.settings = with_dialog_choices(self.settings, self.library.paths).replace(
            window_geometry=bytes(self.saveGeometry().toBase64()).decode("ascii"),
            last_model=model.id if model else "", last_hyper=hyper.id if hyper else "", last_steps=self.steps.value(),
            last_hires_scale=self.hires_scale.value(), last_hires_strength=self.hires_strength.value(),
            last_hires_steps=self.hires_steps.value(), last_upscaler=self.upscaler_box.currentData() or "",
            last_face_detail=self.face_detail.enabled.isChecked(), last_face_strength=self.face_detail.strength.value(),
            last_hand_detail=self.hand_detail.enabled.isChecked(), last_hand_strength=self.hand_detail.strength.value(),
            last_repaint_tiles=self.in_tiles.isChecked(), last_tile_size=self.tile_size.currentData(),
            last_seams_fix=self.seams.mode.currentData(), last_seams_strength=self.seams.strength.value(),
            last_size=self.size_box.currentText(), last_vae=self.vae_box.currentData() or "",
            latest_wins=self.latest_wins.isChecked(),
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
        select_path(self.vae_box, self.settings.last_vae or None)  # Automatic when it is no longer offered
        select_path(self.upscaler_box, self.settings.last_upscaler or None)  # Lanczos when it is gone
        self._name_enlarger()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._active_job is not None and QMessageBox.question(
            self, "Quit", "An image is being generated. Quit anyway? It is made again at the next start, when you "
                          "resume the queue."
        ) != QMessageBox.StandardButton.Yes:
            event.ignore()
            return
        unsaved = sum(ResultStrip.unsaved_png(self.results.item(row)) is not None for row in range(self.results.count()))
        them = "them" if unsaved > 1 else "it"
        if unsaved and QMessageBox.question(
            self, "Quit", f"{unsaved} image{'s were' if unsaved > 1 else ' was'} made but not saved (the disk could not "
                          f"take {them}). Quit anyway and lose {them}? (No: right-click {them} in Latest results, then "
                          "Save as…)"
        ) != QMessageBox.StandardButton.Yes:
            event.ignore()
            return
        self._remember_choices()
        self.session.save(wait=True)
        for count in self.findChildren(TokenCount):  # a count waiting for a pause would read the closed library
            count.stop()
        self.watcher.stop()
        self.browser.close_resources()
        if self._batch_dialog is not None:  # each dialog opened: one may still be finding a job's edges
            for dialog in self.findChildren(type(self._batch_dialog)):
                dialog.close_resources()
        self.models.shutdown()
        super().closeEvent(event)


def _file_metadata(record: ImageRecord) -> ImageMetadata | None:
    """What the file of a gallery image made elsewhere says; None when it is gone or says nothing."""
    try:
        return read_metadata(Path(record.path))[0]
    except OSError:
        return None
