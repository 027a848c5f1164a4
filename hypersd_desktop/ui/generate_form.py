"""The generation controls' shared choices and rules: size presets, the Hyper-SD and VAE lists, seeds,
and what each Hyper-SD recipe allows (steps, guidance, eta, negative prompt).

Used by the Generate tab and the batch dialog, so both offer the same choices by the same rules.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLineEdit, QSpinBox, QToolButton, QWidget

from hypersd_desktop.core.vocab import Architecture, ModelKind, Scheduler, architecture_label
from hypersd_desktop.engine.inspect import INPAINTING_CHANNELS, base_has_vae, base_in_channels
from hypersd_desktop.engine.recipes import RECIPES_BY_ID, Recipe, recipe_for_checkpoint
from hypersd_desktop.engine.types import MAX_SEED, MAX_STEPS, LoraSpec
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.models.registry import InstalledModel

SIZE_PRESETS = {
    Architecture.SD15: [("512 × 512 (1:1)", 512, 512), ("512 × 768 (2:3)", 512, 768), ("768 × 512 (3:2)", 768, 512),
             ("576 × 1024 (9:16)", 576, 1024), ("1024 × 576 (16:9)", 1024, 576), ("640 × 512 (5:4)", 640, 512)],
    Architecture.SDXL: [("1024 × 1024 (1:1)", 1024, 1024), ("832 × 1216 (2:3)", 832, 1216), ("1216 × 832 (3:2)", 1216, 832),
             ("768 × 1344 (9:16)", 768, 1344), ("1344 × 768 (16:9)", 1344, 768), ("1152 × 896 (5:4)", 1152, 896)],
}
MOST_HYPER_STEPS = 12  # a unified Hyper-SD LoRA is made for 1 to 8; a few more show what they do
RANDOM_SEEDS = 2**32  # a new random seed is below this, as other tools pick them: short enough to read and type


class _SeedValidator(QValidator):
    def validate(self, text: str, position: int):
        if text == "":
            return QValidator.State.Intermediate, text, position
        if not text.isdigit():
            return QValidator.State.Invalid, text, position
        state = QValidator.State.Acceptable if int(text) <= MAX_SEED else QValidator.State.Invalid
        return state, text, position


class SeedBox(QLineEdit):
    """A seed from 0 to 2^63 - 1, the engine's whole range: a spin box holds only 32-bit numbers,
    and seeds reused from ComfyUI or Fooocus images are often far larger."""

    valueChanged = Signal(object)  # an int up to 2^63 - 1: Signal(int) carries 32 bits and overflows

    def __init__(self, value: int = 0):
        super().__init__()
        self.setValidator(_SeedValidator(self))
        self.setText(str(value))
        self.textChanged.connect(lambda _text: self.valueChanged.emit(self.value()))

    def value(self) -> int:
        return int(self.text()) if self.text().isdigit() else 0

    def setValue(self, value: int) -> None:  # noqa: N802 - the spin box's name, so both read alike
        self.setText(str(max(0, min(int(value), MAX_SEED))))


VARIATION_STRENGTH = 0.25  # "Variations of this image": close to it, and each plainly its own


class VariationRow(QWidget):
    """A1111's variation seed: a strength (Off at 0) and the seed the image is varied by, which a new random one
    replaces after each Generate (the seed itself stays: variations are of its image)."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.strength = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, value=0.0, decimals=2)
        self.strength.setSpecialValueText("Off")
        self.strength.setPrefix("Strength ")
        self.strength.setToolTip("Vary the seed's image by a second seed's starting noise, this far (A1111's "
                                 "variation seed): 0.1–0.3 makes close variations of it, 1 is the second seed's own "
                                 "image. From an init image, the noise added to it is varied.")
        self.seed = SeedBox(random.randrange(RANDOM_SEEDS))
        self.seed.setToolTip("The seed the image is varied by; each Generate takes a new one")
        self.random = QToolButton(text="Random")
        self.random.setToolTip("New random variation seed")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.strength, self.seed, self.random):
            layout.addWidget(widget)
        self.random.clicked.connect(self.renew)
        self.strength.valueChanged.connect(lambda _value: (self._follow(), self.changed.emit()))
        self.seed.valueChanged.connect(lambda _value: self.changed.emit())
        self._follow()

    def _follow(self) -> None:
        on = self.strength.value() > 0
        self.seed.setEnabled(on)
        self.random.setEnabled(on)

    def renew(self) -> None:
        self.seed.setValue(random.randrange(RANDOM_SEEDS))

    def request_fields(self) -> dict:
        """The request's variation fields: none while Off."""
        if self.strength.value() <= 0:
            return {}
        return {"variation_seed": self.seed.value(), "variation_strength": self.strength.value()}

    def set_variation(self, seed: int | None, strength: float) -> None:
        """Show a request's (or an image's) variation; Off for none."""
        self.strength.setValue(strength if seed is not None else 0.0)
        if seed is not None:
            self.seed.setValue(seed)


def base_model_label(model: InstalledModel) -> str:
    """A base model in a list: its name and architecture, "inpainting" for an inpainting model, "no VAE" for
    one shared without a VAE, and "files missing" for one whose files are gone from where it was imported."""
    if not Path(model.path).exists():
        return f"{model.name}  ({architecture_label(model.architecture or '')}, files missing)"
    inpainting = ", inpainting" if base_in_channels(model.path) == INPAINTING_CHANNELS else ""
    no_vae = ", no VAE" if not base_has_vae(model.path) else ""
    return f"{model.name}  ({architecture_label(model.architecture or '')}{inpainting}{no_vae})"


NO_MODEL_HINT = ("No model yet: download one in the Models tab (Ctrl+4),\n"
                 "or import the files you have (File → Import models…)")


def fill_base_models(box: QComboBox, library: ModelLibrary) -> None:
    """The installed base models with their architecture, keeping the chosen one; no signal while filling."""
    current = box.currentData()
    box.blockSignals(True)
    box.clear()
    for model in library.registry.list(kind=ModelKind.BASE):
        box.addItem(base_model_label(model), model)
    here = next((i for i in range(box.count()) if Path(box.itemData(i).path).exists()), 0)  # not a moved one
    index = next((i for i in range(box.count()) if current is not None and box.itemData(i).id == current.id), here)
    box.setCurrentIndex(index)
    box.blockSignals(False)


def fill_hyper_box(box: QComboBox, library: ModelLibrary, architecture: str,
                   model: InstalledModel | None = None) -> int:
    """"None" and the installed Hyper-SD LoRAs and UNets for an architecture; returns how many of those. A base
    `model` that is a Hyper-SD file itself (ByteDance's ComfyUI checkpoint of the 1-step SDXL UNet) offers only
    its own recipe, and 0 is returned: another on top would not combine, and without it the model is no plain
    one."""
    box.clear()
    built_in = recipe_for_checkpoint(model.path) if model is not None and model.kind == ModelKind.BASE else None
    if built_in is not None:
        box.addItem(f"Built into the model ({built_in.label})", dataclasses.replace(model, recipe=built_in.id))
        return 0
    box.addItem("None (plain model)", None)
    hyper = library.hyper_files(architecture)
    for entry in hyper:
        box.addItem(entry.recipe, entry)
    return len(hyper)


def fill_vae_box(box: QComboBox, library: ModelLibrary, model: InstalledModel | None) -> None:
    """"Automatic" (naming what it picks for `model`, see `ModelLibrary.vae_for`) and the installed VAEs `model`
    may use, keeping the chosen one where it is still offered; no signal while filling."""
    chosen = box.currentData()
    box.blockSignals(True)
    box.clear()
    architecture = model.architecture if model is not None and model.architecture else Architecture.SD15
    automatic = library.vae_for(model.path, architecture) if model is not None else None
    if automatic is not None:
        installed = library.registry.find(automatic)
        picked = installed.name if installed is not None else Path(automatic).name
    else:
        picked = "the model's own" if model is None or base_has_vae(model.path) else "the model has none"
    box.addItem(f"Automatic ({picked})", None)
    box.setItemData(0, "A VAE beside the checkpoint named <checkpoint>.vae.safetensors (as AUTOMATIC1111 looks for "
                       "one); else the model's own VAE, or for SDXL the fp16-safe SDXL VAE where installed; for a "
                       "checkpoint without a VAE, the catalog's VAE or another installed for its architecture.",
                    Qt.ItemDataRole.ToolTipRole)
    for vae in library.vaes_for(architecture):
        box.addItem(vae.name, vae.path)
    box.setCurrentIndex(max(box.findData(chosen), 0) if chosen is not None else 0)
    box.blockSignals(False)


def fill_upscaler_box(box: QComboBox, library: ModelLibrary) -> None:
    """"Lanczos" and the installed upscaler models, keeping the chosen one where it is still installed; no signal
    while filling."""
    chosen = box.currentData()
    box.blockSignals(True)
    box.clear()
    box.addItem("Lanczos (resampling)", None)
    box.setItemData(0, "Enlarges by resampling the picture: quick, and soft; the repainting adds the detail.",
                    Qt.ItemDataRole.ToolTipRole)
    for upscaler in library.registry.list(ModelKind.UPSCALER):
        box.addItem(upscaler.name, upscaler.path)
        box.setItemData(box.count() - 1, f"{upscaler.path}\nAn upscaler model enlarges with detail of its own "
                        "before the picture is repainted; on a CPU it takes a while (the status bar counts its "
                        "tiles).", Qt.ItemDataRole.ToolTipRole)
    box.setCurrentIndex(max(box.findData(chosen), 0) if chosen is not None else 0)
    box.blockSignals(False)


def refill_models(box: QComboBox, models: list[InstalledModel], none_text: str) -> bool:
    """List `models` in `box` (`none_text` where there are none), keeping the chosen one where it is still listed,
    without a change signal while the list is made; True where the chosen model is another now."""
    current = box.currentData()
    box.blockSignals(True)
    box.clear()
    for model in models:
        box.addItem(model.name, model)
    if not box.count():
        box.addItem(none_text, None)
    index = next((i for i in range(box.count()) if current is not None
                  and box.itemData(i) is not None and box.itemData(i).id == current.id), 0)
    box.setCurrentIndex(index)
    box.blockSignals(False)
    chosen = box.currentData()
    return chosen is not None and (current is None or chosen.id != current.id)


def select_path(box: QComboBox, path: str | None) -> None:
    """Choose the model at `path` in a list of paths whose first item is None (the VAE list's "Automatic", the
    Upscaler list's "Lanczos"): that first item for None, or for a path the list does not offer."""
    box.setCurrentIndex(max(box.findData(path), 0) if path is not None else 0)


def fill_sizes(box: QComboBox, architecture: str) -> None:
    box.clear()
    for label, width, height in SIZE_PRESETS.get(architecture, SIZE_PRESETS[Architecture.SD15]):
        box.addItem(label, (width, height))


def select_size(box: QComboBox, width: int, height: int, note: str = "") -> None:
    """Choose a size, adding it to the list when it is not one of the presets."""
    index = next((i for i in range(box.count()) if box.itemData(i) == (width, height)), -1)
    if index < 0:
        box.addItem(f"{width} × {height}{note}", (width, height))
        index = box.count() - 1
    box.setCurrentIndex(index)


@dataclass(frozen=True)
class RecipeRules:
    """What the generation controls allow with the chosen Hyper-SD file (`recipe` None: a plain model).

    One set of rules for the Generate tab and the batch dialog.
    """

    recipe: Recipe | None

    @classmethod
    def of(cls, hyper: InstalledModel | None) -> RecipeRules:
        return cls(RECIPES_BY_ID.get(hyper.recipe) if hyper is not None and hyper.recipe else None)

    @property
    def uses_guidance(self) -> bool:
        return self.recipe is None or self.recipe.uses_guidance

    @property
    def uses_eta(self) -> bool:
        return self.recipe is not None and self.recipe.scheduler == Scheduler.TCD

    @property
    def steps_free(self) -> bool:
        """Whether the step count may be chosen (a plain model, or a unified LoRA's 1–8)."""
        return self.recipe is None or self.recipe.unified

    @property
    def default_steps(self) -> int | None:
        return self.recipe.default_steps if self.recipe is not None else None

    @property
    def max_steps(self) -> int:
        """A plain model runs the 20 to 50 steps it was made for; a Hyper-SD file a few past its own (the planner
        warns beyond them)."""
        return MAX_STEPS if self.recipe is None else MOST_HYPER_STEPS

    @property
    def steps_hint(self) -> str:
        """What steps to choose, or why they cannot be chosen (a tooltip: a greyed-out box says nothing itself)."""
        if self.recipe is None:
            return f"A plain model makes its best images in 20 to 50 steps (up to {MAX_STEPS})."
        low, high = self.recipe.steps
        if self.steps_free:
            return f"{self.recipe.label} is made for {low} to {high} steps (up to {MOST_HYPER_STEPS}, to compare)."
        return (f"{self.recipe.label} is trained for exactly {low} step{'' if low == 1 else 's'}; a unified Hyper-SD "
                "LoRA (the 1-step one) lets you choose 1 to 8.")

    def fit_steps(self, box: QSpinBox) -> None:
        """`box`'s range, value and tooltip as these rules have them, without signalling the value's change."""
        box.blockSignals(True)
        box.setMaximum(self.max_steps)
        if not self.steps_free:
            box.setValue(self.default_steps)
        box.setEnabled(self.steps_free)
        box.setToolTip(self.steps_hint)
        box.blockSignals(False)

    @property
    def least_strength(self) -> float:
        """The least strength an init image is repainted at: with fixed timesteps (the 1-step UNet's 800), one of
        them must run."""
        timesteps = self.recipe.timesteps if self.recipe is not None else None
        return 1 / len(timesteps) if timesteps else 0.0

    def negative_applies(self, guidance: float) -> bool:
        """A negative prompt does something only with classifier-free guidance above 1."""
        return self.uses_guidance and guidance > 1.0

    def guidance_for(self, guidance: float) -> float:
        """`guidance` moved into what the recipe was trained with (0 for the guidance-free ones)."""
        if self.recipe is None:
            return guidance
        if not self.recipe.uses_guidance:
            return 0.0
        return self.recipe.guidance if guidance < self.recipe.guidance_range[0] else guidance


def hyper_parts(hyper: InstalledModel | None) -> tuple[str | None, tuple[LoraSpec, ...]]:
    """The UNet override and the LoRAs a chosen Hyper-SD file puts into a request."""
    if hyper is None or hyper.kind == ModelKind.BASE:  # none, or the recipe built into the base model
        return None, ()
    if hyper.kind == ModelKind.UNET:
        return hyper.path, ()
    return None, (LoraSpec(hyper.path, 1.0),)
