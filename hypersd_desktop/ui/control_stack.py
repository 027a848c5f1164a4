"""The Generate tab's ControlNets: one box, and up to two more added with "Add a ControlNet" (A1111's ControlNet
shows three units), each with its own picture, ControlNet, preprocessor and scale. The request names them in
order and they steer the image together, each by its own scale (a pose and a depth map, or an inpainting ControlNet
and a canny one). An added box goes away with its Remove button."""

from __future__ import annotations

from itertools import zip_longest

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QToolButton, QVBoxLayout, QWidget

from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine.types import ControlSpec
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.ui.control_image import ControlBox
from hypersd_desktop.ui.control_maps import ControlMaps

MAX_CONTROLNETS = 3


class ControlStack(QWidget):
    changed = Signal()  # any box's, or one added or removed
    failed = Signal(str)  # any box's message for the error banner

    def __init__(self, inputs: InputImages, library: ModelLibrary, maps: ControlMaps | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._new_box = lambda: ControlBox(inputs, library, maps)
        self.boxes: list[ControlBox] = []
        self._rows: dict[ControlBox, QWidget] = {}  # an added box's row: the box and its Remove button
        self._architecture: str | None = None
        self._run_size: tuple[int, int] | None = None
        self._init: tuple[str | None, str | None] = (None, None)
        self.add_button = QPushButton("Add a ControlNet")
        self.add_button.setToolTip(f"Another ControlNet with its own picture: up to {MAX_CONTROLNETS} steer one image "
                                   "together, each by its own scale")
        self.add_button.clicked.connect(lambda: self.add_box())
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.add_button)
        self.add_box()

    @property
    def first(self) -> ControlBox:
        return self.boxes[0]

    def add_box(self) -> ControlBox | None:
        """Another box under the others, set up for the chosen model and init image; None when there are
        `MAX_CONTROLNETS` already."""
        if len(self.boxes) >= MAX_CONTROLNETS:
            return None
        box = self._new_box()
        if self._architecture is not None:
            box.fill_models(self._architecture)
        box.set_run_size(self._run_size)
        box.set_init(*self._init)
        box.changed.connect(self._box_changed)
        box.failed.connect(self.failed)
        row: QWidget = box
        if self.boxes:
            row = QWidget()
            layout = QHBoxLayout(row)
            layout.setContentsMargins(0, 6, 0, 0)
            remove = QToolButton(text="Remove")
            remove.setToolTip("Take this ControlNet out")
            remove.clicked.connect(lambda: self.remove_box(box))
            layout.addWidget(box, 1)
            layout.addWidget(remove)
            self._rows[box] = row
        self._layout.insertWidget(len(self.boxes), row)
        self.boxes.append(box)
        self._box_changed()
        return box

    def remove_box(self, box: ControlBox) -> None:
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
        self.add_button.setVisible(len(self.boxes) < MAX_CONTROLNETS and self.first.digest is not None)
        self.changed.emit()

    # -- what every box follows ----------------------------------------------------------------

    def fill_models(self, architecture: str) -> None:
        self._architecture = architecture
        for box in self.boxes:
            box.fill_models(architecture)

    def set_run_size(self, size: tuple[int, int] | None) -> None:
        self._run_size = size
        for box in self.boxes:
            box.set_run_size(size)

    def set_init(self, digest: str | None, mask: str | None) -> None:
        self._init = (digest, mask)
        for box in self.boxes:
            box.set_init(digest, mask)

    # -- the request -------------------------------------------------------------------------

    def controls(self) -> tuple[ControlSpec, ...]:
        """The request's ControlNets, in order: the boxes with a picture. `AppError` as `ControlBox.control`."""
        return tuple(spec for spec in (box.control() for box in self.boxes) if spec is not None)

    def set_controls(self, specs: tuple[ControlSpec, ...]) -> list[str]:
        """Show a request's ControlNets, a box each; what the window cannot show is said (notes for the banner)."""
        self._fit(min(len(specs), MAX_CONTROLNETS))
        for box, spec in zip_longest(self.boxes, specs[:MAX_CONTROLNETS]):
            box.set_control(spec)
        if len(specs) <= MAX_CONTROLNETS:
            return []
        return [f"This request has {len(specs)} ControlNets; the window runs {MAX_CONTROLNETS}, the first ones (the "
                "command line runs all: `gallery reuse` gives its command)."]

    def state(self) -> list[dict]:
        return [box.state() for box in self.boxes]

    def restore(self, states: list) -> None:
        """Show a `state()` again (states that are not dicts are left out)."""
        states = [state for state in states if isinstance(state, dict)][:MAX_CONTROLNETS]
        self._fit(len(states))
        for box, state in zip(self.boxes, states):
            box.restore(state)

    def _fit(self, count: int) -> None:
        """As many boxes as `count` (one at least)."""
        while len(self.boxes) > max(count, 1):
            self.remove_box(self.boxes[-1])
        while len(self.boxes) < count:
            self.add_box()
