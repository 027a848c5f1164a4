"""Describe for search: gallery images described by the tagger in the worker (Describe's, ui/describe.py), one after
another, their booru tags kept beside their prompts (`GalleryStore.set_described`) so that the search finds a
picture by what it shows — a photo or an edit without a prompt, an image whose prompt does not say what came out.

The gallery's notice line counts them; *Stop describing* ends the run after the image being read (those read keep
their tags), as does taking its job off the Generate tab's queue; an image whose file cannot be read is passed over
and named at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.ui.describe import NO_TAGGER, Describer
from hypersd_desktop.worker.bridge import WorkerBridge


class GalleryDescriptions(QObject):
    progress = Signal(str)  # the notice line's words while it runs
    ended = Signal(str)  # what was done (or why it stopped); the images described keep their tags

    def __init__(self, bridge: WorkerBridge, library: ModelLibrary, gallery: Gallery, settings: Callable,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge, self.gallery, self._settings = bridge, gallery, settings
        self.describer = Describer(bridge, library, self)
        self.describer.described.connect(self._described)
        self.describer.failed.connect(self._failed)
        self.describer.cancelled.connect(self._cancelled)
        self._waiting: list[int] = []
        self._current: int | None = None  # the image being read
        self._total = self._done = 0
        self._unread: list[str] = []
        self._said = ""  # what the notice line said when the run started (an import's end), kept before its words

    @property
    def running(self) -> bool:
        return self._current is not None

    def start(self, ids: list[int], said: str = "") -> None:
        """Describe the images `ids`, in turn (more asked for while it runs join the end). `said`: words the notice
        line keeps before the run's own (an import's end: "Imported 12 images.")."""
        if self.describer.tagger() is None:
            self.ended.emit(NO_TAGGER)
            return
        if not self.running:
            self._said = said
        known = set(self._waiting) | {self._current}
        added = [image for image in ids if image not in known]
        self._waiting += added
        self._total += len(added)
        if not self.running:
            self._next()

    def stop(self) -> None:
        if self.running:
            self._waiting.clear()
            self._total = self._done + 1  # the image being read is kept when it comes
            self.progress.emit(self._with_said("Stopping after the image being read…"))

    def _next(self) -> None:
        while self._waiting:
            image = self._waiting.pop(0)
            record = self.gallery.store.get(image)
            if record is None:  # deleted meanwhile
                self._total -= 1
                continue
            try:
                digest = self.bridge.inputs.add_file(Path(record.path), keep=False)
            except (AppError, OSError) as error:
                self._unread.append(f"{Path(record.path).name} ({error})")
                self._total -= 1
                continue
            self._current = image
            settings = self._settings()
            self.describer.request(digest, settings.tag_threshold, settings.character_threshold)
            self.progress.emit(self._with_said(f"Describing for search: {self._done + 1} of {self._total}…"))
            return
        self._end(f"Described {self._done} image{'s' if self._done != 1 else ''} for search: the search finds them "
                  "by their tags too." if self._done else "No image was described.")

    def _described(self, _describing, description) -> None:
        if self._current is None:
            return
        self.gallery.store.set_described(self._current, description.without(self._settings().describe_exclude).prompt)
        self._done += 1
        self._current = None
        self._next()

    def _failed(self, message: str) -> None:
        """An image the worker could not describe is passed over; the first three failing stop the run (the tagger
        itself fails)."""
        if self._current is None:
            return
        record = self.gallery.store.get(self._current)
        self._unread.append(f"{Path(record.path).name if record else self._current} ({message})")
        self._current = None
        if not self._done and len(self._unread) >= 3:
            self._end("⚠ Describing stopped: the tagger read none of the first images.")
        else:
            self._next()

    def _cancelled(self, reason: str) -> None:
        """The image's job was taken off the queue (or stopped): the run ends there, as *Stop describing* would."""
        if self._current is None:
            return
        self._current = None
        done = f"; {self._done} image{'s were' if self._done != 1 else ' was'} described" if self._done else ""
        self._end(f"Describing stopped: its job was cancelled ({reason.rstrip('.')}){done}.")

    def _end(self, text: str) -> None:
        unread = f" Not read: {', '.join(self._unread)}." if self._unread else ""
        text = self._with_said(text + unread)
        self._waiting.clear()
        self._current, self._total, self._done, self._unread, self._said = None, 0, 0, [], ""
        self.ended.emit(text)

    def _with_said(self, text: str) -> str:
        return f"{self._said} {text}" if self._said else text
