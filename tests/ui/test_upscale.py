"""Upscale: a result or a gallery image made again larger from itself, and the init image's Enlarge that it
sets, which any image-to-image run can use; the request keeps the size, so reuse makes the same image again."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.gallery.metadata import read_request
from ui_helpers import WAIT


def _picture(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (30, 120, 200)).save(path)
    return path


def test_enlarge_asks_for_the_picture_made_larger_and_a_request_of_any_size_comes_back_exactly(qtbot, idle_app,
                                                                                               tmp_path):
    window = idle_app.window
    window.prompt.setPlainText("a red kite")
    box = window.init_image
    assert not box.enlarge.isEnabled()
    assert box.load_file(_picture(tmp_path / "photo.png", (96, 64)))
    assert box.enlarge.isEnabled() and box.enlarge.text() == "Enlarge: no"
    assert (window.build_request().width, window.build_request().height) == (None, None)

    box.enlarge.setValue(2.0)
    request = window.build_request()
    assert (request.mode, request.width, request.height) == ("img2img", 192, 128)
    assert box.caption.text() == "96 × 64, made at 192 × 128 (enlarged × 2)"
    assert "192 × 128" in window.size_box.toolTip()
    assert window.size_box.isHidden() and window.size_from_init.text() == "192 × 128, set by the init image"
    box.enlarge.setValue(1.5)
    assert (window.build_request().width, window.build_request().height) == (144, 96)

    # A request made elsewhere (the command line's --width/--height) at a size no enlargement gives to the pixel
    odd = request.replace(width=200, height=136)
    box.enlarge.setValue(1.0)
    window.apply_request(odd)
    assert window.build_request() == odd and "made at 200 × 136 (the size asked for)" in box.caption.text()
    box.enlarge.setValue(2.0)  # a change of the enlargement asks for the enlarged size again
    assert (window.build_request().width, window.build_request().height) == (192, 128)
    window.apply_request(request)
    assert window.build_request() == request and box.enlarge.value() == 2.0
    window.apply_request(request.replace(width=None, height=None))
    assert box.enlarge.value() == 1.0 and window.build_request().width is None

    box.enlarge.setValue(2.0)
    restored = box.state()
    box.enlarge.setValue(1.0)
    box.restore(json.loads(json.dumps(restored)))  # as the session keeps it
    assert (window.build_request().width, window.build_request().height) == (192, 128)

    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (10, 10, 40, 40))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    box.set_mask(buffer.getvalue())
    assert window.build_request().mode == "inpaint" and window.build_request().width == 192  # the whole picture
    box.only_masked.setChecked(True)  # the picture keeps its size: nothing to enlarge
    assert not box.enlarge.isEnabled() and window.build_request().width is None
    box.only_masked.setChecked(False)
    box.clear_button.click()
    assert box.enlarge.value() == 1.0, "the next picture starts at its own size"

    # A photo larger than the model's size is made at about the model's size, but enlarged from its own size
    assert box.load_file(_picture(tmp_path / "large.png", (1600, 1200)))
    assert window.init_image.run_size() == (584, 440)
    box.enlarge.setValue(1.5)
    assert (window.build_request().width, window.build_request().height) == (2400, 1800)
    assert box.load_file(_picture(tmp_path / "huge.png", (3000, 2000)))
    box.enlarge.setValue(2.0)
    assert (window.build_request().width, window.build_request().height) == (4096, 2728)
    assert box.caption.text().endswith("(enlarged × 2, as far as 4096 pixels a side allow)")
    box.clear_button.click()
    assert window.build_request().mode == "txt2img"
    assert not window.size_box.isHidden() and window.size_from_init.isHidden()


def _upscaled(qtbot, window, trigger) -> tuple[str, dict]:
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as saved:
        trigger()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    return saved.args[0], read_request(saved.args[0])


def test_upscale_makes_a_result_again_twice_as_large_from_itself_with_its_own_settings(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("a harbour at dawn")
    window.seed.setValue(4321)
    window.batch_size.setValue(2)
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as first:
        window.generate()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    original = read_request(first.args[0])
    window.prompt.setPlainText("something else entirely")  # Upscale takes the image's own settings
    window.seed.setValue(1)
    window.hires_strength.setValue(0.6)
    window.results.setCurrentRow(0)
    (action,) = [a for a in window.results.actions() if a.text() == "Upscale × 2"]
    path, stored = _upscaled(qtbot, window, action.trigger)
    assert Image.open(path).size == (128, 128)
    assert stored["init_image"] == hashlib.sha256(Path(window.results.item(1).data(Qt.ItemDataRole.UserRole))
                                                  .read_bytes()).hexdigest()
    assert (stored["width"], stored["height"], stored["strength"], stored["batch_size"]) == (128, 128, 0.6, 1)
    assert (stored["prompt"], stored["seed"], stored["steps"]) == ("a harbour at dawn", original["seed"] + 1,
                                                                   original["steps"])
    assert window.results.count() == 3, "one image"

    # Reuse settings of the upscaled image gives its request back, and the same pixels again.
    window.init_image.clear()
    window.apply_request(GenerationRequest.from_dict(stored))
    assert window.build_request().to_dict() == stored
    assert window.init_image.enlarge.value() == 2.0
    window.seed_lock.setChecked(True)
    again, _ = _upscaled(qtbot, window, window.generate)
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(path)))


def test_upscale_from_the_gallery_uses_the_image_and_its_settings(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("a windmill in snow")
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as made:
        window.generate()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    browser = window.browser
    window.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=5000)
    browser.grid.select_position(0)
    assert browser.upscale_button.isEnabled()
    window.prompt.setPlainText("")
    (half,) = [a for a in browser.upscale_button.menu().actions() if a.text() == "× 1.5"]
    path, stored = _upscaled(qtbot, window, half.trigger)
    assert window.tabs.currentIndex() == 0
    assert Image.open(path).size == (96, 96) and stored["prompt"] == "a windmill in snow"
    assert stored["init_image"] == hashlib.sha256(Path(made.args[0]).read_bytes()).hexdigest()

    window.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: browser.model.count() == 2, timeout=5000)
    browser.grid.select_position(1)  # newest first: the first image
    browser.grid.setFocus()
    path, stored = _upscaled(qtbot, window, lambda: QTest.keyClick(browser.grid, Qt.Key.Key_U,
                                                                   Qt.KeyboardModifier.ControlModifier))
    assert Image.open(path).size == (128, 128) and stored["width"] == 128


def test_enlarge_only_makes_a_larger_copy_with_the_upscaler_chosen_and_its_settings(qtbot, parts, tmp_path):
    """A1111's Extras: a result (or a gallery image) enlarged by the Upscaler chosen, not repainted, in the worker;
    the copy joins the results and the gallery and reads as the original."""
    from hypersd_desktop.gallery.gallery import read_metadata
    from tests.tiny_models import save_upscaler

    window = parts.window
    parts.library.import_path(save_upscaler(tmp_path / "2x-Compact.safetensors", "compact", scale=2))
    window.reload_models()
    window.size_box.addItem("64 × 64 (test)", (64, 64))  # the sizes were filled again: the quick one once more
    window.size_box.setCurrentIndex(window.size_box.count() - 1)
    window.upscaler_box.setCurrentIndex(window.upscaler_box.findText("2x-Compact"))
    window.prompt.setPlainText("a windmill in snow")
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as made:
        window.generate()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    window.results.setCurrentRow(0)
    (action,) = [a for a in window.results.actions() if a.text() == "Enlarge × 4, not repainted (2x-Compact)"]
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as enlarged:
        action.trigger()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    with Image.open(enlarged.args[0]) as image:
        assert image.size == (256, 256)
        assert image.text["postprocessing"] == "Postprocess upscale by: 4, Postprocess upscaler: 2x-Compact"
    assert read_metadata(Path(enlarged.args[0]))[0].prompt == read_metadata(Path(made.args[0]))[0].prompt
    assert window.results.count() == 2 and window.results.item(0).data(Qt.ItemDataRole.UserRole) == enlarged.args[0]

    browser = window.browser  # the gallery's Upscale menu names the same upscaler, and Lanczos once it is chosen
    window.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: browser.model.count() == 2, timeout=5000)
    window.upscaler_box.setCurrentIndex(0)
    browser.grid.select_position(1)  # newest first: the generated image
    (twice,) = [a for a in browser.upscale_button.menu().actions() if a.text() == "× 2, enlarged only (Lanczos)"]
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as lanczos:
        twice.trigger()
    assert window.tabs.currentIndex() == 0
    with Image.open(lanczos.args[0]) as image, Image.open(made.args[0]) as original:
        assert image.size == (128, 128)
        expected = original.convert("RGB").resize((128, 128), Image.Resampling.LANCZOS)
        assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(expected))
