"""The Generate tab's IP-Adapter: a picture the image takes after, as it takes after the prompt's words.

The picture comes in as the init image's does (drop, Choose…, Paste). The IP-Adapter is chosen from the installed
ones for the base model (an adapter whose file does not say which model it is for is listed for both); the image
encoder it reads the picture with is the installed one it was trained with (`ModelLibrary.image_encoder_for`),
named under the thumbnail, and where none is installed, the box says which one to install and where it is. The
scale is how much the picture counts beside the prompt (0.6 by default: both; 1: the picture most).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QWidget

from hypersd_desktop.core.errors import AppError, ModelFormatError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.vocab import ModelKind, architecture_label
from hypersd_desktop.engine.ip_adapter_files import adapter_need, no_encoder
from hypersd_desktop.engine.types import IP_ADAPTER_SCALE, IPAdapterSpec
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.generate_form import refill_models
from hypersd_desktop.ui.init_image import PictureInput

CLEAR_IT = "clear the IP-Adapter's picture"


class ReferenceBox(PictureInput):
    EMPTY_TEXT = "Drop a picture for the image to take after (IP-Adapter)"
    CHOOSE_TITLE = "A picture for the image to take after"

    def __init__(self, inputs: InputImages, library: ModelLibrary, parent: QWidget | None = None) -> None:
        self.library = library
        self.model_box = QComboBox()
        self.model_box.setToolTip("The IP-Adapter: installed ones for the base model")
        self.scale = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=IP_ADAPTER_SCALE, decimals=2)
        self.scale.setPrefix("Scale ")
        self.scale.setToolTip("How much the picture counts beside the prompt: about 0.5 mixes both, 1 follows the "
                              "picture most")
        row = QHBoxLayout()
        row.addWidget(self.model_box, 1)
        super().__init__(inputs, extra=(self.scale,), rows=(row,), parent=parent)
        self.model_box.currentIndexChanged.connect(lambda _index: (self._show(), self.changed.emit()))
        self.scale.valueChanged.connect(lambda _value: self.changed.emit())
        self._show()

    def fill_models(self, architecture: str) -> None:
        """List the installed IP-Adapters for `architecture` and those that do not say, keeping the chosen one."""
        refill_models(self.model_box, [model for model in self.library.registry.list(kind=ModelKind.IP_ADAPTER)
                                       if model.architecture in (None, architecture)],
                      f"No IP-Adapter for {architecture_label(architecture)} installed (Models tab)")
        self._show()

    def _encoder(self, adapter: InstalledModel) -> InstalledModel:
        """The installed encoder `adapter` reads with; `AppError` saying what to install where there is none."""
        try:
            found = self.library.image_encoder_for(adapter.path)
            if found is None:
                raise AppError(no_encoder(adapter.path, adapter_need(adapter.path), CLEAR_IT))
        except (OSError, ModelFormatError) as error:
            raise AppError(f"The IP-Adapter {adapter.name} cannot be read ({error}); choose another or "
                           f"{CLEAR_IT}.") from None
        return found

    def ip_adapter(self) -> IPAdapterSpec | None:
        """The request's IP-Adapter, or None without a picture; `AppError` when none is installed for the base model
        or the encoder it reads with is missing."""
        if self.digest is None:
            return None
        adapter = self.model_box.currentData()
        if adapter is None:
            raise AppError("The IP-Adapter's picture needs an IP-Adapter for this base model; install one in the "
                           f"Models tab (IP-Adapter (SD1.5) or IP-Adapter (SDXL, ViT-H), with the image encoder) "
                           f"or {CLEAR_IT}.")
        return IPAdapterSpec(adapter.path, self._encoder(adapter).path, self.digest, self.scale.value())

    def set_ip_adapter(self, spec: IPAdapterSpec | None) -> list[str]:
        """Show a request's IP-Adapter: its picture, adapter (where installed) and scale; what of it is not here, in
        words for the reuse banner."""
        if spec is None:
            self.clear()
            return []
        missing = []
        if not self._choose_path(spec.model):
            missing.append(f"The IP-Adapter {Path(spec.model).name} of this request is not installed here; the one "
                           "listed runs instead (install it in the Models tab to match).")
        self.scale.setValue(spec.scale)
        self.set_digest(spec.image)
        if self.digest is None:
            missing.append("The IP-Adapter's picture of this request is no longer in the input store; this runs "
                           "without it.")
        return missing

    def state(self) -> dict:
        """What `restore` brings back after a restart."""
        model = self.model_box.currentData()
        return {"image": self.digest, "model": model.path if model is not None else None, "scale": self.scale.value()}

    def restore(self, state: dict) -> None:
        self._choose_path(state.get("model"))
        if isinstance(state.get("scale"), (int, float)):
            self.scale.setValue(state["scale"])
        image = state.get("image")
        self.set_digest(image if isinstance(image, str) else None)

    def _choose_path(self, path: object) -> bool:
        """Choose the listed adapter at `path`; False where none is."""
        index = next((i for i in range(self.model_box.count()) if self.model_box.itemData(i) is not None
                      and self.model_box.itemData(i).path == path), -1)
        if index >= 0:
            self.model_box.setCurrentIndex(index)
        return index >= 0

    def _show(self) -> None:
        super()._show()
        self.scale.setEnabled(self.digest is not None)

    def shown(self, picture: QImage) -> tuple[QImage, str]:
        adapter = self.model_box.currentData()
        if adapter is None:
            return picture, "No IP-Adapter for this base model is installed; install one in the Models tab."
        try:
            encoder = self._encoder(adapter)
        except AppError as error:
            return picture, str(error)
        return picture, f"The image takes after this picture, read by {encoder.name}"
