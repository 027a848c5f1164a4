"""The Generate tab's ControlNets and IP-Adapters: one box of each, and up to two more of each added with "Add a
ControlNet" / "Add an IP-Adapter" (A1111's ControlNet shows three units), each with its own picture, model and scale.
The request names them in order and they steer the image together, each by its own scale (a pose and a depth map,
an inpainting ControlNet and a canny one; a picture for the look and another for the subject). An added box goes
away with its Remove button."""

from __future__ import annotations

from itertools import zip_longest

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QToolButton, QVBoxLayout, QWidget

from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine.types import ControlSpec, IPAdapterSpec
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.ui.control_image import ControlBox
from hypersd_desktop.ui.control_maps import ControlMaps
from hypersd_desktop.ui.init_image import PictureInput
from hypersd_desktop.ui.reference_image import ReferenceBox
from hypersd_desktop.worker.batch import PictureControl

MOST_BOXES = 3


class PictureStack(QWidget):
    """Boxes of one kind under one another: the first always there, more added up to `MOST_BOXES`. What every box
    follows (the base model's architecture, the run's size …) is given once, to `to_all`, and to boxes added later."""

    changed = Signal()  # any box's, or one added or removed
    failed = Signal(str)  # any box's message for the error banner
    NOUN = "picture"  # what one box holds, in the window's words: "ControlNet"
    ARTICLE = "a"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.boxes: list[PictureInput] = []
        self._rows: dict[PictureInput, QWidget] = {}  # an added box's row: the box and its Remove button
        self._followed: dict[str, tuple] = {}  # a box method's name: the arguments every box was last given
        self.add_button = QPushButton(f"Add {self.ARTICLE} {self.NOUN}")
        self.add_button.setToolTip(f"Another {self.NOUN} with its own picture: up to {MOST_BOXES} steer one image "
                                   "together, each by its own scale")
        self.add_button.clicked.connect(lambda: self.add_box())
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.add_button)
        self.add_box()

    def new_box(self) -> PictureInput:
        raise NotImplementedError

    def spec_of(self, box: PictureInput):
        """The request's part for `box` (None without a picture); `AppError` when it cannot be made."""
        raise NotImplementedError

    def show_spec(self, box: PictureInput, spec) -> list[str]:
        """Show a request's part (None: an empty box); what of it is not here, in words for the reuse banner."""
        raise NotImplementedError

    @property
    def first(self) -> PictureInput:
        return self.boxes[0]

    def to_all(self, name: str, *args) -> None:
        """Call every box's method `name` with `args`, and that of every box added later."""
        self._followed[name] = args
        for box in self.boxes:
            getattr(box, name)(*args)

    def add_box(self) -> PictureInput | None:
        """Another box under the others, set up as the others are; None when there are `MOST_BOXES` already."""
        if len(self.boxes) >= MOST_BOXES:
            return None
        box = self.new_box()
        for name, args in self._followed.items():
            getattr(box, name)(*args)
        box.changed.connect(self._box_changed)
        box.failed.connect(self.failed)
        row: QWidget = box
        if self.boxes:
            row = QWidget()
            layout = QHBoxLayout(row)
            layout.setContentsMargins(0, 6, 0, 0)
            remove = QToolButton(text="Remove")
            remove.setToolTip(f"Take this {self.NOUN} out")
            remove.clicked.connect(lambda: self.remove_box(box))
            layout.addWidget(box, 1)
            layout.addWidget(remove)
            self._rows[box] = row
        self._layout.insertWidget(len(self.boxes), row)
        self.boxes.append(box)
        self._box_changed()
        return box

    def remove_box(self, box: PictureInput) -> None:
        """Take an added box out (the first stays: Clear empties it)."""
        if box not in self._rows:
            return
        self.boxes.remove(box)
        row = self._rows.pop(box)
        self._layout.removeWidget(row)
        row.setParent(None)
        row.deleteLater()
        self._box_changed()

    def _box_changed(self) -> None:
        self.add_button.setVisible(len(self.boxes) < MOST_BOXES and self.first.digest is not None)
        self.changed.emit()

    def specs(self) -> tuple:
        """The request's parts, in order: the boxes with a picture. `AppError` as `spec_of`."""
        return tuple(spec for spec in (self.spec_of(box) for box in self.boxes) if spec is not None)

    def set_specs(self, specs: tuple) -> list[str]:
        """Show a request's parts, a box each; what the window cannot show is said (notes for the banner)."""
        self._fit(min(len(specs), MOST_BOXES))
        notes = [note for box, spec in zip_longest(self.boxes, specs[:MOST_BOXES])
                 for note in self.show_spec(box, spec)]
        if len(specs) > MOST_BOXES:
            notes.append(f"This request has {len(specs)} {self.NOUN}s; the window runs {MOST_BOXES}, the first ones "
                         "(the command line runs all: `gallery reuse` gives its command).")
        return notes

    def state(self) -> list[dict]:
        return [box.state() for box in self.boxes]

    def restore(self, states: list) -> None:
        """Show a `state()` again (states that are not dicts are left out)."""
        states = [state for state in states if isinstance(state, dict)][:MOST_BOXES]
        self._fit(len(states))
        for box, state in zip(self.boxes, states):
            box.restore(state)

    def _fit(self, count: int) -> None:
        """As many boxes as `count` (one at least)."""
        while len(self.boxes) > max(count, 1):
            self.remove_box(self.boxes[-1])
        while len(self.boxes) < count:
            self.add_box()


class ControlStack(PictureStack):
    NOUN = "ControlNet"

    def __init__(self, inputs: InputImages, library: ModelLibrary, maps: ControlMaps | None = None,
                 parent: QWidget | None = None) -> None:
        self._make = lambda: ControlBox(inputs, library, maps)
        super().__init__(parent)

    def new_box(self) -> ControlBox:
        return self._make()

    def spec_of(self, box: ControlBox) -> ControlSpec | None:
        return box.control()

    def show_spec(self, box: ControlBox, spec: ControlSpec | None) -> list[str]:
        box.set_control(spec)
        return []

    def picture_controls(self) -> tuple[PictureControl | None, ...]:
        """How each ControlNet of the request follows each picture of a batch made from pictures (`ControlBox.
        picture_control`), in the order of `specs`."""
        return tuple(box.picture_control() for box in self.boxes if box.digest is not None)

    def fill_models(self, architecture: str) -> None:
        self.to_all("fill_models", architecture)

    def set_run_size(self, size: tuple[int, int] | None) -> None:
        self.to_all("set_run_size", size)

    def set_init(self, digest: str | None, mask: str | None) -> None:
        self.to_all("set_init", digest, mask)


class ReferenceStack(PictureStack):
    NOUN = "IP-Adapter"
    ARTICLE = "an"

    def __init__(self, inputs: InputImages, library: ModelLibrary, parent: QWidget | None = None) -> None:
        self._make = lambda: ReferenceBox(inputs, library)
        super().__init__(parent)

    def new_box(self) -> ReferenceBox:
        return self._make()

    def spec_of(self, box: ReferenceBox) -> IPAdapterSpec | None:
        return box.ip_adapter()

    def show_spec(self, box: ReferenceBox, spec: IPAdapterSpec | None) -> list[str]:
        return box.set_ip_adapter(spec)

    def fill_models(self, architecture: str) -> None:
        self.to_all("fill_models", architecture)
