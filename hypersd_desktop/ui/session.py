"""The work in the window that is not an image yet, kept across a restart or a crash.

The Generate tab's prompts and prompt styles, seed (when locked), init image with its mask and the ControlNet
picture, the Draw tab's drawing and prompt, the queue's jobs that make images to keep (the running one
too: it is made again) and the prompts made (History) are written a second after they change and when the window
closes:
`<data>/session.json`, and `<data>/drawing.png` for the drawing. The app brings them back when it starts,
so quitting by mistake, a power cut or a crash loses at most the last second. The pictures themselves are
in the input store already (`core/images.py`); the session names them by their sha256. The queued jobs
come back waiting, for the person to run (Resume queue) or remove, not started behind their back. Which model,
recipe, steps and size were chosen is kept in the settings (`last_model` …), as before.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, QTimer

from hypersd_desktop.core.files import write_atomic
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.ui.sketch_canvas import drawing_png
from hypersd_desktop.worker.client import kept_data, kept_jobs

SAVE_DELAY_MS = 1000  # after the last change: typing writes the file once a pause, not once a key
SESSION_FILE, DRAWING_FILE = "session.json", "drawing.png"

log = logging.getLogger(__name__)


def session_paths(paths: AppPaths) -> tuple[Path, Path]:
    return paths.data / SESSION_FILE, paths.data / DRAWING_FILE


class SessionKeeper(QObject):
    """Writes the window's unfinished work when it changes and brings it back (`restore`) at start."""

    def __init__(self, window, paths: AppPaths) -> None:
        super().__init__(window)
        self.window = window
        self.session_file, self.drawing_file = session_paths(paths)
        self._drawing_changed = False
        self.notice = ""  # what the window says of the last run's queue, once it has started
        self._kept: dict[int, object] = {}  # the queued jobs' data, by job id, as last written
        self._timer = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS)
        self._timer.timeout.connect(self.save)
        # the drawing is encoded off the GUI thread (SDXL's 1024²: 15-30 ms), and the session written there (a long
        # queue is a megabyte of JSON)
        self._writer = QThreadPool(self)
        self._writer.setMaxThreadCount(1)  # one at a time, in order: the newest drawing is written last

    def watch(self) -> None:
        """Save a second after any change of what the session keeps."""
        window, draw = self.window, self.window.draw
        for signal in (window.prompt.textChanged, window.negative.textChanged, window.init_image.changed,
                       window.control_stack.changed, window.reference_stack.changed, window.prompt_styles.changed,
                       draw.prompt.textChanged, draw.prompt_styles.changed,
                       draw.steps.valueChanged, draw.scale.valueChanged):
            signal.connect(self._changed)
        for signal in (window.seed.valueChanged, window.seed_lock.toggled, draw.seed.valueChanged,
                       window.tiling.currentIndexChanged):
            signal.connect(self._value_changed)
        draw.canvas.changed.connect(self._drawing_done)
        # a method, not a lambda: Qt drops the connection with this object, where the bridge, which outlives the
        # window, would call a lambda after its timer was deleted
        window.bridge.queue_changed.connect(self._value_changed)

    def _changed(self) -> None:
        self._timer.start()

    def _value_changed(self, _value: object) -> None:
        self._timer.start()

    def _drawing_done(self, final: bool) -> None:
        if final:  # a stroke ended (or an undo, clear, import): not on every live update mid-stroke
            self._drawing_changed = True
            self._timer.start()

    def state(self) -> dict:
        window = self.window
        return {
            "prompt": window.prompt.toPlainText(), "negative": window.negative.toPlainText(),
            "styles": window.prompt_styles.chosen_names(),
            "seed": window.seed.value() if window.seed_lock.isChecked() else None,
            "init_image": window.init_image.state(), "control": window.control_image.state(),
            "more_controls": window.control_stack.state()[1:],  # the ControlNets added under the first
            "ip_adapter": window.ip_adapter.state(), "more_ip_adapters": window.reference_stack.state()[1:],
            "draw": window.draw.state(), "tiling": window.tiling.currentData(),
            "queue": self._queue_data(), "history": window.history.prompts,
            "negative_history": window.negative_history.prompts,
        }

    def _queue_data(self) -> list:
        """The queue's jobs to keep, each encoded once (a batch count of 1,000 queues 1,000 jobs: 30 ms to encode)."""
        jobs = [job for job in self.window.bridge.client.pending() if job.kept]
        self._kept = {job.job_id: self._kept.get(job.job_id) or kept_data([job])[0] for job in jobs}
        return list(self._kept.values())

    def save(self, wait: bool = False) -> None:
        """Write the session now; with `wait` (the window closing) the drawing is on disk when this returns."""
        self._timer.stop()
        if self._drawing_changed:
            self._drawing_changed = False
            canvas = self.window.draw.canvas
            drawing = None if canvas.is_blank() else canvas.snapshot()
            self._writer.start(lambda: self._write_drawing(drawing))
        state = self.state()  # read here, from the widgets; written in order on the writer's thread
        self._writer.start(lambda: self._write(lambda: write_atomic(self.session_file, json.dumps(state, indent=1))))
        if wait:
            self._writer.waitForDone()

    def _write_drawing(self, drawing) -> None:
        if drawing is None:
            self._write(lambda: self.drawing_file.unlink(missing_ok=True))
        else:
            data = drawing_png(drawing)
            self._write(lambda: write_atomic(self.drawing_file, data))

    @staticmethod
    def _write(write) -> None:
        try:
            write()
        except OSError as error:  # a full or read-only disk: the work stays in the window, and a line in the log
            log.warning("The session could not be saved: %s", error)

    def restore(self) -> None:
        """Bring back what `save` wrote; a missing or damaged session file leaves the window as it starts."""
        try:
            state = json.loads(self.session_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(state, dict):
            return
        window = self.window
        self._queue_again(state.get("queue"))  # first: what cannot be read below does not cost the queue
        window.history.restore(state.get("history"))
        window.negative_history.restore(state.get("negative_history"))
        try:
            window.prompt.setPlainText(str(state.get("prompt") or ""))
            window.negative.setPlainText(str(state.get("negative") or ""))
            if isinstance(state.get("styles"), list):
                window.prompt_styles.choose([str(name) for name in state["styles"]])
            if isinstance(state.get("seed"), int) and not isinstance(state.get("seed"), bool):
                window.seed.setValue(state["seed"])
                window.seed_lock.setChecked(True)
            window.set_tiling(str(state.get("tiling") or "off"))
            for stack, name in ((window.control_stack, "control"), (window.reference_stack, "ip_adapter")):
                if isinstance(state.get(name), dict):  # the first box's, then those added under it
                    more = state.get(f"more_{name}s")
                    stack.restore([state[name], *(more if isinstance(more, list) else ())])
            if isinstance(state.get("init_image"), dict):
                window.init_image.restore(state["init_image"])
            if isinstance(state.get("draw"), dict):
                try:
                    drawing = self.drawing_file.read_bytes()
                except OSError:
                    drawing = None
                window.draw.restore(state["draw"], drawing)
        except (TypeError, ValueError, AttributeError) as error:  # a session file edited by hand
            log.warning("Part of the last session could not be restored: %s", error)
        self._timer.stop()  # restoring is no change to write back
        self._drawing_changed = False

    def _queue_again(self, data: object) -> None:
        jobs, damaged = kept_jobs(data)
        if jobs:
            self.window.bridge.client.queue_again(jobs)
            them = "them" if len(jobs) > 1 else "it"
            self.notice = (f"{len(jobs)} job{'s were' if len(jobs) > 1 else ' was'} in the queue when the app closed; "
                           f"{'they wait' if len(jobs) > 1 else 'it waits'} there: Resume queue runs {them}, ✕ "
                           f"removes one.")
        if damaged:
            log.warning("%d queued job(s) of the last session could not be read and were left out", damaged)
