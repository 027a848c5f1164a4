"""The gallery tab: search and filters over a virtualised thumbnail grid, and a large view.

Grid keys: arrows move, Enter opens the large view, Delete moves to the trash (Ctrl+Z brings it
back), F toggles favourite, 0–5 rate, Ctrl+C copies the image, Ctrl+Shift+C its parameters,
Ctrl+R reuses its settings, Ctrl+U makes it again twice as large (Upscale). In the large view:
Left/Right for previous/next, +/−/0 zoom, Esc back.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from html import escape
from itertools import groupby
from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QMimeData, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction, QDesktopServices, QFontMetrics, QGuiApplication, QKeySequence, QPainter, QPixmap, QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView,
    QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMenu, QPushButton, QSizePolicy, QSplitter, QStackedWidget,
    QTableView, QTextBrowser, QToolButton, QVBoxLayout, QWidget,
)

from hypersd_desktop.core.dates import local_time
from hypersd_desktop.core.vocab import ControlType, Device, Mode, Preprocessor, Scheduler, SeamFix, Tiling
from hypersd_desktop.engine.inspect import weights_name
from hypersd_desktop.engine.recipes import recipe_for_file
from hypersd_desktop.engine.types import hires_size
from hypersd_desktop.gallery.formats.common import (
    ImageMetadata, hires_pass, other_passes, other_prompts, plot_axes, stem, tiling_of, variation_of,
)
from hypersd_desktop.gallery.formats import tool_title
from hypersd_desktop.gallery.gallery import Gallery, image_files, parameters_text, read_metadata
from hypersd_desktop.gallery.store import ImageQuery, ImageRecord
from hypersd_desktop.ui.compare_view import CompareDialog
from hypersd_desktop.ui.flow_layout import FlowLayout
from hypersd_desktop.ui.gallery_model import CELL, GalleryModel, ThumbnailDelegate
from hypersd_desktop.ui.init_image import ENLARGE_SCALES, UPSCALE_SCALES
from hypersd_desktop.ui.pictures import read_picture
from hypersd_desktop.ui.shortcuts import GALLERY, LARGE_VIEW, described
from hypersd_desktop.ui.tasks import Task, describe_items

NOTICE_MIN_WIDTH = 96  # pixels: the notice beside the buttons at the window's narrowest, a word or two a line
DATE_RANGES = (("Any time", 0), ("Today", 1), ("Last 7 days", 7), ("Last 30 days", 30), ("Last year", 365))


def reveal_in_file_manager(path: str) -> None:
    """Show the file selected in Explorer or Finder; elsewhere open its folder."""
    if sys.platform == "win32":
        subprocess.Popen(["explorer", f"/select,{Path(path)}"])  # noqa: S603,S607 - fixed program, our path
    elif sys.platform == "darwin":
        subprocess.Popen(["open", "-R", path])  # noqa: S603,S607
    else:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))


def copy_image_to_clipboard(path: str) -> bool:
    """The image itself and its file, so both image editors and file managers can paste it."""
    image = read_picture(path)
    if image.isNull():
        return False
    mime = QMimeData()
    mime.setImageData(image)
    mime.setUrls([QUrl.fromLocalFile(path)])
    QGuiApplication.clipboard().setMimeData(mime)
    return True


def describe_record(record: ImageRecord, metadata: ImageMetadata | None = None,
                    pixels: tuple[int, int] | None = None, name_width: int = 112,
                    fits: Callable[[str], bool] | None = None) -> str:
    """The large view's parameter panel, as HTML (`record_rows`). `name_width`: pixels for the names' column
    ("Negative prompt" in bold in the panel's font), so that the names of each table line up; `fits` says whether
    a value fits beside its name in the panel (by default: `BESIDE` characters)."""
    return _name_value_html(record_rows(record, metadata, pixels), name_width, fits)


def record_rows(record: ImageRecord, metadata: ImageMetadata | None = None,
                pixels: tuple[int, int] | None = None) -> list[tuple[str, str]]:
    """What the large view says of an image, as (name, value) rows. Beyond the gallery's row: what an image made here
    has in its request, or what another tool wrote in the file (`metadata`): a chosen VAE, clip skip, embeddings, and
    how a Hires fix enlarged it; and the file's own `pixels` where they are not the size it was made at (a Hires fix,
    or only the masked area of a larger picture made)."""
    try:
        request = json.loads(record.request) if record.request else {}
    except ValueError:
        request = {}
    request = request if isinstance(request, dict) else {}
    if request:
        vae, clip_skip = request.get("vae"), request.get("clip_skip")
        vae = Path(vae).name if isinstance(vae, str) and vae else None
        embeddings = [Path(path).stem for path in request.get("embeddings") or () if isinstance(path, str)]
    else:
        vae, clip_skip = (metadata.vae_name, metadata.clip_skip) if metadata else (None, None)
        embeddings = [name for name, _ in metadata.embeddings] if metadata else []
    prompts = other_prompts(metadata.extra) if metadata else {}
    rows = [
        ("Prompt", record.prompt or "—"),
        ("Negative prompt", record.negative_prompt or "—"),
        ("Template", request.get("prompt_template") if request else None),  # the prompt with choices it came from
        ("Negative template", request.get("negative_template") if request else None),
        *prompts.items(),
        ("Model", f"{record.model_name or 'unknown'}" + (f" [{record.model_hash}]" if record.model_hash else "")),
        ("VAE", vae),
        ("LoRAs", ", ".join(f"{name} × {weight:g}" for name, weight, _ in record.loras) or "—"),
        ("Embeddings", ", ".join(embeddings)),
        ("Recipe", record.recipe or _hyper_file_of(record) or "—"),
        ("Clip skip", clip_skip if isinstance(clip_skip, int) and clip_skip > 1 else None),
        ("Steps", record.steps), ("Guidance", record.guidance),
        ("Sampler", Scheduler(record.scheduler).label if request and record.scheduler in Scheduler.values()
         else record.scheduler),
        ("Seed", record.seed),
        ("Variation", _variation_text(request, metadata)),
        ("Tiling", _tiling_text(request, metadata)),
        ("Size", f"{record.width} × {record.height}" if record.width else None),
        ("Pixels", f"{pixels[0]} × {pixels[1]}" if pixels and record.width and pixels != (record.width, record.height)
         else None),
        ("Hires fix", hires_pass(metadata) if metadata and not request else _own_hires(request, record)),
        ("Also made with", "; ".join(other_passes(metadata) if metadata and not request else _own_passes(request))),
        ("X/Y/Z plot", f"{plot_axes(request['plot'])}; this is its grid, reuse makes its first image"
         if isinstance(request.get("plot"), dict) and plot_axes(request["plot"]) else None),
        ("Other fields", _other_fields(metadata, prompts) if metadata and not request else None),
        ("Described as", record.described),  # a tagger's tags (Describe for search)
        ("Device", Device(record.device).label if record.device in Device.values() else record.device),
        ("Time", f"{record.time_taken:.2f} s" if record.time_taken else None),
        ("Created", local_time("%Y-%m-%d %H:%M:%S", record.created)),
        ("Made with", tool_title(record.metadata_format) if record.metadata_format else None),
        ("Source", record.source),
        ("File", Path(record.path).name),
        ("Folder", str(Path(record.path).parent)),
    ]
    return [(name, str(value)) for name, value in rows if value not in (None, "")]


BESIDE = 24  # characters of a value shown beside its name where the panel cannot measure it (`describe_record`)


def _name_value_html(rows: Iterable[tuple[str, str]], name_width: int,
                     fits: Callable[[str], bool] | None = None) -> str:
    """Each value beside its name where it fits, else under it across the panel's whole width, so that a prompt
    reads as lines of text rather than a narrow column and a long file or model name wraps at its spaces and
    slashes instead of a letter off its end ("….pn g")."""
    parts = []
    fits = fits or (lambda value: len(value) <= BESIDE)
    for beside, run in groupby(rows, key=lambda row: "\n" not in row[1] and fits(row[1])):
        if beside:
            parts.append("<table cellspacing='0' cellpadding='1'>" + "".join(
                f"<tr><td width='{name_width}' style='white-space: nowrap'><b>{escape(name)}</b></td>"
                f"<td>{escape(value)}</td></tr>" for name, value in run) + "</table>")
        else:
            parts += [f"<p style='margin: 3px 0 0 1px'><b>{escape(name)}</b></p>"
                      f"<p style='margin: 0 0 3px 12px'>{escape(value).replace(chr(10), '<br>')}</p>"
                      for name, value in run]
    return "".join(parts)


FIELD_SHOWN = 200  # characters of another tool's field shown in the details (a resource list can run to pages)


def _tiling_text(request: dict | None, metadata: ImageMetadata | None) -> str | None:
    """Which way a seamless image tiles, from the request made here or the image's text; None for one that does
    not."""
    tiling = request.get("tiling") if request else tiling_of(metadata) if metadata else None
    return Tiling(tiling).label if tiling in Tiling.values() and tiling != Tiling.OFF else None


def _other_fields(metadata: ImageMetadata, prompts: dict[str, str]) -> str:
    """The rest of what another tool wrote, as it wrote it, a field a line ("Schedule type: Karras"), for what the
    rows above do not name."""
    fields = [(key, " ".join(value.split())) for key, value in metadata.extra.items()
              if key not in prompts and isinstance(value, str) and value.strip()]
    return "\n".join(f"{key}: {value if len(value) <= FIELD_SHOWN else value[:FIELD_SHOWN - 1] + '…'}"
                     for key, value in fields)


def _hyper_file_of(record: ImageRecord) -> str | None:
    """The Hyper-SD recipe of a LoRA another tool's image names by a Hyper-SD file's name (Fooocus's Hyper-SD
    performance, ComfyUI's LoRA loaders), where the image does not name its recipe itself."""
    if record.request:
        return None
    return next((recipe.id for name, _, _ in record.loras if (recipe := recipe_for_file(name)) is not None), None)


def _own_hires(request: dict, record: ImageRecord) -> str | None:
    """How this app's Hires fix enlarged an image made here, in the words `hires_pass` has for other tools'."""
    scale, strength = request.get("hires_scale"), request.get("hires_strength")
    if not isinstance(scale, (int, float)) or not record.width or not record.height:
        return None
    width, height = hires_size(record.width, record.height, scale)
    steps = request.get("hires_steps")
    upscaler = request.get("upscaler")
    upscaler = stem(upscaler) if isinstance(upscaler, str) else None
    guidance = request.get("hires_guidance")
    prompts = (("hires_prompt", "prompt"), ("hires_negative_prompt", "negative prompt"))
    own = " and ".join([*(name for key, name in prompts if isinstance(request.get(key), str) and request[key]),
                        *([f"CFG scale {guidance:g}"] if isinstance(guidance, (int, float)) else [])])
    return (f"enlarged to {width} × {height} by a Hires fix pass ({upscaler or 'Lanczos'}, strength {strength:g}"
            f"{f', {steps} steps' if isinstance(steps, int) else ''}{f', its own {own}' if own else ''})")


def _variation_text(request: dict, metadata: ImageMetadata | None) -> str | None:
    """How the seed's image was varied (A1111's variation seed), from the request made here or the image's text."""
    if request:
        seed, strength = request.get("variation_seed"), request.get("variation_strength")
        varied = isinstance(seed, int) and isinstance(strength, (int, float)) and strength > 0
        variation = (seed, strength) if varied else None
    else:
        variation = variation_of(metadata) if metadata else None
    return f"by seed {variation[0]} at strength {variation[1]:g}" if variation else None


def _own_passes(request: dict) -> list[str]:
    """What an image made here started from besides its prompt (an init image, a mask, ControlNets, IP-Adapters) and
    the face pass it had, in the words `other_passes` has for other tools'. `request` is the stored one, read as
    JSON: any part of it may be odd."""
    parts = []

    def number(value: object) -> float | None:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    if isinstance(request.get("init_image"), str):
        strength = number(request.get("strength"))
        upscaler = request.get("upscaler") if request.get("hires_scale") is None else None
        parts.append((Mode.INPAINT if request.get("mask_image") else Mode.IMAGE_TO_IMAGE).label + " from a picture"
                     + (f" at strength {strength:g}" if strength is not None else "")
                     + (", only the masked area" if isinstance(request.get("masked_padding"), int) else "")
                     + (f", enlarged first by {stem(upscaler)}" if isinstance(upscaler, str) and upscaler else ""))
    for control in request.get("controls") or ():
        if not isinstance(control, dict) or not isinstance(control.get("model"), str) or not control["model"]:
            continue
        scale, start, end = (number(control.get(key)) for key in ("scale", "start", "end"))
        how = [f"scale {scale:g}" if scale is not None else "",
               ControlType(control["control_type"]).label if control.get("control_type") in ControlType.values()
               else "",
               {Preprocessor.SCRIBBLE: "a drawing as a scribble",
                Preprocessor.INPAINT: "the init image, the masked part left open"}.get(control.get("preprocessor"), ""),
               f"from {start:.0%} to {end:.0%} of the steps" if start is not None and end is not None
               and (start, end) != (0, 1) else ""]
        said = ", ".join(part for part in how if part)
        parts.append(f"the ControlNet {weights_name(Path(control['model']))}" + (f" ({said})" if said else ""))
    for adapter in request.get("ip_adapters") or ():
        if isinstance(adapter, dict) and isinstance(adapter.get("model"), str) and adapter["model"]:
            scale = number(adapter.get("scale"))
            parts.append(f"the IP-Adapter {stem(adapter['model'])} from a picture"
                         + (f" (scale {scale:g})" if scale is not None else ""))
    tile, side = number(request.get("repaint_tile")), max(number(request.get("width")) or 0,
                                                          number(request.get("height")) or 0)
    if tile and side * (number(request.get("hires_scale")) or 1) > tile:  # repainted a tile at a time
        fix = request.get("seams_fix")
        label = SeamFix(fix["mode"]).label.lower() if isinstance(fix, dict) and fix.get("mode") in SeamFix.values() \
            else None
        parts.append(f"the enlarged picture repainted in tiles of {tile:g}" + (f", its seams fixed by a {label}"
                                                                               if label else ""))
    for part in ("face", "hand"):  # ADetailer's passes, as this app makes them
        wanted = request.get(f"{part}_detail")
        if isinstance(wanted, dict):
            strength = number(wanted.get("strength"))
            how = [f"strength {strength:g}" if strength is not None else "",
                   "its own prompt" if isinstance(wanted.get("prompt"), str) and wanted["prompt"] else ""]
            said = ", ".join(words for words in how if words)
            parts.append(f"the {part} pass" + (f" ({said})" if said else ""))
    return parts


def _file_metadata(path: Path) -> ImageMetadata | None:
    try:
        return read_metadata(path)[0]
    except OSError:  # gone or damaged since the pixmap was read
        return None


class ThumbnailGrid(QTableView):
    """The grid: fixed-size cells, as many columns as fit; arrows move in two dimensions."""

    def __init__(self, model: GalleryModel) -> None:
        super().__init__()
        self.gallery_model = model
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            header.setMinimumSectionSize(8)
            header.setDefaultSectionSize(CELL)
            header.hide()
        self.setShowGrid(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verticalScrollBar().setSingleStep(CELL // 4)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setTabKeyNavigation(False)
        self.setItemDelegate(ThumbnailDelegate(self))
        self.setModel(model)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self.fit_columns()

    empty_text = "No images here yet.\nGenerate some, or File → Import images from a folder."

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if self.gallery_model.count() == 0:  # say why the grid is empty instead of showing nothing
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)

    def fit_columns(self) -> None:
        """As many columns as fit; the current image stays current and in view."""
        columns = max(1, self.viewport().width() // CELL)
        if columns == self.gallery_model.columns:
            return
        current, selected = self.current_position(), self.positions()
        self.gallery_model.set_columns(columns)  # a reset: cells move, so selection is put back by position
        selection = QItemSelection()
        for position in selected:
            index = self.gallery_model.index_at(position)
            selection.select(index, index)
        self.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.Select)
        if current >= 0:
            self.selectionModel().setCurrentIndex(self.gallery_model.index_at(current),
                                                  QItemSelectionModel.SelectionFlag.NoUpdate)
            self.scrollTo(self.currentIndex())

    def positions(self) -> list[int]:
        """Positions of the selected images, in gallery order."""
        model = self.gallery_model
        return sorted(p for p in (model.position(i) for i in self.selectionModel().selectedIndexes()) if p >= 0)

    def current_position(self) -> int:
        return self.gallery_model.position(self.currentIndex())

    def select_position(self, position: int) -> None:
        """Make `position` the current and only selected image."""
        self.selectionModel().setCurrentIndex(self.gallery_model.index_at(position),
                                              QItemSelectionModel.SelectionFlag.ClearAndSelect)


class ZoomView(QGraphicsView):
    """A picture that fits the view until zoomed; wheel or +/− zoom, 0 fits again."""

    def __init__(self) -> None:
        super().__init__()
        self._scene = QGraphicsScene(self)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self.setScene(self._scene)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.fitted = True

    def set_pixmap(self, pixmap: QPixmap) -> None:
        self._item.setPixmap(pixmap)
        self._scene.setSceneRect(self._item.boundingRect())
        self.fit()

    def fit(self) -> None:
        self.fitted = True
        self.resetTransform()
        if not self._item.pixmap().isNull():
            self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)

    def zoom(self, factor: float) -> None:
        self.fitted = False
        self.scale(factor, factor)

    def zoom_level(self) -> float:
        return self.transform().m11()

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self.fitted:
            self.fit()


class ImageViewer(QWidget):
    """One image large, its parameters, and what can be done with it."""

    closed = Signal()
    step = Signal(int)  # -1 previous, +1 next
    changed = Signal(int)  # image id whose favourite, rating or tags changed

    def __init__(self, gallery: Gallery) -> None:
        super().__init__()
        self.gallery = gallery
        self.record: ImageRecord | None = None
        self.view = ZoomView()
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.favourite = QCheckBox("★ Favourite")
        self.rating = QComboBox()
        self.rating.addItems(["No rating", "●", "●●", "●●●", "●●●●", "●●●●●"])
        self.tags = QLineEdit(placeholderText="tags, separated by commas")
        self.back_button = QPushButton("◀ Grid (Esc)")
        self.previous_button = QPushButton("← Previous")
        self.next_button = QPushButton("Next →")
        self.zoom_label = QLabel("Fit")
        nav = QHBoxLayout()
        for widget in (self.back_button, self.previous_button, self.next_button):
            nav.addWidget(widget)
        nav.addStretch(1)
        for text, tip, handler in (("−", "Zoom out (-)", lambda: self._zoom(0.8)),
                                   ("Fit", "Fit the window (0)", self._fit), ("1:1", "Actual size", self._actual),
                                   ("+", "Zoom in (+)", lambda: self._zoom(1.25))):
            button = QToolButton(text=text, toolTip=tip)
            button.setAccessibleName(tip)
            button.clicked.connect(handler)
            nav.addWidget(button)
        nav.addWidget(self.zoom_label)
        left = QVBoxLayout()
        left.addLayout(nav)
        left.addWidget(self.view, 1)
        side = QVBoxLayout()
        side.addWidget(self.details, 1)
        rate_row = QHBoxLayout()
        rate_row.addWidget(self.favourite)
        rate_row.addWidget(self.rating)
        side.addLayout(rate_row)
        side.addWidget(self.tags)
        self.action_row = QVBoxLayout()
        side.addLayout(self.action_row)
        left_widget, side_widget = QWidget(), QWidget()
        left_widget.setLayout(left)
        side_widget.setLayout(side)
        side_widget.setMinimumWidth(300)
        self._side = side_widget
        splitter = QSplitter()
        splitter.addWidget(left_widget)
        splitter.addWidget(side_widget)
        splitter.setStretchFactor(0, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self.back_button.clicked.connect(self.closed)
        self.previous_button.clicked.connect(lambda: self.step.emit(-1))
        self.next_button.clicked.connect(lambda: self.step.emit(1))
        self.favourite.toggled.connect(self._favourite_changed)
        self.rating.currentIndexChanged.connect(self._rating_changed)
        self.tags.editingFinished.connect(self._tags_changed)
        for keys, what, handler in (
            ("Escape", "Back to the grid", self.closed.emit), ("Left", "The image before", lambda: self.step.emit(-1)),
            ("Right", "The image after", lambda: self.step.emit(1)), ("+", "Zoom in", lambda: self._zoom(1.25)),
            ("=", "Zoom in", lambda: self._zoom(1.25)), ("-", "Zoom out", lambda: self._zoom(0.8)),
            ("0", "Fit the window", self._fit),
        ):
            described(QShortcut(QKeySequence(keys), self, activated=handler,
                                context=Qt.ShortcutContext.WidgetWithChildrenShortcut), LARGE_VIEW, what)

    def _name_width(self) -> int:
        """The details' names column: "Negative prompt" in bold in the panel's font, and the cell's padding."""
        bold = self.details.document().defaultFont()
        bold.setBold(True)
        return QFontMetrics(bold).horizontalAdvance("Negative prompt") + 8

    def _fits(self, value: str) -> bool:
        """Whether `value` fits on one line beside its name in the panel at its narrowest (else it goes under, across
        the panel: a file name is not broken a letter off its end)."""
        margins = self._side.layout().contentsMargins()
        narrowest = (self._side.minimumWidth() - margins.left() - margins.right() - 2 * self.details.frameWidth()
                     - self.details.verticalScrollBar().sizeHint().width())  # a long record scrolls
        room = narrowest - self._name_width() - 2 * self.details.document().documentMargin() - 8
        return QFontMetrics(self.details.document().defaultFont()).horizontalAdvance(value) <= room

    def show_record(self, record: ImageRecord) -> None:
        self.record = self.gallery.store.get(record.id) or record  # with its tags
        record = self.record
        pixmap = QPixmap.fromImage(read_picture(record.path))
        if pixmap.isNull():
            self.view.set_pixmap(QPixmap())
            size = f" ({record.width:,} × {record.height:,} pixels)" if record.width and record.height else ""
            problem = (f"This picture{size} cannot be shown here; Show in folder finds it for another app."
                       if Path(record.path).is_file() else "The file is missing.")
            self.details.setHtml(f"<p><b>{html.escape(problem)}</b></p>"
                                 + describe_record(record, name_width=self._name_width(), fits=self._fits))
        else:
            self.view.set_pixmap(pixmap)
            # another tool's file says more than the gallery's row keeps (its VAE, a Hires fix); read it again
            metadata = None if record.request else _file_metadata(Path(record.path))
            self.details.setHtml(describe_record(record, metadata, (pixmap.width(), pixmap.height()),
                                                 self._name_width(), self._fits))
        for widget in (self.favourite, self.rating):
            widget.blockSignals(True)
        self.favourite.setChecked(record.favourite)
        self.rating.setCurrentIndex(record.rating)
        for widget in (self.favourite, self.rating):
            widget.blockSignals(False)
        self.tags.setText(", ".join(record.tags))
        self.zoom_label.setText("Fit")

    def _zoom(self, factor: float) -> None:
        self.view.zoom(factor)
        self.zoom_label.setText(f"{self.view.zoom_level():.0%}")

    def _fit(self) -> None:
        self.view.fit()
        self.zoom_label.setText("Fit")

    def _actual(self) -> None:
        self.view.fitted = False
        self.view.resetTransform()
        self.zoom_label.setText("100%")

    def _favourite_changed(self, value: bool) -> None:
        if self.record is not None:
            self.gallery.store.set_favourite(self.record.id, value)
            self.changed.emit(self.record.id)

    def _rating_changed(self, value: int) -> None:
        if self.record is not None:
            self.gallery.store.set_rating(self.record.id, value)
            self.changed.emit(self.record.id)

    def _tags_changed(self) -> None:
        if self.record is not None:
            tags = [t.strip() for t in self.tags.text().split(",") if t.strip()]
            if tuple(sorted(set(tags))) != tuple(sorted(self.record.tags)):
                self.gallery.store.set_tags(self.record.id, tags)
                self.record = self.gallery.store.get(self.record.id)
                self.changed.emit(self.record.id)


class GalleryBrowser(QWidget):
    """Search, filters, the grid and the large view. `reuse_requested` carries an `ImageRecord`."""

    reuse_requested = Signal(object)
    init_image_requested = Signal(str)  # the path of an image to start from (image-to-image)
    batch_requested = Signal(object)  # the paths of the images a batch job starts from (a list)
    describe_requested = Signal(str)  # the path of an image whose tags become the Generate tab's prompt
    search_descriptions_requested = Signal(object)  # the ids of images to describe for the search (a list)
    imported_unprompted = Signal(object, str)  # an import's images without a prompt (ids), the words it ended with
    upscale_requested = Signal(object, float)  # an `ImageRecord` to make again larger, and how many times
    enlarge_requested = Signal(str, float)  # the path of an image to enlarge alone (not repainted), how many times
    status = Signal(str)

    def __init__(self, gallery: Gallery, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self._deleted: list[int] = []
        self._import_task: Task | None = None
        self._enlarge_actions: list[tuple[QAction, float]] = []  # the Upscale menus' "enlarged only" choices
        self._enlarger = "Lanczos"  # what enlarges them: the Generate tab's Upscaler
        self._import_shown = 0.0  # when the grid last showed an import's progress (monotonic seconds)
        self._export_dialog = None
        ratio = QGuiApplication.primaryScreen().devicePixelRatio() if QGuiApplication.primaryScreen() else 1.0
        self.model = GalleryModel(gallery, ratio, self)
        self._build()
        self._connect()
        self.reload_facets()
        self.apply_filters()

    def close_resources(self) -> None:
        """Closing the app: an export or import stops after the image at hand (an export's manifest
        lists what was written; imported images stay in the gallery)."""
        export_task = self._export_dialog.task if self._export_dialog is not None else None
        for task in (export_task, self._import_task):
            if task is not None and task.isRunning():
                task.cancel()
                task.wait(10_000)
        self.model.close()

    # -- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        self.search = QLineEdit(placeholderText="Search  (Ctrl+F)")
        self.search.setToolTip("Words in the prompt, the negative prompt, the model or LoRA names, or an imported "
                               "image's other prompts (NovelAI's characters, ADetailer's); all must match")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(200)
        self.model_filter, self.lora_filter, self.steps_filter, self.tag_filter = (QComboBox() for _ in range(4))
        self.made_with_filter = QComboBox()  # the tool that made them: their data's format (a facet, by its data)
        self.date_filter = QComboBox()
        for label, days in DATE_RANGES:
            self.date_filter.addItem(label, days)
        self.rating_filter = QComboBox()
        self.rating_filter.addItems(["Any rating", "● or more", "●● or more", "●●● or more", "●●●● or more", "●●●●●"])
        self.favourite_filter = QCheckBox("★ only")
        self.sort = QComboBox()
        self.sort.addItems(["Newest first", "Oldest first"])
        self.search.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)  # takes what a line has left
        filters = FlowLayout()  # wraps onto two lines in a narrow window instead of widening it
        filters.addWidget(self.search)
        for widget, what in self._facet_boxes():
            widget.setToolTip(f"Only images with this {what}" if widget is not self.made_with_filter else
                              "Only images made with this tool, as the data in their files says")
            widget.setMinimumContentsLength(8)
            widget.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            filters.addWidget(widget)
        for widget in (self.date_filter, self.rating_filter, self.favourite_filter, self.sort):
            filters.addWidget(widget)

        self.grid = ThumbnailGrid(self.model)

        self.count_label = QLabel("")
        self.notice = QLabel("")
        self.notice.setWordWrap(True)  # a long notice takes two lines instead of widening the window
        self.notice.setMinimumWidth(NOTICE_MIN_WIDTH)  # nor does its longest word, where the buttons fill the row
        self.notice.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.undo_button = QPushButton("Undo")
        self.undo_button.hide()
        self.stop_import_button = QPushButton("Stop import")
        self.stop_import_button.hide()
        self.open_button = QPushButton("Open")
        self.reuse_button = QPushButton("Reuse settings")
        self.init_button = QPushButton("Start from it")
        self.init_button.setToolTip("Use this image as the Generate tab's init image (image-to-image)")
        self.upscale_button = self._upscale_button()
        self.copy_button = QPushButton("Copy image")
        self.copy_params_button = QPushButton("Copy parameters")
        self.reveal_button = QPushButton("Show in folder")
        self.delete_button = QPushButton("Delete")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Two selected images over one another, a divider to drag between them, and the "
                                       "settings in which they differ (Ctrl+D)")
        self.export_button = QPushButton("Export…")
        self.describe_button = QPushButton("Describe for search")
        self.describe_button.setToolTip("Let the search find the selected images (none selected: every image not "
                                        "described yet) by what they show: the tagger of the Models tab reads each "
                                        "one's booru tags (outdoors, cat, red dress …), kept beside its prompt. For "
                                        "pictures without a prompt, or with one that does not say what is in them")
        self.stop_describing_button = QPushButton("Stop describing")
        self.stop_describing_button.hide()
        self.import_button = QPushButton("Import folder…")
        self.watch_button = QPushButton("Watch folders…")
        self.watch_button.setToolTip("Folders another tool saves its images in (ComfyUI's output, A1111's outputs): "
                                     "the images that arrive there come into the gallery")
        buttons = FlowLayout(alignment=Qt.AlignmentFlag.AlignRight)  # more lines in a narrow window
        for button in (self.open_button, self.reuse_button, self.init_button, self.upscale_button, self.copy_button,
                       self.copy_params_button, self.reveal_button, self.delete_button, self.compare_button,
                       self.export_button, self.describe_button, self.import_button, self.watch_button):
            buttons.addWidget(button)
        actions = QHBoxLayout()
        actions.addWidget(self.count_label)
        actions.addWidget(self.notice)
        actions.addWidget(self.undo_button)
        actions.addWidget(self.stop_import_button)
        actions.addWidget(self.stop_describing_button)
        actions.addLayout(buttons)

        grid_page = QWidget()
        grid_layout = QVBoxLayout(grid_page)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.addLayout(filters)
        grid_layout.addWidget(self.grid, 1)
        grid_layout.addLayout(actions)
        self.viewer = ImageViewer(self.gallery)
        for text, handler in (("Reuse settings (Ctrl+R)", self.reuse_current), ("Start from it", self.start_from_current),
                              ("Copy image (Ctrl+C)", self.copy_image),
                              ("Copy parameters (Ctrl+Shift+C)", self.copy_parameters),
                              ("Show in folder", self.reveal), ("Delete (Del)", self.delete_selected)):
            button = QPushButton(text)
            button.clicked.connect(handler)
            if handler == self.start_from_current:  # with Describe beside it: the panel keeps its height
                describe = QPushButton("Describe")
                describe.setToolTip("Write the image's booru tags into the Generate tab's prompt, as a tagger reads "
                                    "them (Ctrl+Z there takes them back)")
                describe.clicked.connect(self.describe_current)
                row = QHBoxLayout()
                row.addWidget(button, 1)
                row.addWidget(describe, 1)
                self.viewer.action_row.addLayout(row)
                self.viewer.action_row.addWidget(self._upscale_button())
            else:
                self.viewer.action_row.addWidget(button)
        self.pages = QStackedWidget()
        self.pages.addWidget(grid_page)
        self.pages.addWidget(self.viewer)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)

    def _connect(self) -> None:
        self._search_timer = QTimer(self, singleShot=True, interval=200)
        self._search_timer.timeout.connect(self.apply_filters)
        self.search.textChanged.connect(lambda _: self._search_timer.start())
        self.search.returnPressed.connect(self.apply_filters)
        for box in (self.model_filter, self.lora_filter, self.steps_filter, self.tag_filter, self.made_with_filter,
                    self.date_filter, self.rating_filter, self.sort):
            box.currentIndexChanged.connect(self.apply_filters)
        self.favourite_filter.toggled.connect(self.apply_filters)
        self.model.counted.connect(self._show_count)
        self.grid.activated.connect(lambda index: self.open_viewer(self.model.position(index)))
        self.grid.selectionModel().selectionChanged.connect(self._update_buttons)
        self.open_button.clicked.connect(self._open_current)
        self.reuse_button.clicked.connect(self.reuse_current)
        self.init_button.clicked.connect(self.start_from_current)
        self.copy_button.clicked.connect(self.copy_image)
        self.copy_params_button.clicked.connect(self.copy_parameters)
        self.reveal_button.clicked.connect(self.reveal)
        self.delete_button.clicked.connect(self.delete_selected)
        self.compare_button.clicked.connect(self.compare_selected)
        self.undo_button.clicked.connect(self.undo_delete)
        self.stop_import_button.clicked.connect(self.stop_import)
        self.export_button.clicked.connect(self.open_export)
        self.import_button.clicked.connect(self.choose_import_folder)
        self.describe_button.clicked.connect(self.describe_for_search)
        self.viewer.closed.connect(self.close_viewer)
        self.viewer.step.connect(self.step_viewer)
        self.viewer.changed.connect(self._record_changed)
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for keys, what, handler in (
            (QKeySequence.StandardKey.Delete, "Delete the selected images", self.delete_selected),
            (QKeySequence.StandardKey.Undo, "Undo the delete", self.undo_delete),
            (QKeySequence.StandardKey.Copy, "Copy the image", self.copy_image),
            ("Ctrl+Shift+C", "Copy its parameters (as A1111 writes them)", self.copy_parameters),
            ("Ctrl+R", "Reuse its settings on the Generate tab", self.reuse_current),
            ("Ctrl+U", "Upscale × 2", lambda: self.upscale_current(2.0)),
            ("Ctrl+D", "Compare the two selected images", self.compare_selected),
            ("Return", "Open it large", self._open_current), ("Enter", "Open it large", self._open_current),
            ("F", "Favourite or not", self.toggle_favourite),
            *((str(n), "Rate it (0 to 5 dots)", lambda n=n: self.rate(n)) for n in range(6)),
        ):
            shortcut = QShortcut(QKeySequence(keys), self.grid if keys in ("Return", "Enter", "F")
                                 or str(keys).isdigit() else self, context=context)
            described(shortcut, GALLERY, what).activated.connect(handler)
        self._update_buttons()

    # -- queries --------------------------------------------------------------------------

    def current_query(self) -> ImageQuery:
        days = self.date_filter.currentData()
        return ImageQuery(
            text=self.search.text().strip() or None,
            model=self._choice(self.model_filter), lora=self._choice(self.lora_filter),
            steps=int(self._choice(self.steps_filter)) if self._choice(self.steps_filter) else None,
            tag=self._choice(self.tag_filter), made_with=self.made_with_filter.currentData(),
            created_from=time.time() - days * 86400 if days else None,
            favourite=True if self.favourite_filter.isChecked() else None,
            min_rating=self.rating_filter.currentIndex() or None,
            oldest_first=self.sort.currentIndex() == 1,
        )

    def _facet_boxes(self) -> tuple[tuple[QComboBox, str], ...]:
        return ((self.model_filter, "model"), (self.lora_filter, "LoRA"), (self.steps_filter, "steps"),
                (self.tag_filter, "tag"), (self.made_with_filter, "tool"))

    @staticmethod
    def _choice(box: QComboBox) -> str | None:
        return None if box.currentIndex() <= 0 else box.currentText()

    def apply_filters(self) -> None:
        query = self.current_query()
        self.grid.empty_text = ("No image matches the search and filters." if query != ImageQuery() else
                                "No images here yet.\nGenerate some, or File → Import images from a folder.")
        self.model.set_query(query)
        if self.model.count():  # the first image is selected, so Enter, Delete and Ctrl+C act on it
            self.grid.select_position(0)
            self.grid.scrollToTop()
        self._update_buttons()

    def reload_facets(self) -> None:
        facets = self.gallery.store.facets()
        values = (facets["models"], facets["loras"], [str(s) for s in facets["steps"]], facets["tags"], facets["tools"])
        for (box, what), items in zip(self._facet_boxes(), values):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItem(f"Any {what}")  # index 0: no filter
            for item in items:  # the tools by name, their data's format kept for the query
                box.addItem(tool_title(item), item) if box is self.made_with_filter else box.addItem(item)
            box.setCurrentIndex(max(0, box.findText(current)))
            box.blockSignals(False)

    def image_added(self) -> None:
        """New images in the gallery (generated or imported): show them without losing the place."""
        if self.model.add_newest():
            self.reload_facets()

    def _show_count(self, total: int) -> None:
        self.count_label.setText(f"{total:,} image{'s' if total != 1 else ''}")

    # -- selection ------------------------------------------------------------------------

    def selected_records(self) -> list[ImageRecord]:
        if self.pages.currentWidget() is self.viewer and self.viewer.record is not None:
            return [self.viewer.record]
        records = (self.model.record(position) for position in self.grid.positions())
        return [record for record in records if record is not None]

    def current_record(self) -> ImageRecord | None:
        records = self.selected_records()
        if records:
            return records[0]
        return self.model.record(self.grid.current_position())

    def _update_buttons(self) -> None:
        count = len(self.grid.positions())
        for button in (self.open_button, self.reuse_button, self.copy_button, self.copy_params_button,
                       self.reveal_button):
            button.setEnabled(count == 1)
        self.upscale_button.setEnabled(count > 0)
        self.upscale_button.setText(f"Upscale {count}" if count > 1 else "Upscale")
        self.init_button.setEnabled(count > 0)
        self.init_button.setText(f"Start a batch from {count}…" if count > 1 else "Start from it")
        self.init_button.setToolTip("A batch job that makes its prompts from each of these images (image-to-image)"
                                    if count > 1 else "Use this image as the Generate tab's init image "
                                    "(image-to-image); with several selected, a batch job from each")
        self.delete_button.setEnabled(count > 0)
        self.compare_button.setEnabled(count == 2)
        self.delete_button.setText(f"Delete {count}" if count > 1 else "Delete")
        self.export_button.setText(f"Export {count}…" if count > 1 else "Export…")

    # -- large view -----------------------------------------------------------------------

    def _open_current(self) -> None:
        self.open_viewer(self.grid.current_position())

    def open_viewer(self, position: int) -> None:
        record = self.model.record(position)
        if record is None:
            return
        self.grid.select_position(position)
        self.viewer.show_record(record)
        self.pages.setCurrentWidget(self.viewer)
        self.viewer.view.setFocus()

    def open_path(self, path: str) -> bool:
        """The large view of the gallery image kept at `path` (a result on the Generate tab), the filters and
        search cleared where they hide it; False when the gallery has no image there."""
        image_id = self.gallery.store.id_of_path(path)
        if image_id is None:
            return False
        self.image_added()
        position = self.model.position_of(image_id)
        if position is None:
            self.clear_filters()
            position = self.model.position_of(image_id)
        if position is None:
            return False
        self.open_viewer(position)
        return True

    def clear_filters(self) -> None:
        """Every image, newest first."""
        boxes = (*(box for box, _ in self._facet_boxes()), self.date_filter, self.rating_filter, self.sort)
        for widget in (self.search, *boxes, self.favourite_filter):
            widget.blockSignals(True)
        self.search.clear()
        for box in boxes:
            box.setCurrentIndex(0)
        self.favourite_filter.setChecked(False)
        for widget in (self.search, *boxes, self.favourite_filter):
            widget.blockSignals(False)
        self._search_timer.stop()
        self.apply_filters()

    def close_viewer(self) -> None:
        self.pages.setCurrentIndex(0)
        self.grid.setFocus()

    def step_viewer(self, delta: int) -> None:
        position = self.grid.current_position() + delta
        if 0 <= position < self.model.count():
            self.grid.selectionModel().clearSelection()
            self.open_viewer(position)

    def _record_changed(self, image_id: int) -> None:
        self.model.reload_record(image_id)
        self.reload_facets()

    def toggle_favourite(self) -> None:
        records = self.selected_records()
        value = not all(record.favourite for record in records)
        for record in records:
            self.gallery.store.set_favourite(record.id, value)
            self.model.reload_record(record.id)

    def rate(self, stars: int) -> None:
        for record in self.selected_records():
            self.gallery.store.set_rating(record.id, stars)
            self.model.reload_record(record.id)

    # -- actions --------------------------------------------------------------------------

    def reuse_current(self) -> None:
        record = self.current_record()
        if record is not None:
            self.reuse_requested.emit(record)

    def start_from_current(self) -> None:
        """The image the Generate tab starts from; with several selected (in the grid), a batch job from each."""
        records = self._acted_on()
        if len(records) > 1:
            self.batch_requested.emit([record.path for record in records])
        elif records:
            self.init_image_requested.emit(records[0].path)

    def describe_for_search(self) -> None:
        """Ask for the selected images (none selected: every image not described yet) to be described for the
        search."""
        records = self.selected_records()
        if records:
            ids = [record.id for record in records]
        else:
            ids = self.gallery.store.ids(ImageQuery(described=False))
        if not ids:
            self.notice.setText("Every image is described already: select images to describe them again.")
            return
        self.search_descriptions_requested.emit(ids)

    def describe_current(self) -> None:
        record = self.current_record()
        if record is not None:
            self.describe_requested.emit(record.path)

    def _upscale_button(self) -> QPushButton:
        """"Upscale" with its choices of size, for the grid's row and the large view's."""
        button = QPushButton("Upscale")
        button.setToolTip("Make this image again, larger: its settings, the image enlarged and repainted at the "
                          "Hires fix strength (Generate tab); with several selected, each of them, one job each")
        menu = QMenu(button)
        for scale in UPSCALE_SCALES:
            action = menu.addAction(f"× {scale:g}" + (" (Ctrl+U)" if scale == 2 else ""))
            action.triggered.connect(lambda _checked=False, scale=scale: self.upscale_current(scale))
        menu.addSeparator()
        for scale in ENLARGE_SCALES:
            action = menu.addAction("")
            action.setToolTip("Enlarge the image alone, as A1111's Extras tab does: by the upscaler chosen in the "
                              "Generate tab's Upscaler list, not repainted; the copy keeps its settings")
            action.triggered.connect(lambda _checked=False, scale=scale: self.enlarge_current(scale))
            self._enlarge_actions.append((action, scale))
        menu.setToolTipsVisible(True)
        button.setMenu(menu)
        self.set_enlarger(self._enlarger)
        return button

    def set_enlarger(self, name: str) -> None:
        """Name in the Upscale menus what enlarges an image alone (the Generate tab's Upscaler)."""
        self._enlarger = name
        for action, scale in self._enlarge_actions:
            action.setText(f"× {scale:g}, enlarged only ({name})")

    def _acted_on(self) -> list[ImageRecord]:
        """The images an action of the grid's row takes: those selected (in the grid), else the current one."""
        records = self.selected_records() if self.pages.currentWidget() is not self.viewer else []
        if len(records) > 1:
            return records
        record = self.current_record()
        return [record] if record is not None else []

    def upscale_current(self, scale: float) -> None:
        """Make the image (each of the selected images) again `scale` times larger."""
        for record in self._acted_on():
            self.upscale_requested.emit(record, scale)

    def enlarge_current(self, scale: float) -> None:
        """Enlarge the image (each of the selected images) alone, `scale` times."""
        for record in self._acted_on():
            self.enlarge_requested.emit(record.path, scale)

    def compare_selected(self) -> CompareDialog | None:
        """The two selected images compared (a dialog of its own, left open beside the gallery)."""
        records = self.selected_records()
        if len(records) != 2:
            self.notice.setText("Select two images to compare (Ctrl+click the second).")
            return None
        return self.compare(records[0], records[1])

    def compare_paths(self, first: str, second: str) -> CompareDialog | None:
        """The gallery images kept at `first` and `second` (results on the Generate tab) compared; None where the
        gallery has either no more."""
        ids = [self.gallery.store.id_of_path(path) for path in (first, second)]
        records = [self.gallery.store.get(image_id) for image_id in ids if image_id is not None]
        return self.compare(records[0], records[1]) if len(records) == 2 and all(records) else None

    def compare(self, first: ImageRecord, second: ImageRecord) -> CompareDialog:
        records = [self.gallery.store.get(record.id) or record for record in (first, second)]
        rows = tuple(record_rows(record, None if record.request else _file_metadata(Path(record.path)))
                     for record in records)
        dialog = CompareDialog((records[0], records[1]), rows, self.window())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def copy_image(self) -> None:
        record = self.current_record()
        if record is not None:
            ok = copy_image_to_clipboard(record.path)
            self.status.emit("Image copied" if ok else f"{record.path} could not be read")

    def copy_parameters(self) -> None:
        record = self.current_record()
        if record is not None:
            QGuiApplication.clipboard().setText(parameters_text(record))
            self.status.emit("Parameters copied")

    def reveal(self) -> None:
        record = self.current_record()
        if record is not None:
            reveal_in_file_manager(record.path)

    def delete_selected(self) -> None:
        records = self.selected_records()
        if not records:
            return
        next_position = min(self.model.position_of(r.id) or 0 for r in records)
        result = self.gallery.delete([record.id for record in records])
        ids = self._deleted = result.moved
        self.model.remove_ids(ids)
        self.notice.setText(" ".join(filter(None, (
            f"Moved {len(ids)} image{'s' if len(ids) != 1 else ''} to the trash.", result.problem()))))
        self.undo_button.show()
        if self.model.count():
            position = min(next_position, self.model.count() - 1)
            self.grid.select_position(position)
            if self.pages.currentWidget() is self.viewer:
                self.open_viewer(position)
        elif self.pages.currentWidget() is self.viewer:
            self.close_viewer()

    def undo_delete(self) -> None:
        if not self._deleted:
            return
        result = self.gallery.undo_delete(self._deleted)
        self._deleted = []
        restored = result.moved
        self.notice.setText(" ".join(filter(None, (
            f"Restored {len(restored)} image{'s' if len(restored) != 1 else ''}.", result.problem()))))
        self.undo_button.hide()
        self.model.refresh()

    def open_export(self) -> None:
        from hypersd_desktop.ui.export_dialog import ExportDialog

        if self._export_dialog is not None:  # the last one has closed: its window is modal
            self._export_dialog.deleteLater()
        ids = [record.id for record in self.selected_records()]
        dialog = ExportDialog(self.gallery, self.model.query, ids if len(ids) > 1 else [], self)
        dialog.open()
        self._export_dialog = dialog

    def focus_search(self) -> None:
        self.close_viewer()
        self.search.setFocus()
        self.search.selectAll()

    def choose_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import images from a folder", str(Path.home()))
        if folder:
            self.import_folder(Path(folder))

    def import_folder(self, folder: Path) -> Task | None:
        """Index the images below `folder` in the background (progress in the notice line)."""
        return self.import_files([], [folder])

    def rebuild(self) -> Task | None:
        """Index every image of the images folder again, in the background (after a damaged database)."""
        return self._start_import(lambda report, cancel: self.gallery.rebuild(None, report, cancel))

    def import_files(self, paths: Sequence[Path], folders: Sequence[Path] = ()) -> Task | None:
        """Index image files and the images below `folders` (dropped on the window) in the background, as
        `import_folder` does."""
        def work(report, cancel):
            return self.gallery.import_files([*paths, *(p for folder in folders for p in image_files(folder))],
                                             report, cancel)
        return self._start_import(work)

    def _start_import(self, work) -> Task | None:
        if self._import_task is not None and self._import_task.isRunning():
            self.status.emit("An import is running: let it finish or stop it, then import again.")
            return None
        task = Task(work, self)
        task.progress.connect(self._import_progress)
        task.succeeded.connect(lambda report: self._imported(report))
        task.cancelled.connect(lambda message: self._import_ended(message[:1].upper() + message[1:] + "."))
        task.failed.connect(lambda message: self._import_ended(f"⚠ Import failed: {message}"))
        task.finished.connect(self.stop_import_button.hide)
        self._import_task = task
        self.stop_import_button.show()
        task.start()
        return task

    def _import_progress(self, progress) -> None:
        """Show what has come in about once a second, unless the person is looking further down,
        has chosen images or is in the large view (the grid then keeps its place; the end of the
        import shows all)."""
        self.notice.setText(f"Importing: {describe_items(progress)}")
        now = time.monotonic()
        interval = 1.0 if self.model.count() else 0.25  # the first images of an empty grid sooner
        if (now - self._import_shown >= interval and self.grid.verticalScrollBar().value() == 0
                and not self.grid.selectionModel().hasSelection() and self.pages.currentWidget() is not self.viewer):
            self._import_shown = now
            self.model.refresh()

    def stop_import(self) -> None:
        if self._import_task is not None:
            self._import_task.cancel()

    def _imported(self, report) -> None:
        text = f"Imported {report.added:,} image{'s' if report.added != 1 else ''}"
        if report.skipped:
            text += f", {report.skipped:,} already in the gallery"
        if report.failed:
            text += f", {len(report.failed):,} unreadable"
        self._import_ended(text + ".")
        if report.unprompted:
            self.imported_unprompted.emit(list(report.unprompted), text + ".")

    def images_arrived(self, added: int, text: str, rows_changed: bool = False) -> None:
        """`added` images came in from a watched folder: shown at the top where they are the newest (else, or
        where images moved or left, the grid is read again), `text` in the notice line."""
        self.notice.setText(text)
        if rows_changed or self.model.add_newest() < added:  # some older than the newest shown (saved while the
            self.model.refresh()  # app was closed)
        self.reload_facets()

    def _import_ended(self, text: str) -> None:
        """The images imported so far are in the gallery, also when the import stopped or failed."""
        self.stop_import_button.hide()  # with the words that it ended (the thread's own end comes a moment later)
        self.notice.setText(text)
        self.reload_facets()
        self.model.refresh()
