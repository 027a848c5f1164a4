"""The one progress/cancel interface used by long work: generation, downloads, exports.

Work takes a `CancelToken` and an optional progress callback. It calls `token.raise_if_cancelled()`
at its safe points, so a cancel stops it there with `CancelledError` and nothing half-done is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
