"""What an engine has to say outside any job: a background compile began, ended, or gave up.

Engines `post` a line; the worker program `listen`s and sends each one to the app, which shows it
in the status bar. With no listener (the CLI, tests) a notice goes to the log only. Thread-safe:
background threads post.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("hypersd.engine")

Listener = Callable[[str, bool], None]  # (text, busy): busy while the work it speaks of goes on

_listeners: list[Listener] = []
_lock = threading.Lock()


def listen(listener: Listener) -> Callable[[], None]:
    """Receive every notice from now on; returns the function that stops it."""
    with _lock:
        _listeners.append(listener)

    def stop() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return stop


def post(text: str, busy: bool = False) -> None:
    log.info("notice: %s", text)
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(text, busy)
        except Exception:  # noqa: BLE001 - a listener that fails must not stop the work that posted
            log.warning("a notice listener failed", exc_info=True)
