"""The gallery tab: search, filters, paging, thumbnails, large view, delete/undo, clipboard, drag, drop."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from hypersd_desktop.ui import gallery_model
from ui_helpers import add_images, answer_next_dialog, drop, opened_urls


@pytest.fixture
def filled(idle_app):
    """40 images: 10 foxes on model-a with 1 step, 30 cities on model-b with 4 steps, 5 of them older."""
    gallery = idle_app.window.gallery
    foxes = add_images(gallery, [f"a red fox number {k}" for k in range(10)], model="model-a", steps=1, start_seed=1)
    cities = add_images(gallery, [f"neon city street {k}" for k in range(25)], model="model-b", steps=4,
                        start_seed=100)
    old = add_images(gallery, [f"old neon city {k}" for k in range(5)], model="model-b", steps=4, start_seed=200,
                     days_ago=40)
    idle_app.window.browser.reload_facets()
    idle_app.window.browser.apply_filters()
    return idle_app, foxes, cities, old


def browse_imported(qtbot, window, folder: Path, count: int):
    """The gallery tab showing the `count` images of `folder`, imported."""
    window.gallery.import_folder(folder)
    browser = window.browser
    window.tabs.setCurrentWidget(browser)
    browser.image_added()
    qtbot.waitUntil(lambda: browser.model.count() == count, timeout=5000)
    return browser


def rows(browser) -> int:
    """How many images the grid shows once it has read all the ids of the query."""
    from PySide6.QtWidgets import QApplication

    assert browser.model.wait_until_complete(QApplication.processEvents)
    return browser.model.count()


def test_search_and_filters_narrow_the_grid(qtbot, filled):
    parts, foxes, cities, old = filled
    browser = parts.window.browser
    assert rows(browser) == 40 and browser.count_label.text() == "40 images"
    browser.search.setText("fox")
    qtbot.waitUntil(lambda: browser.model.count() == 10, timeout=3000)  # after the typing pause
    assert {r.id for r in browser.model.all_records()} == set(foxes)
    browser.search.setText("neon")
    browser.apply_filters()
    assert rows(browser) == 30
    browser.date_filter.setCurrentIndex(2)  # last 7 days
    assert rows(browser) == 25
    browser.date_filter.setCurrentIndex(0)
    browser.search.clear()
    browser.model_filter.setCurrentText("model-a")
    assert rows(browser) == 10
    browser.model_filter.setCurrentIndex(0)
    browser.steps_filter.setCurrentText("4")
    assert rows(browser) == 30
    browser.steps_filter.setCurrentIndex(0)
    gallery = parts.window.gallery
    gallery.store.set_favourite(cities[3], True)
    gallery.store.set_rating(cities[4], 4)
    gallery.store.set_tags(foxes[2], ["keeper"])
    browser.reload_facets()
    browser.favourite_filter.setChecked(True)
    assert [r.id for r in browser.model.all_records()] == [cities[3]]
    browser.favourite_filter.setChecked(False)
    browser.rating_filter.setCurrentIndex(3)
    assert [r.id for r in browser.model.all_records()] == [cities[4]]
    browser.rating_filter.setCurrentIndex(0)
    browser.tag_filter.setCurrentText("keeper")
    assert [r.id for r in browser.model.all_records()] == [foxes[2]]
    browser.tag_filter.setCurrentIndex(0)
    browser.lora_filter.setCurrentText("Hyper-SD15-1step-lora")
    assert rows(browser) == 40
    newest_first = [r.id for r in browser.model.all_records()]
    browser.sort.setCurrentIndex(1)
    assert [r.id for r in browser.model.all_records()][:40] == newest_first[::-1]


def test_the_grid_shows_the_first_page_then_reads_pages_as_they_are_painted(qtbot, filled, monkeypatch):
    parts, *_ = filled
    browser = parts.window.browser
    model = browser.model
    monkeypatch.setattr(gallery_model, "PAGE", 12)
    model.pages_kept = 2
    browser.apply_filters()
    assert model.count() == 12 and not model.complete  # the first page at once, the other ids on a thread
    qtbot.waitUntil(lambda: model.complete, timeout=5000)
    assert model.count() == 40 and browser.count_label.text() == "40 images"
    assert set(model._pages) == {0}
    parts.window.tabs.setCurrentWidget(browser)
    browser.grid.scrollToBottom()
    browser.grid.viewport().repaint()
    assert 3 in model._pages and len(model._pages) <= 2  # the last page was read for painting; old ones dropped
    ids = [r.id for r in model.all_records()]
    assert len(set(ids)) == 40 and ids == parts.window.gallery.store.ids(model.query)


def test_arrow_keys_move_through_the_grid_in_two_dimensions(qtbot, filled):
    parts, *_ = filled
    browser = parts.window.browser
    parts.window.tabs.setCurrentWidget(browser)
    browser.grid.resize(3 * gallery_model.CELL + 30, 600)
    columns = browser.model.columns
    assert columns == 3
    browser.grid.setFocus()
    browser.grid.select_position(0)
    qtbot.keyClick(browser.grid, Qt.Key.Key_Right)
    assert browser.grid.current_position() == 1
    qtbot.keyClick(browser.grid, Qt.Key.Key_Down)
    assert browser.grid.current_position() == 1 + columns


def test_thumbnails_are_made_off_the_gui_thread_at_the_screens_pixel_size(qtbot, filled):
    parts, foxes, *_ = filled
    model = gallery_model.GalleryModel(parts.window.gallery, device_pixel_ratio=2.0)
    try:
        model.set_query(model.query)
        record = model.record(0)
        assert model.pixmap(record) is None  # asked for, not made here
        with qtbot.waitSignal(model.dataChanged, timeout=10_000):
            pass
        pixmap = model.pixmap(record)
        assert pixmap is not None and pixmap.devicePixelRatio() == 2.0
        # a 64 px source is not blown up; the thumbnail box is 2 x 152 px rounded up to 320
        assert model.loader.thumbnails.size == 320 and pixmap.width() == 64
    finally:
        model.close()


def test_delete_and_undo_from_the_keyboard(qtbot, filled):
    parts, *_ = filled
    browser = parts.window.browser
    parts.window.tabs.setCurrentWidget(browser)
    browser.grid.setFocus()
    first, second = browser.model.all_records()[0], browser.model.all_records()[1]
    selection = browser.grid.selectionModel()
    selection.select(browser.model.index_at(0), selection.SelectionFlag.Select)
    selection.select(browser.model.index_at(1), selection.SelectionFlag.Select)
    qtbot.keyClick(browser.grid, Qt.Key.Key_Delete)
    assert browser.model.count() == 38 and browser.count_label.text() == "38 images"
    assert not Path(first.path).exists() and not Path(second.path).exists()
    assert "trash" in browser.notice.text()
    qtbot.keyClick(browser.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert Path(first.path).exists() and Path(second.path).exists()
    assert rows(browser) == 40 and browser.model.all_records()[0].id == first.id


def test_large_view_navigation_rating_tags_and_favourite(qtbot, filled):
    parts, *_ = filled
    browser = parts.window.browser
    parts.window.tabs.setCurrentWidget(browser)
    browser.grid.setFocus()
    browser.grid.select_position(0)
    qtbot.keyClick(browser.grid, Qt.Key.Key_F)
    qtbot.keyClick(browser.grid, Qt.Key.Key_4)
    rated = parts.window.gallery.store.get(browser.model.record(0).id)
    assert rated.favourite and rated.rating == 4 and browser.model.record(0).rating == 4
    qtbot.keyClick(browser.grid, Qt.Key.Key_Return)
    viewer = browser.viewer
    assert browser.pages.currentWidget() is viewer
    first = browser.model.all_records()[0]
    assert viewer.record.id == first.id and first.prompt in viewer.details.toPlainText()
    assert "Seed" in viewer.details.toPlainText()
    shown_path = Path(first.path)
    assert f"\nFile\n{shown_path.name}\n" in viewer.details.toPlainText()
    assert f"\nFolder\n{shown_path.parent}" in viewer.details.toPlainText()
    qtbot.keyClick(viewer.view, Qt.Key.Key_Right)
    assert viewer.record.id == browser.model.all_records()[1].id
    qtbot.keyClick(viewer.view, Qt.Key.Key_Plus)
    assert viewer.view.zoom_level() > 1.0 or viewer.zoom_label.text() != "Fit"
    assert not viewer.favourite.isChecked()  # the second image
    viewer.favourite.setChecked(True)
    viewer.rating.setCurrentIndex(3)
    viewer.tags.setText("sky, keeper")
    viewer.tags.editingFinished.emit()
    stored = parts.window.gallery.store.get(viewer.record.id)
    assert stored.favourite and stored.rating == 3 and stored.tags == ("keeper", "sky")
    assert browser.tag_filter.findText("keeper") > 0
    qtbot.keyClick(viewer.view, Qt.Key.Key_Escape)
    assert browser.pages.currentIndex() == 0
    browser.tag_filter.setCurrentText("sky")
    assert [r.id for r in browser.model.all_records()] == [stored.id]


def test_copy_image_parameters_and_drag_out(qtbot, filled):
    parts, *_ = filled
    browser = parts.window.browser
    browser.grid.select_position(0)
    record = browser.model.all_records()[0]
    browser.copy_parameters()
    text = QGuiApplication.clipboard().text()
    assert text.startswith(record.prompt) and f"Seed: {record.seed}" in text
    browser.copy_image()
    mime = QGuiApplication.clipboard().mimeData()
    assert mime.hasImage() and [u.toLocalFile() for u in mime.urls()] == [record.path]
    dragged = browser.model.mimeData([browser.model.index_at(0), browser.model.index_at(2)])
    assert [u.toLocalFile() for u in dragged.urls()] == [record.path, browser.model.all_records()[2].path]


def test_ctrl_f_and_ctrl_e(qtbot, filled):
    parts, *_ = filled
    window = parts.window
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.browser
    qtbot.waitUntil(lambda: window.browser.search.hasFocus(), timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialog = window.browser._export_dialog
    assert dialog.isVisible() and "40" in dialog.use_query.text()
    dialog.reject()


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="Explorer and Finder are asked to select the file")
def test_show_in_folder_opens_the_images_folder(qtbot, filled):
    parts, *_ = filled
    browser = parts.window.browser
    browser.grid.select_position(3)
    with opened_urls() as urls:
        browser.reveal_button.click()
    assert urls == [str(Path(browser.model.record(3).path).parent)]


def test_a_folder_import_can_be_stopped_and_continued(qtbot, idle_app, tmp_path):
    browser = idle_app.window.browser
    folder = tmp_path / "old renders"
    folder.mkdir()
    for k in range(300):
        Image.new("RGB", (8, 8), (k % 256, 0, 0)).save(folder / f"render-{k:03}.png")
    idle_app.window.tabs.setCurrentWidget(browser)
    task = browser.import_folder(folder)
    assert browser.stop_import_button.isVisible()
    browser.stop_import_button.click()  # a moment after it started
    qtbot.waitUntil(task.isFinished, timeout=20_000)  # by state: a stopped import can end before a signal wait
    qtbot.waitUntil(lambda: not browser.stop_import_button.isVisible(), timeout=5000)
    kept = browser.gallery.store.count(browser.model.query)
    assert kept < 300 and rows(browser) == kept  # what was imported before the stop is shown
    assert browser.notice.text() == (f"Import stopped after {kept} of 300 files: {kept} images added; "
                                     "importing again adds the rest.")

    task = browser.import_folder(folder)  # again: it carries on where it stopped
    with qtbot.waitSignal(task.succeeded, timeout=60_000):
        pass
    expected = f"Imported {300 - kept} images" + (f", {kept} already in the gallery." if kept else ".")
    qtbot.waitUntil(lambda: browser.notice.text() == expected, timeout=5000)
    assert rows(browser) == 300


def a1111_png(path: Path, model: str, lora_hash: str) -> Path:
    info = PngInfo()
    info.add_text("parameters", "a red fox in the snow\nNegative prompt: blurry, text\n"
                  "Steps: 1, Sampler: TCD, CFG scale: 0, Seed: 424242, Size: 512x768, Model hash: deadbeef00, "
                  # the model by name (its hash differs), the LoRA by hash
                  f"Model: {model}, Lora hashes: \"Hyper-SD15-1step-lora: {lora_hash}\", Version: v1.9.4")
    Image.new("RGB", (64, 96), (200, 40, 40)).save(path, pnginfo=info)
    return path


def comfyui_png(path: Path) -> Path:
    graph = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 777, "steps": 1, "cfg": 1.0, "sampler_name": "lcm",
                                                   "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                                                   "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "someone-elses-model.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 640, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a castle on a hill", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "fog", "clip": ["4", 1]}},
    }
    info = PngInfo()
    info.add_text("prompt", json.dumps(graph))
    Image.new("RGB", (64, 64), (10, 40, 200)).save(path, pnginfo=info)
    return path


def test_dropping_an_a1111_png_fills_the_controls(qtbot, idle_app, tmp_path):
    window = idle_app.window
    lora = next(m for m in idle_app.library.registry.list() if m.recipe)
    base = idle_app.library.registry.list(kind="base")[0]
    path = a1111_png(tmp_path / "from-a1111.png", base.name, lora.short_hash)
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [path])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a red fox in the snow", timeout=5000)
    assert window.seed.value() == 424242 and window.seed_lock.isChecked()
    assert window.steps.value() == 1 and window.size_box.currentData() == (512, 768)
    assert window.model_box.currentData().id == base.id
    assert window.hyper_box.currentData().id == lora.id
    request = window.build_request()
    assert (request.seed, request.width, request.height, request.prompt) == (424242, 512, 768, "a red fox in the snow")


def test_dropping_a_comfyui_png_names_the_missing_model_and_can_import_instead(qtbot, idle_app, tmp_path):
    window = idle_app.window
    path = comfyui_png(tmp_path / "from-comfy.png")
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [path])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a castle on a hill", timeout=5000)
    assert window.seed.value() == 777 and window.size_box.currentData() == (640, 512)
    assert "someone-elses-model" in window.errors.text() and "not installed" in window.errors.text()
    answer_next_dialog(qtbot, "Import into the gallery")
    drop(window, [path])
    qtbot.waitUntil(lambda: window.browser.model.count() == 1, timeout=5000)
    record = window.browser.model.all_records()[0]
    assert record.prompt == "a castle on a hill" and record.metadata_format == "comfyui"


def test_dropping_several_images_imports_them_in_the_background(qtbot, idle_app, tmp_path):
    window = idle_app.window
    paths = [comfyui_png(tmp_path / f"comfy-{k}.png") for k in range(3)]
    drop(window, paths)
    qtbot.waitUntil(lambda: window.browser.notice.text() == "Imported 3 images.", timeout=10_000)
    assert window.tabs.currentWidget() is window.browser
    assert rows(window.browser) == 3 and not window.browser.stop_import_button.isVisible()
    drop(window, paths)  # again: nothing twice
    qtbot.waitUntil(lambda: window.browser.notice.text() == "Imported 0 images, 3 already in the gallery.",
                    timeout=10_000)
    assert rows(window.browser) == 3


def test_a_long_notice_wraps_instead_of_widening_the_window(qtbot, idle_app):
    window = idle_app.window
    window.tabs.setCurrentWidget(window.browser)
    window.resize(1280, 800)
    qtbot.wait(100)  # layout requests travel up one parent per pass of the event loop
    narrowest = window.minimumSizeHint().width()
    window.browser.notice.setText("Import stopped after 2,600 of 3,000 files: 2,600 images added; "
                                  "importing again adds the rest.")
    qtbot.wait(100)
    assert window.minimumSizeHint().width() == narrowest and window.width() == 1280


def test_the_large_view_shows_the_vae_and_clip_skip_an_image_was_made_with():
    from hypersd_desktop.gallery.store import ImageRecord
    from hypersd_desktop.ui.gallery_browser import describe_record

    request = {"prompt": "a fox", "base_model": "/m/anything-v5.safetensors", "vae": "/vaes/kl-f8-anime2.safetensors",
               "clip_skip": 2, "embeddings": ["/e/EasyNegative.safetensors"]}
    record = ImageRecord(path="/images/a.png", created=0.0, source="generated", prompt="a fox",
                         model_name="anything-v5", request=json.dumps(request), scheduler="ddim-trailing",
                         device="directml")
    shown = as_lines(describe_record(record))
    assert "\nVAE\nkl-f8-anime2.safetensors\n" in shown and "\nClip skip\n2\n" in shown
    assert "\nEmbeddings\nEasyNegative\n" in shown
    assert "\nSampler\nDDIM (trailing)\n" in shown and "\nDevice\nDirectML\n" in shown
    plain = describe_record(ImageRecord(path="/images/b.png", created=0.0, source="imported", request="{not json"))
    assert "VAE" not in plain and "Clip skip" not in plain
    fooocus = describe_record(ImageRecord(path="/images/c.png", created=0.0, source="imported",
                                          loras=(("detail", 0.5, None), ("sdxl_hyper_sd_4step_lora", 0.8, None))))
    assert "\nRecipe\nHyper-SDXL-4steps-lora\n" in as_lines(fooocus)  # Fooocus's name for the published file


def test_the_large_view_says_what_an_image_made_here_started_from_besides_its_prompt():
    """An init image, its mask, ControlNets and IP-Adapters, read from the stored request, in the words the view has
    for other tools' images; a text-to-image request has no such row, and an odd stored one is passed over."""
    from hypersd_desktop.engine.types import ControlSpec, GenerationRequest, IPAdapterSpec, SeamsFix
    from hypersd_desktop.gallery.store import ImageRecord
    from hypersd_desktop.ui.gallery_browser import describe_record

    request = GenerationRequest(
        prompt="a fox", base_model="/m/sdxl", init_image="a" * 64, mask_image="b" * 64, strength=0.6, controls=(
            ControlSpec("/m/controlnet-canny-sdxl-1.0/diffusion_pytorch_model.fp16.safetensors", "c" * 64, 0.5),
            ControlSpec("/m/control-lora-sketch-rank128-metadata.safetensors", "d" * 64, end=0.8,
                        preprocessor="scribble"),
            ControlSpec("/m/xinsir/diffusion_pytorch_model_promax.safetensors", "e" * 64, control_type="depth")))

    def shown(stored: dict) -> str:
        return as_lines(describe_record(ImageRecord(path="/images/a.png", created=0.0, source="generated",
                                                    prompt="a fox", request=json.dumps(stored))))

    assert ("\nAlso made with\ninpainting from a picture at strength 0.6; "
            "the ControlNet controlnet-canny-sdxl-1.0 (scale 0.5); "
            "the ControlNet control-lora-sketch-rank128-metadata.safetensors (scale 1, a drawing as a scribble, "
            "from 0% to 80% of the steps); the ControlNet xinsir promax (scale 1, Depth map)\n") in \
        shown(request.to_dict())
    assert "\nAlso made with\nimage-to-image from a picture at strength 0.6, enlarged first by 4x-UltraSharp\n" in \
        shown(request.replace(mask_image=None, masked_padding=None, controls=(),
                              upscaler="/u/4x-UltraSharp.safetensors").to_dict())
    assert "\nAlso made with\ninpainting from a picture at strength 0.6, only the masked area\n" in \
        shown(request.replace(controls=(), masked_padding=32).to_dict())
    tiled = request.replace(mask_image=None, controls=(), width=1024, height=1024, repaint_tile=512,
                            seams_fix=SeamsFix("half-tile"))
    assert ("\nAlso made with\nimage-to-image from a picture at strength 0.6; the enlarged picture repainted in tiles "
            "of 512, its seams fixed by a half tile offset pass\n") in shown(tiled.to_dict())
    assert "Also made with" not in shown(GenerationRequest(prompt="a fox", base_model="/m/sdxl").to_dict())
    steered = GenerationRequest(prompt="a fox", base_model="/m/sdxl", ip_adapters=(
        IPAdapterSpec("/m/ip-adapter-plus_sdxl_vit-h.safetensors", "/m/image_encoder", "f" * 64, 0.6),))
    assert "\nAlso made with\nthe IP-Adapter ip-adapter-plus_sdxl_vit-h from a picture (scale 0.6)\n" in \
        shown(steered.to_dict())
    odd = {**request.to_dict(), "strength": "much", "controls": [None, {"model": 3}, {"model": "/m/x.safetensors",
                                                                                     "scale": True}],
           "ip_adapters": [7, {"model": None}, {"model": "/m/ip.safetensors", "scale": "half"}]}
    assert "\nAlso made with\ninpainting from a picture; the ControlNet x.safetensors; the IP-Adapter ip from a " \
           "picture\n" in shown(odd)


def as_lines(shown: str) -> str:
    """The details' HTML as text, a line per name and per value."""
    return "\n" + "\n".join(line for line in re.split("<[^>]*>", shown) if line) + "\n"


def test_the_large_view_shows_what_another_tools_file_says_beyond_the_gallerys_row(qtbot, idle_app, tmp_path):
    """Real files from the corpus: a ComfyUI graph that loads its own VAE, an A1111 image a Hires fix enlarged,
    Forge's with ADetailer, ComfyUI's image-to-image and NovelAI's with character prompts. The large view reads the
    file again for what the gallery's row does not keep, and shows the rest of its fields as the tool wrote them."""
    import shutil

    corpus = Path(__file__).parent.parent / "gallery" / "corpus"
    folder = tmp_path / "theirs"
    folder.mkdir()
    for name in ("sd-parsers/night_evening_day_morning_cropped.png", "sd-metadata/png/sd-webui-hires.png",
                 "sd-metadata/png/forge-neo-adetailer.png", "sd-parsers/img2img_cropped.png",
                 "sd-metadata/png/novelai-full-3char.png"):
        shutil.copy(corpus / name, folder / Path(name).name)
    browser = browse_imported(qtbot, idle_app.window, folder, 5)
    shown = {}
    for record in browser.model.all_records():
        browser.viewer.show_record(record)
        shown[Path(record.path).name] = browser.viewer.details.toPlainText()
    assert "\nVAE\nvae-ft-mse-840000-ema-pruned.safetensors\n" in shown["night_evening_day_morning_cropped.png"]
    webui = shown["sd-webui-hires.png"]
    assert "\nHires fix\nenlarged to 1536 × 1536 by a Hires fix pass (R-ESRGAN 4x+ Anime6B)\n" in webui
    assert "\nSize\n1024 × 1024\n" in webui and "\nVAE\n" not in webui
    with Image.open(folder / "sd-webui-hires.png") as file:  # the corpus file was shrunk to a few pixels
        assert f"\nPixels\n{file.width} × {file.height}\n" in webui
    assert "\nAlso made with\nADetailer's second pass (face_yolov8n.pt)\n" in shown["forge-neo-adetailer.png"]
    assert "\nAlso made with\nimage-to-image from another picture (example.png) at strength 0.87\n" in \
        shown["img2img_cropped.png"]
    assert "Also made with" not in webui
    assert "\nOther fields\nSchedule type: Automatic\nRNG: CPU\nADetailer model: face_yolov8n.pt\n" \
           "ADetailer confidence: 0.3\n" in shown["forge-neo-adetailer.png"]  # as the tool wrote them, a line each
    assert "\nOther fields\nSchedule type: Karras\nDenoising strength: 0.3\nHires upscale: 1.5\n" in webui
    assert "\nCharacter prompts\ngirl, hatsune miku, spread arms\ngirl, kagamine rin, hand up\nboy, kagamine len, " \
           "hand up\n" in shown["novelai-full-3char.png"]  # a line each, as NovelAI's V4 took them
    assert "Other fields" not in shown["novelai-full-3char.png"]  # its one field is shown by its name


def test_the_large_view_breaks_long_values_between_words_never_inside_one(qtbot, idle_app, tmp_path):
    """A prompt, a civitai model's one-word name and A1111's file name, shown at the window's usual size: a value
    longer than fits beside its name goes under it, across the panel, so each line ends between words or after a
    slash, never a letter off a word's end ("00050-4099303404.pn" / "g")."""
    from PySide6.QtGui import QTextLine

    from hypersd_desktop.gallery.metadata import ImageParameters, write_png

    folder = tmp_path / "outputs" / "txt2img-images" / "2026-12-05"
    folder.mkdir(parents=True)
    prompt = ("masterpiece, best quality, (a red fox in the snow:1.2), watercolor, highly detailed, soft morning "
              "light, pine forest, by a famous illustrator")
    write_png(Image.new("RGB", (64, 64), "white"), folder / "00050-4099303404.png", ImageParameters(
        prompt=prompt, negative_prompt="lowres, bad anatomy, worst quality", steps=1, sampler="tcd", guidance=0.0,
        seed=4099303404, width=512, height=768, model_name="realisticVisionV60B1_v51HyperVAE",
        model_hash="a0f13c83e1", loras=(("Hyper-SD15-1step-lora", 1.0, None),)))
    browser = browse_imported(qtbot, idle_app.window, folder, 1)
    browser.grid.setFocus()
    browser.grid.select_position(0)
    qtbot.keyClick(browser.grid, Qt.Key.Key_Return)
    details = browser.viewer.details
    qtbot.waitUntil(details.isVisible)
    assert details.viewport().width() < 400  # the panel as narrow as it opens
    block, lines = details.document().begin(), []
    while block.isValid():
        layout = block.layout()
        lines += [block.text()[line.textStart():line.textStart() + line.textLength()]
                  for line in (layout.lineAt(k) for k in range(layout.lineCount())) if isinstance(line, QTextLine)]
        lines.append("")  # the block's end: a break there is not inside a word
        block = block.next()
    print(lines)
    assert "00050-4099303404.png" in lines and f"/{folder.name}" in "".join(lines)
    assert sum(line.startswith("masterpiece") for line in lines) == 1
    inside = [(before, after) for before, after in zip(lines, lines[1:])
              if before and after and before[-1].isalnum() and after[0].isalnum()]
    assert not inside, inside


def test_a_long_field_of_another_tool_is_cut_in_the_large_view_and_its_prompts_keep_their_lines():
    from hypersd_desktop.gallery.formats.common import ImageMetadata
    from hypersd_desktop.gallery.store import ImageRecord
    from hypersd_desktop.ui.gallery_browser import FIELD_SHOWN, describe_record

    resources = json.dumps([{"type": "lora", "modelVersionId": n, "weight": 0.8} for n in range(40)])
    metadata = ImageMetadata(format="a1111", extra={"Civitai resources": resources, "Version": "v1.10.1",
                                                    "Hires prompt": "<b>lantern</b>\nat dusk", "Empty": " "})
    shown = describe_record(ImageRecord(path="/images/a.png", created=0.0, source="imported"), metadata)
    fields = shown.split("<b>Other fields</b></p>")[1].split("</p>")[0].split(">", 1)[1]
    assert fields.startswith("Civitai resources: [{&quot;type&quot;") and fields.endswith("…<br>Version: v1.10.1")
    assert len(fields.split("<br>")[0].replace("&quot;", '"')) == len("Civitai resources: ") + FIELD_SHOWN
    assert ">&lt;b&gt;lantern&lt;/b&gt;<br>at dusk</p>" in shown.split("<b>Hires prompt</b>")[1]  # escaped, a line each
    assert "Empty" not in shown


def test_an_avif_image_is_shown_large_and_copied(qtbot, idle_app, tmp_path):
    """Qt has no AVIF reader: the large view and the clipboard read it as the gallery does."""
    corpus = Path(__file__).parent.parent / "gallery" / "corpus" / "sd-metadata" / "jpg" / "sd-webui.jpg"
    folder = tmp_path / "outputs"
    folder.mkdir()
    with Image.open(corpus) as jpeg:  # as A1111 saves an AVIF: the JPEG's EXIF block, parameters in it
        picture = jpeg.convert("RGB").resize((96, 64))
        picture.save(folder / "00001-123.avif", quality=90, exif=jpeg.info["exif"])
    browser = browse_imported(qtbot, idle_app.window, folder, 1)
    (record,) = browser.model.all_records()
    browser.viewer.show_record(record)
    assert "cannot be shown here" not in browser.viewer.details.toPlainText()
    assert "\nPixels\n96 × 64\n" in browser.viewer.details.toPlainText()  # its pixels, not the row's first pass
    browser.grid.select_position(0)
    browser.copy_image()
    copied = QGuiApplication.clipboard().mimeData()
    assert copied.hasImage() and copied.imageData().size().toTuple() == (96, 64)


def test_a_dropped_photo_becomes_the_init_image(qtbot, idle_app, tmp_path):
    """A phone's HEIC photo (or a BMP, TIFF, GIF) is no model and not for the gallery: dropped on the window it
    is the init image; a gallery image without settings can be started from too."""
    window = idle_app.window
    iphone = Path(__file__).parents[1] / "photos" / "arrow.heic"
    scan = tmp_path / "scan.bmp"
    Image.new("RGB", (64, 48), (90, 90, 200)).save(scan)
    window.tabs.setCurrentWidget(window.browser)
    models = [model.id for model in idle_app.library.registry.list()]
    drop(window, [iphone, scan])
    qtbot.waitUntil(lambda: window.init_image.digest is not None, timeout=5000)
    assert window.tabs.currentIndex() == 0 and window.init_image.image_size == (3024, 4032)
    assert "arrow.heic is the init image" in window.warnings.text() and window.errors.text() == ""
    qtbot.wait(200)
    assert [model.id for model in idle_app.library.registry.list()] == models  # not taken for weights

    plain = tmp_path / "photo.png"
    Image.new("RGB", (96, 64), (200, 90, 40)).save(plain)
    answer_next_dialog(qtbot, "Use as init image")
    drop(window, [plain])
    qtbot.waitUntil(lambda: window.init_image.image_size == (96, 64), timeout=5000)


def test_a_dropped_painting_programs_file_becomes_the_init_image_and_can_be_traced(qtbot, idle_app, tmp_path):
    """A sketch saved in Krita (.kra) or GIMP (.xcf), a drawing in Photoshop (.psd): no models, no gallery images;
    dropped on the window, the init image (its merged picture or layers, read off the GUI thread); the Draw tab
    traces them too."""
    from pictures import krita_file

    window = idle_app.window
    drawn = Image.new("RGB", (96, 64), (240, 235, 225))
    drawn.paste((20, 20, 80), (10, 10, 40, 50))
    sketch = krita_file(tmp_path / "sketch.kra", drawn)
    models = [model.id for model in idle_app.library.registry.list()]
    window.tabs.setCurrentWidget(window.browser)
    drop(window, [sketch])
    qtbot.waitUntil(lambda: window.init_image.digest is not None and not window.init_image.reading, timeout=5000)
    assert window.tabs.currentIndex() == 0 and window.init_image.image_size == (96, 64)
    assert window.errors.text() == ""
    with Image.open(window.init_image.inputs.find(window.init_image.digest)) as kept:
        assert kept.format == "PNG" and kept.convert("RGB").getpixel((20, 20)) == (20, 20, 80)
    qtbot.wait(200)
    assert [model.id for model in idle_app.library.registry.list()] == models  # not taken for weights

    gimp = tmp_path / "drawing.xcf"  # GIMP's: its layers put together
    gimp.write_bytes((Path(__file__).parents[1] / "photos" / "gimp" / "sketch-8bit.xcf").read_bytes())
    drop(window, [gimp])
    qtbot.waitUntil(lambda: window.init_image.image_size == (96, 64) and not window.init_image.reading, timeout=5000)
    assert window.errors.text() == "" and window.tabs.currentIndex() == 0
    damaged = tmp_path / "cut.xcf"
    damaged.write_bytes(gimp.read_bytes()[:2000])  # an interrupted copy
    drop(window, [damaged])
    qtbot.waitUntil(lambda: "cut.xcf is a GIMP file that cannot be decoded" in window.errors.text(), timeout=5000)
    assert "Open it in GIMP and export it as PNG." in window.errors.text() and window.tabs.currentIndex() == 0
    assert [model.id for model in idle_app.library.registry.list()] == models  # not taken for weights either

    window.tabs.setCurrentWidget(window.draw)
    window.draw.trace(Path(__file__).parents[1] / "photos" / "hopper.psd")
    qtbot.waitUntil(lambda: not window.draw.reading_trace, timeout=10_000)
    assert window.draw.canvas.tracing and window.draw.errors.text() == ""


def test_a_picture_too_large_to_show_is_listed_said_so_and_the_other_thumbnails_still_come(qtbot, idle_app, tmp_path):
    """A 16K² upscale (13,600², over Pillow's guard against decompression bombs) has no thumbnail and no large
    view, which would take gigabytes: the large view says so and how to open it elsewhere, and the thumbnails of the
    pictures after it are made (the worker that declined it goes on)."""
    folder = tmp_path / "outputs"
    folder.mkdir()
    Image.new("1", (13_600, 13_600), 0).save(folder / "huge.png")
    Image.new("RGB", (64, 48), (200, 80, 40)).save(folder / "small.png")
    browser = browse_imported(qtbot, idle_app.window, folder, 2)
    huge, small = sorted(browser.model.all_records(), key=lambda record: record.path)
    assert browser.model.pixmap(huge) is None  # asked for here unless the grid, drawing it, has asked already
    qtbot.waitUntil(lambda: browser.model.is_broken(huge.id), timeout=10_000)  # declined by the worker
    browser.model.pixmap(small)
    qtbot.waitUntil(lambda: browser.model.pixmap(small) is not None, timeout=10_000)
    assert browser.model.pixmap(small).width() == 64
    browser.viewer.show_record(huge)
    assert browser.viewer.details.toPlainText().startswith(
        "This picture (13,600 × 13,600 pixels) cannot be shown here; Show in folder finds it for another app.")


def test_two_images_are_compared_over_one_another_with_the_settings_in_which_they_differ(qtbot, filled):
    """Compare (Ctrl+D, with two images selected): the first image left of a divider and the second right of it, the
    divider moved by the arrow keys, side by side on S, swapped on X; and the settings that differ listed."""
    from hypersd_desktop.ui.compare_view import differences
    from hypersd_desktop.ui.gallery_browser import record_rows
    from hypersd_desktop.ui.shortcuts import shortcut_rows

    parts, foxes, cities, _ = filled
    browser = parts.window.browser
    parts.window.tabs.setCurrentWidget(browser)
    records = browser.model.all_records()
    selection = browser.grid.selectionModel()
    selection.clearSelection()
    selection.select(browser.model.index_at(next(n for n, r in enumerate(records) if r.id == foxes[0])),
                     selection.SelectionFlag.Select)
    assert not browser.compare_button.isEnabled()  # one image
    selection.select(browser.model.index_at(next(n for n, r in enumerate(records) if r.id == cities[3])),
                     selection.SelectionFlag.Select)
    assert browser.compare_button.isEnabled()
    assert any(keys == "Ctrl+D" for _, keys, _ in shortcut_rows(parts.window))
    dialog = browser.compare_selected()
    qtbot.addWidget(dialog)
    qtbot.waitExposed(dialog)
    first, second = dialog.records
    assert {first.id, second.id} == {foxes[0], cities[3]}

    differ, same = differences(*dialog.rows)
    names = [name for name, _, _ in differ]
    assert {"Prompt", "Model", "Steps", "Seed"} <= set(names) and "Sampler" not in names and same >= 3
    steps = next(row for row in differ if row[0] == "Steps")
    assert steps[1:] == (str(first.steps), str(second.steps)) and steps[1] != steps[2]
    # as the large view reads them: what the file says beyond the gallery's row too (A1111's Version here)
    assert dialog.rows[0][:3] == record_rows(parts.window.gallery.store.get(first.id))[:3]
    assert ("Other fields", "Version: HyperSD Desktop 0.1.0") in dialog.rows[0]
    shown = dialog.details.toPlainText()
    assert "Seed" in shown and "Created" not in shown

    def colour(path) -> tuple[int, int, int]:
        with Image.open(path) as image:
            return image.convert("RGB").getpixel((0, 0))

    def seen(fraction: float) -> tuple[int, int, int]:
        picture = dialog.view.grab().toImage()
        place = dialog.view.places()[0]
        pixel = picture.pixelColor(round(place.x() + place.width() * fraction), round(place.center().y()))
        return pixel.red(), pixel.green(), pixel.blue()

    assert seen(0.25) == colour(first.path) and seen(0.75) == colour(second.path)
    for _ in range(3):
        qtbot.keyClick(dialog.view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)  # the divider at 0.8
    assert abs(dialog.view.divider - 0.8) < 1e-9 and seen(0.75) == colour(first.path)
    qtbot.keyClick(dialog.view, Qt.Key.Key_X)  # swapped
    assert dialog.records == (second, first) and seen(0.25) == colour(second.path)
    qtbot.keyClick(dialog.view, Qt.Key.Key_S)  # side by side: each whole in its half
    assert dialog.side_by_side.isChecked()
    halves = dialog.view.places()
    picture = dialog.view.grab().toImage()
    for place, path in zip(halves, (second.path, first.path)):
        pixel = picture.pixelColor(round(place.center().x()), round(place.center().y()))
        assert (pixel.red(), pixel.green(), pixel.blue()) == colour(path)


def test_made_with_narrows_the_grid_to_one_tools_images(qtbot, idle_app, tmp_path):
    import shutil

    corpus = Path(__file__).parent.parent / "gallery" / "corpus"
    for name in ("sd-parsers/automatic1111_cropped.png", "sd-metadata/png/comfyui-hires.png"):
        shutil.copy(corpus / name, tmp_path / Path(name).name)
    Image.new("RGB", (16, 16), "teal").save(tmp_path / "photo.png")
    browser = browse_imported(qtbot, idle_app.window, tmp_path, 3)
    box = browser.made_with_filter
    assert [box.itemText(i) for i in range(box.count())] == ["Any tool", "A1111, Forge, SD.Next", "ComfyUI",
                                                            "No generation data"]
    box.setCurrentText("ComfyUI")
    assert [Path(r.path).name for r in browser.model.all_records()] == ["comfyui-hires.png"]
    box.setCurrentText("No generation data")
    assert [Path(r.path).name for r in browser.model.all_records()] == ["photo.png"]
    box.setCurrentIndex(0)
    assert rows(browser) == 3


def test_upscale_and_enlarge_take_every_selected_image(qtbot, filled):
    """With several images selected, Upscale reads "Upscale 3" and each of its choices makes one job per image: the
    image again larger from its own settings, or enlarged alone; Ctrl+U too; one selected, one job."""
    import hashlib

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    parts, foxes, cities, _ = filled
    window, browser = parts.window, parts.window.browser
    window.tabs.setCurrentWidget(browser)
    records = browser.model.all_records()
    chosen = [n for n, record in enumerate(records) if record.id in (foxes[0], foxes[1], cities[2])]
    selection = browser.grid.selectionModel()
    selection.clearSelection()
    for position in chosen:
        selection.select(browser.model.index_at(position), selection.SelectionFlag.Select)
    assert browser.upscale_button.isEnabled() and browser.upscale_button.text() == "Upscale 3"
    client = window.bridge.client  # no worker: the jobs wait in the queue
    before = len(client.pending())
    (half,) = [a for a in browser.upscale_button.menu().actions() if a.text() == "× 1.5"]
    half.trigger()
    made = [job.request for job in client.pending()[before:]]
    digests = {hashlib.sha256(Path(records[n].path).read_bytes()).hexdigest(): records[n] for n in chosen}
    assert len(made) == 3 and {request.init_image for request in made} == set(digests)
    for request in made:
        assert digests[request.init_image].prompt.startswith(request.prompt)  # each from its own (LoRA tag read)
    window.tabs.setCurrentWidget(browser)
    (twice,) = [a for a in browser.upscale_button.menu().actions() if a.text() == "× 2, enlarged only (Lanczos)"]
    twice.trigger()
    enlarged = [job.enlargement for job in client.pending()[before + 3:]]
    assert sorted(e.path for e in enlarged) == sorted(records[n].path for n in chosen)
    assert {e.scale for e in enlarged} == {2}
    window.tabs.setCurrentWidget(browser)
    browser.grid.setFocus()
    QTest.keyClick(browser.grid, Qt.Key.Key_U, Qt.KeyboardModifier.ControlModifier)
    assert len(client.pending()) == before + 9
    window.tabs.setCurrentWidget(browser)
    browser.grid.select_position(chosen[0])
    assert browser.upscale_button.text() == "Upscale"
    twice.trigger()
    assert len(client.pending()) == before + 10
