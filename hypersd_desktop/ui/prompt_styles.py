"""The Generate tab's prompt styles (A1111's Styles): named pieces of prompt chosen under the prompt boxes and added
to the prompts typed when an image is made (`core/prompt_styles.py`).

*Styles* opens the list (Ctrl+Shift+S): a filter, a check box per style (a style list's headings, styles of no
text, are shown as headings), the chosen ones applied in the order they were checked. *Apply to prompt* writes them
into the prompt boxes (one step Ctrl+Z undoes) and unchecks them, as A1111's button does. *Edit…* opens the styles:
each one's name, prompt and negative prompt (`{prompt}` where the typed prompt goes), shown applied to the prompt
typed, made new from the prompt boxes, deleted, or imported from an A1111 `styles.csv` or a Fooocus style list.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
    QMenu, QPlainTextEdit, QPushButton, QSizePolicy, QToolButton, QVBoxLayout, QWidget, QWidgetAction,
)

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.files import why_not_written
from hypersd_desktop.core.prompt_styles import PLACE, PromptStyle, StyleBook, apply_styles, merged, read_styles

STYLES_KEYS = "Ctrl+Shift+S"
FILTER_FROM = 8  # styles listed before the filter box shows
NAME_ROLE = Qt.ItemDataRole.UserRole


PromptEdit = QPlainTextEdit | QLineEdit  # the Generate tab's prompt boxes, the Draw tab's prompt line


def text_of(edit: PromptEdit | None) -> str:
    if edit is None:
        return ""
    return (edit.text() if isinstance(edit, QLineEdit) else edit.toPlainText()).strip()


def replace_text(edit: PromptEdit, text: str) -> None:
    """Put `text` in `edit` as one step that Ctrl+Z undoes."""
    if isinstance(edit, QLineEdit):
        if edit.text() != text:
            edit.selectAll()
            edit.insert(text)
        return
    if edit.toPlainText() != text:
        cursor = edit.textCursor()
        cursor.select(cursor.SelectionType.Document)
        cursor.insertText(text)
        edit.setTextCursor(cursor)


def style_tooltip(style: PromptStyle) -> str:
    parts = [f"Prompt: {style.prompt}" if style.prompt.strip() else "",
             f"Negative: {style.negative_prompt}" if style.negative_prompt.strip() else ""]
    return "\n".join(part for part in parts if part)


class StylePicker(QWidget):
    """The styles row under the prompt boxes; `changed` says the chosen styles (or their text) changed. `negative`
    is None where the tab has no negative prompt box (the Draw tab): *Apply to prompt* then leaves out the styles'
    negative words, as an image made there reads none but the styles'."""

    changed = Signal()

    def __init__(self, book: StyleBook, prompt: PromptEdit, negative: PromptEdit | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.book = book
        self.prompt, self.negative = prompt, negative
        self._chosen: list[str] = []  # names, in the order they were checked
        self._quiet = False
        self.button = QToolButton(popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # a long name is elided
        self.filter = QLineEdit(placeholderText="Filter: a word of a style's name or text", clearButtonEnabled=True)
        self.list = QListWidget()
        self.list.setMinimumSize(340, 260)
        self.count_label = QLabel()
        self.clear_button = QPushButton("Clear", autoDefault=False)
        popup = QWidget()
        popup_layout = QVBoxLayout(popup)
        popup_layout.addWidget(self.filter)
        popup_layout.addWidget(self.list)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        bottom.addWidget(self.clear_button)
        popup_layout.addLayout(bottom)
        self.menu = QMenu(self)
        action = QWidgetAction(self.menu)
        action.setDefaultWidget(popup)
        self.menu.addAction(action)
        self.menu.aboutToShow.connect(self._opening)
        self.button.setMenu(self.menu)
        self.apply_button = QToolButton(text="Apply to prompt")
        self.edit_button = QToolButton(text="Edit…")
        self.edit_button.setToolTip("Make, change, delete or import styles (an A1111 styles.csv, a Fooocus style list)")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("Styles")  # hidden where a form's label names the row
        row.addWidget(self.label)
        row.addWidget(self.button, 1)
        row.addWidget(self.apply_button)
        row.addWidget(self.edit_button)
        self.filter.textChanged.connect(self._narrow)
        self.list.itemChanged.connect(self._checked)
        self.clear_button.clicked.connect(lambda: self.choose([]))
        self.apply_button.clicked.connect(self.apply_to_prompt)
        self.edit_button.clicked.connect(self.edit)
        self.reload()

    # -- what is chosen ---------------------------------------------------------------------

    def chosen_names(self) -> list[str]:
        return list(self._chosen)

    def chosen(self) -> list[PromptStyle]:
        """The chosen styles as the file has them now (edited in the other tab, or outside the app)."""
        self.reload_if_changed()
        return self._chosen_styles()

    def _chosen_styles(self) -> list[PromptStyle]:
        by_name = {style.name: style for style in self.book.styles}
        return [by_name[name] for name in self._chosen if name in by_name]

    def choose(self, names: Sequence[str]) -> None:
        """Check the styles of `names` (in that order; names of no style, or of a heading, are left out) and only
        those."""
        known = {style.name for style in self.book.styles if not style.empty}
        chosen = [name for name in dict.fromkeys(names) if name in known]
        if chosen == self._chosen:
            return
        self._chosen = chosen
        self._show_checks()
        self.changed.emit()

    def apply_to_prompt(self) -> None:
        """Write the chosen styles into the prompt boxes and uncheck them."""
        styles = self.chosen()
        if not styles:
            return
        if self.negative is None and any(style.negative_prompt.strip() for style in styles):
            return  # their negative words would be lost: the button is off (`_show_checks`)
        prompt, negative = apply_styles(text_of(self.prompt), text_of(self.negative), styles)
        replace_text(self.prompt, prompt)
        if self.negative is not None:
            replace_text(self.negative, negative)
        self.choose([])

    # -- the list ---------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the styles file again (a style chosen before keeps its check while its name is there)."""
        self.book.load()
        self._quiet = True
        try:
            self.list.clear()
            if self.book.problem:
                item = QListWidgetItem(f"{self.book.problem} ({self.book.path})")
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                self.list.addItem(item)
            elif not self.book.styles:
                item = QListWidgetItem("No styles yet: Edit… makes one, or imports an A1111 styles.csv.")
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                self.list.addItem(item)
            for style in self.book.styles:
                item = QListWidgetItem(style.name)
                item.setData(NAME_ROLE, style.name)
                if style.empty:  # a style list's heading ("---- Photography ----"): it adds nothing
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                else:
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setCheckState(Qt.CheckState.Unchecked)
                    item.setToolTip(style_tooltip(style))
                self.list.addItem(item)
        finally:
            self._quiet = False
        self.filter.setVisible(len(self.book.styles) >= FILTER_FROM)
        known = {style.name for style in self.book.styles if not style.empty}
        kept = [name for name in self._chosen if name in known]
        changed = kept != self._chosen
        self._chosen = kept
        self._show_checks()
        self._narrow(self.filter.text())
        if changed:
            self.changed.emit()

    def _items(self):
        return (self.list.item(row) for row in range(self.list.count()))

    def _show_checks(self) -> None:
        self._quiet = True
        try:
            for item in self._items():
                if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                    checked = item.data(NAME_ROLE) in self._chosen
                    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        finally:
            self._quiet = False
        names = self._chosen
        more = f" + {len(names) - 1} more" if len(names) > 1 else ""
        first = self.button.fontMetrics().elidedText(names[0], Qt.TextElideMode.ElideRight, 240) if names else "none"
        self.button.setText(first + more)
        self.button.setToolTip(f"Choose styles to add to the prompt ({STYLES_KEYS})" if not names else
                               "Added to the prompt, in this order:\n" + "\n".join(
                                   f"• {style.name}: {style_tooltip(style)}" for style in self._chosen_styles()))
        self.count_label.setText(f"{len(names)} chosen" if names else "None chosen")
        lost = self.negative is None and any(style.negative_prompt.strip() for style in self._chosen_styles())
        self.apply_button.setEnabled(bool(names) and not lost)
        self.apply_button.setToolTip(
            "A chosen style has negative words, which this tab has no box for: they apply while the style is checked"
            if lost else "Write the chosen styles into the prompt boxes (Ctrl+Z undoes it) and uncheck them, to edit "
            "the words they add")
        self.clear_button.setEnabled(bool(names))

    def _checked(self, item: QListWidgetItem) -> None:
        if self._quiet or not item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            return
        name = item.data(NAME_ROLE)
        on = item.checkState() == Qt.CheckState.Checked
        if on == (name in self._chosen):
            return
        self._chosen = [*self._chosen, name] if on else [other for other in self._chosen if other != name]
        self._show_checks()
        self.changed.emit()

    def _narrow(self, text: str) -> None:
        words = text.lower().split()
        styles = {style.name: style for style in self.book.styles}
        for item in self._items():
            style = styles.get(item.data(NAME_ROLE))
            if style is None:
                continue
            seen = f"{style.name} {style.prompt} {style.negative_prompt}".lower()
            item.setHidden(bool(words) and (style.empty or not all(word in seen for word in words)))

    def reload_if_changed(self) -> None:
        """Read the styles file again where it changed (edited or replaced outside the app) since it was read."""
        if self.book.changed():
            self.reload()

    def _opening(self) -> None:
        self.reload_if_changed()
        self.filter.setFocus()

    def open_list(self) -> None:
        self.button.showMenu()

    # -- editing ------------------------------------------------------------------------------

    def edit(self) -> int:
        dialog = StylesDialog(self.book, text_of(self.prompt), text_of(self.negative),
                              self.window())
        result = dialog.exec()
        if result == QDialog.DialogCode.Accepted:
            self.reload()
            self.changed.emit()  # a chosen style's text may have changed
        return result


class StylesDialog(QDialog):
    """The styles, edited as a working copy that Save writes to the styles file (Cancel leaves it as it was)."""

    def __init__(self, book: StyleBook, prompt: str, negative: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Prompt styles")
        self.resize(760, 480)
        self.book = book
        self.typed = (prompt, negative)  # the prompt boxes' text: new styles start from it, and the preview shows it
        self.styles: list[PromptStyle] = list(book.styles)
        self.names = QListWidget()
        self.name = QLineEdit(placeholderText="The style's name")
        self.style_prompt = QPlainTextEdit(placeholderText=f"Words added to the prompt; {PLACE} where the prompt "
                                                           "typed goes (without it, the words go after the prompt)")
        self.style_negative = QPlainTextEdit(placeholderText="Words added to the negative prompt (likewise)")
        self.preview = QPlainTextEdit(readOnly=True)  # a long style's text scrolls rather than grow the dialog
        self.preview.setMaximumHeight(110)
        self.message = QLabel(wordWrap=True)
        self.new_button = QPushButton("New", autoDefault=False)
        self.from_prompt = QPushButton("New from the prompt", autoDefault=False)
        self.from_prompt.setToolTip("A new style of the words in the prompt boxes, as A1111's Save style")
        self.delete_button = QPushButton("Delete", autoDefault=False)
        self.import_button = QPushButton("Import…", autoDefault=False)
        self.import_button.setToolTip("Add the styles of an A1111 or Forge styles.csv, or of a Fooocus or SDXL Prompt "
                                      "Styler style list (.json)")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        editor = QFormLayout()
        editor.addRow("Name", self.name)
        editor.addRow("Prompt", self.style_prompt)
        editor.addRow("Negative", self.style_negative)
        editor.addRow("With your prompt", self.preview)
        left = QVBoxLayout()
        left.addWidget(self.names, 1)
        for pair in ((self.new_button, self.from_prompt), (self.delete_button, self.import_button)):
            row = QHBoxLayout()
            for button in pair:
                row.addWidget(button)
            left.addLayout(row)
        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addLayout(editor, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.names.currentRowChanged.connect(self._show)
        self.name.textEdited.connect(self._edited)
        self.style_prompt.textChanged.connect(self._edited)
        self.style_negative.textChanged.connect(self._edited)
        self.new_button.clicked.connect(lambda: self.add(PromptStyle(self._free_name("New style"))))
        self.from_prompt.clicked.connect(lambda: self.add(PromptStyle(self._free_name("My style"), *self.typed)))
        self.delete_button.clicked.connect(self.delete)
        self.import_button.clicked.connect(lambda: self.import_file(self._ask_file()))
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self._showing = False
        self._fill(0)
        if book.problem:
            self.message.setText(f"{book.problem} Saving writes a new styles file (the old one is kept as "
                                 f"{book.path.name}.bak).")

    def _fill(self, row: int) -> None:
        self.names.clear()
        for style in self.styles:
            self.names.addItem(style.name)
        self.names.setCurrentRow(min(row, len(self.styles) - 1))
        self._show(self.names.currentRow())

    def _show(self, row: int) -> None:
        style = self.styles[row] if 0 <= row < len(self.styles) else None
        self._showing = True
        try:
            for widget in (self.name, self.style_prompt, self.style_negative, self.delete_button):
                widget.setEnabled(style is not None)
            self.name.setText(style.name if style else "")
            self.style_prompt.setPlainText(style.prompt if style else "")
            self.style_negative.setPlainText(style.negative_prompt if style else "")
        finally:
            self._showing = False
        self._preview(style)

    def _edited(self) -> None:
        row = self.names.currentRow()
        if self._showing or not 0 <= row < len(self.styles):
            return
        style = PromptStyle(self.name.text(), self.style_prompt.toPlainText(), self.style_negative.toPlainText())
        self.styles[row] = style
        self.names.item(row).setText(style.name)
        self._preview(style)

    def _preview(self, style: PromptStyle | None) -> None:
        prompt, negative = self.typed
        if style is None:
            self.preview.setPlainText("")
            return
        styled, styled_negative = apply_styles(prompt or "…", negative, [style])
        self.preview.setPlainText(f"{styled}\n\nNegative: {styled_negative or '(none)'}")

    def _free_name(self, name: str) -> str:
        taken = {style.name for style in self.styles}
        return next(candidate for candidate in (name, *(f"{name} {n}" for n in range(2, 10_000)))
                    if candidate not in taken)

    def add(self, style: PromptStyle) -> None:
        self.styles.append(style)
        self._fill(len(self.styles) - 1)
        self.name.setFocus()
        self.name.selectAll()

    def delete(self) -> None:
        row = self.names.currentRow()
        if 0 <= row < len(self.styles):
            del self.styles[row]
            self._fill(row)

    def _ask_file(self) -> Path | None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Import styles", str(Path.home()),
                                                "Style lists (*.csv *.json);;All files (*)")
        return Path(chosen) if chosen else None

    def import_file(self, path: Path | None) -> None:
        """Add the styles of `path` to the list (saved with Save), saying how many."""
        if path is None:
            return
        try:
            incoming = read_styles(path)
        except AppError as error:
            self.message.setText(str(error))
            return
        if not incoming:
            self.message.setText(f"{path.name} holds no styles.")
            return
        self.styles, replaced = merged(self.styles, incoming)
        self._fill(self.names.currentRow())
        self.message.setText(f"Imported {len(incoming)} styles from {path.name}"
                             + (f" ({replaced} of the same name replaced)" if replaced else "")
                             + ": Save keeps them.")

    def save(self) -> None:
        """Write the styles and close; a name left empty or given twice, or a file that cannot be written, is said
        and the dialog stays open."""
        names = [style.name.strip() for style in self.styles]
        if "" in names:
            self.names.setCurrentRow(names.index(""))
            self.message.setText("A style has no name: give it one, or delete it.")
            return
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            self.message.setText(f"Two styles are named {twice[0]!r}: give one another name.")
            return
        try:
            self.book.save([PromptStyle(style.name.strip(), style.prompt, style.negative_prompt)
                            for style in self.styles])
        except OSError as error:
            self.message.setText(f"The styles could not be saved: {why_not_written(error, self.book.path.parent)}")
            return
        self.accept()
