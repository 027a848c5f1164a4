"""Ctrl+Up and Ctrl+Down in a prompt box weigh the words selected, or those at the cursor (core/emphasis.py), as in
AUTOMATIC1111's prompt boxes; one press is one step of Ctrl+Z.

The keys are caught by an event filter on the box, before the box's own Cmd+Up (macOS: to the start) or Ctrl+Up
(a line up); the shortcuts made here only list them under F1, and are never enabled.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QLineEdit, QPlainTextEdit

from hypersd_desktop.core.emphasis import LORA_STEP, WEIGHT_STEP, nudged
from hypersd_desktop.ui.shortcuts import listed

KEYS = {Qt.Key.Key_Up: True, Qt.Key.Key_Down: False}
_WHAT = {True: f"Weigh the prompt's words selected (or at the cursor) more: (word:1.1), then {1 + 2 * WEIGHT_STEP:g} "
               f"…; a LoRA tag by {LORA_STEP:g}",
         False: f"Weigh them less: (word:0.9) …; at 1 the brackets go; a LoRA tag by {LORA_STEP:g}"}


class EmphasisKeys(QObject):
    """Catches Ctrl+Up and Ctrl+Down in `editors` (prompt boxes, plain text or one line) and weighs their words."""

    def __init__(self, parent: QObject, editors, place: str) -> None:
        super().__init__(parent)
        self.editors = tuple(editors)
        for editor in self.editors:
            editor.installEventFilter(self)
        for keys, up in (("Ctrl+Up", True), ("Ctrl+Down", False)):
            listed(self.editors[0], keys, place, _WHAT[up])

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride) and _weighing(event):
            if event.type() == QEvent.Type.ShortcutOverride:
                event.accept()  # the box takes the keys: no shortcut of the window's, nor the box's own
            else:
                weigh(watched, KEYS[event.key()])
            return True
        return False


def _weighing(event) -> bool:
    modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    return event.key() in KEYS and modifiers in (Qt.KeyboardModifier.ControlModifier,
                                                 Qt.KeyboardModifier.MetaModifier)


def weigh(editor: QPlainTextEdit | QLineEdit, up: bool) -> bool:
    """One press in `editor`: its text edited as one undo step, the words weighed left selected; False where
    there is nothing to weigh."""
    if isinstance(editor, QPlainTextEdit):
        text, cursor = editor.toPlainText(), editor.textCursor()
        start, end = cursor.selectionStart(), cursor.selectionEnd()
    else:
        text = editor.text()
        start = editor.selectionStart() if editor.hasSelectedText() else editor.cursorPosition()
        end = start + len(editor.selectedText()) if editor.hasSelectedText() else start
    nudge = nudged(text, _index(text, start), _index(text, end), up)
    if nudge is None:
        return False
    same_start = next((i for i, (a, b) in enumerate(zip(text, nudge.text)) if a != b), min(len(text), len(nudge.text)))
    same_end = 0  # the characters both end with, not counting into what they begin with
    while (same_end < min(len(text), len(nudge.text)) - same_start
           and text[-1 - same_end] == nudge.text[-1 - same_end]):
        same_end += 1
    replaced = (_units(text[:same_start]), _units(text[:len(text) - same_end]))
    inserted = nudge.text[same_start:len(nudge.text) - same_end]
    selection = _units(nudge.text[:nudge.start]), _units(nudge.text[:nudge.end])
    if isinstance(editor, QPlainTextEdit):
        cursor.setPosition(replaced[0])
        cursor.setPosition(replaced[1], QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(inserted)
        cursor.setPosition(selection[0])
        cursor.setPosition(selection[1], QTextCursor.MoveMode.KeepAnchor)
        editor.setTextCursor(cursor)
    else:
        editor.setSelection(replaced[0], replaced[1] - replaced[0])
        editor.insert(inserted)
        editor.setSelection(selection[0], selection[1] - selection[0])
    return True


def _units(text: str) -> int:
    """`text`'s length as Qt counts positions: UTF-16 code units (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def _index(text: str, units: int) -> int:
    """The index in `text` of Qt's position `units`."""
    count = 0
    for index, char in enumerate(text):
        if count >= units:
            return index
        count += 2 if ord(char) > 0xFFFF else 1
    return len(text)
