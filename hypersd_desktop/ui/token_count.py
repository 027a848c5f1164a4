"""A prompt's tokens beside its box, as AUTOMATIC1111 counts them: "18/75", then "93/150" once it needs a second
window of the text encoder, red past the windows that are read (engine/prompts.py: `MAX_WINDOWS`).

Counted with CLIP's tokenizer in plain Python (core/clip_tokenizer.py), the engine's count; the vocabulary is read
once, off the GUI thread, and each count waits for a pause in typing (a 300-token prompt takes about a millisecond).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QLabel

from hypersd_desktop.core.clip_tokenizer import ClipTokenizer, clip_tokenizer
from hypersd_desktop.engine.prompts import CHUNK_TOKENS, MAX_WINDOWS, counted

COUNT_DELAY_MS = 150
COUNTED_CHARS = 20_000  # a page pasted by mistake is counted this far (thousands of tokens, 30 ms), then "+"
OVER_COLOUR = "#c62828"

log = logging.getLogger(__name__)


class _Vocabulary(QObject):
    """The tokenizer, loaded once for every counter; `ready` when it is."""

    ready = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.tokenizer: ClipTokenizer | None = None
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            QThreadPool.globalInstance().start(self._load)

    def _load(self) -> None:
        try:
            self.tokenizer = clip_tokenizer()
        except (OSError, ValueError, KeyError) as exc:  # a damaged install: the counters stay blank, nothing else
            log.warning("The prompt token counters are off: CLIP's vocabulary could not be read (%s)", exc)
            return
        self.ready.emit()  # queued to the GUI thread: the object lives there


_vocabulary: _Vocabulary | None = None


def _shared() -> _Vocabulary:
    global _vocabulary
    if _vocabulary is None:
        _vocabulary = _Vocabulary()
    return _vocabulary


class TokenCount(QLabel):
    """The count of `text()`'s tokens (an edited prompt's over `steps()` steps), kept as it changes: call `changed`
    on each change (it waits for a pause). `embeddings(text)` are the installed embeddings a text names, each with
    its vectors, which it takes as tokens."""

    def __init__(self, text: Callable[[], str], steps: Callable[[], int] | None = None, what: str = "prompt",
                 embeddings: Callable[[str], Mapping[str, int]] | None = None) -> None:
        super().__init__(alignment=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._text, self._steps, self._what, self._embeddings = text, steps, what, embeddings
        self.setAccessibleName(f"Tokens in the {what}")
        self.setEnabled(False)  # greyed: a note beside the box, not a control
        self._timer = QTimer(self, singleShot=True, interval=COUNT_DELAY_MS)
        self._timer.timeout.connect(self.recount)
        self.counts: tuple[int, int] | None = None  # (tokens, windows) as shown
        self._stopped = False
        vocabulary = _shared()
        vocabulary.ready.connect(self.recount)
        vocabulary.start()
        if vocabulary.tokenizer is not None:
            self.recount()

    def changed(self, *_args) -> None:
        if not self._stopped:
            self._timer.start()

    def stop(self) -> None:
        """Count no more: the window is closing, and the model library an embedding's count reads goes with it."""
        self._stopped = True
        self._timer.stop()

    def recount(self) -> None:
        tokenizer = _shared().tokenizer
        if tokenizer is None or self._stopped:
            return
        text = self._text()
        vectors = self._embeddings(text[:COUNTED_CHARS]) if self._embeddings and text else {}
        self.counts = tokens, windows = counted(tokenizer, text[:COUNTED_CHARS], self._steps() if self._steps else None,
                                                vectors)
        more = "+" if len(text) > COUNTED_CHARS else ""
        self.setText(f"{tokens}{more}/{windows * CHUNK_TOKENS}{more}")
        over = windows > MAX_WINDOWS
        self.setEnabled(over)
        self.setStyleSheet(f"color: {OVER_COLOUR};" if over else "")
        read = MAX_WINDOWS * CHUNK_TOKENS
        self.setToolTip(
            f"The {self._what} is {tokens} tokens. The text encoder reads {CHUNK_TOKENS} at a time: a longer one is "
            f"read in windows of {CHUNK_TOKENS}, up to {read}, each ending at a comma where one is near"
            + (f"; past {read} tokens the rest is not read." if over else ".")
            + "".join(f"\n{name}: {count} token{'s' * (count != 1)}, one for each vector of the embedding."
                      for name, count in sorted(vectors.items(), key=lambda item: item[0].lower())))


def embeddings_of(library, model_box) -> Callable[[str], dict[str, int]]:
    """For a counter: the installed embeddings a text names, each with its vectors, for the base model chosen in
    `model_box` (those of its architecture)."""
    def vectors(text: str) -> dict[str, int]:
        model = model_box.currentData()
        return library.embedding_vectors(model.path, text) if model is not None else {}
    return vectors
