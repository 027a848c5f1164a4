"""The one place in the window where warnings and errors are shown, with a dismiss button."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QToolButton

# Light boxes with dark text in both the light and the dark look: the text and the close button take the
# box's colour, not the palette's (light text on a dark theme would vanish on the box).
COLOURS = {"warning": ("#fff4ce", "#4a3b00", "#e0c060"), "error": ("#fde7e9", "#5c0011", "#e08a94")}
STYLES = {
    kind: (f"QFrame {{ background: {back}; color: {text}; border: 1px solid {edge}; border-radius: 4px; }} "
           f"QToolButton {{ color: {text}; background: transparent; border: none; padding: 2px 4px; }} "
           f"QToolButton:hover {{ background: {edge}; border-radius: 3px; }}")
    for kind, (back, text, edge) in COLOURS.items()
}


class Banner(QFrame):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.setStyleSheet(STYLES[kind])
        # The style's own icon, not a character: an emoji such as ⛔ is missing from many Linux fonts and shows as
        # an empty box there.
        icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning if kind == "warning"
                                         else QStyle.StandardPixmap.SP_MessageBoxCritical)
        side = self.fontMetrics().height()
        self.icon = QLabel(alignment=Qt.AlignmentFlag.AlignTop)
        self.icon.setPixmap(icon.pixmap(side, side))
        self.label = QLabel(wordWrap=True)
        for label in (self.icon, self.label):
            label.setStyleSheet("QLabel { border: none; background: transparent; }")
        self.action = QPushButton(visible=False)  # what the message offers to do about it, where it offers one
        self.action.clicked.connect(self._act)
        self._on_action: Callable[[], None] | None = None
        close = QToolButton(text="✕", autoRaise=True)
        close.setToolTip("Dismiss")
        close.setAccessibleName("Dismiss")
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.icon)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(close)
        self.hide()

    def show_messages(self, messages: list[str], action: tuple[str, Callable[[], None]] | None = None) -> None:
        """Show `messages`, with a button for `action` (its text, and what it does: the banner closes then)."""
        if not messages:
            self.clear()
            return
        bullet = "• " if len(messages) > 1 else ""
        self.label.setText("\n".join(bullet + message for message in messages))
        self._on_action = action[1] if action else None
        self.action.setText(action[0] if action else "")
        self.action.setVisible(action is not None)
        self.show()

    def _act(self) -> None:
        act = self._on_action
        self.clear()
        if act is not None:
            act()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def clear(self) -> None:
        self.label.clear()
        self._on_action = None
        self.action.hide()
        self.hide()
