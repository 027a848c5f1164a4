"""With the real worker and the tiny model: reuse settings round-trips a generated image's request
exactly, and the batch dialog runs a three-item job into the gallery and an export folder, stops,
and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine.types import GenerationRequest
from ui_helpers import WAIT, image_files


def test_reuse_settings_round_trips_the_request_exactly(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("a lighthouse at dusk, oil painting")
    window.seed.setValue(1234567)
    window.steps.setValue(3)
    window.eta.setValue(0.4)
    asked = window.build_request()
    with qtbot.waitSignal(window.image_saved, timeout=WAIT):
        window.generate()
    browser = window.browser
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=5000)
    record = browser.model.record(0)
    stored = json.loads(record.request)
    assert stored == asked.to_dict()  # what the image keeps is what was asked (no preview setting)

    window.prompt.setPlainText("something else")  # move every control away
    window.seed.setValue(1)
    window.steps.setValue(1)
    window.eta.setValue(1.0)
    window.size_box.setCurrentIndex(0)
    window.hyper_box.setCurrentIndex(0)
    browser.grid.select_position(0)
    browser.reuse_current()
    assert window.tabs.currentIndex() == 0
    assert window.build_request().to_dict() == stored
    assert GenerationRequest.from_dict(stored) == window.build_request()


def test_batch_dialog_runs_a_three_item_job_then_resumes_a_stopped_one(qtbot, parts, tmp_path):
    window = parts.window
    dialog = window.open_batch()
    dialog.prompts.setPlainText("a red fox\na blue whale\na green frog")
    dialog.first_seed.setValue(10)
    dialog.select_size(64, 64)
    target = tmp_path / "batch"
    dialog.folder.setText(target.as_uri())  # a folder dropped from a file manager: its address
    progress = []
    parts.bridge.batch_progress.connect(lambda m: progress.append((m.done, m.total)))
    with qtbot.waitSignal(parts.bridge.batch_finished, timeout=WAIT) as finished:
        dialog.start()
    assert finished.args[0].generated == 3 and dialog.status.text().startswith("Done: 3 generated")
    assert progress[-1] == (3, 3) and dialog.folder.text() == str(target)
    files = image_files(target)
    assert [f.name for f in files] == ["0001-10-a red fox.png", "0002-11-a blue whale.png", "0003-12-a green frog.png"]
    qtbot.waitUntil(lambda: window.browser.model.count() == 3, timeout=5000)  # the gallery follows
    assert {r.prompt for r in window.browser.model.all_records()} == {"a red fox", "a blue whale", "a green frog"}

    # A longer job stopped after its first image, then started again: nothing is made twice.
    dialog.prompts.setPlainText("one\ntwo\nthree\nfour")
    dialog.first_seed.setValue(50)

    def stop_after_first(message) -> None:
        if message.done == 1:
            dialog.stop()

    parts.bridge.batch_progress.connect(stop_after_first)
    with qtbot.waitSignal(parts.bridge.failed, timeout=WAIT) as stopped:
        dialog.start()
    parts.bridge.batch_progress.disconnect(stop_after_first)
    assert stopped.args[0].cancelled and "run it again to continue" in stopped.args[0].message
    assert dialog.start_button.text() == "Resume"
    done_before = len(image_files(target)) - 3
    assert 1 <= done_before < 4
    dialog.reject()

    reopened = window.open_batch()  # as after a restart: the last job is filled in again
    assert reopened.prompts.toPlainText() == "one\ntwo\nthree\nfour" and reopened.first_seed.value() == 50
    assert reopened.size_box.currentData() == (64, 64)
    assert f"stopped after {done_before} of 4" in reopened.status.text() and reopened.start_button.text() == "Resume"
    dialog = reopened
    with qtbot.waitSignal(parts.bridge.batch_finished, timeout=WAIT) as resumed:
        dialog.start()
    assert resumed.args[0].skipped == done_before and resumed.args[0].generated == 4 - done_before
    assert len(image_files(target)) == 7
    dialog.reject()


def test_batch_dialog_takes_a1111_prompt_file_lines_typed_or_pasted(qtbot, parts, tmp_path):
    """A1111's prompt-file lines pasted into the prompts box run as in a job file, and what they ask for that is
    not used here stays named under the job's progress while it runs."""
    dialog = parts.window.open_batch()
    dialog.prompts.setPlainText('# from A1111\n--prompt "a red fox" --n_iter 2 --seed 40 --sampler_name "Euler a"\n')
    dialog.select_size(64, 64)
    dialog.folder.setText(str(tmp_path / "batch"))
    spec = dialog.build_spec()
    assert [(u.request.prompt, u.request.seed) for u in spec.units] == [("a red fox", 40), ("a red fox", 41)]
    with qtbot.waitSignal(parts.bridge.batch_finished, timeout=WAIT) as finished:
        dialog.start()
    assert finished.args[0].generated == 2
    assert dialog.notice.isVisibleTo(dialog) and "--sampler_name" in dialog.notice.text()
    dialog.prompts.setPlainText('--prompt "a fox')
    dialog.start()
    assert dialog.status.text() == "⚠ The prompts, line 1: it cannot be read as A1111's --option value line (no " \
                                   "closing quotation)."
    dialog.close()


def test_reusing_an_image_whose_stored_request_is_damaged_uses_the_gallery_fields(qtbot, idle_app):
    from hypersd_desktop.gallery.store import ImageRecord

    window = idle_app.window
    record = ImageRecord(path="/images/fox.png", created=0.0, source="generated", prompt="a fox in the snow", seed=77,
                         steps=3, model_name="sd15", request='{"prompt": "a fox", "loras": [{"weight": "heavy"}]}')
    window.reuse_record(record)
    assert window.prompt.toPlainText() == "a fox in the snow" and window.seed.value() == 77
    assert "This request cannot be read" in window.warnings.text()
    assert "the settings the gallery shows were used instead" in window.warnings.text()


def test_fast_decode_uses_the_installed_taesd_for_the_models_architecture_or_says_what_is_missing(qtbot, idle_app, tmp_path):
    from diffusers import AutoencoderTiny

    from hypersd_desktop.models.registry import InstalledModel

    window = idle_app.window
    window.settings = window.settings.replace(fast_decode=True)
    window.prompt.setPlainText("a red kite")
    window._update_recipe_controls()
    assert window.build_request().decoder == "vae"
    assert "Fast decode needs TAESD for this model; install it in the Models tab (or import a taesd_decoder file)" \
        in window.warnings.text()

    folder = tmp_path / "taesd"
    AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
                    num_decoder_blocks=(1, 1)).save_pretrained(folder)
    for architecture in ("sdxl", "sd15"):  # as the catalog's TAESDXL and TAESD downloads are registered
        idle_app.library.registry.add(InstalledModel(
            id=f"taesd-{architecture}", name=f"TAESD {architecture}", kind="taesd", architecture=architecture,
            layout="diffusers", path=str(folder) if architecture == "sd15" else str(tmp_path / "other"), size=1,
            sha256=None, short_hash=None, source="download", owned=True))
    window._update_recipe_controls()
    request = window.build_request()
    assert (request.decoder, request.taesd, request.preview) == ("taesd", str(folder), "taesd")
    assert "Fast decode" not in window.warnings.text()
    window.settings = window.settings.replace(fast_decode=False)
    assert window.build_request().decoder == "vae" and window.build_request().taesd is None


def test_sdxl_uses_the_installed_fp16_safe_vae_and_offers_it_on_cuda_when_missing(qtbot, idle_app, tiny_sdxl, tmp_path):
    from hypersd_desktop.models.registry import InstalledModel

    window = idle_app.window
    idle_app.library.registry.add(InstalledModel(
        id="sdxl-base", name="SDXL base", kind="base", architecture="sdxl", layout="diffusers", path=str(tiny_sdxl),
        size=1, sha256=None, short_hash=None, source="import-reference", owned=False))
    window.reload_models()
    window.model_box.setCurrentIndex(next(i for i in range(window.model_box.count())
                                          if window.model_box.itemData(i).id == "sdxl-base"))
    window.prompt.setPlainText("a red kite")
    window.jobs.device = "cuda"  # as the worker reports a CUDA device
    window._update_recipe_controls()
    assert window.build_request(quiet=True).vae is None
    assert "install \"SDXL VAE (fp16 fix)\"" in window.warnings.text()

    other = tmp_path / "other-vae"
    fixed = tmp_path / "sdxl-vae-fp16-fix"
    for name, folder, catalog_id in (("an SDXL VAE", other, None), ("SDXL VAE (fp16 fix)", fixed, "sdxl-vae-fp16-fix")):
        idle_app.library.registry.add(InstalledModel(
            id=folder.name, name=name, kind="vae", architecture="sdxl", layout="diffusers", path=str(folder), size=1,
            sha256=None, short_hash=None, source="download", owned=True, catalog_id=catalog_id))
    window._update_recipe_controls()
    assert window.build_request(quiet=True).vae == str(fixed)  # the fp16-safe one, never another VAE
    assert "fp16 fix" not in window.warnings.text()

    window.model_box.setCurrentIndex(next(i for i in range(window.model_box.count())
                                          if window.model_box.itemData(i).architecture == "sd15"))
    window._update_recipe_controls()
    assert window.build_request(quiet=True).vae is None


def test_hires_fix_from_the_window_makes_the_larger_image_and_reuse_brings_it_back(qtbot, parts, tmp_path):
    from PIL import Image

    window = parts.window
    window.prompt.setPlainText("a lighthouse at dusk")
    window.hires_scale.setValue(2.0)
    window.hires_strength.setValue(0.5)
    asked = window.build_request()
    assert (asked.width, asked.hires_scale, asked.hires_strength) == (64, 2.0, 0.5)
    assert window.hires_scale.toolTip().endswith("Now: 64 × 64, then 128 × 128.")
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as saved:
        window.generate()
    with Image.open(saved.args[0]) as image:
        assert image.size == (128, 128) and "Hires upscale: 2" in image.text["parameters"]
    browser = window.browser
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=5000)
    browser.viewer.show_record(browser.model.record(0))
    assert "\nHires fix\nenlarged to 128 × 128 by a Hires fix pass (Lanczos, strength 0.5)\n" in \
        browser.viewer.details.toPlainText()

    dialog = window.open_batch()  # a batch job makes its own size, shown in its dialog: no Hires fix from here
    dialog.prompts.setPlainText("a red fox")
    dialog.folder.setText(str(tmp_path / "batch"))
    assert [unit.request.hires_scale for unit in dialog.build_spec().units] == [None]
    dialog.close()

    window.hires_scale.setValue(1.0)  # Off
    assert window.build_request().hires_scale is None and not window.hires_strength.isEnabled()
    browser.grid.select_position(0)
    browser.reuse_current()
    assert window.hires_scale.value() == 2.0 and window.build_request() == asked

    picture = tmp_path / "start.png"
    Image.new("RGB", (64, 64), (20, 90, 160)).save(picture)
    assert window.init_image.load_file(picture)  # from a picture: no Hires fix (set the size instead)
    assert not window.hires_scale.isEnabled() and window.build_request().hires_scale is None


def test_hires_steps_are_chosen_for_a_plain_model_and_come_back_on_reuse(qtbot, idle_app):
    """A1111's "Hires steps" run a plain model's second pass; a Hyper-SD file's runs its share of the recipe's."""
    window = idle_app.window
    window.prompt.setPlainText("a lighthouse at dusk")
    window.hyper_box.setCurrentIndex(1)  # the installed Hyper-SD LoRA
    window.hires_scale.setValue(2.0)
    window.hires_steps.setValue(12)
    assert not window.hires_steps.isEnabled() and window.build_request().hires_steps is None
    window.hyper_box.setCurrentIndex(0)  # None (plain model)
    assert window.hires_steps.isEnabled() and "A1111's Hires steps" in window.hires_steps.toolTip()
    asked = window.build_request()
    assert (asked.hires_scale, asked.hires_steps) == (2.0, 12)
    window.hires_steps.setValue(0)
    assert window.hires_steps.text() == "Steps: by strength" and window.build_request().hires_steps is None
    window.hires_scale.setValue(1.0)  # Off
    assert not window.hires_steps.isEnabled() and window.build_request().hires_steps is None
    window.apply_request(asked)
    assert window.hires_steps.value() == 12 and window.build_request() == asked


def test_a_hires_prompt_goes_with_the_hires_fix_and_comes_back_on_reuse(qtbot, idle_app):
    """The second pass's own prompt (A1111's Hires prompt) is asked for only with a Hires fix; reuse of a request
    and of another tool's image (ComfyUI's second sampler with its own words) fills it in."""
    from hypersd_desktop.gallery.formats import parse_chunks

    window = idle_app.window
    window.prompt.setPlainText("a lighthouse at dusk")
    window.hires_scale.setValue(1.0)  # Off
    window.hires_prompt.setText("crisp brickwork")
    assert not window.hires_prompt.isEnabled() and window.build_request().hires_prompt is None
    window.hires_scale.setValue(2.0)
    asked = window.build_request()
    assert window.hires_prompt.isEnabled() and asked.hires_prompt == "crisp brickwork"
    window.hires_prompt.clear()
    assert window.build_request().hires_prompt is None  # empty: the prompt above
    window.apply_request(asked)
    assert window.hires_prompt.text() == "crisp brickwork" and window.build_request() == asked

    text = ('a castle\nNegative prompt: fog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x512, '
            'Denoising strength: 0.4, Hires upscale: 2, Hires upscaler: Latent, Hires prompt: "a castle, moss\\nand '
            'ivy", Hires negative prompt: fog')
    window.apply_metadata(parse_chunks({"parameters": text}))
    assert window.hires_scale.value() == 2.0 and window.hires_prompt.text() == "a castle, moss and ivy"
    assert window.hires_negative.text() == ""  # the same as the first pass's: nothing of its own
    assert "second pass had its own" not in window.warnings.text()


def test_hires_guidance_goes_with_the_hires_fix_and_a_guided_model_and_comes_back_on_reuse(qtbot, idle_app):
    """The second pass's own CFG scale (Forge's Hires CFG Scale) is asked for with a Hires fix where guidance is
    chosen (not with a guidance-free Hyper-SD file); above 1 it takes a negative prompt of its own. Reuse of a
    request and of a Forge image fills it in; 'CFG: same' is the first pass's."""
    from hypersd_desktop.gallery.formats import parse_chunks

    window = idle_app.window
    window.prompt.setPlainText("a lighthouse at dusk")
    window.hyper_box.setCurrentIndex(0)  # None (plain model): guidance is chosen
    window.guidance.setValue(1.0)  # the first pass unguided: its negative prompt does nothing
    window.hires_scale.setValue(1.0)  # Off
    window.hires_guidance.setValue(4.0)
    assert not window.hires_guidance.isEnabled() and window.build_request().hires_guidance is None
    window.hires_scale.setValue(2.0)
    assert window.hires_guidance.isEnabled() and window.hires_negative.isEnabled()
    assert not window.negative.isEnabled()
    window.hires_negative.setText("fog")
    asked = window.build_request()
    assert (asked.hires_guidance, asked.hires_negative_prompt, asked.negative_prompt) == (4.0, "fog", "")
    window.hires_guidance.setValue(0.0)
    assert window.hires_guidance.text() == "CFG: same" and not window.hires_negative.isEnabled()
    assert window.build_request().hires_guidance is None
    window.apply_request(asked)
    assert window.hires_guidance.value() == 4.0 and window.build_request() == asked

    window.hyper_box.setCurrentIndex(1)  # a guidance-free Hyper-SD LoRA
    assert not window.hires_guidance.isEnabled() and window.build_request().hires_guidance is None

    window.hyper_box.setCurrentIndex(0)
    text = ("a castle\nNegative prompt: fog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x512, "
            "Denoising strength: 0.4, Hires upscale: 2, Hires upscaler: Latent, Hires CFG Scale: 4.5")
    window.apply_metadata(parse_chunks({"parameters": text}))
    assert window.hyper_box.currentData() is None  # the image's own guidance runs, and its second pass's
    assert window.hires_guidance.value() == 4.5 and window.build_request().hires_guidance == 4.5
    assert "second pass had its own" not in window.warnings.text()


def test_batch_dialog_starts_from_each_picture_in_a_folder(qtbot, parts, tmp_path):
    """"Start from each picture in": the prompts are made from every picture of the folder (image-to-image at the
    dialog's strength, each at its picture's own size, the Generate tab's size box left aside), named after their
    pictures by {picture}; the folder is remembered, and unchecking it makes the prompts from nothing again."""
    from PIL import Image
    from pictures import init_picture

    window = parts.window
    photos = tmp_path / "photos"
    photos.mkdir()
    init_picture(64).save(photos / "cat.png")
    init_picture(96).crop((0, 0, 96, 64)).save(photos / "dog.jpg", quality=95)
    dialog = window.open_batch()
    assert not dialog.use_pictures.isChecked() and not dialog.strength.isEnabled() and dialog.size_box.isEnabled()
    dialog.prompts.setPlainText("a watercolor painting")
    dialog.select_size(64, 64)
    dialog.pictures.setText(str(photos))
    dialog.pictures.textEdited.emit(str(photos))  # as typed: the box is checked
    assert dialog.use_pictures.isChecked() and dialog.strength.isEnabled() and not dialog.size_box.isEnabled()
    dialog.strength.setValue(0.6)
    dialog.first_seed.setValue(7)
    dialog.template.setText("{picture}-{seed}")
    target = tmp_path / "out"
    dialog.folder.setText(str(target))
    spec = dialog.build_spec()
    assert [(unit.picture, unit.request.strength, unit.request.width) for unit in spec.units] == [
        ("cat", 0.6, None), ("dog", 0.6, None)]
    assert all(window.bridge.inputs.find(unit.request.init_image) for unit in spec.units)  # kept for the worker
    said = []  # the status as each unit's progress is shown: it names the unit's picture
    parts.bridge.batch_progress.connect(lambda message: said.append(dialog.status.text()))
    with qtbot.waitSignal(parts.bridge.batch_finished, timeout=WAIT) as finished:
        dialog.start()
    assert finished.args[0].generated == 2
    assert [text.split(" · ")[0] + text.partition(" · last: ")[2] for text in said if "last" in text] == [
        "1 of 2 imagescat", "2 of 2 imagesdog"], said
    assert [f.name for f in image_files(target)] == ["cat-7.png", "dog-8.png"]
    with Image.open(target / "dog-8.png") as made:
        assert made.size == (96, 64) and "Denoising strength: 0.6" in made.text["parameters"]
    dialog.reject()
    reopened = window.open_batch()
    assert reopened.use_pictures.isChecked() and reopened.pictures.text() == str(photos)
    assert reopened.start_button.text() == "Start"  # that job is done
    assert reopened.status.text().startswith("Stopping keeps what is done")  # read for that, then said as it was
    reopened.use_pictures.setChecked(False)
    assert [unit.request.init_image for unit in reopened.build_spec().units] == [None]
    reopened.reject()

    # several images selected in the gallery: "Start a batch from 2…" opens the job on them
    browser = window.browser
    window.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: browser.model.count() == 2, timeout=5000)
    selection = browser.grid.selectionModel()
    browser.grid.select_position(0)
    assert browser.init_button.text() == "Start from it" and browser.init_button.isEnabled()
    selection.select(browser.model.index_at(1), selection.SelectionFlag.Select)
    assert browser.init_button.text() == "Start a batch from 2…"
    browser.init_button.click()
    chosen = window._batch_dialog
    assert chosen.isVisible() and chosen.use_pictures.isChecked() and chosen.pictures.isReadOnly()
    assert chosen.pictures.text() == "the 2 images chosen in the gallery"
    chosen.template.setText("again-{picture}")
    made = {record.path for record in browser.model.all_records()}
    with qtbot.waitSignal(parts.bridge.batch_finished, timeout=WAIT) as finished:
        chosen.start()
    assert finished.args[0].generated == 2
    assert {f.name for f in image_files(target)} >= {f"again-{Path(path).stem}.png" for path in made}
    chosen.reject()
    again = window.open_batch()  # the folder chosen before is kept
    assert again.pictures.text() == str(photos) and not again.pictures.isReadOnly()
    again.reject()


def test_the_batch_dialog_says_its_images_start_from_the_generate_tabs_init_image(qtbot, idle_app, tmp_path):
    """A picture in the Generate tab's Init image box goes with a batch job, as its other settings do: the dialog says
    so and takes its strength; pictures chosen in the dialog take its place, and without it nothing is said."""
    from PIL import Image

    window = idle_app.window
    bare = window.open_batch()
    assert not bare.init_note.isVisible() and not bare.strength.isEnabled()
    bare.reject()
    picture = tmp_path / "start.png"
    Image.new("RGB", (64, 64), (20, 90, 160)).save(picture)
    assert window.init_image.load_file(picture)
    window.prompt.setPlainText("a red fox")
    asked = window.build_request()
    dialog = window.open_batch()
    dialog.prompts.setPlainText("a blue whale")
    dialog.folder.setText(str(tmp_path / "out"))
    assert dialog.init_note.isVisibleTo(dialog) and "init image (image-to-image)" in dialog.init_note.text()
    assert dialog.strength.isEnabled() and dialog.strength.value() == asked.strength
    dialog.strength.setValue(0.35)
    (unit,) = dialog.build_spec().units
    assert (unit.request.init_image, unit.request.strength, unit.picture) == (asked.init_image, 0.35, "")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (64, 64), (200, 20, 20)).save(photos / "red.png")
    dialog.pictures.setText(str(photos))
    dialog.use_pictures.setChecked(True)
    assert not dialog.init_note.isVisibleTo(dialog)
    (unit,) = dialog.build_spec().units
    assert unit.request.init_image != asked.init_image and unit.picture == "red"
    dialog.reject()


def test_the_batch_dialog_adds_each_pictures_own_prompt_when_asked(qtbot, idle_app, tmp_path):
    """"Add each picture's own prompt": with the prompts box empty, each picture is made with the prompt its file
    says; typed prompts come first; Masks inpaints each through the mask of its name; the choices are
    remembered."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    photos = tmp_path / "photos"
    photos.mkdir()
    info = PngInfo()
    info.add_text("parameters", "a castle on a hill\nNegative prompt: fog\nSteps: 20, Seed: 5")
    Image.new("RGB", (64, 64)).save(photos / "castle.png", pnginfo=info)
    dialog = idle_app.window.open_batch()
    assert not dialog.own_prompts.isEnabled()
    assert dialog.minimumSizeHint().height() <= 560  # its form scrolls on an 800 × 600 screen
    dialog.prompts.setPlainText("")
    dialog.folder.setText(str(tmp_path / "out"))
    dialog.pictures.setText(str(photos))
    dialog.use_pictures.setChecked(True)
    assert dialog.own_prompts.isEnabled() and not dialog.own_prompts.isChecked()
    with pytest.raises(InputError, match="Type at least one prompt"):
        dialog.build_spec()
    dialog.own_prompts.setChecked(True)
    (unit,) = dialog.build_spec().units
    assert (unit.request.prompt, unit.picture) == ("a castle on a hill", "castle")
    dialog.prompts.setPlainText("pencil sketch")
    (unit,) = dialog.build_spec().units
    assert unit.request.prompt == "pencil sketch, a castle on a hill"
    masks = tmp_path / "masks"  # the Masks row: each picture inpainted through the mask of its name
    masks.mkdir()
    Image.new("L", (64, 64), 255).save(masks / "castle.png")
    assert dialog.masks_row.isEnabled()
    dialog.masks.setText(str(masks))
    (unit,) = dialog.build_spec().units
    assert unit.request.mask_image == idle_app.window.bridge.inputs.add_file(masks / "castle.png")
    assert dialog.enlarge.isEnabled() and dialog.enlarge.text() == "Enlarge: no"
    dialog.enlarge.setValue(2.0)  # an upscale of each: twice its picture's size
    (unit,) = dialog.build_spec().units
    assert (unit.request.width, unit.request.height) == (128, 128)
    dialog.enlarge.setValue(1.0)
    dialog._remember(dialog.build_spec())
    dialog.reject()
    again = idle_app.window.open_batch()
    assert again.own_prompts.isChecked() and again.use_pictures.isChecked() and again.masks.text() == str(masks)
    again.use_pictures.setChecked(False)
    assert not again.masks_row.isEnabled() and again.build_spec().units[0].request.mask_image is None
    again.reject()


def test_a_picture_batch_reads_its_pictures_off_the_gui_thread_and_can_be_stopped_meanwhile(qtbot, parts, tmp_path,
                                                                                          monkeypatch):
    """A folder of phone photos takes seconds to read, minutes where each is a HEIC photo made PNG: Start reads them
    off the GUI thread, saying how many are read, and Stop stops it before any image is made."""
    import shutil
    import threading
    import time

    from PIL import Image

    photos = Path(__file__).parents[1] / "photos"
    folder = tmp_path / "pictures"
    folder.mkdir()
    shutil.copy(photos / "RGBA_8__29x100.heif", folder / "a phone.heic")  # small: the images are made at its size
    shutil.copy(photos / "hopper.psd", folder / "b drawing.psd")
    Image.new("RGB", (64, 64), (30, 90, 200)).save(folder / "c plain.png")
    window = parts.window
    inputs = window.bridge.inputs
    readers, reading = [], inputs.add_file

    def add_file(path, what=None, keep=True):
        readers.append(threading.current_thread())
        return reading(path, what, keep)

    monkeypatch.setattr(inputs, "add_file", add_file)
    dialog = window.open_batch()
    dialog.prompts.setPlainText("a harbour")
    dialog.pictures.setText(str(folder))
    dialog.pictures.textEdited.emit(str(folder))
    dialog.template.setText("{picture}")
    target = tmp_path / "out"
    dialog.folder.setText(str(target))
    said = []
    dialog.bar.valueChanged.connect(lambda _: said.append(dialog.status.text()))
    with qtbot.waitSignal(parts.bridge.batch_finished, timeout=WAIT) as finished:
        assert dialog.start() is None and dialog.status.text() == "Reading the pictures…"
    assert finished.args[0].generated == 3
    assert len(readers) == 3 and threading.main_thread() not in readers
    assert any(text.startswith("Reading the pictures… ") and " of 3 pictures" in text for text in said), said
    assert sorted(path.stem for path in image_files(target)) == ["a phone", "b drawing", "c plain"]

    def slow_add_file(path, what=None, keep=True):  # a slow disk: Stop comes while the first is read
        time.sleep(0.5)
        return reading(path, what, keep)

    monkeypatch.setattr(inputs, "add_file", slow_add_file)
    dialog.template.setText("again-{picture}")
    dialog.start()
    dialog.stop()
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=WAIT)
    assert dialog.status.text() == "Stopped before any image was made; Start begins again."
    assert dialog.job_id is None and not list(target.glob("again-*"))  # none queued
    dialog.reject()
