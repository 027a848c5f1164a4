"""The Generate tab's face and hand passes (ADetailer's): *Detail faces* (*Detail hands*) on, its strength, how sure
of a face (hand) the pose model must be, the image around each it sees, and the pass's own prompts. They are found
by the installed pose model and person detector (the Models tab's ViTPose Base and RT-DETR); the request names them
(`DetailPass`)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLineEdit, QSpinBox, QWidget

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.vocab import ModelKind
from hypersd_desktop.engine.types import (
    MAX_DETAILED, MAX_DILATE_ERODE, MAX_MASK_OFFSET, MAX_MASKED_PADDING, DetailPass,
)
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.ui.form_menu import form_button

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
        self.mask = MaskShape(part)
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
        second.addWidget(self.largest)  # which of them, and their masks: beside the words they are made with
        second.addWidget(self.mask.button)
        self.enabled.toggled.connect(lambda _on: self._update())
        self._update()

    def _update(self) -> None:
        if not self.enabled.isChecked():  # a reused pass's own settings go with it
            self._own = {}
        for widget in (self.strength, self.confidence, self.padding, self.largest, self.prompt, self.negative,
                       self.mask.button):
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
                          confidence=self.confidence.value(), largest=self.largest.value(), **self.mask.values(),
                          **self._own)

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
        self.mask.set_values(spec)
        notes = [] if self.models() is not None else [no_models(self.part)]
        own = [f"{spec.steps} steps"] if spec.steps is not None else []
        own += [f"guidance {spec.guidance:g}"] if spec.guidance is not None else []
        own += [f"a size of {spec.width} × {spec.height}"] if spec.width and spec.height else []
        if own and say_own:  # not shown in the rows: said, so that they are not a surprise
            notes.append(f"Detail {self.part}s runs with its own {' and '.join(own)}, as the image's pass did "
                         "(turning it off and on again drops them).")
        return notes


MERGES = {"none": "Each on its own", "merge": "All in one pass", "merge and invert": "All the rest, in one pass"}


class MaskShape(QObject):
    """The *Mask* button of a pass's row and its menu: how the masks are shaped before each is repainted, as
    ADetailer's "Mask preprocessing" shapes them (`DetailPass`: grown or shrunk, moved, kept by their size, merged).
    The button reads "Mask*" while any is not the default."""

    def __init__(self, part: str) -> None:
        super().__init__()
        self.dilate = QSpinBox(minimum=-MAX_DILATE_ERODE, maximum=MAX_DILATE_ERODE, value=0, suffix=" px")
        self.dilate.setToolTip(f"Grow each {part}'s mask by a square this many pixels across, or shrink it below 0 "
                               "(ADetailer's \"dilate erode\", whose default is 4)")
        self.x_offset, self.y_offset = (QSpinBox(minimum=-MAX_MASK_OFFSET, maximum=MAX_MASK_OFFSET, value=0,
                                                 suffix=" px") for _ in range(2))
        self.x_offset.setToolTip(f"Move each {part}'s mask this many pixels right (left below 0)")
        self.y_offset.setToolTip(f"Move each {part}'s mask this many pixels up (down below 0)")
        self.min_ratio, self.max_ratio = (QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.01, decimals=3,
                                                         value=value) for value in (0.0, 1.0))
        for box, which in ((self.min_ratio, "smaller"), (self.max_ratio, "larger")):
            box.setToolTip(f"Leave out the {part}s whose box is {which} than this part of the image's area")
        self.merge = QComboBox()
        for value, title in MERGES.items():
            self.merge.addItem(title, value)
        self.merge.setToolTip(f"Repaint each {part} on its own, all of them in one pass, or all the rest of the image "
                              "in one pass (ADetailer's \"mask merge mode\")")
        self.button = form_button("Mask", (
            ("Grow (shrink)", self.dilate), ("Move right", self.x_offset), ("Move up", self.y_offset),
            ("Smallest area", self.min_ratio), ("Largest area", self.max_ratio), (f"{part.capitalize()}s", self.merge)))
        for box in (self.dilate, self.x_offset, self.y_offset, self.min_ratio, self.max_ratio):
            box.valueChanged.connect(self._say)
        self.merge.currentIndexChanged.connect(self._say)
        self._say()

    def values(self) -> dict:
        """The shaping as `DetailPass` takes it."""
        return {"dilate_erode": self.dilate.value(), "x_offset": self.x_offset.value(),
                "y_offset": self.y_offset.value(), "min_ratio": self.min_ratio.value(),
                "max_ratio": max(self.max_ratio.value(), self.min_ratio.value()), "merge": self.merge.currentData()}

    def set_values(self, spec) -> None:
        """Show the shaping of `spec` (a `DetailPass`)."""
        self.dilate.setValue(spec.dilate_erode)
        self.x_offset.setValue(spec.x_offset)
        self.y_offset.setValue(spec.y_offset)
        self.min_ratio.setValue(spec.min_ratio)
        self.max_ratio.setValue(spec.max_ratio)
        self.merge.setCurrentIndex(max(0, self.merge.findData(spec.merge)))

    def _say(self) -> None:
        shaped = self.values()
        grow, right, up = shaped["dilate_erode"], shaped["x_offset"], shaped["y_offset"]
        said = [f"{'grown' if grow > 0 else 'shrunk'} {abs(grow)} px" if grow else "",
                f"moved {abs(right)} px {'right' if right > 0 else 'left'}" if right else "",
                f"moved {abs(up)} px {'up' if up > 0 else 'down'}" if up else "",
                f"{shaped['min_ratio']:g}–{shaped['max_ratio']:g} of the area"
                if (shaped["min_ratio"], shaped["max_ratio"]) != (0.0, 1.0) else "",
                MERGES[shaped["merge"]].lower() if shaped["merge"] != "none" else ""]
        said = [words for words in said if words]
        self.button.setText("Mask*" if said else "Mask")
        self.button.setToolTip("How the masks are shaped before each is repainted: "
                               + (", ".join(said) if said else "as found") + " (click to change)")

