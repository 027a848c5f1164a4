"""Control maps the window asks the worker for: a photo's depth map, made by a depth-estimation model, or the pose
of the people in it, made by a pose model and a person detector; they need torch and so run in the worker like
generation, queued with the images.

One map per picture and model is asked for; a map that came back is added to the input store and named by
its digest, so a request names the map itself (as it names a Canny edge map) and reuse needs no such model.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from hypersd_desktop.ui.worker_requests import WorkerRequests
from hypersd_desktop.worker.bridge import WorkerBridge
from hypersd_desktop.worker.protocol import ControlMap


class ControlMaps(WorkerRequests):
    made = Signal(object, str)  # the ControlMap asked for, the digest of the map in the input store
    failed = Signal(object, str)  # the ControlMap asked for, what went wrong and what to do

    def __init__(self, bridge: WorkerBridge, parent: QObject | None = None) -> None:
        super().__init__(bridge, bridge.map_ready, parent)

    def request(self, control_map: ControlMap) -> None:
        """Ask for `control_map` unless it is being made; `made` or `failed` answers."""
        self.ask(control_map, self.bridge.client.submit_map)

    def answered(self, control_map: ControlMap, message) -> None:
        self.made.emit(message.map, self.bridge.inputs.add(message.png, f"The {message.map.kind} map"))

    def failed_job(self, control_map: ControlMap, message) -> None:
        self.failed.emit(control_map, message.message)
