"""The Generate tab's ControlNet: a picture the image follows, made into what the ControlNet sees.

The picture comes in as the init image's does (drop, Choose…, Paste). The preprocessor makes it the
ControlNet's input: Canny edges of a photo (OpenCV, the model card's thresholds, found on the photo
fitted to the run's size; the request then names the edge map), a photo's depth map or the pose of the
people in it (made by the worker with installed models: Depth Anything; ViTPose with the RT-DETR person
detector; the request names the map), a scribble from a drawing (made by the engine; the request names the
drawing), or the picture as it is (an edge map, depth map, pose or scribble already). The thumbnail shows what
the ControlNet sees. The scale is how strongly it steers (the model card uses 0.5 with canny ControlNets). A
ControlNet Union model follows many kinds of image: for one, a Type list says what the picture is (known from
the preprocessor that made it; a map given as it is needs saying). An inpainting ControlNet
(control_v11p_sd15_inpaint, or a ProMax Union model's repaint type) follows the init image itself with its
masked part left open: with the inpaint preprocessor the box takes the init image, and choosing such a
ControlNet by hand fills an empty box with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QWidget

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.images import InputImages, png_data
from hypersd_desktop.core.vocab import ControlType, MapKind, ModelKind, Preprocessor, architecture_label
from hypersd_desktop.engine.inputs import covered, edge_map
from hypersd_desktop.engine.inspect import union_control_types
from hypersd_desktop.engine.types import ControlSpec
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.control_maps import ControlMaps
from hypersd_desktop.ui.generate_form import refill_models
from hypersd_desktop.ui.init_image import THUMBNAIL, PictureInput
from hypersd_desktop.ui.pictures import read_picture
from hypersd_desktop.worker.batch import CANNY, PictureControl
from hypersd_desktop.worker.protocol import ControlMap

DEPTH, POSE = MapKind.DEPTH.value, MapKind.POSE.value
INPAINT = Preprocessor.INPAINT.value
PREPROCESSORS = (("Canny edges of a photo", CANNY), ("Depth map of a photo", DEPTH),
                 ("Pose of the people in a photo", POSE), ("Scribble from a drawing", Preprocessor.SCRIBBLE.value),
                 ("Inpaint: the init image, its masked part open", INPAINT),
                 ("As it is (edges, a depth map, a pose or a scribble)", Preprocessor.NONE.value))
TYPE_OF_PREPROCESSOR = {CANNY: ControlType.CANNY, DEPTH: ControlType.DEPTH, POSE: ControlType.OPENPOSE,
                        Preprocessor.SCRIBBLE.value: ControlType.SOFTEDGE, INPAINT: ControlType.REPAINT}
# What a single-kind ControlNet's pictures are, read off its name (as its files and the catalog name them:
# control_v11p_sd15_canny, controlnet-depth-sdxl-1.0, sd-controlnet-scribble, thibaud_xl_openpose,
# control-lora-canny-rank128): the preprocessor chosen with it. Kinds with no preprocessor here take their map as
# it is. Of Stability's Control-LoRAs, the sketch model takes a drawing white on black (a scribble) and the recolor
# model a black-and-white photo as it is; a tile model and instruct-pix2pix's take the picture itself. An inpainting
# ControlNet (control_v11p_sd15_inpaint) takes the init image with its masked part open.
PREPROCESSOR_OF_NAME = ((("inpaint",), INPAINT), (("canny",), CANNY), (("depth",), DEPTH), (("openpose", "pose"), POSE),
                        (("scribble", "sketch"), Preprocessor.SCRIBBLE.value),
                        (("lineart", "line_art", "softedge", "hed", "pidi", "normal", "seg", "mlsd", "shuffle",
                          "recolor", "tile", "ip2p"),
                         Preprocessor.NONE.value))
MAP_FAILED = ""  # a map that could not be made: not asked for again until the preprocessor or models change
NO_DEPTH_MODEL = ("A depth map needs a depth model: download Depth Anything V2 Small in the Models tab, or choose "
                  "another preprocessor.")
NO_INIT_IMAGE = ("An inpainting ControlNet repaints the init image: choose an init image above (and paint the part to "
                 "repaint), or another preprocessor.")
NO_POSE_MODELS = ("A pose needs a pose model and a person detector: download ViTPose Base and RT-DETR (person "
                  "detector) in the Models tab, or choose another preprocessor.")


@dataclass(frozen=True)
class MapRecipe:
    """A map the worker makes from the photo: what it is called, the installed models it needs (the map's model,
    then for a pose the person detector), what to do without them, and what the shown map is."""

    name: str
    kinds: tuple[ModelKind, ...]
    missing: str
    shows: str

    def failed_text(self, label: str) -> str:
        return (f"The {self.name} could not be made (the message above says why); choose {label} in the list again "
                "to try again.")


MAP_RECIPES = {
    DEPTH: MapRecipe("depth map", (ModelKind.DEPTH,), NO_DEPTH_MODEL, "the photo's depth, near is light"),
    POSE: MapRecipe("pose", (ModelKind.POSE, ModelKind.DETECTOR), NO_POSE_MODELS,
                    "the pose of the people in the photo, as OpenPose draws it"),
}
MAP_FAILED_TEXT = MAP_RECIPES[DEPTH].failed_text("Depth map of a photo")


def preprocessor_for(model: InstalledModel) -> str | None:
    """The preprocessor for the pictures of a single-kind ControlNet, by its name; None for a Union model (its
    Type says) or a name that does not say."""
    if union_control_types(model.path) is not None:
        return None
    words = f"{model.name} {model.catalog_id or ''} {Path(model.path).name}".lower()
    return next((value for keys, value in PREPROCESSOR_OF_NAME if any(key in words for key in keys)), None)


class ControlBox(PictureInput):
    EMPTY_TEXT = "Drop a picture for a ControlNet to follow"
    CHOOSE_TITLE = "A picture for the ControlNet to follow"

    def __init__(self, inputs: InputImages, library: ModelLibrary, maps: ControlMaps | None = None,
                 parent: QWidget | None = None) -> None:
        self.library = library
        self.maps = maps  # makes depth and pose maps (in the worker); None: no such maps
        # asked for -> the map's digest; None while it is made, MAP_FAILED when it could not be
        self._maps: dict[ControlMap, str | None] = {}
        self.model_box = QComboBox()
        self.model_box.setToolTip("The ControlNet: installed ones for the base model's architecture")
        self.preprocessor = QComboBox()
        for label, value in PREPROCESSORS:
            self.preprocessor.addItem(label, value)
        self.scale = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=0.5, decimals=2)
        self.scale.setPrefix("Scale ")
        self.scale.setToolTip("How strongly the picture steers the image (the model card uses 0.5 for canny)")
        self.type_box = QComboBox()
        self.type_box.setToolTip("What the picture is to the ControlNet Union model")
        rows = (QHBoxLayout(), QHBoxLayout())
        rows[0].addWidget(self.model_box, 1)
        rows[1].addWidget(self.preprocessor, 1)
        rows[1].addWidget(self.type_box, 1)
        self.run_size: tuple[int, int] | None = None  # the run's size, which edges are found at
        self.init: tuple[str | None, str | None] = (None, None)  # the init image and its mask (digests)
        self._edges: dict[tuple[str | None, tuple[int, int] | None], str] = {}  # (picture, size): its edge map
        super().__init__(inputs, extra=(self.scale,), rows=rows, parent=parent)
        self.model_box.currentIndexChanged.connect(lambda _index: (self._follow_model(), self._fill_types(),
                                                                   self.changed.emit()))
        self.model_box.activated.connect(lambda _index: self._follow_init(fill=True))  # chosen by hand
        self.preprocessor.currentIndexChanged.connect(lambda _index: (self._follow_preprocessor(), self._show(),
                                                                      self.changed.emit()))
        self.preprocessor.activated.connect(lambda _index: (self._forget_failed_maps(), self._show()))  # chosen again
        self.type_box.currentIndexChanged.connect(lambda _index: self.changed.emit())
        self._fill_types()
        self.scale.valueChanged.connect(lambda _value: self.changed.emit())
        if maps is not None:
            maps.made.connect(self._map_made)
            maps.failed.connect(self._map_failed)
        self._show()

    def fill_models(self, architecture: str) -> None:
        """List the installed ControlNets for `architecture`, keeping the chosen one where it is listed."""
        self._forget_failed_maps()  # the depth or pose model may be another now
        controlnets = self.library.registry.list(kind=ModelKind.CONTROLNET, architecture=architecture)
        if refill_models(self.model_box, controlnets,
                         f"No ControlNet for {architecture_label(architecture)} installed (Models tab)"):
            self._follow_model()
        self._fill_types()
        self._show()

    def _follow_model(self) -> None:
        """A ControlNet chosen that says what its pictures are (a scribble one, a depth one) takes the preprocessor
        that makes them; the preprocessor can be changed after."""
        model = self.model_box.currentData()
        wanted = preprocessor_for(model) if model is not None else None
        if wanted is not None:
            self.preprocessor.setCurrentIndex(self.preprocessor.findData(wanted))

    def _fill_types(self) -> None:
        """The Type list: shown for a ControlNet Union model, with the types it knows; the choice is kept."""
        model = self.model_box.currentData()
        types = union_control_types(model.path) if model is not None else None
        current = self.type_box.currentData() or TYPE_OF_PREPROCESSOR.get(self.preprocessor.currentData())
        self.type_box.blockSignals(True)
        self.type_box.clear()
        for kind in list(ControlType)[:types or 0]:
            self.type_box.addItem(kind.label, kind)
        self.type_box.setCurrentIndex(max(0, self.type_box.findData(current)))
        self.type_box.blockSignals(False)
        self.type_box.setVisible(types is not None)
        self.preprocessor.setItemText(self.preprocessor.findData(Preprocessor.NONE.value),
                                      "As it is (a map of that type)" if types else PREPROCESSORS[-1][0])

    def _follow_preprocessor(self) -> None:
        """Canny edges, depth maps, poses and scribbles say what they are: the Type list follows the preprocessor
        to them. A map that could not be made is tried again when its preprocessor is chosen again."""
        self._forget_failed_maps()
        kind = TYPE_OF_PREPROCESSOR.get(self.preprocessor.currentData())
        if kind is not None and self.type_box.findData(kind) >= 0:
            self.type_box.setCurrentIndex(self.type_box.findData(kind))
        self._follow_init()

    def set_init(self, digest: str | None, mask: str | None) -> None:
        """The init image and its mask (the Init image box's), which an inpainting ControlNet follows."""
        if (digest, mask) != self.init:
            self.init = (digest, mask)
            self._follow_init()
            if self.preprocessor.currentData() == INPAINT:
                self._show()

    def _follow_init(self, fill: bool = False) -> None:
        """With the inpaint preprocessor, the picture is the init image: a picture shown becomes it, and so does an
        empty box when an inpainting ControlNet is chosen by hand (`fill`)."""
        wanted = self.init[0]
        if (self.preprocessor.currentData() == INPAINT and wanted is not None and self.digest != wanted
                and (fill or self.digest is not None)):
            self.set_digest(wanted)

    def control_type(self) -> ControlType | None:
        """The Type chosen for a ControlNet Union model; None for a single-kind ControlNet."""
        return self.type_box.currentData() if self.type_box.count() else None

    def control(self) -> ControlSpec | None:
        """The request's ControlNet, or None without a picture; `AppError` when no ControlNet is installed."""
        if self.digest is None:
            return None
        model = self.model_box.currentData()
        if model is None:
            raise AppError("The ControlNet picture needs a ControlNet for this base model; install one in the Models "
                           "tab (ControlNet 1.1 Canny for SD1.5, ControlNet Canny for SDXL) or clear the picture.")
        kind = self.preprocessor.currentData()
        if kind == CANNY:
            return ControlSpec(model.path, self._edge_map(self.run_size), self.scale.value(),
                               control_type=self.control_type())
        if kind == INPAINT:  # a Union model's type is repaint (the engine refuses one without it)
            if self.init[0] is None:
                raise AppError(NO_INIT_IMAGE)
            return ControlSpec(model.path, self.init[0], self.scale.value(), preprocessor=Preprocessor.INPAINT)
        if kind in MAP_RECIPES:
            recipe, wanted = MAP_RECIPES[kind], self._wanted_map()
            if wanted is None:
                raise AppError(recipe.missing)
            if self._maps.get(wanted) == MAP_FAILED:
                raise AppError(recipe.failed_text(self.preprocessor.currentText()))
            if self._maps.get(wanted) is None:
                raise AppError(f"The {recipe.name} is still being made; generate again in a moment.")
            return ControlSpec(model.path, self._maps[wanted], self.scale.value(), control_type=self.control_type())
        return ControlSpec(model.path, self.digest, self.scale.value(), preprocessor=kind,
                           control_type=self.control_type())

    def picture_control(self) -> PictureControl | None:
        """How the ControlNet follows each picture of a batch made from pictures, as the box makes its image from its
        own picture (worker/batch.py): by its Canny edges, its depth map or pose (made with the installed models), or
        as a scribble. None for a picture taken as it is (a map made already), and for an inpainting ControlNet, which
        reads the init image, each picture already."""
        kind = self.preprocessor.currentData()
        if kind == CANNY:
            return PictureControl(CANNY)
        if kind == Preprocessor.SCRIBBLE.value:
            return PictureControl()
        models = self._map_models(MAP_RECIPES[kind]) if kind in MAP_RECIPES else None
        return PictureControl(kind, *(model.path for model in models)) if models else None

    def set_control(self, spec: ControlSpec | None) -> None:
        """Show a request's ControlNet (its picture as the request names it: an edge map, or a drawing)."""
        if spec is None:
            self.clear()
            return
        index = next((i for i in range(self.model_box.count()) if self.model_box.itemData(i) is not None
                      and self.model_box.itemData(i).path == spec.model), -1)
        if index >= 0:
            self.model_box.setCurrentIndex(index)
        self.preprocessor.setCurrentIndex(self.preprocessor.findData(spec.preprocessor.value))
        if spec.union_type is not None and self.type_box.findData(spec.union_type) >= 0:
            self.type_box.setCurrentIndex(self.type_box.findData(spec.union_type))
        self.scale.setValue(spec.scale)
        self.set_digest(spec.image)

    def state(self) -> dict:
        """What `restore` brings back after a restart: the picture (a photo, not its edge map) and its settings."""
        model = self.model_box.currentData()
        kind = self.control_type()
        return {"image": self.digest, "model": model.path if model is not None else None,
                "preprocessor": self.preprocessor.currentData(), "type": ControlType(kind).value if kind else None,
                "scale": self.scale.value()}

    def restore(self, state: dict) -> None:
        """Show a `state()` again; a ControlNet no longer installed leaves the one listed."""
        index = next((i for i in range(self.model_box.count()) if self.model_box.itemData(i) is not None
                      and self.model_box.itemData(i).path == state.get("model")), -1)
        if index >= 0:
            self.model_box.setCurrentIndex(index)
        if self.preprocessor.findData(state.get("preprocessor")) >= 0:
            self.preprocessor.setCurrentIndex(self.preprocessor.findData(state.get("preprocessor")))
        kinds = [i for i in range(self.type_box.count()) if ControlType(self.type_box.itemData(i)).value == state.get("type")]
        if kinds:
            self.type_box.setCurrentIndex(kinds[0])
        if isinstance(state.get("scale"), (int, float)):
            self.scale.setValue(state["scale"])
        image = state.get("image")
        self.set_digest(image if isinstance(image, str) else None)

    def _show(self) -> None:
        self._ask_for_map()
        super()._show()
        has_picture = self.digest is not None
        for widget in (self.scale, self.preprocessor, self.type_box):
            widget.setEnabled(has_picture)

    # -- depth and pose maps -----------------------------------------------------------------

    def _map_models(self, recipe: MapRecipe) -> list | None:
        """The installed models `recipe` needs, one of each kind; None when one is missing."""
        models = [next(iter(self.library.registry.list(kind=kind)), None) for kind in recipe.kinds]
        return None if None in models else models

    def _wanted_map(self) -> ControlMap | None:
        """The map the picture needs with the preprocessor chosen and the installed models; None for a preprocessor
        made here, or without a picture or a model."""
        kind = self.preprocessor.currentData()
        models = self._map_models(MAP_RECIPES[kind]) if kind in MAP_RECIPES else None
        if self.digest is None or models is None or self.maps is None:
            return None
        return ControlMap(self.digest, models[0].path, kind, *(model.path for model in models[1:]))

    def _ask_for_map(self) -> None:
        wanted = self._wanted_map()
        if wanted is not None and wanted not in self._maps:
            self._maps[wanted] = None
            self.maps.request(wanted)

    @property
    def reading(self) -> bool:
        """Also while the picture's depth map or pose is being made: the request cannot name it yet."""
        if super().reading:
            return True
        wanted = self._wanted_map()
        return wanted in self._maps and self._maps[wanted] is None

    def waiting_text(self) -> str:
        if super().reading or not self.reading:
            return super().waiting_text()
        return f"Making the {MAP_RECIPES[self.preprocessor.currentData()].name}…"

    def _map_made(self, control_map: ControlMap, digest: str) -> None:
        if control_map in self._maps:
            self._maps[control_map] = digest
            if control_map == self._wanted_map():
                self._show()
                self.changed.emit()

    def _map_failed(self, control_map: ControlMap, message: str) -> None:
        if control_map in self._maps and self._maps[control_map] is None:
            self._maps[control_map] = MAP_FAILED
            if control_map == self._wanted_map():
                self.failed.emit(f"The {MAP_RECIPES[control_map.kind].name} could not be made: {message}")
                self._show()
                self.changed.emit()

    def _forget_failed_maps(self) -> None:
        """Maps that could not be made are asked for again (the preprocessor or the models changed)."""
        self._maps = {key: value for key, value in self._maps.items() if value != MAP_FAILED}

    def shown(self, picture: QImage) -> tuple[QImage, str]:
        """What the ControlNet sees of the picture at the run's size, made here (edges are kept in the input
        store), or in the worker (a depth map or a pose: the photo is shown until it comes)."""
        from hypersd_desktop.engine.preprocess import drawing_mode, scribble

        kind = self.preprocessor.currentData()
        if kind == Preprocessor.NONE.value:
            return picture, "The ControlNet follows this picture as it is"
        if kind == INPAINT:
            return self._inpaint_shown(picture)
        if kind in MAP_RECIPES:
            recipe, wanted = MAP_RECIPES[kind], self._wanted_map()
            if wanted is None:
                return picture, recipe.missing
            if self._maps.get(wanted) == MAP_FAILED:
                return picture, recipe.failed_text(self.preprocessor.currentText())
            if self._maps.get(wanted) is None:
                return picture, f"Making the {recipe.name}…" if wanted in self._maps else ""
            names = ", ".join(model.name for model in self._map_models(recipe))
            return (read_picture(self.inputs.find(self._maps[wanted])),
                    f"What the ControlNet follows: {recipe.shows} ({names})")
        if kind == CANNY:
            data = self.inputs.read(self._edge_map(self.run_size))
        else:  # as the engine makes it, from the drawing fitted to the run
            drawing = self.inputs.open(self.digest, mode=drawing_mode(kind))
            data = png_data(scribble(covered(drawing, self.run_size) if self.run_size else drawing))
        return QImage.fromData(data), "What the ControlNet follows: " + (
            "the picture's edges" if kind == CANNY else "the drawing as a scribble")

    def _inpaint_shown(self, picture: QImage) -> tuple[QImage, str]:
        """The init image with the part its mask paints black (as the ProMax Union model sees it; an inpainting
        ControlNet sees it left out), at twice the thumbnail's size: a phone photo's whole would be marked and
        written as PNG on the GUI thread each time the box is shown."""
        from PIL import Image

        from hypersd_desktop.engine.inputs import mask_of
        from hypersd_desktop.engine.preprocess import inpaint_control

        digest, mask = self.init
        if digest is None:
            return picture, NO_INIT_IMAGE
        init = self.inputs.open(digest, mode="RGB")
        painted = mask_of(self.inputs.open(mask, mode="RGBA")) if mask is not None else None
        if painted is None or painted.size != init.size:
            return (read_picture(self.inputs.find(digest)),
                    "What the ControlNet follows: the init image; paint a mask to leave the part to repaint open")
        init.thumbnail((2 * THUMBNAIL[0], 2 * THUMBNAIL[1]))
        painted = painted.resize(init.size)
        marked = Image.fromarray((inpaint_control(init, painted, union=True)[0] * 255).round().astype("uint8"))
        return (QImage.fromData(png_data(marked)),
                "What the ControlNet follows: the init image, the masked part (black) left open for it to repaint")

    def set_run_size(self, size: tuple[int, int] | None) -> None:
        """The size the run has (the Generate tab's, or the init image's): Canny edges are found at it."""
        if size != self.run_size:
            self.run_size = size
            if self.digest is not None and self.preprocessor.currentData() in (CANNY, Preprocessor.SCRIBBLE.value):
                self._show()

    def _edge_map(self, size: tuple[int, int] | None) -> str:
        """The digest of the picture's edges at `size` (`inputs.edge_map`), made once per picture and size."""
        key = (self.digest, size)
        if key not in self._edges:
            self._edges[key] = self.inputs.add(png_data(edge_map(self.inputs.open(self.digest), size)), "The edge map")
        return self._edges[key]
