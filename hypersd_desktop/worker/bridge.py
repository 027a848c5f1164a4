"""The Qt side of the worker: protocol messages become signals on the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

from hypersd_desktop.core.images import InputImages
from hypersd_desktop.worker.client import (
    QueueChanged, WorkerClient, WorkerRestarted, WorkerStarting, WorkerUnavailable,
)
from hypersd_desktop.worker.protocol import (
    BatchFinished, BatchProgress, Described, EngineNotice, ImageReady, JobFailed, JobFinished, JobProgress, JobStarted,
    MapReady, WorkerReady,
)


class WorkerBridge(QObject):
    """Owns the `WorkerClient`; its signals are always delivered on the thread the bridge lives in."""

    ready = Signal(object)  # WorkerReady
    started = Signal(object)  # JobStarted
    progress = Signal(object)  # JobProgress
    image_ready = Signal(object)  # ImageReady
    finished = Signal(object)  # JobFinished
    failed = Signal(object)  # JobFailed
    queue_changed = Signal(object)  # QueueChanged
    restarted = Signal(object)  # WorkerRestarted
    unavailable = Signal(object)  # WorkerUnavailable
    still_starting = Signal(object)  # WorkerStarting
    batch_progress = Signal(object)  # BatchProgress
    batch_finished = Signal(object)  # BatchFinished
    notice = Signal(object)  # EngineNotice
    map_ready = Signal(object)  # MapReady
    described = Signal(object)  # Described
    _incoming = Signal(object)

    def __init__(self, home: str | None = None, parent: QObject | None = None, cancel_timeout: float = 5.0,
                 command: list[str] | None = None, inputs: InputImages | None = None) -> None:
        super().__init__(parent)
        self._incoming.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)
        self.client = WorkerClient(self._incoming.emit, home=home, cancel_timeout=cancel_timeout, command=command,
                                   inputs=inputs)
        self._routes = {
            WorkerReady: self.ready, JobStarted: self.started, JobProgress: self.progress, ImageReady: self.image_ready,
            JobFinished: self.finished, JobFailed: self.failed, QueueChanged: self.queue_changed,
            WorkerRestarted: self.restarted, WorkerUnavailable: self.unavailable, WorkerStarting: self.still_starting,
            BatchProgress: self.batch_progress, BatchFinished: self.batch_finished, EngineNotice: self.notice,
            MapReady: self.map_ready, Described: self.described,
        }

    @property
    def inputs(self) -> InputImages:
        """The input images jobs name: the window adds them here, and the client sends them to the worker."""
        return self.client.inputs

    def start(self) -> None:
        self.client.start()

    def shutdown(self) -> None:
        self.client.shutdown()

    def restart(self, command: list[str]) -> None:
        """Stop the worker and start `command` instead (another interpreter chosen in Settings, a runtime installed);
        the jobs not done are made by the new one."""
        self.client = self.client.successor(command)  # with the jobs the old one had not done
        self.client.start()

    def _dispatch(self, message: object) -> None:
        signal = self._routes.get(type(message))
        if signal is not None:
            signal.emit(message)
