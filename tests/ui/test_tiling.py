"""Tiling in the window: the Tiling row asks for a seamless image, the worker makes it and writes A1111's
`Tiling: True`, the preview shows it three by three, the gallery's large view says which way it tiles, and reuse
and an A1111 image's text set it."""

from __future__ import annotations

from PIL import Image

from hypersd_desktop.gallery.formats import parse_a1111
from hypersd_desktop.gallery.metadata import read_request
from ui_helpers import WAIT


def test_a_seamless_image_from_the_window_is_written_shown_and_reused(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("a mosaic of blue tiles")
    assert [window.tiling.itemText(k) for k in range(window.tiling.count())] == [
        "Off", "Both ways", "Left to right", "Top to bottom"]
    assert window.build_request().tiling == "off"
    window.tiling.setCurrentIndex(window.tiling.findText("Both ways"))
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as saved:
        window.generate()
    path = saved.args[0]
    assert read_request(path)["tiling"] == "both"
    shown = window.preview.pixmap()  # three by three copies, edge to edge, to judge the seams by
    assert window.preview.tiling() == "both" and "3 × 3" in window.preview.toolTip()
    assert shown.width() % 3 == 0 and shown.height() % 3 == 0
    third = shown.copy(0, 0, shown.width() // 3, shown.height() // 3).toImage()
    assert shown.copy(shown.width() // 3, shown.height() // 3, third.width(), third.height()).toImage() == third
    window.set_tiling("off")
    with qtbot.waitSignal(window.image_saved, timeout=WAIT):
        window.generate()
    assert window.preview.tiling() == "off" and window.preview.toolTip() == ""
    assert window.preview.pixmap().width() > 2 * third.width()  # one copy, as large as fits
    window.show_result(window.results.item(1))  # the seamless one again, from the strip
    assert window.preview.tiling() == "both"
    with Image.open(path) as image:
        assert "Tiling: True" in image.text["parameters"]
    browser = window.browser
    qtbot.waitUntil(lambda: browser.model.count() == 2, timeout=WAIT)
    record = next(browser.model.record(k) for k in range(2) if browser.model.record(k).path == path)
    browser.viewer.show_record(record)
    assert "both ways" in browser.viewer.details.toPlainText()

    window.reuse_record(record, to_canvas=False)
    assert window.tiling.currentData() == "both"


def test_an_a1111_images_tiling_is_taken_and_an_unknown_one_is_off(qtbot, idle_app):
    window = idle_app.window
    text = "a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 64x64"
    window.apply_metadata(parse_a1111(text + ", Tiling: True"))
    assert window.tiling.currentData() == "both"
    window.apply_metadata(parse_a1111(text))
    assert window.tiling.currentData() == "off"
    window.set_tiling("y")
    assert window.build_request().tiling == "y"
    window.set_tiling("diagonal")  # from a newer version's session, say
    assert window.tiling.currentData() == "off"
