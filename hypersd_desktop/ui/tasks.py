"""Long work off the GUI thread: a `Task` runs one call with progress and cancel, and reports back
through signals (delivered on the GUI thread)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QThread, Signal

from hypersd_desktop.core.errors import AppError, CancelledError
from hypersd_desktop.core.progress import CancelToken, TransferProgress
from hypersd_desktop.models.catalog import format_size

log = logging.getLogger("hypersd")

Work = Callable[[Callable[[TransferProgress], None], CancelToken], object]


class Task(QThread):
    """Runs `work(report, cancel)` in its own thread. Exactly one of `succeeded`, `cancelled`
    or `failed` is emitted at the end; `failed` carries a message a person can act on."""

    progress = Signal(object)  # TransferProgress
    succeeded = Signal(object)  # what work returned
    cancelled = Signal(str)
    failed = Signal(str)

    def __init__(self, work: Work, parent=None) -> None:
        super().__init__(parent)
        self.work = work
        self.token = CancelToken()

    def cancel(self) -> None:
        self.token.cancel()

    def run(self) -> None:
        try:
            result = self.work(self.progress.emit, self.token)
        except CancelledError as error:
            self.cancelled.emit(str(error))
        except AppError as error:
            self.failed.emit(str(error))
        except OSError as error:
            self.failed.emit(f"{error.strerror or error} ({error.filename or 'file'}).")
        except Exception as error:  # noqa: BLE001 - a task's end must reach the window, whatever it was
            log.exception("background task failed")
            self.failed.emit(f"Unexpected error: {type(error).__name__}: {error}")
        else:
            self.succeeded.emit(result)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def describe_bytes(progress: TransferProgress) -> str:
    """'1.2 GB of 2.4 GB · 35.0 MB/s · 34 s left'."""
    text = f"{format_size(progress.done)} of {format_size(progress.total)}"
    if progress.rate:
        text += f" · {format_size(int(progress.rate))}/s"
    if progress.done < progress.total:
        text += f" · {format_duration(progress.eta_s)} left"
    return text


def describe_items(progress: TransferProgress, noun: str = "images") -> str:
    """'12 of 30 images · 1.4 s each · 25 s left'."""
    text = f"{progress.done:,} of {progress.total:,} {noun}"
    if progress.rate:
        if progress.rate < 1:
            text += f" · {1 / progress.rate:.1f} s each"
        else:
            text += f" · {progress.rate:.1f} a second" if progress.rate < 10 else f" · {progress.rate:,.0f} a second"
    if progress.done < progress.total:
        text += f" · {format_duration(progress.eta_s)} left"
    return text


def percent(progress: TransferProgress) -> int:
    return int(1000 * progress.done / progress.total) if progress.total else 0
