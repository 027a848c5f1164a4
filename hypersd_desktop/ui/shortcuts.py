"""The keyboard shortcuts of the window, said where they are made and listed from there (Help → Keyboard
shortcuts, F1), so the list is never out of step with the keys that work."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

EVERYWHERE, GENERATE, MASK, DRAW = "Everywhere", "Generate tab", "Painting a mask", "Draw tab"
GALLERY, LARGE_VIEW = "Gallery", "Gallery's large view"
PLACES = (EVERYWHERE, GENERATE, MASK, DRAW, GALLERY, LARGE_VIEW)
_PLACE = "hypersd_shortcut_place"


def described(shortcut: QShortcut, place: str, what: str) -> QShortcut:
    """`shortcut`, with where it works and what it does for the list."""
    shortcut.setWhatsThis(what)
    shortcut.setProperty(_PLACE, place)
    return shortcut


def listed(widget: QWidget, keys: str, place: str, what: str) -> QShortcut:
    """A shortcut that only lists `keys` under F1: it is never enabled, as an event filter on `widget` acts on them
    (one that must come before the widget's own handling of the keys, such as Ctrl+Up in a text box)."""
    shortcut = QShortcut(QKeySequence(keys), widget, context=Qt.ShortcutContext.WidgetShortcut)
    shortcut.setEnabled(False)
    return described(shortcut, place, what)


def key_text(keys: QKeySequence) -> str:
    return keys.toString(QKeySequence.SequenceFormat.NativeText)


def shortcut_rows(window: QWidget) -> list[tuple[str, str, str]]:
    """(place, keys, what they do) for every described shortcut of `window` and every menu command with keys;
    keys doing the same thing in the same place share a row ("Ctrl+Return or Ctrl+Enter")."""
    rows: dict[tuple[str, str], list[str]] = {}
    for action in window.findChildren(QAction):
        if not action.shortcut().isEmpty():
            what = action.text().replace("&", "").removesuffix("…")
            rows.setdefault((EVERYWHERE, what), []).append(key_text(action.shortcut()))
    for shortcut in window.findChildren(QShortcut):
        place = shortcut.property(_PLACE)
        if place and shortcut.whatsThis():
            keys = rows.setdefault((place, shortcut.whatsThis()), [])
            if key_text(shortcut.key()) not in keys:
                keys.append(key_text(shortcut.key()))
    ordered = sorted(rows.items(), key=lambda row: PLACES.index(row[0][0]))  # stable: the order they were made in
    return [(place, " or ".join(keys), what) for (place, what), keys in ordered]


def undescribed(window: QWidget) -> list[str]:
    """The keys of shortcuts made without a description (a test keeps this empty)."""
    return [key_text(s.key()) for s in window.findChildren(QShortcut) if not (s.property(_PLACE) and s.whatsThis())]


class ShortcutsDialog(QDialog):
    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 560)
        parts, place_shown = [], None
        for place, keys, what in shortcut_rows(window):
            if place != place_shown:
                if place_shown is not None:
                    parts.append("</table>")
                parts.append(f"<h3>{place}</h3><table cellspacing='0' cellpadding='3'>")
                place_shown = place
            parts.append(f"<tr><td width='210'><b>{_escape(keys)}</b></td><td>{_escape(what)}</td></tr>")
        parts.append("</table>")
        self.text = QTextBrowser()
        self.text.setHtml("".join(parts))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
