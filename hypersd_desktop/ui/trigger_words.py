"""The Models tab's *Trigger words…*: what to write in the prompt for a LoRA or embedding, and a LoRA's suggested
weight, as read from its notes (`models.model_notes`) or as the person writes them (A1111's "activation text" and
"preferred weight" in its LoRA card's editor)."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QPushButton, QWidget,
)

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.prompt_tags import trigger_words
from hypersd_desktop.core.vocab import ModelKind
from hypersd_desktop.engine.inspect import read_header
from hypersd_desktop.models.model_notes import training_tags
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.style_loras import DEFAULT_WEIGHT
from hypersd_desktop.ui.tasks import Task


class TriggerWordsDialog(QDialog):
    """Edit `model`'s trigger words (comma-separated) and, for a LoRA, its suggested weight; `words()` and
    `weight()` give what was written. *Look up on Civitai* adds the words Civitai's page gives for the file
    (`lookup`: `ModelLibrary.civitai_notes`), run by a task that `parent` (the Models tab) keeps."""

    def __init__(self, model: InstalledModel, lookup: Callable[[InstalledModel], tuple[str, tuple[str, ...]]],
                 parent: QWidget) -> None:
        super().__init__(parent)
        self.model, self.lookup = model, lookup
        self.task: Task | None = None
        self.setWindowTitle(f"Trigger words — {model.name}")
        self.setMinimumWidth(520)
        self.words_edit = QLineEdit(", ".join(model.trigger_words),
                                    placeholderText="Comma-separated, as you would write them in the prompt")
        lora = model.kind == ModelKind.LORA
        self.weight_box = QDoubleSpinBox(minimum=-2.0, maximum=2.0, singleStep=0.05, decimals=2,
                                         value=model.preferred_weight or 0.0)
        self.weight_box.setToolTip(f"The weight the LoRA starts at in the Generate tab's list; 0: the default, "
                                   f"{DEFAULT_WEIGHT:g}. A slider LoRA may suggest a negative one.")
        self.lookup_button = QPushButton("Look up on Civitai", enabled=bool(model.sha256))
        self.lookup_button.setToolTip("Find this file on Civitai by its sha256 and add the trigger words its page "
                                      "gives (no API key needed).")
        self.lookup_button.clicked.connect(self.look_up)
        self.status = QLabel("", wordWrap=True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton(self.lookup_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel(
            "Checking this LoRA on the Generate tab adds these words to the prompt, and unchecking it takes them "
            "out again." if lora else
            f"The words its page gives for this embedding. A prompt applies it by its file name, "
            f"{Path(model.path).stem}, as in AUTOMATIC1111.", wordWrap=True))
        form.addRow("Trigger words", self.words_edit)
        tags = _training_tags(model) if lora else []
        if tags:
            hint = QLabel("Most frequent in its training captions: " + ", ".join(
                f"{html.escape(tag)} ({count})" for tag, count in tags), wordWrap=True,
                textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
            hint.setToolTip("As its trainer recorded them in the file. A trigger word is in every caption, so it "
                            "comes first where there is one.")
            form.addRow("", hint)
        if lora:
            form.addRow("Suggested weight", self.weight_box)
        else:
            self.weight_box.hide()
        form.addRow(self.status)
        form.addRow(buttons)

    def look_up(self) -> None:
        if self.task is not None:
            return
        model, lookup = self.model, self.lookup
        self.task = Task(lambda _report, _cancel: lookup(model), self.parent())
        self.task.succeeded.connect(self._found)
        self.task.failed.connect(self._failed)
        self.task.finished.connect(self._ended)
        self.task.finished.connect(self.task.deleteLater)
        self.lookup_button.setEnabled(False)
        self.status.setText("Looking up the file on Civitai…")
        self.task.start()

    def _found(self, found: tuple[str, tuple[str, ...]]) -> None:
        name, words = found
        self.words_edit.setText(", ".join(trigger_words(self.words_edit.text(), list(words))))
        self.status.setText(f"Civitai knows this file as {name}: " + (
            f"{len(words)} trigger word{'s' if len(words) != 1 else ''}, added above. Save keeps them." if words
            else "its page gives no trigger words."))

    def _failed(self, message: str) -> None:
        self.status.setText(f"⚠ {message}")

    def _ended(self) -> None:
        self.task = None
        self.lookup_button.setEnabled(True)

    def words(self) -> tuple[str, ...]:
        return trigger_words(self.words_edit.text())

    def weight(self) -> float | None:
        return self.weight_box.value() or None


def _training_tags(model: InstalledModel) -> list[tuple[str, int]]:
    """The tags of a LoRA file's training captions (`model_notes.training_tags`); none for a file not readable."""
    try:
        _, header = read_header(model.path)
    except AppError:
        return []
    return training_tags(header)
