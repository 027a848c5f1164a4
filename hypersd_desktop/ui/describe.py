"""Describe: a picture's booru tags, from a WD tagger in the worker (engine/tagger.py), written into the prompt.

The init image box's *Describe* button and a result's right-click ask for them; the prompt box gets them as one
edit Ctrl+Z takes back. A tagger is an ONNX model that the worker's ONNX Runtime runs, so it runs where generation
does, queued with the images.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from hypersd_desktop.core.vocab import ModelKind
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.ui.worker_requests import WorkerRequests
from hypersd_desktop.worker.bridge import WorkerBridge
from hypersd_desktop.worker.protocol import Describing

NO_TAGGER = ("Describe needs a tagger, which reads a picture's booru tags: download \"WD SwinV2 Tagger v3\" in the "
             "Models tab, or import a WD tagger's folder (model.onnx and selected_tags.csv).")


class Describer(WorkerRequests):
    described = Signal(object, object)  # the Describing asked for, the Description (engine/tagger.py)
    failed = Signal(str)  # what went wrong and what to do
    cancelled = Signal(str)  # the job was removed from the queue or stopped: why

    def __init__(self, bridge: WorkerBridge, library: ModelLibrary, parent: QObject | None = None) -> None:
        super().__init__(bridge, bridge.described, parent)
        self.library = library

    def tagger(self):
        """The installed tagger that describes pictures (the first), or None."""
        taggers = self.library.registry.list(kind=ModelKind.TAGGER)
        return taggers[0] if taggers else None

    def request(self, digest: str, threshold: float, character_threshold: float) -> bool:
        """Ask for the tags of input image `digest` scored over `threshold` (a character's over
        `character_threshold`); `described` or `failed` answers. False (and `failed`) where no tagger is installed."""
        tagger = self.tagger()
        if tagger is None:
            self.failed.emit(NO_TAGGER)
            return False
        self.ask(Describing(digest, tagger.path, threshold, character_threshold),
                 self.bridge.client.submit_description)
        return True

    def answered(self, describing: Describing, message) -> None:
        self.described.emit(message.describing, message.description)

    def failed_job(self, describing: Describing, message) -> None:
        if message.cancelled:
            self.cancelled.emit(message.message)
        else:
            self.failed.emit(message.message)


def described_text(describing: Describing, description, name: str) -> str:
    """The status line's words for a description: how many tags, the rating, the tagger."""
    if not description.tags:
        return f"{name} found no tag over {describing.threshold:g} in the picture; the prompt is as it was."
    rating = f", rated {description.rating}" if description.rating else ""
    return f"The prompt is the picture's {len(description.tags)} tags{rating} ({name}); Ctrl+Z takes it back."


def tagger_name(library: ModelLibrary, path: str) -> str:
    model = library.registry.find(path)
    return model.name if model is not None else Path(path).name

