"""Watched folders in the window: every few seconds a look in the background (gallery/watch.py's `FolderPoll`)
brings the images that arrived in them into the gallery, found by the search with what their tools wrote.
Settings keep the folders; the dialog adds and removes them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.tool_folders import ToolFolder
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.watch import MAX_WATCHED_DIRS, FolderPoll, check_watchable
from hypersd_desktop.ui.folder_list import FolderListDialog
from hypersd_desktop.ui.tasks import Task

log = logging.getLogger("hypersd")

LOOK_EVERY_MS = 2000  # a look at the watched folders' times: milliseconds of work for thousands of folders


class FolderWatcher(QObject):
    """Keeps the gallery up to date with the watched folders and the folders below them. `arrived` gives what each
    look that changed something did; `problem` says what cannot be watched."""

    arrived = Signal(object)  # a Look (gallery/watch.py): the images that came in, moved, or left
    problem = Signal(str)
    looked = Signal()  # a look ended (tests wait for it)

    def __init__(self, gallery: Gallery, parent: QObject | None = None, interval_ms: int = LOOK_EVERY_MS) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self._poll: FolderPoll | None = None
        self._task: Task | None = None
        self._said_cut = False
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self._look)

    @property
    def folders(self) -> list[Path]:
        """The watched folders."""
        return list(self._poll.watched) if self._poll else []

    @property
    def gone(self) -> tuple[Path, ...]:
        """The watched folders not there at the last look (a drive not plugged in)."""
        return self._poll.gone if self._poll else ()

    @property
    def watching(self) -> list[Path]:
        """Every folder looked at: the watched ones and those below."""
        return self._poll.folders if self._poll else []

    def look_every(self, milliseconds: int) -> None:
        self._timer.setInterval(milliseconds)

    def watch(self, folders: list[Path], catch_up: bool = True) -> None:
        """Watch `folders` (and below) from now on. With `catch_up`, images that came while the app was closed are
        taken at the first look (those there longer than a minute at once)."""
        self._poll = FolderPoll(folders, self.gallery.paths, catch_up) if folders else None
        self._said_cut = False
        if self._poll is None:
            self._timer.stop()
            return
        self._timer.start()
        self._look()

    def stop(self) -> None:
        """Closing: no more looks; one under way ends first (its images are in the gallery)."""
        self._timer.stop()
        self._poll = None
        if self._task is not None and self._task.isRunning():
            self._task.wait(10_000)

    def _look(self) -> None:
        if self._poll is None or self._task is not None and self._task.isRunning():
            return  # the next tick looks again
        poll, gallery = self._poll, self.gallery
        self._task = Task(lambda _report, _cancel: poll.look(gallery.import_files, gallery.store), self)
        self._task.succeeded.connect(lambda look: self._looked(poll, look))
        self._task.failed.connect(lambda message: log.warning("the watched folders could not be read: %s", message))
        self._task.start()

    def _looked(self, poll: FolderPoll, look) -> None:
        if poll is not self._poll:  # the folders changed, or the app is closing
            return
        if poll.cut and not self._said_cut:
            self._said_cut = True
            self.problem.emit(f"Only {MAX_WATCHED_DIRS:,} folders of the watched ones are looked at: images saved "
                              "in the others come in with File → Import images from a folder.")
        if look is not None:
            self.arrived.emit(look)
        self.looked.emit()


class WatchedFoldersDialog(FolderListDialog):
    """The watched folders: added (checked, then imported with the browser's progress) and removed."""

    def __init__(self, folders: list[Path], gone: tuple[Path, ...], paths: AppPaths,
                 parent: QWidget | None = None, found: list[ToolFolder] = ()) -> None:
        super().__init__(
            "Watched folders", "Images saved in these folders (and the folders below them) by another tool — "
            "ComfyUI's output, A1111's outputs — come into the gallery as they arrive, searchable by what the tool "
            "wrote in them. The files stay where they are.", folders, gone,
            lambda folder, listed: check_watchable(folder, paths, listed),
            ("Stop watching", "The folder's images stay in the gallery; new ones no longer come in"), parent,
            ("Found where other tools save their images:", [(f"Add {folder.label}", folder.path) for folder in found]))

