"""The Upscaler list on the Generate tab: an installed upscaler model enlarges what a Hires fix, Enlarge or Upscale
enlarges; requests name it only when they enlarge; reuse of a request, and of other tools' images naming theirs by
their own names, chooses it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from hypersd_desktop.core.vocab import ModelKind
from tests.tiny_models import save_upscaler
from ui_helpers import answer_next_dialog, drop

CORPUS = Path(__file__).resolve().parent.parent / "gallery" / "corpus"


def _install(idle_app, folder: Path, *names: str) -> None:
    for name in names:
        idle_app.library.import_path(save_upscaler(folder / f"{name}.safetensors", "compact", scale=4))
    idle_app.window.reload_models()


def test_the_chosen_upscaler_goes_with_a_hires_fix_and_an_enlarged_init_image_only(qtbot, idle_app, tmp_path):
    window = idle_app.window
    window.prompt.setPlainText("a lighthouse")
    _install(idle_app, tmp_path, "4x-UltraSharp")
    box = window.upscaler_box
    assert [box.itemText(i) for i in range(box.count())] == ["Lanczos (resampling)", "4x-UltraSharp"]
    box.setCurrentIndex(1)
    path = box.currentData()
    window.hires_scale.setValue(1.0)
    assert window.build_request().upscaler is None  # nothing is enlarged (the list stays open: Enlarge only uses it)
    window.hires_scale.setValue(1.5)
    assert window.build_request().upscaler == path
    Image.new("RGB", (96, 64), "teal").save(tmp_path / "photo.png")
    assert window.init_image.load_file(tmp_path / "photo.png")
    assert window.build_request().upscaler is None  # made at the picture's size: no Hires fix from an init image
    window.init_image.enlarge.setValue(2.0)
    request = window.build_request()
    assert (request.width, request.upscaler, request.hires_scale) == (192, path, None)
    window.init_image.clear()

    window.apply_request(request.replace(init_image=None, width=64, height=64, upscaler=None))
    assert box.currentData() == path  # a request that enlarges nothing leaves the choice as it is
    window.apply_request(request.replace(init_image=None, width=64, height=64, hires_scale=2.0, upscaler=None))
    assert box.currentData() is None  # reuse of a Lanczos request chooses Lanczos
    window.apply_request(request.replace(init_image=None, width=64, height=64, hires_scale=2.0))
    assert box.currentData() == path
    gone = request.replace(init_image=None, width=64, height=64, hires_scale=2.0,
                           upscaler="/elsewhere/4x-Lost.safetensors")
    window.apply_request(gone)
    assert "the upscaler 4x-Lost.safetensors" in window.errors.text()


def test_in_tiles_asks_an_enlargement_to_be_repainted_in_tiles_of_the_models_size(qtbot, idle_app, tmp_path):
    """The Upscaler row's *In tiles*: a Hires fix or an enlarged init image is repainted in tiles of the model's own
    side (the tiny SD1.5: 512); not an image that is not enlarged, not a seamless one, not an inpainting; reuse sets
    the box as the request had it."""
    window = idle_app.window
    window.prompt.setPlainText("a lighthouse")
    window.in_tiles.setChecked(True)
    window.hires_scale.setValue(1.0)
    assert window.build_request().repaint_tile is None  # nothing enlarged
    window.hires_scale.setValue(2.0)
    asked = window.build_request()
    assert asked.repaint_tile == 512
    window.tiling.setCurrentIndex(window.tiling.findData("both"))
    assert window.build_request().repaint_tile is None  # a seamless image is repainted whole
    window.tiling.setCurrentIndex(window.tiling.findData("off"))
    window.hires_scale.setValue(1.0)
    Image.new("RGB", (96, 64), "teal").save(tmp_path / "photo.png")
    assert window.init_image.load_file(tmp_path / "photo.png")
    window.init_image.enlarge.setValue(2.0)
    assert window.build_request().repaint_tile == 512
    window.in_tiles.setChecked(False)
    assert window.build_request().repaint_tile is None
    window.init_image.clear()
    window.apply_request(asked)
    assert window.in_tiles.isChecked() and window.build_request() == asked

    # another tool's image the Ultimate SD Upscale extension made: reuse ticks In tiles
    from hypersd_desktop.gallery.formats import parse_a1111

    window.in_tiles.setChecked(False)
    window.apply_metadata(parse_a1111("a castle\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 1024x1024, "
                                      "Denoising strength: 0.3, Ultimate SD upscale upscaler: 4x-UltraSharp, "
                                      "Ultimate SD upscale tile_width: 720, Ultimate SD upscale tile_height: 720, "
                                      "Ultimate SD upscale mask_blur: 16, Ultimate SD upscale padding: 64"))
    assert window.in_tiles.isChecked() and window.tile_size.currentText() == "720 px"  # its tiles' size
    assert (window.tile_padding.value(), window.tile_mask_blur.value()) == (64, 16)  # under Edges, beside the size
    assert window.tile_edges.text() == "Edges*" and "64 pixels of the picture around it" in window.tile_edges.toolTip()
    window.hires_scale.setValue(2.0)
    assert (window.build_request().tile_padding, window.build_request().tile_mask_blur) == (64, 16)
    window.tile_padding.setValue(32)
    window.tile_mask_blur.setValue(8)  # the extension's
    assert window.tile_edges.text() == "Edges"
    assert (window.build_request().tile_padding, window.build_request().tile_mask_blur) == (32, 8)
    window.in_tiles.setChecked(False)
    assert not window.tile_edges.isEnabled()


def test_the_tiles_size_is_the_models_own_or_the_one_chosen(qtbot, idle_app):
    """In tiles' size: the model's own (the tiny SD1.5: 512) unless a size is chosen, which the next start keeps; the
    box is greyed out while In tiles is off."""
    window = idle_app.window
    window.prompt.setPlainText("a lighthouse")
    window.hires_scale.setValue(2.0)
    window.in_tiles.setChecked(False)
    assert not window.tile_size.isEnabled()
    window.in_tiles.setChecked(True)
    assert window.tile_size.isEnabled() and window.tile_size.currentText() == "Model's size"
    assert window.build_request().repaint_tile == 512
    window.tile_size.setCurrentIndex(window.tile_size.findData(768))
    asked = window.build_request()
    assert asked.repaint_tile == 768
    window.tile_size.setCurrentIndex(0)
    window.apply_request(asked)
    assert window.tile_size.currentData() == 768 and window.build_request() == asked
    window.apply_request(asked.replace(repaint_tile=1000))  # a size the list does not have joins it, in its place
    sides = [window.tile_size.itemData(index) for index in range(window.tile_size.count())]
    assert window.tile_size.currentData() == 1000 and sides == sorted(sides)
    window._remember_choices()  # as closing the window does
    from hypersd_desktop.core.settings import load_settings

    assert load_settings().last_tile_size == 1000


def test_tile_seams_are_fixed_as_chosen_and_as_a_reused_image_had_them(qtbot, idle_app, tmp_path):
    """The Tile seams row: greyed out without In tiles; a seams fix with its strength (and a band's width, for a
    band pass) goes into the request, the next start keeps it; reuse sets it from a request and from an Ultimate SD
    Upscale node's seam fix in a ComfyUI graph (its mask blur and padding too)."""
    from hypersd_desktop.core.settings import load_settings
    from hypersd_desktop.core.vocab import SeamFix
    from hypersd_desktop.engine.types import SeamsFix
    from hypersd_desktop.gallery.formats import parse_chunks

    window, seams = idle_app.window, idle_app.window.seams
    window.prompt.setPlainText("a lighthouse")
    window.hires_scale.setValue(2.0)
    window.in_tiles.setChecked(False)
    assert not seams.mode.isEnabled() and not seams.strength.isEnabled()
    window.in_tiles.setChecked(True)
    assert seams.mode.isEnabled() and seams.mode.currentText() == "As the tiles meet"
    assert not seams.strength.isEnabled() and window.build_request().seams_fix is None
    seams.mode.setCurrentIndex(seams.mode.findText("Band pass"))
    seams.strength.setValue(0.45)
    seams.width.setValue(48)
    asked = window.build_request()
    assert asked.seams_fix == SeamsFix(SeamFix.BAND, 0.45, 48, 4, 16) and asked.repaint_tile == 512
    seams.mode.setCurrentIndex(seams.mode.findText("Half tile + corners"))
    assert seams.strength.isEnabled() and not seams.width.isEnabled()  # a band's width is a band's
    assert window.build_request().seams_fix.mode == SeamFix.HALF_TILE_CORNERS
    window.in_tiles.setChecked(False)
    assert window.build_request().seams_fix is None and window.build_request().repaint_tile is None
    window.in_tiles.setChecked(True)
    window.apply_request(asked)
    assert seams.mode.currentText() == "Band pass" and window.build_request() == asked
    window._remember_choices()  # as closing the window does
    assert (load_settings().last_seams_fix, load_settings().last_seams_strength) == ("band", 0.45)

    nodes = {"1": ("CheckpointLoaderSimple", {"ckpt_name": "juggernautXL.safetensors"}),
             "2": ("CLIPTextEncode", {"text": "a castle", "clip": ["1", 1]}),
             "3": ("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}),
             "4": ("KSampler", {"seed": 5, "steps": 4, "cfg": 1, "sampler_name": "euler", "scheduler": "normal",
                                "denoise": 1.0, "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
                                "latent_image": ["3", 0]}),
             "5": ("VAEDecode", {"samples": ["4", 0], "vae": ["1", 2]}),
             "6": ("UltimateSDUpscale", {
                 "image": ["5", 0], "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0], "vae": ["1", 2],
                 "upscale_by": 2, "seed": 5, "steps": 4, "cfg": 1, "sampler_name": "euler", "scheduler": "normal",
                 "denoise": 0.3, "mode_type": "Linear", "tile_width": 768, "tile_height": 768, "mask_blur": 8,
                 "tile_padding": 32, "seam_fix_mode": "Half Tile", "seam_fix_denoise": 0.5, "seam_fix_width": 64,
                 "seam_fix_mask_blur": 12, "seam_fix_padding": 24}),
             "7": ("SaveImage", {"images": ["6", 0]})}
    graph = {key: {"class_type": kind, "inputs": inputs} for key, (kind, inputs) in nodes.items()}
    window.apply_metadata(parse_chunks({"prompt": json.dumps(graph)}))
    assert window.in_tiles.isChecked() and window.tile_size.currentData() == 768
    assert seams.mode.currentText() == "Half tile" and seams.strength.value() == 0.5
    Image.new("RGB", (96, 64), "teal").save(tmp_path / "castle.png")
    assert window.init_image.load_file(tmp_path / "castle.png")
    window.init_image.enlarge.setValue(2.0)
    assert window.build_request().seams_fix == SeamsFix(SeamFix.HALF_TILE, 0.5, 64, 12, 24)


@pytest.mark.parametrize(("upscaler", "chosen", "said"), [
    ("RealESRGAN_x4plus_anime_6B", "RealESRGAN_x4plus_anime_6B", "enlarging with RealESRGAN_x4plus_anime_6B."),
    ("4x-UltraSharp", None, "enlarging with Lanczos (R-ESRGAN 4x+ Anime6B is not installed here"),
])
def test_reusing_an_a1111_hires_image_chooses_the_upscaler_it_names(qtbot, idle_app, tmp_path, upscaler, chosen,
                                                                     said):
    """sd-webui-hires.png (a real A1111 file) says "Hires upscaler: R-ESRGAN 4x+ Anime6B", A1111's name for
    RealESRGAN_x4plus_anime_6B.pth: installed as safetensors under that file name, it is chosen."""
    window = idle_app.window
    _install(idle_app, tmp_path, upscaler)
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [CORPUS / "sd-metadata/png/sd-webui-hires.png"])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() != "", timeout=5000)
    assert said in window.warnings.text()
    request = window.build_request(quiet=False)
    assert request is not None, window.errors.text()
    assert request.hires_scale == 1.5
    assert (Path(request.upscaler).stem if request.upscaler else None) == chosen


def test_other_tools_names_for_an_upscaler_find_the_installed_file(app_home, tmp_path):
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.models.library import ModelLibrary
    from hypersd_desktop.worker.matching import find_upscaler

    library = ModelLibrary(AppPaths.default())
    try:
        for name in ("4x-UltraSharp", "4x_foolhardy_Remacri", "RealESRGAN_x4plus", "realesr-general-x4v3"):
            library.import_path(save_upscaler(tmp_path / f"{name}.safetensors", "compact", scale=4))
        models = library.registry.list(ModelKind.UPSCALER)
    finally:
        library.close()

    def found(name: str) -> str | None:
        model = find_upscaler(models, name)
        return Path(model.path).stem if model is not None else None

    # as the corpus's tools write them: Forge ("ESRGAN 4x Ultrasharp"), SD.Next, ComfyUI's loader (with .pth)
    assert found("ESRGAN 4x Ultrasharp") == found("ESRGAN-UltraSharp-4x") == found("4x-UltraSharp") == "4x-UltraSharp"
    assert found("ESRGAN-Remacri-4x.pth") == "4x_foolhardy_Remacri"
    assert found("R-ESRGAN 4x+") == "RealESRGAN_x4plus"
    assert found("R-ESRGAN General 4xV3") == "realesr-general-x4v3"
    for other in ("ESRGAN", "4x", "ESRGAN_4x", "R-ESRGAN 4x+ Anime6B", "SwinIR 4x", "Latent (nearest-exact)"):
        assert found(other) is None, other
    library = ModelLibrary(AppPaths.default())
    try:  # A1111's own SwinIR ("SwinIR 4x" in its images), as a safetensors copy of its SwinIR_4x
        library.import_path(save_upscaler(tmp_path / "SwinIR_4x.safetensors", "swinir-real", scale=4))
        models = library.registry.list(ModelKind.UPSCALER)
    finally:
        library.close()
    assert found("SwinIR 4x") == "SwinIR_4x"


def test_the_gallery_names_the_upscaler_an_image_of_this_app_was_enlarged_with():
    from types import SimpleNamespace

    from hypersd_desktop.ui.gallery_browser import _own_hires

    record = SimpleNamespace(width=512, height=768)
    asked = {"hires_scale": 1.5, "hires_strength": 0.4, "upscaler": "/models/ESRGAN/4x-UltraSharp.safetensors"}
    assert _own_hires(asked, record) == "enlarged to 768 × 1152 by a Hires fix pass (4x-UltraSharp, strength 0.4)"
    assert _own_hires({**asked, "upscaler": None}, record).endswith("(Lanczos, strength 0.4)")
    assert _own_hires({**asked, "hires_prompt": "moss", "hires_guidance": 4.5}, record).endswith(
        "strength 0.4, its own prompt and CFG scale 4.5)")
