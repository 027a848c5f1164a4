"""The Generate tab's Live mode: an image of the prompt and settings as they are, made again whenever they change.

While Live is on, the Generate tab's request is read a few times a second; once it has held still for one reading
(typing paused, a setting chosen), an image of it is asked for. `LiveJobs` runs one job at a time and drops the
stale ones, so a fast typist sees the newest words, not each keystroke. Live images are shown in the preview and
saved nowhere: Keep saves the one shown to the gallery and the strip (made again with the full VAE where it was
decoded with TAESD). Generate still queues images to keep, as without Live.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QPushButton

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.vocab import Decoder
from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.ui.live_jobs import LiveImage, LiveJobs, write_kept
from hypersd_desktop.worker.bridge import WorkerBridge

READ_EVERY_MS = 250  # how often the settings are read: an image follows a pause of one to two readings
KEEP_KEYS = "Ctrl+K"
LIVE_KEYS = "Ctrl+L"


class LivePrompt(QObject):
    """Live images of `request_now()` (None while no image can be made: no model, no prompt). `shown` gives each
    newer image, for the preview; Keep writes the one shown into `images()` and the gallery (`kept` says where),
    or hands an image decoded with TAESD to `keep_again`, to queue it as a saved job decoded with the full VAE.
    `say(text)` tells the person what Live is doing, `failed(text)` what went wrong."""

    kept = Signal(str)  # the path of a kept image, written and in the gallery
    shown = Signal(object)  # LiveImage: the newest live image, now in the preview

    def __init__(self, bridge: WorkerBridge, gallery: Gallery, images: Callable[[], Path],
                 request_now: Callable[[], GenerationRequest | None], keep_again: Callable[[GenerationRequest], None],
                 say: Callable[[str], None], failed: Callable[[str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.gallery = gallery
        self.images = images
        self.request_now = request_now
        self.keep_again = keep_again
        self.say = say
        self.live = LiveJobs(bridge, self)
        self.image: LiveImage | None = None  # the live image in the preview, until it is kept
        self.button = QPushButton("Live", checkable=True)
        self.button.setToolTip(f"Make an image as you type and change settings, saved nowhere; Keep ({KEEP_KEYS}) "
                               f"saves the one shown ({LIVE_KEYS} turns Live on and off)")
        self.keep_button = QPushButton("Keep", enabled=False, visible=False)
        self.keep_button.setToolTip(f"Save the live image shown to the gallery ({KEEP_KEYS})")
        self._timer = QTimer(self, interval=READ_EVERY_MS)
        self._timer.timeout.connect(self.read)
        self._read: str | None = None  # the request at the last reading (as JSON)
        self._asked: str | None = None  # the request last asked for
        self.button.toggled.connect(self._toggled)
        self.keep_button.clicked.connect(self.keep)
        self.live.shown.connect(self._shown)
        self.live.failed.connect(failed)
        self.live.state_changed.connect(self._state_changed)

    @property
    def on(self) -> bool:
        return self.button.isChecked()

    def owns(self, job_id: int) -> bool:
        """Whether `job_id` is a live job (the Generate tab's other views leave those alone)."""
        return self.live.owns(job_id)

    def _toggled(self, on: bool) -> None:
        self.button.setText("Live: on" if on else "Live")
        unkept = self.image is not None and self.keep_button.isEnabled()
        self.keep_button.setVisible(on or unkept)  # Live turned off at an image worth keeping: it still can be
        self._read = self._asked = None
        if on:
            self._timer.start()
            self.read()
        else:
            self._timer.stop()
            self.say(f"Live is off: Keep ({KEEP_KEYS}) still saves the live image shown" if unkept else "")

    def let_go(self) -> None:
        """Another image is in the preview: the live image is no longer the one Keep would save."""
        self.image = None
        self.keep_button.setEnabled(False)
        self.keep_button.setVisible(self.on)

    def read(self) -> None:
        """Read the settings; ask for an image of them once they are as at the last reading and not yet asked for."""
        request = self.request_now()
        if request is None:
            self._read = None
            return
        key = request.to_json()
        if key != self._read:  # still changing: wait for them to hold still
            self._read = key
            return
        if key != self._asked:
            self._asked = key
            self.live.request(request)

    def _shown(self, image: LiveImage) -> None:
        if not self.on:
            return
        self.image = image
        self.keep_button.setEnabled(True)
        self.shown.emit(image)

    def _state_changed(self, state: str) -> None:
        if not self.on:
            return
        made = f" (the last took {self.live.made_in})" if self.live.made_in else ""
        shown = f"Live image made in {self.live.made_in}" if self.live.made_in else "Live image"
        self.say({"running": f"Live: making the image…{made}", "waiting": f"Live: making the image; newer settings "
                  f"wait{made}", "idle": f"{shown}, saved nowhere: Keep ({KEEP_KEYS}) saves it" if self.image else ""}
                 .get(state, ""))

    def keep(self) -> Path | None:
        """Save the live image shown, with its settings, to the gallery; None where it is made again with the full
        VAE first (it was decoded with TAESD: it comes back as any generated image) or cannot be saved."""
        image = self.image
        if image is None:
            return None
        self.keep_button.setEnabled(False)  # kept: the same image once
        if image.request.decoder == Decoder.TAESD:
            self.keep_again(image.request.replace(decoder=Decoder.VAE))
            self.say("Keeping: making it again with the full VAE…")
            return None
        try:
            path = write_kept(image, self.bridge, self.gallery, self.images())
        except AppError as error:
            self.say(f"The image could not be kept: {str(error).rstrip('.')}.")
            self.keep_button.setEnabled(True)
            return None
        self.say(f"Kept: {path.name}")
        self.kept.emit(str(path))
        return path
