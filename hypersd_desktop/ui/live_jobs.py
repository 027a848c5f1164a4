"""Live generation: a new image for each change of a drawing, with at most one job running.

A change while a job runs waits; a newer change replaces the waiting one, so however fast the pen
moves, one job runs and one waits, and the waiting one is always the newest drawing. An image is
shown only if it is newer than the one on screen. Paused, changes are remembered and nothing runs
until the pause ends; then the newest runs. The jobs save nothing: `Keep` saves the shown image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.files import why_not_written
from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.worker.bridge import WorkerBridge
from hypersd_desktop.worker.service import output_path


@dataclass(frozen=True)
class LiveImage:
    """A finished live image: `png` is the file that Keep writes (with its request), `request` what ran."""

    serial: int
    png: bytes
    request: GenerationRequest


def write_kept(image: LiveImage, bridge: WorkerBridge, gallery: Gallery, folder: Path) -> Path:
    """Keep a live image: its file (exactly the image shown, with its request) written into `folder` and added to
    the gallery, and the input images it names kept for reuse. `AppError` says why it could not be."""
    path = output_path(folder, image.request.seed)
    try:
        for digest in image.request.input_images():
            bridge.inputs.keep(digest)
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image.png)
        gallery.add_file(path)
    except OSError as error:
        raise AppError(why_not_written(error, folder)) from None
    return path


class LiveJobs(QObject):
    shown = Signal(object)  # LiveImage: newer than any shown before
    state_changed = Signal(str)  # "idle", "running", "waiting" (running, and a newer change waits), "paused"
    failed = Signal(str)

    def __init__(self, bridge: WorkerBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.paused = False
        self.submitted = 0  # jobs sent to the worker, for the status line and the tests
        self._serial = 0
        self._waiting: tuple[int, GenerationRequest] | None = None
        self._running: int | None = None  # job id
        self._jobs: dict[int, tuple[int, GenerationRequest]] = {}  # unfinished job id -> (serial, request)
        self._ids: set[int] = set()  # every live job's id, finished ones too (their last events may still come)
        self._shown_serial = 0
        self._load_s: dict[int, float] = {}  # a shown image's job id -> its time loading the model
        self.made_in = ""  # how long the newest image shown took ("0.08 s"), once its job has finished
        bridge.image_ready.connect(self._image_ready)
        bridge.finished.connect(self._ended)
        bridge.failed.connect(self._ended)

    def owns(self, job_id: int) -> bool:
        """Whether `job_id` is a live job (the Generate tab's views leave those alone)."""
        return job_id in self._ids

    @property
    def state(self) -> str:
        if self.paused:
            return "paused"
        if self._running is None:
            return "idle"
        return "waiting" if self._waiting is not None else "running"

    def request(self, request: GenerationRequest) -> None:
        """Ask for an image of `request`: now if nothing runs, else after the running job, unless a newer one comes."""
        self._serial += 1
        self._waiting = (self._serial, request)
        self._pump()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._pump()

    def _pump(self) -> None:
        if not self.paused and self._running is None and self._waiting is not None:
            serial, request = self._waiting
            self._waiting = None
            # The bridge delivers the job's events later, on this thread: none can arrive before this returns.
            self._running = self.bridge.client.submit(request, save=False)
            self._jobs[self._running] = (serial, request)
            self._ids.add(self._running)
            self.submitted += 1
        self.state_changed.emit(self.state)

    def _image_ready(self, message) -> None:
        entry = self._jobs.get(message.job_id)
        if entry is None or entry[0] <= self._shown_serial:
            return
        self._shown_serial = entry[0]
        self._load_s[message.job_id] = message.load_s
        self.made_in = ""
        self.shown.emit(LiveImage(entry[0], message.png, entry[1]))

    def _ended(self, message) -> None:
        if message.job_id not in self._jobs:
            return
        self._jobs.pop(message.job_id)
        if message.job_id == self._running:
            self._running = None
        if not getattr(message, "cancelled", True):  # a failure, not a cancel or replacement
            self.failed.emit(message.message)
        load_s = self._load_s.pop(message.job_id, None)
        if load_s is not None and hasattr(message, "seconds"):  # the newest image shown: its job took this long
            self.made_in = took(message.seconds, load_s)
        self._pump()


def took(seconds: float, load_s: float) -> str:
    """How long a live image took: "0.08 s", or with the model's loading ("3.1 s, 2.9 s of it loading the model")."""
    if load_s < 0.05:
        return f"{seconds:.2f} s"
    return f"{seconds:.1f} s, {load_s:.1f} s of it loading the model"
