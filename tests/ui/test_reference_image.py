"""The Generate tab's IP-Adapter: a picture the image takes after, the adapter chosen from the installed ones, the
encoder it reads with found by itself (or named for installing), through the worker to the gallery; reuse and a
restart bring it back; a second and third picture each with its own adapter and scale."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from hypersd_desktop.gallery.formats import parse_text
from hypersd_desktop.gallery.formats.common import other_passes
from hypersd_desktop.ui.generate_form import select_size
from pictures import init_picture
from ui_helpers import WAIT


def test_the_picture_needs_an_adapter_and_its_encoder_and_says_which(qtbot, idle_app, ip_adapters, tmp_path):
    window = idle_app.window
    window.prompt.setPlainText("a lighthouse")
    box = window.ip_adapter
    assert not box.scale.isEnabled() and window.build_request().ip_adapters == ()
    init_picture().save(tmp_path / "look.png")
    assert box.load_file(tmp_path / "look.png")
    assert window.build_request(quiet=True) is None  # no IP-Adapter installed: said, not guessed
    window.build_request()
    assert "needs an IP-Adapter for this base model" in window.errors.text()

    adapter = shutil.copy(ip_adapters["sd15"], tmp_path / "ip-adapter_sd15.safetensors")
    idle_app.library.import_path(adapter)
    window.models.models_changed.emit()
    assert box.model_box.currentText() == "ip-adapter_sd15"
    assert window.build_request(quiet=True) is None  # its encoder is not installed: the box says which and where
    assert "reads pictures with a CLIP image encoder 16 wide, and no such image encoder is installed" in \
        box.caption.text()
    idle_app.library.import_path(ip_adapters["encoder"])
    window.models.models_changed.emit()
    box.scale.setValue(0.8)
    request = window.build_request()
    (spec,) = request.ip_adapters
    assert (spec.model, spec.encoder, spec.image, spec.scale) == (str(adapter), str(ip_adapters["encoder"]),
                                                                  box.digest, 0.8)
    assert box.caption.text() == "The image takes after this picture, read by CLIP image encoder (16 wide)"

    box.clear()
    assert window.build_request().ip_adapters == ()
    window.apply_request(request)
    assert window.build_request() == request
    window.session.save(wait=True)  # a restart brings back the picture, the adapter and the scale
    box.clear()
    window.session.restore()
    assert window.build_request() == request
    elsewhere = dataclasses.replace(spec, model="/elsewhere/ip-adapter-plus_sd15.safetensors", image="0" * 64)
    window.apply_request(request.replace(ip_adapters=(elsewhere,)))  # made on another machine: said, not dropped
    said = window.warnings.text()
    assert "The IP-Adapter ip-adapter-plus_sd15.safetensors of this request is not installed here" in said
    assert "The IP-Adapter's picture of this request is no longer in the input store" in said

    window.apply_request(request)  # "Add an IP-Adapter": a second picture, at its own scale
    stack = window.reference_stack
    assert not stack.add_button.isHidden()
    second = stack.add_box()
    init_picture().rotate(180).save(tmp_path / "subject.png")
    assert second.load_file(tmp_path / "subject.png")
    second.scale.setValue(0.3)
    both = window.build_request()
    assert [a.scale for a in both.ip_adapters] == [0.8, 0.3] and both.ip_adapters[1].image == second.digest
    window.session.save(wait=True)
    stack.remove_box(second)
    assert len(window.build_request().ip_adapters) == 1
    window.session.restore()
    assert len(stack.boxes) == 2 and window.build_request() == both
    four = both.replace(ip_adapters=both.ip_adapters * 2)
    window.apply_request(four)
    assert len(stack.boxes) == 3 and window.build_request().ip_adapters == four.ip_adapters[:3]
    assert "This request has 4 IP-Adapters; the window runs 3" in window.warnings.text()


def test_an_ip_adapter_steers_an_image_made_through_the_worker(qtbot, parts, tiny_sd15, hyper_lora, ip_adapters,
                                                                tmp_path):
    window = parts.window
    for path in (ip_adapters["sd15"], ip_adapters["encoder file"]):
        parts.library.import_path(path)
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)  # the model lists were refilled: the quick size again
    window.prompt.setPlainText("a kite")
    ended = []
    parts.bridge.finished.connect(ended.append)
    parts.bridge.failed.connect(ended.append)

    def made() -> tuple[np.ndarray, str]:
        count = window.results.count()
        window.generate()
        qtbot.waitUntil(lambda: len(ended) == count + 1, timeout=WAIT)
        assert not window.errors.text()
        with Image.open(window.results.item(0).data(Qt.ItemDataRole.UserRole)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.int16), image.text["parameters"]

    window.seed_lock.setChecked(True)
    plain, _ = made()
    init_picture().rotate(90).save(tmp_path / "look.png")
    assert window.ip_adapter.load_file(tmp_path / "look.png")
    steered, parameters = made()
    assert np.abs(steered - plain).max() > 10  # the picture steers
    assert ('ControlNet 0: "Module: ip-adapter_clip, Model: ip-adapter_sd15, Weight: 0.6, Guidance Start: 0, '
            'Guidance End: 1"') in parameters
    assert other_passes(parse_text(parameters)) == ["IP-Adapter (ip-adapter_sd15)"]
    browser = window.browser  # the gallery's large view says what steered it
    qtbot.waitUntil(lambda: browser.model.count() == 2, timeout=WAIT)
    browser.viewer.show_record(next(browser.model.record(row) for row in range(2)
                                    if "ip-adapter" in (browser.model.record(row).request or "")))
    assert "\nAlso made with\nthe IP-Adapter ip-adapter_sd15 from a picture (scale 0.6)\n" in \
        browser.viewer.details.toPlainText()
