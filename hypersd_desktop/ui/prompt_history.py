"""The prompts made before, for the Generate tab's prompt box and its negative prompt box, each its own: Alt+Up and
Alt+Down step back and on through them as a shell's history does (past the newest, the text that was being typed
comes back), and the History button beside the box lists them to choose one. They are the box's texts as typed
(before styles) each time Generate was pressed, newest first, each once, `KEPT` of them; the session keeps them
across a restart (ui/session.py).

A choice replaces the box's text as one step of Ctrl+Z. The keys are caught by an event filter on the box (macOS's
Alt+Up moves to the paragraph's start); the shortcuts made here only list them under F1, and are never enabled.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QMenu, QPlainTextEdit, QToolButton

from hypersd_desktop.ui.shortcuts import listed

KEPT = 100
SHOWN_CHARS = 80  # of a prompt in the History list; the whole prompt is its tooltip
KEYS = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1}


class PromptHistory(QObject):
    """Alt+Up / Alt+Down in `editor`, and `button`'s list, over `prompts` (newest first; `remember` adds one)."""

    def __init__(self, editor: QPlainTextEdit, place: str, what: str = "prompt") -> None:
        super().__init__(editor)
        self.editor = editor
        self.prompts: list[str] = []
        self._list: list[str] | None = None  # the prompts as the first step read them
        self._at = -1  # where in them the box is; -1: the text typed
        self._draft = ""
        self._setting = False
        editor.installEventFilter(self)
        editor.textChanged.connect(self._typed)
        self.button = QToolButton(text="History", popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.what = what
        self.button.setToolTip(f"The {what}s made before, newest first (Alt+Up and Alt+Down in the box step through "
                               "them)")
        self.menu = QMenu(self.button, toolTipsVisible=True)
        self.menu.aboutToShow.connect(self._fill)
        self.button.setMenu(self.menu)
        for keys, does in (("Alt+Up", f"The {what} made before (newest first)"),
                           ("Alt+Down", f"The {what} made after it; past the newest, what was being typed")):
            listed(editor, keys, place, does)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        if (event.type() in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride) and event.key() in KEYS
                and event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.AltModifier):
            if event.type() == QEvent.Type.ShortcutOverride:
                event.accept()
            else:
                self.step(KEYS[event.key()])
            return True
        return False

    def step(self, back: int) -> None:
        """One prompt further back (`back` 1) or on (-1); past the newest, the text that was being typed."""
        if self._list is None:
            self._list, self._draft = list(self.prompts), self.editor.toPlainText()
        at = max(-1, min(self._at + back, len(self._list) - 1))
        if at == self._at:
            return
        self._at = at
        self._set(self._draft if at == -1 else self._list[at])

    def _typed(self) -> None:
        if not self._setting:  # typed over: the next step starts again from the newest
            self._list, self._at = None, -1

    def _set(self, text: str) -> None:
        self._setting = True
        try:
            cursor = self.editor.textCursor()
            cursor.select(QTextCursor.SelectionType.Document)
            cursor.insertText(text)  # one undo step
            self.editor.setTextCursor(cursor)
        finally:
            self._setting = False

    def _fill(self) -> None:
        self.menu.clear()
        if not self.prompts:
            self.menu.addAction(f"No {self.what}s yet: each Generate adds its {self.what}").setEnabled(False)
        for prompt in self.prompts:
            line = " ".join(prompt.split())
            shown = line if len(line) <= SHOWN_CHARS else line[:SHOWN_CHARS - 1] + "…"
            action = self.menu.addAction(shown.replace("&", "&&"))  # an ampersand is no mnemonic
            action.setToolTip(prompt[:2000])
            action.triggered.connect(lambda _checked=False, prompt=prompt: self.choose(prompt))

    def remember(self, prompt: str) -> None:
        """`prompt` was made: first in the history, once."""
        prompt = prompt.strip()
        if prompt:
            self.prompts = [prompt, *(p for p in self.prompts if p != prompt)][:KEPT]
        self._list, self._at = None, -1

    def restore(self, prompts: object) -> None:
        """The history a session kept (anything else leaves it empty)."""
        if isinstance(prompts, list):
            self.prompts = [p for p in prompts if isinstance(p, str) and p.strip()][:KEPT]

    def choose(self, prompt: str) -> None:
        self._list, self._at = None, -1
        self._set(prompt)
        self.editor.setFocus()
