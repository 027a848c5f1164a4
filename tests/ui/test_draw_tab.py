"""The Draw tab with the real worker: strokes drawn with the mouse become live images, one job at a time,
stale ones dropped; Pause holds jobs back; Keep saves exactly the image shown with its drawing; reusing it
brings the drawing back and makes the same image again."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.vocab import Preprocessor
from hypersd_desktop.engine.inputs import open_inputs
from hypersd_desktop.gallery.metadata import read_request
from hypersd_desktop.ui.draw_tab import PROMPT_PAUSE_MS
from ui_helpers import WAIT, image_files


@pytest.fixture(scope="session")
def tiny_scribble(tiny_root, tiny_sd15):
    import tiny_models

    return tiny_models.save_controlnet(tiny_sd15, tiny_root / "controlnets" / "tiny-scribble")


@pytest.fixture
def draw(qtbot, parts, tiny_scribble):
    """The Draw tab, with a tiny scribble ControlNet installed and a 64 × 64 canvas."""
    window = parts.window
    parts.library.import_path(tiny_scribble)
    window.models.models_changed.emit()
    tab = window.draw
    window.tabs.setCurrentWidget(tab)
    tab.size_box.addItem("64 × 64 (test)", (64, 64))
    tab.size_box.setCurrentIndex(tab.size_box.count() - 1)
    tab.prompt.setText("a house on a hill")
    qtbot.wait(PROMPT_PAUSE_MS + 100)  # typing asks for an image once it pauses; the canvas is blank: none
    assert tab.canvas.image_size() == (64, 64) and tab.controlnet_box.currentText() == "tiny-scribble"
    return tab


def stroke(canvas, points: list[tuple[float, float]]) -> None:
    """Draw through `points` (fractions of the canvas widget) with the left button held."""
    where = [QPoint(round(x * canvas.width()), round(y * canvas.height())) for x, y in points]
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, where[0])
    for point in where[1:]:
        QTest.mouseMove(canvas, point)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, where[-1])


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def settle(qtbot, tab) -> None:
    """Wait until no live job runs or waits and an image is shown; a failure is reported as it is."""
    qtbot.waitUntil(lambda: not tab.encoding and tab.live.state == "idle"
                    and (tab.shown is not None or bool(tab.errors.text())), timeout=WAIT)
    assert not tab.errors.text()


def test_strokes_become_images_and_the_drawing_reaches_the_controlnet_white_on_black(qtbot, draw):
    assert draw.live.submitted == 0  # a blank canvas asks for nothing
    stroke(draw.canvas, [(0.2, 0.2), (0.5, 0.5), (0.8, 0.3)])
    settle(qtbot, draw)
    assert draw.live.submitted == 1 and draw.keep_button.isEnabled()
    assert not draw.errors.text()
    assert draw.state_label.text() == f"Ready · the last image took {draw.live.made_in}" and draw.live.made_in
    assert "PyTorch" in draw.window().device_label.text()  # where the drawing's image ran (ONNX has no ControlNet)
    shown = pixels(draw.shown.png)
    assert shown.shape == (64, 64, 3) and shown.std() > 1  # an image, not a blank

    # The request names the drawing as drawn (black on white) with the scribble preprocessor; what the engine
    # gives the ControlNet from it (engine/inputs.py) is white strokes on black.
    (control,) = draw.shown.request.controls
    assert control.preprocessor == Preprocessor.SCRIBBLE
    drawing = np.asarray(Image.open(io.BytesIO(draw.bridge.inputs.read(control.image))).convert("L"))
    assert drawing[0, 63] == 255 and drawing[round(0.5 * 63), round(0.5 * 63)] < 64
    seen = np.asarray(open_inputs(draw.shown.request, draw.bridge.inputs, 64, 64).controls[0].convert("L"))
    assert seen[0, 63] == 0 and seen[round(0.5 * 63), round(0.5 * 63)] > 192
    assert not image_files(AppPaths.default().images)  # live images are not saved


def test_ten_quick_strokes_run_at_most_two_jobs_after_the_first_and_show_the_last_drawing(qtbot, draw):
    stroke(draw.canvas, [(0.1, 0.1), (0.3, 0.3)])
    qtbot.waitUntil(lambda: draw.live.state == "running", timeout=WAIT)
    first = draw.live.submitted
    for k in range(10):
        y = 0.15 + 0.07 * k
        stroke(draw.canvas, [(0.4, y), (0.9, y)])
    last_drawing = draw.canvas.png()
    settle(qtbot, draw)
    qtbot.wait(300)  # nothing more starts
    assert first == 1 and draw.live.submitted - first <= 2, draw.live.submitted
    (control,) = draw.shown.request.controls
    assert draw.bridge.inputs.read(control.image) == last_drawing


def test_pause_holds_jobs_back_and_the_newest_drawing_runs_when_it_ends(qtbot, draw):
    draw.pause.setChecked(True)
    assert draw.state_label.text().startswith("Paused")
    for k in range(3):
        stroke(draw.canvas, [(0.2, 0.2 + 0.2 * k), (0.8, 0.2 + 0.2 * k)])
    qtbot.wait(500)
    assert draw.live.submitted == 0 and draw.shown is None
    draw.pause.setChecked(False)
    settle(qtbot, draw)
    assert draw.live.submitted == 1
    assert draw.bridge.inputs.read(draw.shown.request.controls[0].image) == draw.canvas.png()


def test_keep_saves_exactly_the_image_shown_with_its_drawing_and_reuse_makes_it_again(qtbot, draw):
    window = draw.window()
    gallery = window.gallery
    before = gallery.store.count()
    for k in range(3):
        stroke(draw.canvas, [(0.2, 0.2 + 0.25 * k), (0.8, 0.3 + 0.25 * k)])
        settle(qtbot, draw)
    kept_png = draw.shown.png
    drawing_digest = draw.shown.request.controls[0].image
    path = draw.keep()
    assert path is not None and not draw.keep_button.isEnabled()
    assert image_files(AppPaths.default().images) == [path]  # exactly one image: the one kept
    assert path.read_bytes() == kept_png
    assert AppPaths.default().inputs.joinpath(f"{drawing_digest}.png").is_file()  # its drawing, kept
    assert read_request(path)["controls"][0]["image"] == drawing_digest
    assert gallery.store.count() == before + 1

    # Reuse from the gallery: the drawing comes back on the canvas, and the image made again is the same.
    record = next(r for r in gallery.store.query().images if r.path == str(path.resolve()))
    draw.canvas.clear()
    draw.seed.setValue(draw.seed.value() + 1)
    settle(qtbot, draw)
    shown_before = draw.shown
    window.reuse_record(record)
    assert window.tabs.currentWidget() is draw
    assert draw.canvas.source_digest == drawing_digest
    qtbot.waitUntil(lambda: draw.shown is not shown_before and draw.live.state == "idle", timeout=WAIT)
    assert np.abs(pixels(draw.shown.png) - pixels(kept_png)).max() == 0
    assert draw.shown.request.controls == read_request_controls(path)


def read_request_controls(path):
    from hypersd_desktop.engine.types import GenerationRequest

    return GenerationRequest.from_dict(read_request(path)).controls


def test_a_long_stroke_asks_for_images_while_it_is_drawn(qtbot, draw):
    """Throttled: while the pen moves for a while, images are asked for before the stroke ends."""
    canvas = draw.canvas
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(20, 20))
    for k in range(8):
        qtbot.wait(60)
        QTest.mouseMove(canvas, QPoint(20 + 30 * k, 40 + 10 * k))
    assert draw.live.submitted >= 1  # 420 ms of drawing: at least one image before the pen is lifted
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(250, 110))
    settle(qtbot, draw)
    assert draw.bridge.inputs.read(draw.shown.request.controls[0].image) == draw.canvas.png()


def test_a_lora_tag_in_the_drawings_prompt_applies_the_installed_lora(qtbot, draw, parts, hyper_lora, tmp_path):
    """As on the Generate tab: `<lora:NAME:WEIGHT>` applies the installed LoRA whose file is NAME."""
    import shutil

    style = tmp_path / "ink_wash.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), style)
    parts.library.import_path(style)
    draw.prompt.setText("a house on a hill <lora:ink_wash:0.7>")
    request = draw.build_request(digest="0" * 64)
    assert [(Path(lora.path).name, lora.weight) for lora in request.loras][-1] == ("ink_wash.safetensors", 0.7)


def test_the_drawings_prompt_makes_its_choices_by_the_seed(qtbot, draw):
    """A prompt with {a|b} choices: the seed makes them, so they stay while the sketch changes."""
    from hypersd_desktop.core.dynamic_prompts import chosen

    draw.prompt.setText("a {red|blue|green} house on a {hill|lake}")
    prompts = set()
    for seed in range(6):
        draw.seed.setValue(seed)
        request = draw.build_request(digest="0" * 64)
        assert request.prompt == chosen(draw.prompt.text(), seed) == draw.build_request(digest="1" * 64).prompt
        prompts.add(request.prompt)
    assert len(prompts) > 1 and all("{" not in prompt for prompt in prompts)


def test_without_a_scribble_controlnet_the_tab_says_what_to_install_and_runs_nothing(qtbot, idle_app):
    tab = idle_app.window.draw
    idle_app.window.tabs.setCurrentWidget(tab)
    assert "ControlNet Scribble (SD1.5)" in tab.notes.text()  # said before anything is drawn
    tab.canvas.resize(300, 300)
    stroke(tab.canvas, [(0.2, 0.2), (0.8, 0.8)])
    assert tab.live.submitted == 0 and "needs a scribble ControlNet" in tab.errors.text()


def test_keep_with_fast_decode_saves_the_drawing_made_again_with_the_full_vae(qtbot, draw, tmp_path):
    """Fast decode shows TAESD images while drawing; the kept image is decoded by the full VAE, once."""
    from diffusers import AutoencoderTiny

    from hypersd_desktop.models.registry import InstalledModel

    window = draw.window()
    folder = tmp_path / "taesd"
    AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
                    num_decoder_blocks=(1, 1)).save_pretrained(folder)
    draw.library.registry.add(InstalledModel(
        id="taesd-sd15", name="TAESD", kind="taesd", architecture="sd15", layout="diffusers", path=str(folder),
        size=1, sha256=None, short_hash=None, source="download", owned=True))
    window.settings = window.settings.replace(fast_decode=True)
    stroke(draw.canvas, [(0.2, 0.3), (0.8, 0.6)])
    settle(qtbot, draw)
    shown = draw.shown
    assert shown.request.decoder == "taesd"
    before = window.gallery.store.count()
    with qtbot.waitSignal(draw.kept, timeout=WAIT) as kept:
        assert draw.keep() is None  # made again meanwhile
        assert not draw.keep_button.isEnabled()
    path = kept.args[0]
    assert image_files(AppPaths.default().images) == [Path(path)]  # exactly one image: the one kept
    assert read_request(path)["decoder"] == "vae" and read_request_controls(path) == shown.request.controls
    kept_pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    assert np.abs(kept_pixels - pixels(shown.png)).max() > 10  # another decoder than the one on screen
    qtbot.waitUntil(lambda: window.gallery.store.count() == before + 1, timeout=WAIT)
    assert "full VAE" in draw.state_label.text()
    assert not window.results.count()  # the Generate tab's results leave the Draw tab's job alone



def test_the_drawing_is_encoded_off_the_gui_thread(qtbot, draw, monkeypatch):
    import threading

    from hypersd_desktop.ui import sketch_canvas

    threads = []
    encode = sketch_canvas.drawing_png

    def watched(drawing):
        threads.append(threading.current_thread())
        return encode(drawing)

    monkeypatch.setattr(sketch_canvas, "drawing_png", watched)
    stroke(draw.canvas, [(0.1, 0.1), (0.9, 0.9)])
    settle(qtbot, draw)
    assert threads and threading.main_thread() not in threads
    assert draw.bridge.inputs.read(draw.shown.request.controls[0].image) == encode(draw.canvas.snapshot())


def test_sdxl_drawing_with_a_union_controlnet_reads_the_drawing_as_a_scribble(qtbot, parts, tiny_sdxl, controlnets,
                                                                            union_controlnets, hyper_lora, tmp_path):
    """With no scribble ControlNet for SDXL, a ControlNet Union model is offered before a canny one, and the drawing
    reaches it as its scribble (soft edges) type."""
    import shutil

    from hypersd_desktop.core.vocab import ControlType

    library, window = parts.library, parts.window
    library.import_path(tiny_sdxl)
    library.import_path(hyper_lora("Hyper-SDXL-1step-lora"))
    for name, folder in (("controlnet-canny-sdxl-1.0", controlnets["sdxl"]),
                         ("controlnet-union-sdxl-1.0", union_controlnets[6])):
        shutil.copytree(folder, tmp_path / name)
        library.import_path(tmp_path / name)
    window.models.models_changed.emit()
    tab = window.draw
    window.tabs.setCurrentWidget(tab)
    tab.model_box.setCurrentIndex(next(i for i in range(tab.model_box.count())
                                       if tab.model_box.itemData(i).architecture == "sdxl"))
    assert [tab.controlnet_box.itemText(i) for i in range(tab.controlnet_box.count())] == [
        "controlnet-union-sdxl-1.0", "controlnet-canny-sdxl-1.0"]
    tab.size_box.addItem("64 × 64 (test)", (64, 64))
    tab.size_box.setCurrentIndex(tab.size_box.count() - 1)
    tab.prompt.setText("a house on a hill")
    qtbot.wait(PROMPT_PAUSE_MS + 100)
    stroke(tab.canvas, [(0.2, 0.3), (0.8, 0.6)])
    settle(qtbot, tab)
    (control,) = tab.shown.request.controls
    assert control.model.endswith("controlnet-union-sdxl-1.0/diffusion_pytorch_model.safetensors")
    assert control.preprocessor == Preprocessor.SCRIBBLE and control.union_type == ControlType.SOFTEDGE


def test_the_drawings_prompt_takes_the_prompt_styles_and_reuse_finds_them_again(qtbot, draw):
    """The Generate tab's styles file, chosen on the Draw tab too: the image made after a style is checked has its
    words; a kept drawing reused gives back the prompt typed and the styles; the negative words go only where the
    recipe reads a negative prompt, so *Apply to prompt* (into a tab with no negative box) waits for none."""
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.core.prompt_styles import PromptStyle, styles_file, write_styles
    from hypersd_desktop.ui.shortcuts import shortcut_rows

    picker = draw.prompt_styles
    write_styles(styles_file(AppPaths.default()), [PromptStyle("Ink", "ink drawing of {prompt}, brush strokes"),
                                                   PromptStyle("Clean", "clean lines", "blurry, smudged")])
    assert any(keys == "Ctrl+Shift+S" and "style" in what for _, keys, what in shortcut_rows(draw))
    stroke(draw.canvas, [(0.2, 0.2), (0.8, 0.6)])
    settle(qtbot, draw)
    assert draw.shown.request.prompt == "a house on a hill"
    picker.reload_if_changed()  # the list rereads the file when it opens
    shown = draw.shown
    picker.choose(["Ink", "Clean"])  # a new image, without a stroke
    qtbot.waitUntil(lambda: draw.shown is not shown and draw.live.state == "idle", timeout=WAIT)
    request = draw.shown.request
    assert request.prompt == "ink drawing of a house on a hill, brush strokes, clean lines"
    assert request.negative_prompt == ""  # the drawing demo's 1-step recipe reads no negative prompt
    assert not picker.apply_button.isEnabled()  # "Clean"'s negative words have no box here

    # reused: the prompt typed and the styles chosen come back, and the request is the same
    picker.choose([])
    draw.prompt.setText("something else")
    draw.apply_request(request)
    assert draw.prompt.text() == "a house on a hill" and picker.chosen_names() == ["Ink", "Clean"]
    assert draw.build_request(request.controls[0].image) == request
    state = draw.state()
    picker.choose([])
    draw.restore(state, None)
    assert picker.chosen_names() == ["Ink", "Clean"]

    # a style edited in the Generate tab's dialog (the same file) is read here at the next image
    window = draw.window()
    window.prompt_styles.book.save([PromptStyle("Ink", "sumi-e of {prompt}"), PromptStyle("Clean", "clean lines")])
    assert draw.build_request("0" * 64).prompt == "sumi-e of a house on a hill, clean lines"
    # no negative words left: Apply to prompt writes the styles into the line, one step Ctrl+Z undoes
    assert picker.apply_button.isEnabled()
    picker.apply_to_prompt()
    assert draw.prompt.text() == "sumi-e of a house on a hill, clean lines" and picker.chosen_names() == []
    draw.prompt.undo()
    assert draw.prompt.text() == "a house on a hill"


def test_a_sketch_t2i_adapter_steers_the_drawing(qtbot, draw, parts, tmp_path):
    """A sketch T2I-Adapter (imported as A1111's and ComfyUI's folders hold it: one file) is listed with the scribble
    ControlNets and steers the image made of the drawing, read as the white-on-black sketch it was trained on."""
    import tiny_models

    folder = tiny_models.save_t2i_adapter(tmp_path / "adapter", "sd15", channels=1)
    sketch = tmp_path / "t2iadapter_sketch_sd15v2.safetensors"
    sketch.write_bytes((folder / "diffusion_pytorch_model.safetensors").read_bytes())
    parts.library.import_path(sketch)
    draw.window().models.models_changed.emit()
    draw.size_box.addItem("64 × 64 (test)", (64, 64))  # the sizes are listed again with the models
    draw.size_box.setCurrentIndex(draw.size_box.count() - 1)
    names = [draw.controlnet_box.itemText(i) for i in range(draw.controlnet_box.count())]
    assert set(names) == {"tiny-scribble", "t2iadapter_sketch_sd15v2"}
    stroke(draw.canvas, [(0.2, 0.2), (0.8, 0.7)])
    draw.controlnet_box.setCurrentIndex(names.index("tiny-scribble"))
    settle(qtbot, draw)
    by_controlnet = draw.shown
    draw.controlnet_box.setCurrentIndex(names.index("t2iadapter_sketch_sd15v2"))
    qtbot.waitUntil(lambda: draw.shown is not by_controlnet and draw.live.state == "idle", timeout=WAIT)
    assert not draw.errors.text()
    control = draw.shown.request.controls[0]
    assert Path(control.model).name == sketch.name and control.preprocessor == Preprocessor.SCRIBBLE
    assert np.abs(pixels(draw.shown.png) - pixels(by_controlnet.png)).max() > 10
