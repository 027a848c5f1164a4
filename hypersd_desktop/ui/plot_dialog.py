"""The X/Y/Z plot dialog (A1111's): the Generate tab's image made again with one, two or three settings stepped
through values, queued as one job; each image joins the gallery, then the grid of them with labels."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout,
    QWidget,
)

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.settings import load_settings, save_settings
from hypersd_desktop.core.prompt_styles import PromptStyle
from hypersd_desktop.engine.plot import FILES, NAMED, Axis, PlotAxis, PlotSpec
from hypersd_desktop.engine.types import GenerationRequest

# What each axis's values look like, shown in its empty box, and the values it starts with when chosen
EXAMPLES = {
    Axis.SEED: ("-1, -1, -1, -1 (random) or 1-4", "-1, -1, -1"),
    Axis.STEPS: ("1, 2, 4, 8 or 1-8 (+2)", "1, 2, 4, 8"),
    Axis.GUIDANCE: ("1-3 (+0.5) or 1, 2, 5", "1, 2, 3"),
    Axis.PROMPT: ("the words in the prompt first, then each one to put there: cat, dog, owl", ""),
    Axis.SCHEDULER: ("TCD, DDIM (trailing), LCM", "TCD, DDIM (trailing), LCM"),
    Axis.LORA_WEIGHT: ("0.5-1 (+0.25) — the Hyper-SD LoRA's (else the first LoRA's)", "0.5, 0.75, 1"),
    Axis.STRENGTH: ("0.3, 0.5, 0.7 — the init image's strength, or the Hires fix's", "0.3, 0.5, 0.7"),
    Axis.VARIATION_STRENGTH: ("0, 0.1, 0.2, 0.3", "0, 0.1, 0.2, 0.3"),
    Axis.CLIP_SKIP: ("1-3", "1, 2"),
    Axis.ETA: ("0.3, 0.5, 0.8, 1 — TCD's eta: lower gives more detail at more steps", "0.3, 0.5, 0.8, 1"),
    Axis.VAE: ("installed VAEs by name, or None (the model's own)", ""),
    Axis.HYPER: ("installed Hyper-SD files by name: Hyper-SD15-1step-lora, Hyper-SD15-4steps-lora", ""),
    Axis.MODEL: ("installed models by name: each with the same Hyper-SD file", ""),
    Axis.STYLES: ("prompt styles by name, each added to the styles chosen: None, Cinematic, Watercolour", ""),
    Axis.FACE_STRENGTH: ("0.2, 0.4, 0.6 — Detail faces' strength (turn it on first)", "0.2, 0.4, 0.6"),
    Axis.HAND_STRENGTH: ("0.3, 0.5, 0.7 — Detail hands' strength (turn it on first)", "0.3, 0.5, 0.7"),
}
ERROR_STYLE = "color: #c0392b"


class AxisRow(QWidget):
    """A setting to step through and its values; `optional` rows start at "Nothing"."""

    changed = Signal()

    def __init__(self, optional: bool, first: Axis | None, suggest: Callable[[Axis], str] = lambda _axis: "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.suggest = suggest  # values to start a files' axis with (the installed Hyper-SD files, the model)
        self.box = QComboBox()
        if optional:
            self.box.addItem("Nothing", None)
        for axis in Axis:
            self.box.addItem(axis.label, axis)
        self.values = QLineEdit()
        self.values.setClearButtonEnabled(True)
        self.said = QLabel(wordWrap=True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.box)
        row.addWidget(self.values, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.said)
        self.box.currentIndexChanged.connect(self._axis_chosen)
        self.values.textChanged.connect(self.changed)
        if first is not None:
            self.box.setCurrentIndex(self.box.findData(first))
        self._axis_chosen()

    def axis(self) -> Axis | None:
        chosen = self.box.currentData()  # Qt hands back the text of the Axis it was given
        return Axis(chosen) if chosen else None

    def set_axis(self, axis: Axis | None, values: str | None = None) -> None:
        self.box.setCurrentIndex(max(self.box.findData(axis), 0))
        if values is not None:
            self.values.setText(values)

    def _axis_chosen(self) -> None:
        axis = self.axis()
        self.values.setEnabled(axis is not None)
        hint, start = EXAMPLES.get(axis, ("", ""))
        self.values.setPlaceholderText(hint)
        self.values.setText(self.suggest(axis) if axis in NAMED else start)
        self.changed.emit()

    def plot_axis(self, find: Callable[[str], str] | None = None,
                  vae_of: Callable[[str], str | None] | None = None,
                  styles: Sequence[PromptStyle] = ()) -> PlotAxis | None:
        """The axis and its values (a files' axis with the files `find` finds, a Styles axis with its `styles`);
        `AppError` says what is wrong with them (shown under the row)."""
        axis = self.axis()
        if axis is None:
            self.said.clear()
            return None
        chosen = PlotAxis(axis, self.values.text().strip())
        try:
            labels = chosen.labels()
            if axis in FILES:
                if find is None:
                    raise AppError(f"{axis.label}: no installed files to look the names up in.")
                chosen = chosen.looked_up(find, vae_of)
            chosen = chosen.styled(styles)
        except AppError as error:
            self._say(str(error), error=True)
            raise
        shown = ", ".join(labels[:6]) + (f" … ({len(labels)} in all)" if len(labels) > 6 else "")
        self._say(f"{len(labels)} value{'s' if len(labels) != 1 else ''}: {shown}")
        return chosen

    def _say(self, text: str, error: bool = False) -> None:
        self.said.setText(text)
        self.said.setStyleSheet(ERROR_STYLE if error else "color: palette(mid)")


class PlotDialog(QDialog):
    """Makes the plot of the request `request_now()` gives (the Generate tab's controls, read when the plot is
    made) and hands it to `submit`."""

    def __init__(self, request_now: Callable[[], GenerationRequest | None], submit: Callable[[PlotSpec], None],
                 paths: AppPaths | None = None, parent: QWidget | None = None,
                 find: Callable[[str], str] | None = None, suggest: Callable[[Axis], str] = lambda _axis: "",
                 vae_of: Callable[[], Callable[[str], str | None] | None] = lambda: None,
                 styles: Callable[[], Sequence[PromptStyle]] = lambda: ()) -> None:
        super().__init__(parent)
        self.request_now = request_now
        self.submit = submit
        self.paths = paths
        self.find = find  # the installed file a Hyper-SD file's or model's name names (`InputError` if none)
        self.vae_of = vae_of  # how each model's VAE is chosen now (None: the Generate tab's chosen VAE for all)
        self.styles = styles  # the prompt styles there are, for a Styles axis's names
        self.setWindowTitle("X/Y/Z plot")
        self.resize(620, 340)
        intro = QLabel("The Generate tab's image made again with a setting at each of its values — across, down "
                       "with a second setting, and a grid for each value of a third — then the grid of them with "
                       "labels (A1111's X/Y/Z plot). Each image and the grid go into the gallery.", wordWrap=True)
        self.x_row = AxisRow(optional=False, first=Axis.STEPS, suggest=suggest)
        self.y_row = AxisRow(optional=True, first=None, suggest=suggest)
        self.z_row = AxisRow(optional=True, first=None, suggest=suggest)
        form = QFormLayout()
        form.addRow("X (across):", self.x_row)
        form.addRow("Y (down):", self.y_row)
        form.addRow("Z (grids):", self.z_row)
        swaps = QHBoxLayout()  # as A1111's: an axis's setting and values change places with another's
        self.swap_buttons = {}
        for first, second in ("XY", "YZ", "XZ"):
            button = QPushButton(f"Swap {first}/{second}", autoDefault=False)  # Enter makes the plot
            button.setToolTip(f"{first}'s setting and values go to {second}, and {second}'s to {first}")
            button.clicked.connect(lambda _checked=False, pair=first + second: self.swap(*pair))
            swaps.addWidget(button)
            self.swap_buttons[first + second] = button
        swaps.addStretch(1)
        form.addRow("", swaps)
        self.summary = QLabel(wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.make_button = buttons.addButton("Make the plot", QDialogButtonBox.ButtonRole.AcceptRole)
        self.make_button.setDefault(True)
        self.make_button.setToolTip("Queue the plot as one job (Esc on the Generate tab, or Cancel, stops it; the "
                                    "images made stay)")
        buttons.accepted.connect(self.make)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        layout.addWidget(buttons)
        settings = load_settings(paths)  # the axes of the last plot made
        for row, name, values in ((self.x_row, settings.plot_x, settings.plot_x_values),
                                  (self.y_row, settings.plot_y, settings.plot_y_values),
                                  (self.z_row, settings.plot_z, settings.plot_z_values)):
            if name in Axis.values():
                row.set_axis(Axis(name), values)
            row.changed.connect(self.check)
        self.check()

    def rows(self) -> tuple[AxisRow, AxisRow, AxisRow]:
        """The X, Y and Z rows."""
        return self.x_row, self.y_row, self.z_row

    def _row(self, name: str) -> AxisRow:
        return self.rows()["XYZ".index(name)]

    def swap(self, first: str, second: str) -> None:
        """Rows `first` and `second` ("X", "Y" or "Z") change their settings and values (X is never Nothing)."""
        one, other = self._row(first), self._row(second)
        if one is self.x_row and other.axis() is None:
            return
        held = one.axis(), one.values.text()
        one.set_axis(other.axis(), other.values.text())
        other.set_axis(*held)

    def spec(self) -> PlotSpec | None:
        """The plot the rows and the Generate tab's controls describe, each image checked; None (said in the
        dialog) when it cannot be made."""
        try:
            vae_of = self.vae_of()
            styles = self.styles()
            x, y, z = (row.plot_axis(self.find, vae_of, styles) for row in self.rows())
        except AppError:
            self._summarise("", ok=False)
            return None
        request = self.request_now()
        if request is None:
            self._summarise("The Generate tab's settings cannot make an image yet: choose a model and type a prompt "
                            "there.", ok=False)
            return None
        spec = PlotSpec(request, x, y, z)
        try:
            spec.cells()
        except AppError as error:
            self._summarise(str(error), ok=False)
            return None
        sizes = [size for size, axis in zip(spec.shape(), (x, y, z)) if axis is not None]
        count = f"{math.prod(sizes)} images"
        if len(sizes) > 1:
            count = f"{' × '.join(map(str, sizes))} = {count}"
        grids = f", in {sizes[-1]} grids side by side" if z is not None else ""
        self._summarise(f"{count}{grids}, made with the Generate tab's settings, then their grid.", ok=True)
        return spec

    def check(self) -> None:
        for pair, button in self.swap_buttons.items():  # X takes no Nothing: a swap with an empty row waits
            button.setEnabled(pair[0] != "X" or self._row(pair[1]).axis() is not None)
        self.spec()

    def _summarise(self, text: str, ok: bool) -> None:
        self.summary.setText(text)
        self.summary.setStyleSheet("" if ok else ERROR_STYLE)
        self.make_button.setEnabled(ok)

    def make(self) -> None:
        spec = self.spec()
        if spec is None:
            return
        self.submit(spec.fixed())
        kept = {}
        for name, row in zip("xyz", self.rows()):
            axis = row.axis()
            kept[f"plot_{name}"] = axis.value if axis else ""
            kept[f"plot_{name}_values"] = row.values.text().strip() if axis else ""
        save_settings(load_settings(self.paths).replace(**kept), self.paths)
        self.accept()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.check()  # the Generate tab may have changed since it was last open

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self.check()  # back from the Generate tab (the dialog stays open beside it): its settings again
