"""Collects a worker client's events (on its reader thread) for tests to wait on."""

from __future__ import annotations

import threading


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
