"""The Models tab's *Trigger words…*: what to write in the prompt for a LoRA or embedding, and a LoRA's suggested
weight, as read from its notes (`models.model_notes`) or as the person writes them (A1111's "activation text" and
"preferred weight" in its LoRA card's editor)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QWidget

from hypersd_desktop.core.prompt_tags import trigger_words
from hypersd_desktop.core.vocab import ModelKind
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.style_loras import DEFAULT_WEIGHT


class TriggerWordsDialog(QDialog):
    """Edit `model`'s trigger words (comma-separated) and, for a LoRA, its suggested weight; `words()` and
    `weight()` give what was written."""

    def __init__(self, model: InstalledModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Trigger words — {model.name}")
        self.resize(520, 0)
        self.words_edit = QLineEdit(", ".join(model.trigger_words),
                                    placeholderText="Comma-separated, as you would write them in the prompt")
        lora = model.kind == ModelKind.LORA
        self.weight_box = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.05, decimals=2,
                                         value=model.preferred_weight or 0.0)
        self.weight_box.setSpecialValueText(f"Default ({DEFAULT_WEIGHT:g})")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel(
            "Checking this LoRA on the Generate tab adds these words to the prompt, and unchecking it takes them "
            "out again." if lora else
            "The words this embedding is called by in a prompt, as its page gives them (its file name calls it "
            "up too).", wordWrap=True))
        form.addRow("Trigger words", self.words_edit)
        if lora:
            form.addRow("Suggested weight", self.weight_box)
        else:
            self.weight_box.hide()
        form.addRow(buttons)

    def words(self) -> tuple[str, ...]:
        return trigger_words(self.words_edit.text())

    def weight(self) -> float | None:
        return self.weight_box.value() or None
