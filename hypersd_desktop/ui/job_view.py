"""What the Generate tab shows of the worker's jobs: previews, the finished images, timings,
the queue, the worker's device and memory, and errors; the Qt side of the worker's events."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QItemSelectionModel, QMimeData, QObject, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractButton, QAbstractItemView, QApplication, QLabel, QListView, QListWidget, QListWidgetItem, QProgressBar,
    QPushButton, QSizePolicy,
)

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.settings import Settings
from hypersd_desktop.core.vocab import Device, DType, Tiling
from hypersd_desktop.engine.plot import PLOT_STAGE, PlotSpec
from hypersd_desktop.engine.types import AUTO_BACKEND, BACKEND_TITLES, GenerationRequest, counts_steps
from hypersd_desktop.gallery.metadata import read_request
from hypersd_desktop.ui.banner import Banner
from hypersd_desktop.ui.tasks import format_duration
from hypersd_desktop.worker.bridge import WorkerBridge
from hypersd_desktop.worker.protocol import BatchFinished, ImageReady, JobFailed, JobFinished, JobProgress, JobStarted

RESULTS_KEPT = 40
NOT_SAVED = "not saved"
PNG_ROLE = Qt.ItemDataRole.UserRole + 1  # a result that could not be saved (a full disk): its file's bytes
SEED_ROLE = Qt.ItemDataRole.UserRole + 2  # a result's seed (its file name when it is saved at last)
TILING_ROLE = Qt.ItemDataRole.UserRole + 3  # which way a result tiles (`Tiling`): it is shown repeated
HELD_TIP = "Run the queued jobs, held since an image could not be saved: make room on the disk first"
PAUSED_TIP = "Start the queued jobs again (the queue was paused)"
LAST_RUN_TIP = "Run the jobs that were in the queue when the app last closed (✕ removes one)"
SAY_TIME_LEFT_S = 3.0  # a run's time left is said only when there is this much: a GPU's half second needs none


def _places(plot: PlotSpec) -> dict[str, str]:
    """Each image of a plot by its request (as JSON), and its place as the grid labels it: `Steps: 2, red`."""
    return {cell.request.to_json(): plot.place(cell) for cell in plot.cells()}


def _request_text(png: bytes) -> str | None:
    """The request a finished image's PNG holds, as JSON (None for one it cannot be read from)."""
    try:
        stored = read_request(io.BytesIO(png))
        return GenerationRequest.from_dict(stored).to_json() if isinstance(stored, dict) else None
    except (AppError, OSError, ValueError):
        return None


class StepClock:
    """The time left in a run of denoising steps, at the pace of its steps so far: from its first step on, so that
    loading the model (counted in the elapsed time) does not make the estimate long. A new run (another stage, or
    the steps counting from the start again: a Hires fix's second pass) starts the clock again."""

    def __init__(self) -> None:
        self._first: tuple[str, int, float] | None = None  # the run's stage, first step seen and its elapsed time

    def left_s(self, stage: str, step: int, total: int, elapsed_s: float) -> float | None:
        first = self._first
        if first is None or first[0] != stage or step <= first[1]:
            self._first = (stage, step, elapsed_s)
            return None
        pace = (elapsed_s - first[2]) / (step - first[1])
        return max(pace, 0.0) * max(total - step, 0)


class PreviewLabel(QLabel):
    """Shows the latest preview or image scaled to fit, and scales it again when resized. A seamless image (one
    made with Tiling) is shown repeated (`Tiling.repeats`), so its seams, or that it has none, can be seen."""

    WAITING = "Making the image: the steps show here as it forms"
    image_changed = Signal()  # another image (or step preview) is in view

    def __init__(self, text: str) -> None:
        super().__init__(text, alignment=Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(192, 192)  # room for the form beside it on a laptop's screen
        self.setStyleSheet("QLabel { background: palette(base); border-radius: 6px; }")
        self._pixmap: QPixmap | None = None
        self._tiling = Tiling.OFF
        self._idle_text = text

    def set_idle_text(self, text: str) -> None:
        """What it says before the first image: a hint that follows what is installed."""
        self._idle_text = text
        if self._pixmap is None and self.text() != self.WAITING:
            self.setText(text)

    def set_waiting(self, waiting: bool) -> None:
        """Until the first image, say whether one is being made (the prompt hint would read as idle)."""
        if self._pixmap is None:
            self.setText(self.WAITING if waiting else self._idle_text)

    def show_image(self, pixmap: QPixmap, tiling: str = Tiling.OFF) -> None:
        """Show `pixmap`, repeated as a seamless image of `tiling` is."""
        if pixmap.isNull():
            return
        changed = pixmap is not self._pixmap
        self._pixmap, self._tiling = pixmap, Tiling(tiling)
        self.setToolTip("" if self._tiling == Tiling.OFF else
                        "Shown {} × {} to show its seams: the image is one of them".format(*self._tiling.repeats))
        self._rescale()
        if changed:
            self.image_changed.emit()

    def tiling(self) -> Tiling:
        """How the image in view is repeated."""
        return self._tiling

    def shown(self) -> QPixmap | None:
        """The image in view at full size, or None before the first."""
        return self._pixmap

    def _rescale(self) -> None:
        if self._pixmap is None:
            return
        across, down = self._tiling.repeats
        one = self._pixmap.scaled(QSize(self.width() // across, self.height() // down),
                                  Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        if (across, down) == (1, 1) or one.isNull():
            self.setPixmap(one)
            return
        tiled = QPixmap(one.width() * across, one.height() * down)  # the copies scaled once, laid edge to edge
        painter = QPainter(tiled)
        painter.drawTiledPixmap(tiled.rect(), one)
        painter.end()
        self.setPixmap(tiled)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        QTimer.singleShot(0, self._rescale)


class ResultStrip(QListWidget):
    """The latest images, newest first, each holding its file's path. Clicking one (or moving to it with the
    arrow keys) shows it large in the preview; dragging one out gives its file, so it lands in the init image
    box, a file manager or another app as the file itself."""

    def __init__(self) -> None:
        super().__init__(viewMode=QListWidget.ViewMode.IconMode, flow=QListWidget.Flow.LeftToRight)
        self.setIconSize(QSize(96, 96))
        # each image in a cell of its own, its name in up to two lines under it (a plot's place: `Steps: 4, green,
        # Seed: 8`), cut short with … rather than running into its neighbour's
        line = self.fontMetrics().lineSpacing()
        self.setGridSize(QSize(136, 96 + 2 * line + 8))
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setFixedHeight(self.gridSize().height() + self.horizontalScrollBar().sizeHint().height()
                            + 2 * self.frameWidth() + 2)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)  # the icon view's default lets icons be dragged about in it
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)

    @staticmethod
    def path_of(item: QListWidgetItem) -> str:
        """The result's file; "" for one that could not be saved (see `unsaved_png`)."""
        return item.data(Qt.ItemDataRole.UserRole)

    @staticmethod
    def unsaved_png(item: QListWidgetItem) -> bytes | None:
        """The file a result would have been, while it is not saved anywhere; else None."""
        return item.data(PNG_ROLE) if not item.data(Qt.ItemDataRole.UserRole) else None

    @staticmethod
    def seed_of(item: QListWidgetItem) -> int:
        return item.data(SEED_ROLE)

    @staticmethod
    def tiling_of(item: QListWidgetItem) -> str:
        """Which way the result tiles ("off" for most)."""
        return item.data(TILING_ROLE) or Tiling.OFF.value

    @staticmethod
    def mark_saved(item: QListWidgetItem, path: str) -> None:
        """A result that was not saved is a file at `path` now."""
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setData(PNG_ROLE, None)
        item.setText(f"seed {ResultStrip.seed_of(item)}")
        item.setToolTip(path)

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt API
        return ["text/uri-list", "image/png"]

    def mimeData(self, items) -> QMimeData:  # noqa: N802 - Qt API
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(self.path_of(item)) for item in items if self.path_of(item)])
        unsaved = [png for png in map(self.unsaved_png, items) if png]
        if unsaved:  # not a file yet: the picture itself, as a copy would give it
            mime.setData("image/png", unsaved[0])
        return mime


@dataclass
class JobWidgets:
    preview: PreviewLabel
    timing: QLabel
    cancel_button: QPushButton
    results: QListWidget
    queue: QListWidget
    warnings: Banner
    errors: Banner
    device_label: QLabel
    memory_label: QLabel
    progress: QProgressBar  # beside the timing while a job runs: moving while the model loads, then its steps
    resume: QAbstractButton  # under the queue while its jobs wait (held, paused, from the last run)
    pause: QAbstractButton  # beside it while the queue runs


class JobView(QObject):
    """Turns the bridge's signals into what `widgets` show; `active_job` is the running job's id. Jobs for
    which `skip(job_id)` is true belong to another view (the Draw tab's live jobs) and are left alone."""

    image_saved = Signal(str)  # path of a finished image

    def __init__(self, bridge: WorkerBridge, widgets: JobWidgets, settings: Callable[[], Settings],
                 parent: QObject | None = None, skip: Callable[[int], bool] = lambda _job_id: False) -> None:
        super().__init__(parent)
        self.widgets = widgets
        self.skip = skip
        self.settings = settings
        self.active_job: int | None = None
        self._load_s = 0.0  # seconds the running job spent loading its model (from its first image)
        self._clock = StepClock()  # the running job's time left
        self._unsaved_jobs: dict[int, int] = {}  # jobs that made images the disk could not take: how many
        self._waiting = 0  # queued jobs that save, as the queue was last shown
        self._available = ""  # the worker's devices
        self.device = ""  # where generation runs, once the worker has said
        self._client = bridge.client  # its `running` job, with the request
        self._tiling = Tiling.OFF  # which way the running job's images tile
        self._plot_images: int | None = None  # images of the running plot still to come before its grid
        self._plot_places: dict[str, str] = {}  # the running plot's images' requests (as JSON) and their places
        bridge.ready.connect(self._worker_ready)
        bridge.unavailable.connect(self._worker_unavailable)
        # methods, not lambdas, on the bridge's signals: Qt drops those connections with this view, where the bridge
        # (the app's, which outlives the window) would call a lambda into deleted widgets
        bridge.restarted.connect(self._worker_restarted)
        bridge.still_starting.connect(self._worker_still_starting)
        self._handlers = {JobStarted: self._job_started, JobProgress: self._job_progress,
                          ImageReady: self._image_ready, JobFinished: self._job_finished,
                          BatchFinished: self._batch_finished, JobFailed: self._job_failed}
        for signal in (bridge.started, bridge.progress, bridge.image_ready, bridge.finished, bridge.batch_finished,
                       bridge.failed):
            signal.connect(self._job_event)
        bridge.finished.connect(self._ran_on)  # any job's, the Draw tab's too: the status bar says where they ran
        bridge.queue_changed.connect(self._queue_changed)

    def _job_event(self, message) -> None:
        if not self.skip(message.job_id):
            self._handlers[type(message)](message)

    def _worker_restarted(self, _message) -> None:
        self.widgets.device_label.setText("Generation worker restarted")

    def _worker_still_starting(self, message) -> None:
        self.widgets.device_label.setText(
            f"Starting the generation worker… {format_duration(message.seconds)} (a first start can take minutes)")

    def _worker_ready(self, message) -> None:
        settings = self.settings()
        device = settings.device if settings.device != Device.AUTO else message.default_device
        backend = settings.backend if settings.backend != AUTO_BACKEND else message.default_backend
        if settings.dtype != DType.AUTO:
            precision = settings.dtype
        else:
            precision = DType.FP16 if device != Device.CPU else DType.FP32
        self._available = ", ".join(message.devices)
        self.device = device
        self._show_device(device, precision, backend)

    def _show_device(self, device: str, precision: str, backend: str) -> None:
        """The status bar's device label: where and with what generation runs."""
        engine = f" · {BACKEND_TITLES.get(backend, backend)}" if backend else ""
        self.widgets.device_label.setText(f"Device: {device.upper()} · {precision}{engine} · available: {self._available}")

    def _worker_unavailable(self, message) -> None:
        self.widgets.device_label.setText("No generation worker")
        self.widgets.errors.show_messages([message.message])

    def _job_started(self, message) -> None:
        self.active_job = message.job_id
        job = self._client.running
        request = job.request if job is not None and job.job_id == message.job_id else None
        self._tiling = request.tiling if request is not None and job.batch is job.plot is None else Tiling.OFF
        # a plot's images, then its grid: the image after the last of them is the grid
        plot = job.plot if job is not None and job.job_id == message.job_id else None
        self._plot_images = math.prod(plot.shape()) if plot is not None else None
        self._plot_places = _places(plot) if plot is not None else {}
        self.widgets.cancel_button.setEnabled(True)
        self.widgets.timing.setText("Loading the model…")
        self._clock = StepClock()
        self.widgets.preview.set_waiting(True)
        self._show_progress(0, 0)  # no steps yet: a moving bar

    def _job_progress(self, message) -> None:
        if message.preview:
            pixmap = QPixmap()
            pixmap.loadFromData(message.preview)
            self.widgets.preview.show_image(pixmap, self._tiling)
        self._show_progress(message.step, message.total_steps)
        left = self._clock.left_s(message.stage, message.step, message.total_steps, message.elapsed_s)
        said_left = f" · about {format_duration(left)} left" if left is not None and left >= SAY_TIME_LEFT_S else ""
        if counts_steps(message.stage):  # a second pass (a tile's, a face's), step by step
            self.widgets.timing.setText(f"{message.stage} · step {message.step}/{message.total_steps} · "
                                        f"{message.elapsed_s:.2f} s{said_left}")
        elif message.stage:
            done = round(100 * message.step / max(message.total_steps, 1))
            left = said_left if message.stage == PLOT_STAGE else ""  # a plot's images: the time the rest take
            # a long stage wraps in a narrow window: the seconds stay with their unit (a no-break space)
            self.widgets.timing.setText(f"{message.stage} · {done}% · {message.elapsed_s:.0f}\u00a0s{left}")
        else:
            self.widgets.timing.setText(f"Step {message.step}/{message.total_steps} · {message.elapsed_s:.2f} s"
                                        f"{said_left}")

    def _image_ready(self, message) -> None:
        self._load_s = message.load_s
        pixmap = QPixmap()
        pixmap.loadFromData(message.png, "PNG")
        tiling = self._tiling if message.job_id == self.active_job else Tiling.OFF
        self.widgets.preview.show_image(pixmap, tiling)
        grid = self._plot_images is not None and message.job_id == self.active_job and self._plot_images == 0
        if self._plot_images and message.job_id == self.active_job:
            self._plot_images -= 1
        place = self._plot_places.get(_request_text(message.png)) if self._plot_places and not grid else None
        if not message.path:  # made, but the disk was full: kept here until it is saved elsewhere
            self._unsaved_jobs[message.job_id] = self._unsaved_jobs.get(message.job_id, 0) + 1
        self.add_result(pixmap, message.png, message.path, message.seed, tiling,
                        "X/Y/Z plot" if grid else place)

    def add_result(self, pixmap: QPixmap, png: bytes, path: str, seed: int, tiling: str = Tiling.OFF,
                   name: str | None = None) -> None:
        """Put an image first in the strip, named `name` (else by its seed): saved at `path`, or (no path) not saved
        and held as its file's bytes `png` until it is saved elsewhere. `image_saved` says a saved one."""
        results = self.widgets.results
        item = QListWidgetItem(QIcon(pixmap), name or f"seed {seed}")
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setData(SEED_ROLE, seed)
        item.setData(TILING_ROLE, Tiling(tiling).value)
        item.setToolTip(path)
        if not path:
            item.setData(PNG_ROLE, png)
            item.setText(f"seed {seed} · {NOT_SAVED}")
            item.setToolTip("Not saved: right-click it and choose Save as… to keep it")
        results.insertItem(0, item)
        saved_rows = [row for row in range(results.count()) if ResultStrip.unsaved_png(results.item(row)) is None]
        while results.count() > RESULTS_KEPT and saved_rows:  # the oldest saved ones go; a not saved one stays
            results.takeItem(saved_rows.pop())
        if path:
            self.image_saved.emit(path)

    def _show_progress(self, done: int, total: int) -> None:
        bar = self.widgets.progress
        bar.setRange(0, max(total, 0))
        bar.setValue(min(max(done, 0), max(total, 0)))
        bar.show()

    def _job_ended(self, job_id: int) -> None:
        if job_id == self.active_job:
            self.active_job = None
            self.widgets.cancel_button.setEnabled(False)
            self.widgets.progress.hide()

    def _tell_if_away(self) -> None:
        """A job ended while the window is in the background (a long CPU run, a batch): the taskbar entry
        flashes (the dock icon bounces on macOS) until the window is brought back."""
        window = self.widgets.preview.window()
        if window.isVisible() and not window.isActiveWindow():
            QApplication.alert(window)

    def _job_finished(self, message) -> None:
        self._job_ended(message.job_id)
        text = f"Done in {message.seconds:.2f} s on {message.device.upper()} ({message.dtype})"
        if self._load_s >= 0.05:  # the first image of a model: say what the next ones will not cost
            text += f", {self._load_s:.1f} s of it loading the model"
        self._load_s = 0.0
        self.widgets.timing.setText(text)
        self._tell_if_away()
        self.widgets.warnings.show_messages(list(message.warnings))
        if message.memory_bytes is not None:
            where = "GPU memory" if Device(message.device).is_gpu else "Worker memory"
            self.widgets.memory_label.setText(f"{where} in use: {message.memory_bytes / 2**30:.2f} GiB")
        else:  # not said (DirectML): no figure of an earlier job's device beside this job's
            self.widgets.memory_label.setText("")

    def _ran_on(self, message) -> None:
        if message.backend:
            self._show_device(message.device, message.dtype, message.backend)

    def _batch_finished(self, message) -> None:
        self._job_ended(message.job_id)
        self.widgets.timing.setText(f"Batch done in {message.seconds:.1f} s: {message.generated} generated, "
                                    f"{message.skipped} already done")
        self._tell_if_away()

    def _job_failed(self, message) -> None:
        self._job_ended(message.job_id)
        self.widgets.preview.set_waiting(False)
        if message.cancelled:
            self.widgets.timing.setText(message.message)
        else:
            unsaved = self._unsaved_jobs.pop(message.job_id, 0)
            it, is_ = ("they", "are") if unsaved > 1 else ("it", "is")
            kept = (f" {it.capitalize()} {is_} kept in Latest results, marked \"not saved\", until you save "
                    f"{'them' if unsaved > 1 else 'it'} (right-click, then Save as…)." if unsaved else "")
            waiting = ""
            if message.not_saved and self._waiting:
                jobs = f"{self._waiting} queued job{'s wait' if self._waiting > 1 else ' waits'}"
                waiting = f" The {jobs}: press Resume queue once there is room."
            self.widgets.errors.show_messages([message.message + kept + waiting])
            self.widgets.timing.setText("Made, not saved" if unsaved else "Failed")
            self._tell_if_away()

    def _queue_changed(self, message) -> None:
        queue = self.widgets.queue
        chosen = {item.data(Qt.ItemDataRole.UserRole) for item in queue.selectedItems()} - {0}  # kept by job id
        current = queue.currentItem().data(Qt.ItemDataRole.UserRole) if queue.currentItem() is not None else None
        queue.clear()
        jobs = ([(message.running, "running")] if message.running else []) + [(j, "queued") for j in message.queued]
        self._waiting = sum(job.saves for job in message.queued)
        last_run = any(job.waiting for job in message.queued)
        resume = self.widgets.resume
        resume.setVisible(message.held and self._waiting > 0 or last_run or message.paused)
        resume.setToolTip(PAUSED_TIP if message.paused else HELD_TIP if message.held and self._waiting
                          else LAST_RUN_TIP)
        self.widgets.pause.setVisible(not message.paused)
        if message.paused and self._waiting and message.running is None:
            self.widgets.timing.setText(f"Queue paused · {self._waiting} waiting: Resume queue starts "
                                        f"{'them' if self._waiting > 1 else 'it'}")
        for job, state in jobs:
            queued = state == "queued"
            if queued and job.waiting:
                state = "from last time"
            elif queued and (message.held or message.paused) and job.saves:
                state = "paused" if message.paused else "held"  # moved and removed as any queued job
            item = QListWidgetItem(f"#{job.job_id} {state}: {job.describe()}")
            item.setData(Qt.ItemDataRole.UserRole, job.job_id if queued else 0)  # 0: running
            queue.addItem(item)
            if queued and job.job_id == current:  # ▲ and ▼ go on moving it
                queue.setCurrentItem(item, QItemSelectionModel.SelectionFlag.NoUpdate)
            item.setSelected(queued and job.job_id in chosen)
