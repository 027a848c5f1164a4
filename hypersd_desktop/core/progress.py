"""The one progress/cancel interface used by long work: generation, downloads, exports.

Work takes a `CancelToken` and an optional progress callback. It calls `token.raise_if_cancelled()`
at its safe points, so a cancel stops it there with `CancelledError` and nothing half-done is kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hypersd_desktop.core.errors import CancelledError

P = TypeVar("P")
ProgressCallback = Callable[[P], None]


class CancelToken:
    """Thread-safe cancel flag, set by the caller and checked by the work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError()


@dataclass(frozen=True)
class TransferProgress:
    """Progress of byte-sized work (a download, hashing, a copy): `done` of `total` bytes.

    `label` names the whole task (a model id), `item` the file at hand; `rate` is in bytes per
    second and `eta_s` the seconds left, both None until measured.
    """

    label: str
    item: str
    done: int
    total: int
    rate: float | None = None
    eta_s: float | None = None


class TransferMeter:
    """Counts bytes, smooths the rate, and reports at most every 0.1 s (and when forced)."""

    def __init__(self, label: str, total: int, done: int = 0, report: ProgressCallback | None = None) -> None:
        self.label, self.total, self.done, self.report = label, total, done, report
        self.rate: float | None = None
        self._last_time = time.monotonic()
        self._last_done = done
        self._last_report = 0.0

    def counter(self, item: str, cancel: CancelToken) -> Callable[[int], None]:
        """What a copy calls after each chunk of `item`: the chunk counted, then a stop when `cancel` is."""
        def copied(count: int) -> None:
            self.advance(item, count)
            cancel.raise_if_cancelled()
        return copied

    def advance(self, item: str, count: int, force: bool = False) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last_time >= 0.5:
            instant = (self.done - self._last_done) / (now - self._last_time)
            self.rate = instant if self.rate is None else 0.7 * self.rate + 0.3 * instant
            self._last_time, self._last_done = now, self.done
        if self.report is not None and (force or now - self._last_report >= 0.1):
            self._last_report = now
            eta = (self.total - self.done) / self.rate if self.rate else None
            self.report(TransferProgress(self.label, item, self.done, self.total, self.rate, eta))
