"""Completion of installed LoRAs and embeddings while a prompt is typed (the Generate tab's prompts, the Draw tab's),
as A1111's tag autocomplete offers them.

After `<lora:` the installed LoRAs whose file name holds what follows are offered; choosing one writes its whole
tag, `<lora:NAME:WEIGHT>` at its suggested weight (else 0.8), which applies it as A1111 does. After `__` the
wildcard files whose name holds what follows (core/dynamic_prompts.py); choosing one writes `__NAME__`. A word of
three letters or more that begins an installed embedding's name offers that name. Enter or Tab takes the highlighted
one, Escape (or typing on) leaves the text as typed.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QStringListModel, Qt, QTimer
from PySide6.QtWidgets import QCompleter, QLineEdit, QPlainTextEdit

from hypersd_desktop.core.vocab import ModelKind
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.ui.style_loras import DEFAULT_WEIGHT

_LORA_TAG = re.compile(r"<lora:([^:<>\s]*)$", re.IGNORECASE)
_WILDCARD = re.compile(r"__([\w\-./]*)$")
_WORD = re.compile(r"(?:^|[\s,(\[])([\w.-]{3,})$")
MOST_OFFERED = 50
_LIST_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab, Qt.Key.Key_Escape)
_COMMAND_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | \
    Qt.KeyboardModifier.MetaModifier


class PromptCompleter(QObject):
    """Offers the installed LoRAs and embeddings (`set_models`) in `editor` as the person types."""

    def __init__(self, editor: QPlainTextEdit | QLineEdit) -> None:
        super().__init__(editor)
        self.editor = editor
        self.completer = QCompleter(self)
        self.completer.setWidget(editor)
        self.completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setModel(QStringListModel(self))
        self.completer.activated.connect(self._complete)
        self.loras: dict[str, float] = {}  # a LoRA's name in a tag (its file's stem) and its suggested weight
        self.embeddings: list[str] = []
        self.wildcards: Path | None = None  # the wildcards folder
        self._typed = ""  # the part of the text being completed
        self._in_tag = False  # in a `<lora:` tag
        self._in_wildcard = False  # after `__` (else in neither: a word that may name an embedding)
        editor.installEventFilter(self)
        # keys go to the list while it shows, which passes them on to the editor: seen first here, either way
        self.completer.popup().installEventFilter(self)

    def set_models(self, library: ModelLibrary, architecture: str) -> None:
        """Offer the installed style LoRAs and embeddings for `architecture`."""
        self.loras = {Path(lora.path).stem: lora.preferred_weight or DEFAULT_WEIGHT
                      for lora in library.style_loras(architecture)}
        self.embeddings = sorted({Path(embedding.path).stem for embedding in library.registry.list(
            ModelKind.EMBEDDING, architecture)}, key=str.lower)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        popup = self.completer.popup()
        if watched not in (self.editor, popup) or event.type() not in (QEvent.Type.ShortcutOverride,
                                                                         QEvent.Type.KeyPress):
            return False
        if event.modifiers() & _COMMAND_MODIFIERS:  # Ctrl+Enter generates, as ever: the list goes
            popup.hide()
            return False
        if event.type() == QEvent.Type.ShortcutOverride:
            if popup.isVisible() and event.key() in _LIST_KEYS:
                event.accept()  # the list's, not a shortcut's (Escape cancels a generation elsewhere)
                return True
            return False
        if popup.isVisible() and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab):
            index = popup.currentIndex()
            if not index.isValid():
                index = self.completer.completionModel().index(0, 0)
            popup.hide()
            self._complete(index.data())
            return True
        if popup.isVisible() and event.key() == Qt.Key.Key_Escape:
            popup.hide()
            return True
        if event.text() and event.text().isprintable() or event.key() == Qt.Key.Key_Backspace:
            QTimer.singleShot(0, self.offer)  # once the key has changed the text
        return False

    def offer(self) -> None:
        """Show what completes the text before the cursor, or hide the list when nothing does."""
        before = self._before_cursor()
        offered: list[str] = []
        self._in_tag = bool(tag := _LORA_TAG.search(before))
        self._in_wildcard = not tag and bool(wildcard := _WILDCARD.search(before))
        if tag:
            self._typed = tag[1]
            offered = [name for name in sorted(self.loras, key=str.lower) if tag[1].lower() in name.lower()]
        elif self._in_wildcard:
            self._typed = wildcard[1]
            offered = [name for name in self._wildcard_names() if wildcard[1].lower() in name.lower()]
        elif (word := _WORD.search(before)) and self.embeddings:
            self._typed = word[1]
            offered = [name for name in self.embeddings
                       if name.lower().startswith(word[1].lower()) and name.lower() != word[1].lower()]
        popup = self.completer.popup()
        if not offered or not self.editor.hasFocus():
            popup.hide()
            return
        self.completer.model().setStringList(offered[:MOST_OFFERED])
        rect = self.editor.cursorRect() if isinstance(self.editor, QPlainTextEdit) else self.editor.rect()
        rect.setWidth(max(240, popup.sizeHintForColumn(0) + popup.verticalScrollBar().sizeHint().width()))
        self.completer.complete(rect)
        popup.setCurrentIndex(self.completer.completionModel().index(0, 0))

    def _complete(self, name: str | None) -> None:
        """Replace what was typed with `name`: a LoRA's whole tag, or an embedding's name."""
        if not name:
            return
        text = f"{name}:{self.loras[name]:g}>" if self._in_tag and name in self.loras else name
        text = f"{name}__" if self._in_wildcard else text
        if isinstance(self.editor, QLineEdit):
            self.editor.setSelection(self.editor.cursorPosition() - len(self._typed), len(self._typed))
            self.editor.insert(text)  # one step Ctrl+Z undoes, as in the prompt box
            return
        cursor = self.editor.textCursor()
        cursor.movePosition(cursor.MoveOperation.Left, cursor.MoveMode.KeepAnchor, len(self._typed))
        cursor.insertText(text)
        self.editor.setTextCursor(cursor)

    def _wildcard_names(self) -> list[str]:
        """The wildcard files' names as a prompt writes them ("colors", "styles/ink"), read as they are now."""
        if self.wildcards is None:
            return []
        try:
            files = [path.relative_to(self.wildcards).with_suffix("").as_posix()
                     for path in self.wildcards.rglob("*.txt") if path.is_file()]
        except OSError:
            return []
        return sorted(files, key=str.lower)

    def _before_cursor(self) -> str:
        """The text of the cursor's line before it."""
        if isinstance(self.editor, QLineEdit):
            return self.editor.text()[:self.editor.cursorPosition()]
        cursor = self.editor.textCursor()
        return cursor.block().text()[:cursor.positionInBlock()]
