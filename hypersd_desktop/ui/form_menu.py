"""A tool button whose menu is a small form: settings that a row has no room to show (a detail pass's mask shaping,
the tiles' padding and blur), a click away. Tab and Shift+Tab go from field to field in it, as in a dialog."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtWidgets import QFormLayout, QMenu, QToolButton, QWidget, QWidgetAction


class FormMenu(QMenu):
    """A menu holding a form (a menu's own Tab moves between its actions, of which this has one)."""

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802 - Qt API
        return QWidget.focusNextPrevChild(self, next)


def form_button(text: str, rows: Iterable[tuple[str, QWidget]]) -> QToolButton:
    """A button reading `text` that opens the form of `rows` (label, field) under it."""
    button = QToolButton(text=text, popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
    form_widget = QWidget()
    form = QFormLayout(form_widget)
    for title, widget in rows:
        form.addRow(title, widget)
    menu = FormMenu(button)
    action = QWidgetAction(menu)
    action.setDefaultWidget(form_widget)
    menu.addAction(action)
    button.setMenu(menu)
    return button
