"""Collects a worker client's events (on its reader thread) for tests to wait on; a worker program serving the fake
backend, with its client and events."""

from __future__ import annotations

import contextlib
import threading

from hypersd_desktop.core.images import InputImages
from hypersd_desktop.worker.client import WorkerClient
from hypersd_desktop.worker.protocol import ImageReady, JobFailed, JobFinished, WorkerReady


class Events:
    def __init__(self) -> None:
        self.items: list[object] = []
        self.changed = threading.Condition()

    def __call__(self, event: object) -> None:
        with self.changed:
            self.items.append(event)
            self.changed.notify_all()

    def wait_for(self, kind: type, timeout: float = 60.0):
        with self.changed:
            assert self.changed.wait_for(lambda: any(isinstance(e, kind) for e in self.items), timeout), self.items
            return next(e for e in self.items if isinstance(e, kind))


def ended(events: Events, job_id: int):
    """The message that ended job `job_id` (`JobFinished` or `JobFailed`), once it has come."""
    def end(e) -> bool:
        return isinstance(e, (JobFinished, JobFailed)) and e.job_id == job_id

    with events.changed:
        assert events.changed.wait_for(lambda: any(end(e) for e in events.items), 60), events.items
        return next(e for e in events.items if end(e))


@contextlib.contextmanager
def fake_worker(app_home, inputs: InputImages):
    """A worker program serving the fake backend, ready; its events and client."""
    events = Events()
    client = WorkerClient(events, home=str(app_home), inputs=inputs)
    client.engine_choice = ("fake", "auto")
    client.start()
    try:
        events.wait_for(WorkerReady)
        yield events, client
    finally:
        client.shutdown()


def finished_images(events: Events, count: int) -> list:
    for _ in range(count):
        events.wait_for(JobFinished)
        with events.changed:
            events.items.remove(next(e for e in events.items if isinstance(e, JobFinished)))
    return [e for e in events.items if isinstance(e, ImageReady)]
