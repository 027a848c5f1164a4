"""Generate forever (A1111's, on the Generate button's right-click and Ctrl+Shift+Enter): once the images asked
for are done, the Generate tab's settings as they are then are queued again — a new seed each time unless the seed
is locked — so a prompt can be changed while images keep coming. Escape, Cancel or the same action stops it, as
does a failure (one that would fail again each time)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction

from hypersd_desktop.worker.bridge import WorkerBridge


class GenerateForever(QObject):
    """`generate()` queues the Generate tab's request and returns the ids of the jobs it queued (none: it said
    why). `said` gives the status bar's words when it starts and stops."""

    said = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, bridge: WorkerBridge, generate: Callable[[], list[int]], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generate = generate
        self._pending: set[int] = set()  # the jobs of the round under way
        self._why = ""  # what the status bar says when it stops
        self.action = QAction("Generate forever", self, checkable=True)
        self.action.setToolTip("Queue the Generate tab's image again each time the last is done (a new seed unless "
                               "it is locked); Esc or Cancel stops")
        self.action.toggled.connect(self._toggled)
        bridge.finished.connect(self._job_ended)  # methods, not lambdas: Qt drops them with this object
        bridge.batch_finished.connect(self._job_ended)
        bridge.failed.connect(self._failed)

    @property
    def running(self) -> bool:
        return self.action.isChecked()

    def stop(self, why: str = "") -> None:
        if self.running:
            self._why = why
            self.action.setChecked(False)

    def _toggled(self, on: bool) -> None:
        self.running_changed.emit(on)
        if on:
            self.said.emit("Generating forever: a new image each time one is done (Esc or Cancel stops).")
            self._next()
        else:
            self._pending.clear()
            self.said.emit(self._why or "Generate forever stopped.")
            self._why = ""

    def _next(self) -> None:
        if not self.running or self._pending:
            return
        self._pending = set(self._generate())
        if not self._pending:  # nothing could be queued (no prompt, no model): the window said why
            self.stop("Generate forever stopped: the image could not be queued.")

    def _job_ended(self, message) -> None:
        if message.job_id in self._pending:
            self._pending.discard(message.job_id)
            if not self._pending:
                QTimer.singleShot(0, self._next)  # after the window has shown this round's image

    def _failed(self, message) -> None:
        if message.job_id not in self._pending:
            return
        self._pending.discard(message.job_id)
        if message.cancelled:
            self.stop("Generate forever stopped.")
        else:
            self.stop("Generate forever stopped: the image failed (see the message above).")
