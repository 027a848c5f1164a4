"""The Generate tab's face and hand passes (ADetailer's): *Detail faces* (*Detail hands*) on, its strength, how sure
of a face (hand) the pose model must be, the image around each it sees, and the pass's own prompts. They are found
by the installed pose model and person detector (the Models tab's ViTPose Base and RT-DETR); the request names them
(`DetailPass`)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QLineEdit, QSpinBox, QWidget

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.vocab import ModelKind
from hypersd_desktop.engine.types import MAX_DETAILED, MAX_MASKED_PADDING, DetailPass
from hypersd_desktop.models.library import ModelLibrary

# what each pass repaints, where it is found, what finding it needs and what the pass is for
PARTS = {"face": ("eyes and nose", "turned away or drawn", "small faces get their detail"),
         "hand": ("wrist and elbow", "half hidden or drawn", "hands the image garbled are drawn again, larger")}


def no_models(part: str) -> str:
    """What to do when the pose models that find `part`s are not installed."""
    return (f"Detail {part}s finds the {part}s with a pose model and a person detector: download ViTPose Base and "
            f"RT-DETR (person detector) in the Models tab, or turn Detail {part}s off.")


class DetailRows(QObject):
    """A pass's two rows of the form (`pass_row`: on, strength, confidence, padding; `prompts_row`: its own prompt
    and negative prompt, and how many of the largest it repaints), as the Hires fix has them. `part`: "face" or
    "hand"."""

    def __init__(self, library: ModelLibrary, part: str = "face", on: bool = False, strength: float = 0.4,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library, self.part = library, part
        points, unsure, gained = PARTS[part]
        self.enabled = QCheckBox("On")
        self.enabled.setChecked(on)
        after = "(and its Hires fix and face pass)" if part == "hand" else "(and its Hires fix)"
        self.enabled.setToolTip(f"Once the image is made {after}, make each {part} in it again on its own, at the "
                                f"image's size, and lay it back (ADetailer's pass): {gained}. The {part}s are found by "
                                "the pose models of the Models tab (ViTPose Base and RT-DETR).")
        self.strength = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, decimals=2, value=strength)
        self.strength.setPrefix("Strength ")
        self.strength.setToolTip(f"How much of each {part} is made again: 0.3–0.5 keeps the {part} and adds detail")
        self.confidence = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, decimals=2, value=0.3)
        self.confidence.setPrefix("Confidence ")
        self.confidence.setToolTip(f"How sure the pose model must be of a {part}'s {points}: lower finds {part}s "
                                   f"that are {unsure}, higher only clear ones")
        self.padding = QSpinBox(minimum=0, maximum=MAX_MASKED_PADDING, value=32, suffix=" px")
        self.padding.setPrefix("Padding ")
        self.padding.setToolTip(f"How much of the image around a {part} the model sees, to match it")
        self.largest = QSpinBox(minimum=0, maximum=MAX_DETAILED, value=0, specialValueText=f"All {part}s")
        self.largest.setPrefix("Largest ")
        self.largest.setToolTip(f"Repaint only this many {part}s, the largest (ADetailer's \"mask only top k "
                                f"largest\"): the subject's, not a crowd's behind it")
        self.prompt = QLineEdit(placeholderText=f"{part.capitalize()}s: the prompt above")
        self.prompt.setToolTip(f"The {part}s' own prompt, as ADetailer's (empty: the image's prompt). As in "
                               f"ADetailer, [SEP] parts it for each {part} in turn, left to right (the last part for "
                               f"the rest), [PROMPT] is the image's prompt, and a part that is [SKIP] leaves that "
                               f"{part} as it is")
        self.negative = QLineEdit(placeholderText="Negative: the one above")
        self.negative.setToolTip(f"The {part}s' own negative prompt (empty: the image's), read where guidance is on")
        self._mask_blur = 4  # ADetailer's; a reused request's is kept
        self._own: dict = {}  # a reused pass's own steps, guidance and size (`DetailPass`), kept while it is on
        self.pass_row, self.prompts_row = QWidget(), QWidget()
        first, second = QHBoxLayout(self.pass_row), QHBoxLayout(self.prompts_row)
        for layout in (first, second):
            layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.enabled, self.strength, self.confidence, self.padding):
            first.addWidget(widget)
        second.addWidget(self.prompt, 3)
        second.addWidget(self.negative, 2)
        second.addWidget(self.largest)  # which of them: beside the words they are made with
        self.enabled.toggled.connect(lambda _on: self._update())
        self._update()

    def _update(self) -> None:
        if not self.enabled.isChecked():  # a reused pass's own settings go with it
            self._own = {}
        for widget in (self.strength, self.confidence, self.padding, self.largest, self.prompt, self.negative):
            widget.setEnabled(self.enabled.isChecked())

    def set_negative_read(self, read: bool) -> None:
        """The negative prompt box is greyed out where the recipe reads none (no guidance), as the image's is."""
        self.negative.setEnabled(self.enabled.isChecked() and read)

    def models(self) -> tuple[str, str] | None:
        """The installed pose model and person detector; None when one is missing."""
        found = [next(iter(self.library.registry.list(kind=kind)), None) for kind in (ModelKind.POSE,
                                                                                       ModelKind.DETECTOR)]
        return None if None in found else (found[0].path, found[1].path)

    def spec(self) -> DetailPass | None:
        """The pass asked for (None: off); `AppError` when its models are not installed."""
        if not self.enabled.isChecked():
            return None
        models = self.models()
        if models is None:
            raise AppError(no_models(self.part))
        return DetailPass(*models, strength=self.strength.value(), prompt=self.prompt.text().strip(),
                          negative_prompt=self.negative.text().strip() if self.negative.isEnabled() else "",
                          padding=self.padding.value(), mask_blur=self._mask_blur,
                          confidence=self.confidence.value(), largest=self.largest.value(), **self._own)

    def set_spec(self, spec: DetailPass | None, say_own: bool = True) -> list[str]:
        """Show `spec` (None: the pass off, its settings kept); what cannot be repeated here, in words, and with
        `say_own` the settings of its own the rows keep but do not show."""
        self.enabled.setChecked(spec is not None)
        self._own = {} if spec is None else {name: getattr(spec, name) for name in ("steps", "guidance", "width",
                                                                                     "height")
                                             if getattr(spec, name) is not None}
        if spec is None:
            return []
        self.strength.setValue(max(spec.strength, self.strength.minimum()))
        self.confidence.setValue(max(spec.confidence, self.confidence.minimum()))
        self.padding.setValue(spec.padding)
        self.largest.setValue(spec.largest)
        self.prompt.setText(spec.prompt)
        self.negative.setText(spec.negative_prompt)
        self._mask_blur = spec.mask_blur
        notes = [] if self.models() is not None else [no_models(self.part)]
        own = [f"{spec.steps} steps"] if spec.steps is not None else []
        own += [f"guidance {spec.guidance:g}"] if spec.guidance is not None else []
        own += [f"a size of {spec.width} × {spec.height}"] if spec.width and spec.height else []
        if own and say_own:  # not shown in the rows: said, so that they are not a surprise
            notes.append(f"Detail {self.part}s runs with its own {' and '.join(own)}, as the image's pass did "
                         "(turning it off and on again drops them).")
        return notes
