"""The Generate tab's ControlNet picture: Canny edges made in the window (the request names the edge map),
a drawing named as it is with the scribble preprocessor, or a picture as it is; reuse brings it back."""

from __future__ import annotations

import io
import shutil
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps
from PySide6.QtCore import Qt

from hypersd_desktop.core.vocab import Preprocessor
from hypersd_desktop.engine.preprocess import canny
from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.gallery.formats import parse_text
from hypersd_desktop.gallery.formats.common import other_passes
from hypersd_desktop.ui.generate_form import select_size
from ui_helpers import WAIT


def made_through_the_worker(qtbot, parts) -> str:
    """Generate, wait for the job to end, and give the newest result's path; the window says nothing went wrong."""
    ended = []
    parts.bridge.finished.connect(ended.append)
    parts.bridge.failed.connect(ended.append)
    parts.window.generate()
    qtbot.waitUntil(lambda: bool(ended), timeout=WAIT)
    assert not parts.window.errors.text()
    return parts.window.results.item(0).data(Qt.ItemDataRole.UserRole)


def photo(path, size=64):
    image = Image.new("RGB", (size, size), (40, 60, 90))
    ImageDraw.Draw(image).ellipse((12, 12, 44, 44), fill=(230, 200, 60))
    image.save(path)
    return path


def test_a_photo_becomes_canny_edges_the_request_names_and_reuse_brings_back(qtbot, idle_app, tiny_sd15, tmp_path):
    import tiny_models

    window = idle_app.window
    window.prompt.setPlainText("a sunflower")
    box = window.control_image
    assert not box.scale.isEnabled() and window.build_request().controls == ()
    assert box.load_file(photo(tmp_path / "photo.png"))
    assert window.build_request(quiet=True) is None  # no ControlNet installed: said, not guessed
    window.build_request()
    assert "needs a ControlNet" in window.errors.text()

    controlnet = tiny_models.save_controlnet(tiny_sd15, tmp_path / "control_v11p_sd15_canny")
    idle_app.library.import_path(controlnet)
    window.models.models_changed.emit()
    assert box.model_box.currentText() == "control_v11p_sd15_canny"
    box.scale.setValue(0.5)
    request = window.build_request()
    (control,) = request.controls
    assert (control.scale, control.preprocessor, request.mode) == (0.5, Preprocessor.NONE, "txt2img")
    edges = np.asarray(Image.open(io.BytesIO(box.inputs.read(control.image))))
    size = window.size_box.currentData()  # found at the run's size, which the photo is fitted to first
    assert np.array_equal(edges, np.asarray(canny(ImageOps.fit(Image.open(tmp_path / "photo.png"), size,
                                                               Image.Resampling.LANCZOS))))
    assert "edges" in box.caption.text()
    window.hires_scale.setValue(2.0)  # a Hires fix goes with a ControlNet (both passes follow it), as in A1111
    assert window.hires_scale.isEnabled() and window.build_request().hires_scale == 2.0
    window.hires_scale.setValue(1.0)

    box.preprocessor.setCurrentIndex(box.preprocessor.findData("scribble"))
    (drawn,) = window.build_request().controls
    assert drawn.preprocessor == Preprocessor.SCRIBBLE and drawn.image == box.digest  # the drawing itself

    box.clear()
    assert window.build_request().controls == ()
    window.apply_request(request)
    assert window.build_request() == request
    assert GenerationRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize("file_name", ["sd-controlnet-scribble", "control_lora_rank128_v11p_sd15_scribble_fp16"])
def test_a_drawing_with_a_controlnet_runs_through_the_worker(qtbot, parts, tiny_sd15, tmp_path, file_name):
    """A whole ControlNet, and a Control-LoRA (as ComfyUI publishes SD1.5's) the worker makes from the UNet."""
    import tiny_models
    from diffusers import UNet2DConditionModel

    window = parts.window
    if file_name.startswith("control_lora"):
        unet = UNet2DConditionModel.from_pretrained(tiny_sd15, subfolder="unet")
        made = tiny_models.save_control_lora(unet, tmp_path / f"{file_name}.safetensors")
    else:
        made = tiny_models.save_controlnet(tiny_sd15, tmp_path / file_name)
    parts.library.import_path(made)
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)  # the model lists were refilled: the quick size again
    drawing = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(drawing).line((8, 8, 56, 40), fill="black", width=5)
    drawing.save(tmp_path / "drawing.png")
    box = window.control_image
    assert box.model_box.currentText() == file_name and box.preprocessor.currentData() == "scribble"  # by its name
    assert box.load_file(tmp_path / "drawing.png")
    (control,) = window.build_request().controls
    assert control.model.startswith(str(made))  # a folder's: its weights file
    window.prompt.setPlainText("a kite")
    path = made_through_the_worker(qtbot, parts)
    shown = made.name if made.is_file() else file_name
    with Image.open(path) as image:
        assert image.size == (64, 64)
        parameters = image.text["parameters"]  # as sd-webui-controlnet writes a unit, which other tools read
    assert (f'ControlNet 0: "Module: scribble, Model: {shown}, Weight: {control.scale:g}, Guidance Start: 0, '
            'Guidance End: 1"') in parameters
    assert other_passes(parse_text(parameters)) == ["ControlNet (scribble)"]
    browser = window.browser  # the gallery's large view says what steered it
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=WAIT)
    browser.viewer.show_record(browser.model.record(0))
    text = browser.viewer.details.toPlainText()
    assert f"\nAlso made with\nthe ControlNet {shown} (scale {control.scale:g}, a drawing as a scribble)\n" in text


def test_an_inpainting_controlnet_follows_the_init_image_and_its_mask_through_the_worker(qtbot, parts, tiny_sd15,
                                                                                       tmp_path):
    """control_v11p_sd15_inpaint takes the inpaint preprocessor by its name; it is switched on by choosing it by hand
    (not by its being first in the list), takes the init image, shows the masked part black, follows another init
    image, and says what to do without one. The image is made, written as an inpaint_only unit, and reused."""
    import tiny_models
    from pictures import init_picture, mask_picture, png

    from hypersd_desktop.ui.control_image import NO_INIT_IMAGE

    window, box = parts.window, parts.window.control_image
    made = tiny_models.save_controlnet(tiny_sd15, tmp_path / "control_v11p_sd15_inpaint")
    parts.library.import_path(made)
    window.models.models_changed.emit()
    window.prompt.setPlainText("a kite")
    assert box.model_box.currentText() == "control_v11p_sd15_inpaint" and box.preprocessor.currentData() == "inpaint"
    init_picture().save(tmp_path / "init.png")
    assert window.init_image.load_file(tmp_path / "init.png")
    window.init_image.set_mask(png(mask_picture()))
    assert box.digest is None and window.build_request().controls == ()  # listed first: not switched on

    box.model_box.activated.emit(box.model_box.currentIndex())  # chosen by hand
    init = window.init_image.digest
    assert box.digest == init
    (control,) = window.build_request().controls
    assert (control.image, control.preprocessor) == (init, Preprocessor.INPAINT)
    assert control.model.startswith(str(made))  # a folder's: its weights file
    assert "masked part (black)" in box.caption.text()
    shown = box.thumbnail.pixmap().toImage()
    scale = shown.width() / 64
    assert shown.pixelColor(int(36 * scale), int(32 * scale)).value() < 10  # inside the mask
    assert shown.pixelColor(int(4 * scale), int(60 * scale)).value() > 40  # the init image's own

    with Image.open(made_through_the_worker(qtbot, parts)) as image:
        assert image.size == (64, 64) and np.asarray(image).std() > 5
        assert 'ControlNet 0: "Module: inpaint_only, Model: control_v11p_sd15_inpaint' in image.text["parameters"]
    browser = window.browser
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=WAIT)
    browser.viewer.show_record(browser.model.record(0))
    assert "the init image, the masked part left open" in browser.viewer.details.toPlainText()

    request = window.build_request()
    init_picture().rotate(90).save(tmp_path / "other.png")
    assert window.init_image.load_file(tmp_path / "other.png")
    assert box.digest == window.init_image.digest != init  # the box follows the init image
    window.init_image.clear()
    window.build_request()
    assert NO_INIT_IMAGE in window.errors.text()
    window.apply_request(request)
    assert window.build_request() == request


def test_two_controlnets_steer_one_image_and_come_back_on_reuse(qtbot, parts, tiny_sd15, tmp_path):
    """"Add a ControlNet" (offered once the first has a picture) adds a box of its own: both steer the image, each
    written as its unit; reuse brings both back, and a request of more than three says which ones run."""
    import dataclasses

    import tiny_models

    window, stack = parts.window, parts.window.control_stack
    for name in ("control_v11p_sd15_canny", "sd-controlnet-scribble"):
        parts.library.import_path(tiny_models.save_controlnet(tiny_sd15, tmp_path / name))
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)
    window.prompt.setPlainText("a kite over a field")
    first = window.control_image
    assert stack.add_button.isHidden()  # nothing to add to yet
    first.model_box.setCurrentIndex(first.model_box.findText("control_v11p_sd15_canny"))
    assert first.load_file(photo(tmp_path / "photo.png"))
    assert not stack.add_button.isHidden()
    stack.add_button.click()
    second = stack.boxes[1]
    second.model_box.setCurrentIndex(second.model_box.findText("sd-controlnet-scribble"))
    drawing = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(drawing).line((8, 8, 56, 40), fill="black", width=5)
    drawing.save(tmp_path / "drawing.png")
    assert second.load_file(tmp_path / "drawing.png")
    second.scale.setValue(0.7)
    request = window.build_request()
    assert [(c.preprocessor, c.scale) for c in request.controls] == [(Preprocessor.NONE, 0.5),
                                                                      (Preprocessor.SCRIBBLE, 0.7)]
    assert request.controls[1].image == second.digest

    with Image.open(made_through_the_worker(qtbot, parts)) as image:
        parameters = image.text["parameters"]
    assert 'ControlNet 0: "Module: none, Model: control_v11p_sd15_canny, Weight: 0.5' in parameters
    assert 'ControlNet 1: "Module: scribble, Model: sd-controlnet-scribble, Weight: 0.7' in parameters

    stack.remove_box(second)
    assert len(stack.boxes) == 1 and len(window.build_request().controls) == 1
    window.apply_request(request)
    assert len(stack.boxes) == 2 and window.build_request() == request
    four = request.replace(controls=(*request.controls, *(dataclasses.replace(request.controls[0], scale=s)
                                                          for s in (0.2, 0.3))))
    window.apply_request(four)
    assert len(stack.boxes) == 3 and window.build_request().controls == four.controls[:3]
    assert "This request has 4 ControlNets; the window runs 3" in window.warnings.text()
    assert stack.add_button.isHidden()  # three at most
    window.apply_request(request.replace(controls=()))
    assert len(stack.boxes) == 1 and window.build_request().controls == ()


def test_a_union_controlnet_asks_what_the_picture_is(qtbot, idle_app, tiny_sdxl, union_controlnets, controlnets,
                                                    tmp_path):
    """A ControlNet Union model shows a Type list with the types it knows, following the preprocessor (canny,
    scribble) and chosen for a picture given as it is; a single-kind ControlNet shows none. Reuse brings it back."""
    import shutil

    from hypersd_desktop.core.vocab import ControlType
    from hypersd_desktop.models.registry import InstalledModel

    window = idle_app.window
    idle_app.library.registry.add(InstalledModel(
        id="sdxl-base", name="SDXL base", kind="base", architecture="sdxl", layout="diffusers", path=str(tiny_sdxl),
        size=1, sha256=None, short_hash=None, source="import-reference", owned=False))
    union = tmp_path / "controlnet-union-sdxl-1.0"  # xinsir's folder: the first version's file and ProMax's
    shutil.copytree(union_controlnets[6], union)
    shutil.copy(union_controlnets[8] / "diffusion_pytorch_model.safetensors",
                union / "diffusion_pytorch_model_promax.safetensors")
    shutil.copytree(controlnets["sdxl"], tmp_path / "controlnet-canny-sdxl-1.0")
    for folder in (union, tmp_path / "controlnet-canny-sdxl-1.0"):
        idle_app.library.import_path(folder)
    window.reload_models()
    window.model_box.setCurrentIndex(next(i for i in range(window.model_box.count())
                                          if window.model_box.itemData(i).id == "sdxl-base"))
    window.models.models_changed.emit()
    box = window.control_image
    names = [box.model_box.itemText(i) for i in range(box.model_box.count())]
    assert names == ["controlnet-canny-sdxl-1.0", "controlnet-union-sdxl-1.0", "controlnet-union-sdxl-1.0 promax"]
    window.prompt.setPlainText("a sunflower")
    assert box.load_file(photo(tmp_path / "photo.png"))

    as_it_is = box.preprocessor.findData("none")
    box.model_box.setCurrentIndex(0)
    assert box.type_box.isHidden() and window.build_request().controls[0].control_type is None
    assert box.preprocessor.itemText(as_it_is) == "As it is (edges, a depth map, a pose or a scribble)"
    box.model_box.setCurrentIndex(1)
    assert not box.type_box.isHidden() and box.type_box.count() == 6  # no tile or repaint before ProMax
    assert box.preprocessor.itemText(as_it_is) == "As it is (a map of that type)"
    assert window.build_request().controls[0].control_type == ControlType.CANNY  # Canny edges say what they are
    box.preprocessor.setCurrentIndex(box.preprocessor.findData("scribble"))
    assert box.type_box.currentData() == ControlType.SOFTEDGE
    box.preprocessor.setCurrentIndex(box.preprocessor.findData("none"))
    box.type_box.setCurrentIndex(box.type_box.findData(ControlType.DEPTH))
    box.model_box.setCurrentIndex(2)
    assert box.type_box.count() == 8 and box.type_box.currentData() == ControlType.DEPTH  # kept
    assert box.type_box.itemText(6) == "Tile"
    request = window.build_request()
    (control,) = request.controls
    assert (control.control_type, control.preprocessor, control.image) == (ControlType.DEPTH, "none", box.digest)
    assert control.model.endswith("diffusion_pytorch_model_promax.safetensors")

    box.type_box.setCurrentIndex(box.type_box.findData(ControlType.OPENPOSE))
    box.model_box.setCurrentIndex(0)
    window.apply_request(request)
    assert box.model_box.currentIndex() == 2 and box.type_box.currentData() == ControlType.DEPTH
    assert window.build_request() == request
    kept = box.state()  # as the session keeps it across a restart (ui/session.py)
    box.clear()
    box.model_box.setCurrentIndex(0)
    box.restore(kept)
    assert window.build_request() == request


def test_an_sdxl_inpainting_model_with_a_controlnet_makes_an_image_through_the_worker(qtbot, parts, tiny_sdxl, controlnets,
                                                                                    union_controlnets, hyper_lora,
                                                                                    tmp_path):
    """An inpainting model makes a whole image with a single-kind ControlNet (diffusers' ControlNet inpainting
    pipeline, masked all over); with a Union model, whose inpainting pipeline cannot run it, the window says so
    before anything runs."""
    import tiny_models

    library, window = parts.library, parts.window
    library.import_path(tiny_models.save_inpainting_pipeline(tiny_sdxl, tmp_path / "sdxl-inpainting"))
    library.import_path(hyper_lora("Hyper-SDXL-1step-lora"))
    for name, folder in (("controlnet-canny-sdxl-1.0", controlnets["sdxl"]),
                         ("controlnet-union-sdxl-1.0", union_controlnets[6])):
        shutil.copytree(folder, tmp_path / name)
        library.import_path(tmp_path / name)
    window.reload_models()
    window.model_box.setCurrentIndex(window.model_box.findText("sdxl-inpainting  (SDXL, inpainting)"))
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)
    box = window.control_image
    assert box.load_file(photo(tmp_path / "photo.png"))
    window.prompt.setPlainText("a sunflower")
    said = "inpainting model, which diffusers' ControlNet Union pipelines cannot run"
    box.model_box.setCurrentIndex(box.model_box.findText("controlnet-union-sdxl-1.0"))
    qtbot.waitUntil(lambda: said in window.warnings.text(), timeout=WAIT)  # said as it is chosen
    ended = []
    parts.bridge.finished.connect(ended.append)
    parts.bridge.failed.connect(ended.append)
    window.generate()
    qtbot.waitUntil(lambda: bool(ended), timeout=WAIT)
    assert said in window.errors.text() and window.results.count() == 0

    box.model_box.setCurrentIndex(box.model_box.findText("controlnet-canny-sdxl-1.0"))
    assert said not in window.warnings.text()
    ended.clear()
    window.generate()
    qtbot.waitUntil(lambda: bool(ended), timeout=WAIT)
    assert not window.errors.text()
    path = window.results.item(0).data(Qt.ItemDataRole.UserRole)
    with Image.open(path) as image:
        assert image.size == (64, 64) and np.asarray(image).std() > 5


def test_white_strokes_on_a_transparent_layer_are_shown_as_the_scribble_the_run_makes(qtbot, idle_app, tmp_path):
    from PySide6.QtGui import QImage

    from hypersd_desktop.engine.inputs import open_inputs
    from hypersd_desktop.engine.types import ControlSpec

    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(layer).line((8, 8, 56, 40), fill=(255, 255, 255, 255), width=5)
    layer.save(tmp_path / "layer.png")
    box = idle_app.window.control_image
    box.preprocessor.setCurrentIndex(box.preprocessor.findData("scribble"))
    assert box.load_file(tmp_path / "layer.png")
    shown, caption = box.shown(QImage(str(tmp_path / "layer.png")))
    shown = shown.convertToFormat(QImage.Format.Format_Grayscale8)
    assert caption.endswith("the drawing as a scribble")
    scale = shown.width() // 64  # shown at the run's size
    assert shown.pixelColor(32 * scale, 24 * scale).value() > 200 and shown.pixelColor(4 * scale, 60 * scale).value() < 50
    request = GenerationRequest(prompt="a kite", base_model="unused", width=64, height=64,
                                controls=(ControlSpec("unused", box.digest, preprocessor="scribble"),))
    (seen,) = open_inputs(request, box.inputs, 64, 64).controls
    assert np.asarray(seen)[24, 32].min() == 255 and np.asarray(seen)[60, 4].max() == 0


def test_a_phone_photos_edges_are_found_at_the_runs_size_and_again_when_it_changes(qtbot, idle_app, tiny_sd15,
                                                                                    tmp_path):
    """Edges found on a 4032 × 3024 photo and then scaled to the run fade to grey (at 512 they kept a third of their
    strength); they are found on the photo fitted to the run's size, whichever size is chosen."""
    import tiny_models

    window = idle_app.window
    window.prompt.setPlainText("a sunflower")
    idle_app.library.import_path(tiny_models.save_controlnet(tiny_sd15, tmp_path / "control_v11p_sd15_canny"))
    window.models.models_changed.emit()
    photo = Image.new("RGB", (4032, 3024), (40, 60, 90))
    draw = ImageDraw.Draw(photo)
    for k in range(6):
        draw.ellipse((300 + 600 * k, 500, 700 + 600 * k, 2500), fill=(220, 190 - 20 * k, 60))
    photo.save(tmp_path / "IMG_2044.jpg", quality=92)
    box = window.control_image
    assert box.load_file(tmp_path / "IMG_2044.jpg")
    with Image.open(tmp_path / "IMG_2044.jpg") as opened:
        taken = opened.convert("RGB")
    for size in ((512, 512), (768, 512)):
        select_size(window.size_box, *size)
        (control,) = window.build_request().controls
        edges = np.asarray(Image.open(io.BytesIO(box.inputs.read(control.image))).convert("L"))
        expected = np.asarray(canny(ImageOps.fit(taken, size, Image.Resampling.LANCZOS)).convert("L"))
        assert edges.shape == (size[1], size[0]) and np.array_equal(edges, expected)
        assert (edges == 255).sum() > 1000, "whole-strength edges, not grey ones"
        assert box.thumbnail.pixmap().width() > 0


def test_with_only_the_masked_area_edges_are_found_on_the_whole_photo(qtbot, idle_app, tiny_sd15, tmp_path):
    """The engine cuts the area made out of the control picture as out of the init image: the edge map is of the
    whole photo, at its own size, so the area keeps edges as sharp as the photo's."""
    import tiny_models
    from pictures import init_picture, png

    window, box = idle_app.window, idle_app.window.control_image
    idle_app.library.import_path(tiny_models.save_controlnet(tiny_sd15, tmp_path / "control_v11p_sd15_canny"))
    window.models.models_changed.emit()
    window.prompt.setPlainText("a sunflower")
    init_picture().resize((1280, 768)).save(tmp_path / "photo.png")
    assert window.init_image.load_file(tmp_path / "photo.png")
    mask = Image.new("L", (1280, 768), 0)
    mask.paste(255, (800, 240, 1040, 480))
    window.init_image.set_mask(png(mask))
    assert box.load_file(tmp_path / "photo.png")
    window.init_image.only_masked.setChecked(True)
    request = window.build_request()
    assert request.masked_padding is not None
    edges = Image.open(io.BytesIO(box.inputs.read(request.controls[0].image)))
    assert edges.size == (1280, 768)
    assert np.array_equal(np.asarray(edges), np.asarray(canny(Image.open(tmp_path / "photo.png").convert("RGB"))))
    window.init_image.only_masked.setChecked(False)
    (whole,) = window.build_request().controls
    assert Image.open(io.BytesIO(box.inputs.read(whole.image))).size == window.init_image.run_size() != (1280, 768)


def photo_for_a_map(parts, tiny_sd15, tmp_path, controlnet: str, preprocessor: str, size: int):
    """The Generate tab with a tiny ControlNet named `controlnet` installed, a prompt, `preprocessor` chosen and a
    photo dropped in the ControlNet box: (window, box)."""
    import tiny_models

    window, box = parts.window, parts.window.control_image
    parts.library.import_path(tiny_models.save_controlnet(tiny_sd15, tmp_path / controlnet))
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)
    window.prompt.setPlainText("a sunflower on a table")
    box.preprocessor.setCurrentIndex(box.preprocessor.findData(preprocessor))
    assert box.load_file(photo(tmp_path / "photo.png", size=size))
    return window, box


def test_a_photos_depth_map_is_made_by_the_worker_and_the_request_names_it(qtbot, parts, tiny_sd15, depth_model,
                                                                          tmp_path):
    """The window has no torch: the depth map comes from the worker. Generate pressed while it is made makes the
    image once it is in; the request names the map, so reuse needs no depth model. Without one, it is said."""
    from hypersd_desktop.engine.depth import DepthEstimator
    from hypersd_desktop.gallery.metadata import read_request
    from hypersd_desktop.ui.control_image import NO_DEPTH_MODEL

    window, box = photo_for_a_map(parts, tiny_sd15, tmp_path, "control_v11f1p_sd15_depth", "depth", size=80)
    assert box.caption.text() == NO_DEPTH_MODEL and not box.reading
    assert window.build_request(quiet=True) is None

    (item,) = parts.library.import_path(depth_model)  # a Depth Anything folder, as the hub has it
    assert (item.status, item.kind) == ("imported", "depth")
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)  # the model lists were refilled: the quick size again
    assert box.reading and box.caption.text() == "Making the depth map…"
    ended = []
    parts.bridge.finished.connect(ended.append)
    parts.bridge.failed.connect(ended.append)
    window.generate()  # waits for the map
    assert "Making the depth map…" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.results.count() == 1, timeout=WAIT)
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=WAIT)  # the map's job, then the image's
    assert not window.errors.text() and "depth" in box.caption.text()
    assert "depth map" not in window.timing.text()
    qtbot.waitUntil(lambda: window.queue.count() == 0, timeout=WAIT)  # the client says so after the job's end

    stored = GenerationRequest.from_dict(read_request(window.results.item(0).data(Qt.ItemDataRole.UserRole)))
    (control,) = stored.controls
    expected = DepthEstimator().depth_map(Image.open(tmp_path / "photo.png"), str(depth_model), "cpu")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(box.inputs.read(control.image)))), np.asarray(expected))
    assert control.preprocessor == Preprocessor.NONE and "control_v11f1p_sd15_depth" in control.model
    assert window.build_request().controls == stored.controls  # the map is kept: not made again
    kept = box.state()  # as the session keeps it across a restart (ui/session.py): the photo, with Depth
    assert (kept["image"], kept["preprocessor"]) == (box.digest, "depth")
    box.clear()
    box.restore(kept)
    assert not box.reading and window.build_request().controls == stored.controls
    window.apply_request(stored)  # reuse: the map as it is
    assert box.preprocessor.currentData() == "none" and box.digest == control.image


def test_the_pose_of_the_people_in_a_photo_is_made_by_the_worker(qtbot, parts, tiny_sd15, pose_models, tmp_path):
    """Pose of the people in a photo: both models are needed (said until both are installed), the worker draws the
    OpenPose picture, and the request names it."""
    from hypersd_desktop.engine.pose import PoseEstimator
    from hypersd_desktop.ui.control_image import NO_POSE_MODELS

    model, detector = pose_models
    window, box = photo_for_a_map(parts, tiny_sd15, tmp_path, "control_v11p_sd15_openpose", "pose", size=72)
    assert box.caption.text() == NO_POSE_MODELS and window.build_request(quiet=True) is None
    (item,) = parts.library.import_path(model)
    assert item.kind == "pose"
    window.models.models_changed.emit()
    assert box.caption.text() == NO_POSE_MODELS and not box.reading  # the person detector is missing still
    (item,) = parts.library.import_path(detector)
    assert item.kind == "detector"
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)
    assert box.reading and box.caption.text() == "Making the pose…"
    window.generate()  # waits for the map
    qtbot.waitUntil(lambda: window.results.count() == 1, timeout=WAIT)
    assert not window.errors.text() and "pose of the people" in box.caption.text()
    (control,) = window.build_request().controls
    expected = PoseEstimator().pose_map(Image.open(tmp_path / "photo.png"), str(model), str(detector), "cpu")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(box.inputs.read(control.image)))), np.asarray(expected))
    assert control.preprocessor == Preprocessor.NONE and "openpose" in control.model


def test_a_depth_map_that_cannot_be_made_is_said_once_and_tried_again_when_asked(qtbot, parts, tiny_sd15,
                                                                                  depth_model, tmp_path):
    import tiny_models

    from hypersd_desktop.ui.control_image import MAP_FAILED_TEXT

    window, box = parts.window, parts.window.control_image
    parts.library.import_path(tiny_models.save_controlnet(tiny_sd15, tmp_path / "control_v11f1p_sd15_depth"))
    damaged = shutil.copytree(depth_model, tmp_path / "Depth-Anything-V2-Small-hf")
    parts.library.import_path(damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # damaged on disk since
    window.models.models_changed.emit()
    window.prompt.setPlainText("a sunflower")
    asked = []
    parts.bridge.client.submit_map = lambda control_map, submit=parts.bridge.client.submit_map: (
        asked.append(control_map), submit(control_map))[1]
    box.preprocessor.setCurrentIndex(box.preprocessor.findData("depth"))
    assert box.load_file(photo(tmp_path / "photo.png"))
    window.generate()  # waits for the map, which fails: nothing is made
    qtbot.waitUntil(lambda: box.caption.text() == MAP_FAILED_TEXT, timeout=WAIT)
    assert "The depth map could not be made" in window.errors.text() and "download Depth Anything" in window.errors.text()
    qtbot.wait(500)
    assert len(asked) == 1 and window.results.count() == 0 and not box.reading  # said once, not asked again
    box.preprocessor.activated.emit(box.preprocessor.currentIndex())  # chosen in the list again
    assert len(asked) == 2 and box.caption.text() == "Making the depth map…"


def test_choosing_a_controlnet_chooses_the_preprocessor_its_name_says(qtbot, idle_app, tiny_sd15, tmp_path):
    import tiny_models

    window, box = idle_app.window, idle_app.window.control_image
    for name in ("control_v11p_sd15_canny", "sd-controlnet-scribble", "control_v11f1p_sd15_depth",
                 "control_v11p_sd15_openpose", "control_v11p_sd15_lineart", "my-favourite-controlnet"):
        idle_app.library.import_path(tiny_models.save_controlnet(tiny_sd15, tmp_path / name))
    window.models.models_changed.emit()
    names = [box.model_box.itemText(i) for i in range(box.model_box.count())]
    chosen = {}
    for name in names:
        box.model_box.setCurrentIndex(names.index(name))
        chosen[name] = box.preprocessor.currentData()
    assert chosen["control_v11p_sd15_canny"] == "canny" and chosen["sd-controlnet-scribble"] == "scribble"
    assert chosen["control_v11f1p_sd15_depth"] == "depth" and chosen["control_v11p_sd15_openpose"] == "pose"
    assert chosen["control_v11p_sd15_lineart"] == "none", "line art has no preprocessor here: the map as it is"
    box.model_box.setCurrentIndex(names.index("control_v11p_sd15_openpose"))
    box.model_box.setCurrentIndex(names.index("my-favourite-controlnet"))
    assert box.preprocessor.currentData() == "pose", "a name that says nothing keeps the preprocessor"

    box.model_box.setCurrentIndex(names.index("sd-controlnet-scribble"))
    box.preprocessor.setCurrentIndex(box.preprocessor.findData("canny"))  # changed after: that stands
    window.models.models_changed.emit()  # the lists filled again, the same ControlNet chosen
    assert box.model_box.currentText() == "sd-controlnet-scribble" and box.preprocessor.currentData() == "canny"


def test_a_control_loras_name_chooses_its_preprocessor_too(app_home, tmp_path):
    """Stability's Control-LoRAs import as SDXL ControlNets: canny and depth take their maps, the sketch model a
    drawing white on black (its model card's words: a scribble), the recolor model a black-and-white photo as it
    is. ComfyUI's SD1.5 ones: a tile model and instruct-pix2pix's take the picture itself."""
    import tiny_models
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.core.vocab import ModelKind
    from hypersd_desktop.models.library import ModelLibrary
    from hypersd_desktop.ui.control_image import preprocessor_for

    names = {"control-lora-canny-rank128": "canny", "control-lora-depth-rank256": "depth",
             "control-lora-sketch-rank128-metadata": "scribble", "control-lora-recolor-rank128": "none",
             "control_lora_rank128_v11f1e_sd15_tile_fp16": "none", "control_lora_rank128_v11e_sd15_ip2p_fp16": "none"}
    library = ModelLibrary(AppPaths.default())
    try:
        for name in names:
            unet = tiny_models.sd15_unet() if "_sd15_" in name else tiny_models.sdxl_unet()
            library.import_path(tiny_models.save_control_lora(unet, tmp_path / f"{name}.safetensors"))
        installed = library.registry.list(kind=ModelKind.CONTROLNET)
        assert {model.architecture for model in installed} == {"sd15", "sdxl"}
        assert {model.name: preprocessor_for(model) for model in installed} == names
    finally:
        library.close()


def test_a_batch_from_pictures_makes_each_pictures_maps_as_the_boxes_make_theirs(qtbot, parts, tiny_sd15, depth_model,
                                                                                tmp_path, monkeypatch):
    """A1111's ControlNet in an img2img batch: a job from a folder of pictures makes each picture's Canny edges (at
    its run's size, in the window) and its depth map (in the worker, once a picture), as the boxes make theirs of
    their own photos, and each image's request names its picture's maps; unchecked, every image follows the boxes'
    own, and the choice is remembered."""
    import tiny_models
    from pictures import init_picture

    from hypersd_desktop.engine.depth import DepthEstimator
    from hypersd_desktop.engine.inputs import edge_map
    from hypersd_desktop.gallery.metadata import read_request
    from hypersd_desktop.worker.batch import PictureControl

    window, first = photo_for_a_map(parts, tiny_sd15, tmp_path, "control_v11p_sd15_canny", "canny", size=64)
    parts.library.import_path(depth_model)
    parts.library.import_path(tiny_models.save_controlnet(tiny_sd15, tmp_path / "control_v11f1p_sd15_depth"))
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)
    window.control_stack.add_button.click()
    second = window.control_stack.boxes[1]
    second.model_box.setCurrentIndex(second.model_box.findText("control_v11f1p_sd15_depth"))
    second.preprocessor.setCurrentIndex(second.preprocessor.findData("depth"))
    assert second.load_file(photo(tmp_path / "other.png", size=80))
    qtbot.waitUntil(lambda: not second.reading, timeout=WAIT)
    own = window.build_request().controls
    assert len(own) == 2

    photos = tmp_path / "photos"
    photos.mkdir()
    init_picture(64).save(photos / "cat.png")
    init_picture(96).rotate(90).crop((0, 0, 96, 64)).save(photos / "dog.png")
    dialog = window.open_batch()
    assert dialog.follow.isVisibleTo(dialog) and not dialog.follow.isEnabled()  # no pictures chosen yet
    assert dialog.follow.text() == "The ControlNets follow each picture: its Canny edges, its depth map"
    assert dialog.follows == (PictureControl("canny"), PictureControl("depth", depth_path(parts)))
    dialog.prompts.setPlainText("a watercolor painting")
    dialog.pictures.setText(str(photos))
    dialog.pictures.textEdited.emit(str(photos))
    assert dialog.follow.isEnabled() and dialog.follow.isChecked()
    dialog.template.setText("{picture}")
    target = tmp_path / "out"
    dialog.folder.setText(str(target))
    units = dialog.build_spec().units
    inputs = window.bridge.inputs
    for unit, size in zip(units, ((64, 64), (96, 64))):
        edges, followed = unit.request.controls
        picture = inputs.open(unit.request.init_image)
        assert np.array_equal(np.asarray(inputs.open(edges.image)), np.asarray(edge_map(picture, size)))
        assert followed.image == unit.request.init_image and unit.maps == (None, dialog.follows[1])
    said = []
    parts.bridge.batch_progress.connect(lambda _: said.append(dialog.status.text()))
    with qtbot.waitSignal(parts.bridge.batch_finished, timeout=WAIT) as finished:
        assert dialog.start() is None  # the pictures are read, their edges found, off the GUI thread, then queued
        assert dialog.status.text().startswith("Reading the pictures…") and dialog.stop_button.isEnabled()
        qtbot.waitUntil(lambda: dialog.status.text().startswith(("Finding each picture's edges…", "Queued")),
                        timeout=WAIT)
    assert finished.args[0].generated == 2 and said
    estimator = DepthEstimator()
    for name in ("cat", "dog"):
        stored = GenerationRequest.from_dict(read_request(target / f"{name}.png"))
        edges, made = stored.controls
        expected = estimator.depth_map(Image.open(photos / f"{name}.png"), depth_path(parts), "cpu")
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(inputs.read(made.image)))), np.asarray(expected))
        assert made.image not in (own[1].image, stored.init_image) and edges.image != own[0].image
    dialog.template.setText("again-{picture}")  # another job: stopped while its edges are found, nothing is made
    finding = dialog._followed

    def after_stop(units, follows, report, cancel):  # the edges are found once stopped, whatever the machine's speed
        for _ in range(3000):
            if cancel.cancelled:
                break
            time.sleep(0.01)
        return finding(units, follows, report, cancel)

    monkeypatch.setattr(dialog, "_followed", after_stop)
    for stop in (dialog.stop, dialog.close_resources):  # Stop, and quitting the app (which waits for the thread)
        dialog.start()
        stop()
        qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=WAIT)
        assert dialog.status.text() == "Stopped before any image was made; Start begins again."
        assert dialog.job_id is None and not list(target.glob("again-*"))
    dialog.follow.setChecked(False)
    monkeypatch.undo()
    assert all(unit.request.controls == own and not unit.maps for unit in dialog.build_spec().units)
    assert dialog.start() is None  # the pictures are read first, then the job is queued
    qtbot.waitUntil(lambda: dialog.job_id is not None, timeout=WAIT)
    dialog.stop()
    dialog.reject()
    assert not window.open_batch().follow.isChecked()  # remembered


def depth_path(parts) -> str:
    return parts.library.registry.list(kind="depth")[0].path
