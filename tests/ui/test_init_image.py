"""The Generate tab's init image: in by file, drop, paste or a result, out through the worker as image-to-image."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage

from ui_helpers import WAIT


def picture(path: Path, size=(64, 64), colour=(200, 60, 40)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def test_a_chosen_picture_makes_the_request_image_to_image_at_its_size(qtbot, idle_app, tmp_path):
    window = idle_app.window
    window.prompt.setPlainText("a red kite")
    box = window.init_image
    assert not box.clear_button.isEnabled() and not box.strength.isEnabled()
    path = picture(tmp_path / "photo.png", size=(96, 64))
    assert box.load_file(path)
    box.strength.setValue(0.5)
    request = window.build_request()
    assert request.init_image == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (request.strength, request.width, request.height, request.mode) == (0.5, None, None, "img2img")
    assert not window.size_box.isEnabled() and "96 × 64" in window.size_box.toolTip()
    box.clear_button.click()
    request = window.build_request()
    assert request.init_image is None and request.mode == "txt2img" and window.size_box.isEnabled()


def test_drop_and_paste_bring_pictures_in_and_a_file_that_is_no_picture_is_named(qtbot, idle_app, tmp_path):
    window = idle_app.window
    box = window.init_image
    path = picture(tmp_path / "dropped.png", colour=(10, 200, 90))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    box.dropEvent(drop)
    assert box.digest == hashlib.sha256(path.read_bytes()).hexdigest()

    QGuiApplication.clipboard().setImage(QImage(str(picture(tmp_path / "copied.png", colour=(1, 2, 3)))))
    box.paste_button.click()
    pasted = Image.open(box.inputs.find(box.digest))
    assert pasted.size == (64, 64) and pasted.convert("RGB").getpixel((5, 5)) == (1, 2, 3)

    saved = tmp_path / "from the web.jfif"  # a JPEG as a browser on Windows names it
    Image.new("RGB", (80, 48), (200, 40, 40)).save(saved, "JPEG")
    assert box.load_file(saved) and box.image_size == (80, 48)
    assert not box.thumbnail.pixmap().isNull()

    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    assert not box.load_file(text)
    assert "cannot be read as an image" in window.errors.text()
    assert box.digest is not None  # the picture before stays


def test_a_result_becomes_the_init_image_and_the_worker_generates_from_it(qtbot, parts, tmp_path):
    window = parts.window
    window.prompt.setPlainText("a harbour at dawn")
    window.steps.setValue(4)
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as first:
        window.generate()
    window.results.setCurrentRow(0)
    (action,) = [a for a in window.results.actions() if a.text() == "Use as init image"]
    action.trigger()
    assert window.init_image.digest == hashlib.sha256(Path(first.args[0]).read_bytes()).hexdigest()
    window.init_image.strength.setValue(0.5)
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as second:
        window.generate()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    made = np.asarray(Image.open(second.args[0]).convert("RGB"), dtype=np.int16)
    assert made.shape == (64, 64, 3)

    from hypersd_desktop.gallery.metadata import read_request

    stored = read_request(second.args[0])
    assert stored["init_image"] == window.init_image.digest and stored["strength"] == 0.5
    window.init_image.clear()
    window.apply_request(window.build_request().replace(init_image=stored["init_image"], strength=0.5))
    assert window.init_image.digest == stored["init_image"] and window.init_image.strength.value() == 0.5
    missing = window.build_request().replace(init_image="0" * 64)
    window.apply_request(missing)
    assert window.init_image.digest is None
    assert "no longer in the input store" in window.warnings.text()


def test_outpaint_arrows_extend_the_picture_and_the_worker_paints_the_new_part(qtbot, parts, tmp_path):
    """→ extends the picture by a quarter of its width with the new part masked (made off the GUI thread), ↓ again
    keeping that mask; the run repaints at strength 1 and keeps the picture's own pixels away from the seams; reuse
    brings it back."""
    from hypersd_desktop.core.images import png_data
    from hypersd_desktop.engine.inputs import mask_of

    window, box = parts.window, parts.window.init_image
    window.prompt.setPlainText("a harbour at dawn")
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    Image.fromarray(np.stack([ramp, ramp.T, np.full_like(ramp, 90)], axis=-1)).save(tmp_path / "photo.png")
    assert not box.outpaint_buttons[2].isEnabled()
    assert box.load_file(tmp_path / "photo.png")
    original = box.digest
    box.outpaint_buttons[2].click()  # →: 25 % of 64
    qtbot.waitUntil(lambda: not box.reading, timeout=WAIT)  # made off the GUI thread
    assert box.image_size == (80, 64) and box.mask is not None and box.strength.value() == 1.0
    box.outpaint_buttons[3].click()  # ↓, keeping the mask on the right; Generate at once waits for the picture
    assert box.reading
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as made:
        window.generate()
        assert "The image is made once it is read" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    assert box.image_size == (80, 80)
    painted = np.asarray(mask_of(box.inputs.open(box.mask, mode="RGBA")))
    assert (painted[:, 64:] == 255).all() and (painted[64:, :] == 255).all() and (painted[:50, :50] == 0).all()
    assert "only the part painted red is repainted" in box.caption.text()
    request = window.build_request()
    assert request.mode == "inpaint" and request.init_image != original
    pixels = np.asarray(Image.open(made.args[0]).convert("RGB"), dtype=np.int16)
    assert pixels.shape == (80, 80, 3)
    photo = np.asarray(Image.open(tmp_path / "photo.png").convert("RGB"), dtype=np.int16)
    assert np.array_equal(pixels[:40, :40], photo[:40, :40])
    box.clear()
    window.apply_request(request)
    assert (box.digest, box.mask, box.image_size) == (request.init_image, request.mask_image, (80, 80))
    small = box.inputs.add(png_data(Image.new("L", (16, 16), 255)), "A mask of another size")
    box.set_digest(original, small)  # a reused request's mask that does not fit: the new part alone is masked
    box.outpaint_buttons[0].click()
    qtbot.waitUntil(lambda: not box.reading, timeout=WAIT)  # made off the GUI thread
    painted = np.asarray(mask_of(box.inputs.open(box.mask, mode="RGBA")))
    assert box.image_size == (80, 64) and (painted[:, :24] == 255).all() and (painted[:, 24:] == 0).all()


def test_a_mask_painted_over_the_picture_makes_the_request_inpainting_and_reuse_brings_it_back(qtbot, idle_app,
                                                                                              tmp_path):
    from PySide6.QtCore import QPoint, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    window = idle_app.window
    window.prompt.setPlainText("a red kite")
    box = window.init_image
    assert box.load_file(picture(tmp_path / "photo.png", size=(64, 64)))
    assert box.mask_button.isEnabled() and not box.mask_blur.isEnabled()
    painted = []

    def paint() -> None:
        dialog = QApplication.activeModalWidget()
        canvas = dialog.canvas
        canvas.brush_size = 12
        y = canvas.height() // 2
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(2, y))
        QTest.mouseMove(canvas, QPoint(canvas.width() // 3, y))
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                           QPoint(canvas.width() // 3, y))
        painted.append(canvas.painted_fraction())
        dialog.accept()

    QTimer.singleShot(200, paint)
    box.mask_button.click()
    assert painted and 0.02 < painted[0] < 0.5
    box.mask_blur.setValue(6)
    request = window.build_request()
    assert (request.mode, request.mask_blur) == ("inpaint", 6)
    mask = np.asarray(Image.open(box.inputs.find(request.mask_image)).convert("L"))
    assert mask.shape == (64, 64) and mask[32, 5] == 255 and mask[32, 60] == 0 and mask[2, 5] == 0
    assert "painted red" in box.caption.text() and box.mask_button.text() == "Edit mask…"

    box.clear_button.click()
    assert window.build_request().mode == "txt2img" and box.mask is None
    window.apply_request(request)
    assert window.build_request() == request


def test_a_mask_file_of_strokes_on_a_transparent_layer_is_shown_and_edited_as_the_run_reads_it(qtbot, idle_app,
                                                                                               tmp_path):
    """A request from the command line (`--mask` of an editor's exported layer) reused in the window: the tint and
    the mask dialog show the painted part as the part repainted, not the layer's colours."""
    import io

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    window = idle_app.window
    box = window.init_image
    assert box.load_file(picture(tmp_path / "photo.png", size=(64, 64), colour=(20, 60, 200)))
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste((0, 0, 0, 255), (0, 0, 32, 64))  # black strokes over the left half
    buffer = io.BytesIO()
    layer.save(buffer, format="PNG")
    box.set_mask(buffer.getvalue())
    tint = box.thumbnail.pixmap().toImage()
    left, right = tint.pixelColor(5, tint.height() // 2), tint.pixelColor(tint.width() - 5, tint.height() // 2)
    assert left.red() > left.blue() and right.blue() > right.red(), "the painted left half is tinted red"
    shown = []

    def look() -> None:
        dialog = QApplication.activeModalWidget()
        shown.append(np.asarray(Image.open(io.BytesIO(dialog.canvas.png())).convert("L")))
        dialog.reject()

    QTimer.singleShot(200, look)
    box.mask_button.click()
    assert shown and shown[0][32, 5] == 255 and shown[0][32, 60] == 0


def test_only_the_masked_area_of_a_large_photo_is_asked_for_and_reuse_brings_it_back(qtbot, idle_app, tmp_path):
    import io

    window = idle_app.window
    window.prompt.setPlainText("a red kite")
    box = window.init_image
    assert box.load_file(picture(tmp_path / "photo.png", size=(1600, 1200)))
    assert not box.only_masked.isEnabled(), "nothing to keep the repaint to without a mask"
    mask = Image.new("L", (1600, 1200), 0)
    mask.paste(255, (700, 400, 900, 600))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    box.set_mask(buffer.getvalue())
    assert box.only_masked.isEnabled() and not box.masked_padding.isEnabled()
    assert window.build_request().masked_padding is None
    assert "made at" in box.caption.text()
    box.only_masked.setChecked(True)
    box.masked_padding.setValue(48)
    request = window.build_request()
    assert (request.mode, request.masked_padding) == ("inpaint", 48)
    assert box.caption.text().startswith("1600 × 1200: the result keeps this size")
    box.only_masked.setChecked(False)
    window.apply_request(request)
    assert box.only_masked.isChecked() and window.build_request() == request


def test_a_gallery_image_becomes_the_init_image_from_the_gallery_tab(qtbot, idle_app):
    from ui_helpers import add_images

    window = idle_app.window
    (image_id,) = add_images(window.gallery, ["a harbour at dawn"])
    browser = window.browser
    window.tabs.setCurrentWidget(browser)
    browser.image_added()
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=5000)
    browser.grid.select_position(0)
    assert browser.init_button.isEnabled()
    browser.init_button.click()
    path = Path(window.gallery.store.get(image_id).path)
    assert window.tabs.currentIndex() == 0
    assert window.init_image.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert window.build_request().mode == "img2img"


def test_a_phone_photo_is_shown_upright_and_masked_at_the_size_the_run_has(qtbot, idle_app, tmp_path):
    """A phone photo is stored sideways with an EXIF orientation; the box, the mask dialog and the run all see it
    upright, and a photo far larger than the model's size is made at about the model's size."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from hypersd_desktop.engine.inputs import open_inputs

    window = idle_app.window
    window.prompt.setPlainText("a red kite")
    box = window.init_image
    photo = tmp_path / "IMG_0001.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    Image.new("RGB", (1600, 1200), (90, 140, 200)).save(photo, exif=exif.tobytes())
    assert box.load_file(photo)
    assert box.image_size == (1200, 1600)
    assert box.thumbnail.pixmap().size().toTuple() == (72, 96)
    qtbot.waitUntil(lambda: box.thumbnail.contentsRect().height() >= 96, timeout=2000)  # shown whole, not clipped
    assert box.caption.text() == "1200 × 1600, made at 440 × 584 (the model's size)"
    assert "440 × 584" in window.size_box.toolTip()
    box.set_model_side(1024)  # SDXL's size holds the photo as it is
    assert box.caption.text() == "1200 × 1600: the result takes this size"
    assert "1200 × 1600" in window.size_box.toolTip()
    box.set_model_side(512)

    sizes = []

    def look() -> None:
        dialog = QApplication.activeModalWidget()
        sizes.append(dialog.canvas.image_size())
        dialog.reject()

    QTimer.singleShot(200, look)
    box.mask_button.click()
    assert sizes == [(1200, 1600)], "the mask is painted over the upright photo"
    box.set_mask(_white_mask(1200, 1600))
    request = window.build_request()
    sources = open_inputs(request, box.inputs, 512, 512)
    assert (sources.width, sources.height) == sources.init.size == sources.mask.size == (440, 584)


def _white_mask(width: int, height: int) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_inpainting_model_is_labelled_in_the_model_lists(qtbot, idle_app, tiny_sd15, tmp_path):
    """sd-v1-5-inpainting and the "-inpainting" merges are named as such: they make whole images too, as A1111's
    inpainting models do, but a user should know which one is picked."""
    import tiny_models

    idle_app.library.import_path(tiny_models.save_inpainting_pipeline(tiny_sd15, tmp_path / "sd15-inpainting"))
    window = idle_app.window
    window.reload_models()
    labels = [window.model_box.itemText(i) for i in range(window.model_box.count())]
    assert "sd15-inpainting  (SD1.5, inpainting)" in labels
    assert any(label.endswith("(SD1.5)") for label in labels)  # the text-to-image one is not
    dialog = window.open_batch()
    assert "sd15-inpainting  (SD1.5, inpainting)" in [dialog.model_box.itemText(i) for i in range(dialog.model_box.count())]
    dialog.close()


def test_an_iphone_photo_dropped_in_comes_upright_and_can_be_traced(qtbot, idle_app, monkeypatch):
    """A HEIC photo, which Qt cannot read, dragged from a file manager: the box shows it as the phone does and
    the request names it kept as PNG; the Draw tab traces the same photo."""
    iphone = Path(__file__).parents[1] / "photos" / "arrow.heic"
    window = idle_app.window
    box = window.init_image
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(iphone))])
    import threading

    from hypersd_desktop.core import images

    readers = []
    convert = images.kept_bytes

    def watched(data, what="The image"):
        readers.append(threading.current_thread())
        return convert(data, what)

    monkeypatch.setattr(images, "kept_bytes", watched)
    box.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                             Qt.KeyboardModifier.NoModifier))
    assert box.reading and box.thumbnail.text() == "Reading arrow.heic…"  # made PNG off the GUI thread
    made = []
    monkeypatch.setattr(window, "build_request", lambda quiet=False: None if quiet else made.append(box.digest))
    window.generate()  # pressed while the photo is read: the image is made once it is in
    assert made == [] and window.statusBar().currentMessage() == (
        "Reading arrow.heic… The image is made once it is read.")
    qtbot.waitUntil(lambda: not box.reading, timeout=10_000)
    assert made == [box.digest] and window.errors.text() == ""
    box.load_file(iphone)  # again, and cleared while it is read: nothing is made
    window.generate()
    box.clear()
    qtbot.wait(1500)
    assert len(made) == 1 and box.digest is None and not box.reading
    monkeypatch.undo()
    box.load_file(iphone)
    qtbot.waitUntil(lambda: not box.reading, timeout=10_000)
    assert readers and threading.main_thread() not in readers
    assert box.digest is not None and box.inputs.find(box.digest).suffix == ".png"
    assert box.image_size == (3024, 4032)
    shown = box.thumbnail.pixmap()
    assert shown.height() > shown.width() > 0  # portrait, as the phone took it
    assert window.build_request().init_image == box.digest
    assert window.size_box.toolTip() == "The init image sets the size: 440 × 584"  # the model's area, upright

    window.tabs.setCurrentWidget(window.draw)
    window.draw.trace(iphone)  # read off the GUI thread too
    assert window.draw.reading_trace and window.draw.trace_button.text() == "Reading arrow.heic…"
    qtbot.waitUntil(lambda: not window.draw.reading_trace, timeout=10_000)
    assert window.draw.canvas.tracing and window.draw.trace_button.text() == "Stop tracing"
    assert window.errors.text() == "" and window.draw.errors.text() == ""
    window.draw.trace(Path(__file__))  # not a picture
    qtbot.waitUntil(lambda: not window.draw.reading_trace, timeout=10_000)
    assert "test_init_image.py cannot be read as an image" in window.draw.errors.text()
    assert window.draw.canvas.tracing and window.draw.trace_button.text() == "Stop tracing"  # the photo stays


def test_a_picture_dropped_on_the_draw_canvas_is_traced_not_offered_for_reuse(qtbot, idle_app, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication
    from PIL import Image

    window, draw = idle_app.window, idle_app.window.draw
    window.tabs.setCurrentWidget(draw)
    picture = tmp_path / "landscape.png"
    Image.new("RGB", (96, 64), (40, 120, 200)).save(picture)
    offered = []
    window.offer_dropped_image = offered.append  # the window's own drop: the reuse-or-import question
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(picture))])
    where = QPointF(draw.canvas.rect().center())
    enter = QDragEnterEvent(where.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(draw.canvas, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(draw.canvas, QDropEvent(where, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                                   Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: not draw.reading_trace, timeout=10_000)
    assert draw.canvas.tracing and draw.trace_button.text() == "Stop tracing" and offered == []
    assert draw.canvas.is_blank(), "traced under the drawing, not drawn"
    weights = QMimeData()
    weights.setUrls([QUrl.fromLocalFile(str(tmp_path / "lora.safetensors"))])
    passed_on = QDragEnterEvent(where.toPoint(), Qt.DropAction.CopyAction, weights, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
    assert not draw.eventFilter(draw.canvas, passed_on), "weights go on to the window, which imports them"


def test_a_large_picture_file_is_read_off_the_gui_thread(qtbot, idle_app, tmp_path, monkeypatch):
    """A large Photoshop document or a 16-bit scan, perhaps on a network drive: its bytes are read on the reader's
    thread too, not only decoded there; one that cannot be read there is said so."""
    import threading

    from hypersd_desktop.ui import init_image

    monkeypatch.setattr(init_image, "READ_OFF_THREAD_BYTES", 10)
    box = idle_app.window.init_image
    readers = []
    adding = box.inputs.add

    def add(data, what="The image"):
        readers.append(threading.current_thread())
        return adding(data, what)

    monkeypatch.setattr(box.inputs, "add", add)
    scan = tmp_path / "scan.tif"
    Image.effect_noise((96, 64), 40).convert("RGB").save(scan)
    assert box.load_file(scan) and box.reading and box.thumbnail.text() == "Reading scan.tif…"
    qtbot.waitUntil(lambda: not box.reading, timeout=10_000)
    assert box.digest == hashlib.sha256(scan.read_bytes()).hexdigest() and box.image_size == (96, 64)
    assert readers and threading.main_thread() not in readers

    odd = tmp_path / "folder.tif"  # a folder named as a picture: found large, then not readable on the thread
    odd.mkdir()
    (odd / "inside.txt").write_text("x" * 100)
    assert box.load_file(odd)
    qtbot.waitUntil(lambda: not box.reading, timeout=10_000)
    assert "folder.tif cannot be read: Is a directory." in idle_app.window.errors.text()
    assert box.digest == hashlib.sha256(scan.read_bytes()).hexdigest()  # the picture before stays
