"""Control maps the window asks the worker for: a photo's depth map, made by a depth-estimation model, or the pose
of the people in it, made by a pose model and a person detector; they need torch and so run in the worker like
generation, queued with the images.

One map per picture and model is asked for; a map that came back is added to the input store and named by
its digest, so a request names the map itself (as it names a Canny edge map) and reuse needs no such model.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from hypersd_desktop.worker.bridge import WorkerBridge
from hypersd_desktop.worker.protocol import ControlMap


class ControlMaps(QObject):
    made = Signal(object, str)  # the ControlMap asked for, the digest of the map in the input store
    failed = Signal(object, str)  # the ControlMap asked for, what went wrong and what to do

    def __init__(self, bridge: WorkerBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self._jobs: dict[int, ControlMap] = {}  # unfinished job id -> the map it makes
        self._ids: set[int] = set()  # every map job's id, finished ones too (their last events may still come)
        bridge.map_ready.connect(self._ready)
        bridge.failed.connect(self._failed)
        bridge.finished.connect(lambda message: self._jobs.pop(message.job_id, None))

    def owns(self, job_id: int) -> bool:
        """Whether `job_id` makes a map (the Generate tab's job views leave those alone)."""
        return job_id in self._ids

    def request(self, control_map: ControlMap) -> None:
        """Ask for `control_map` unless it is being made; `made` or `failed` answers."""
        if control_map in self._jobs.values():
            return
        job_id = self.bridge.client.submit_map(control_map)  # its events come later, on this thread
        self._jobs[job_id] = control_map
        self._ids.add(job_id)

    def _ready(self, message) -> None:
        if message.job_id in self._jobs:
            self.made.emit(message.map, self.bridge.inputs.add(message.png, f"The {message.map.kind} map"))

    def _failed(self, message) -> None:
        control_map = self._jobs.pop(message.job_id, None)
        if control_map is not None:
            self.failed.emit(control_map, message.message)
