"""Images from other tools dropped on the window: the controls take their settings, and a foreign
sampler or a run without Hyper-SD is mapped to a recipe with a warning that says what changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import Qt

from hypersd_desktop.engine.types import MAX_SEED, MAX_STEPS
from tool_layouts import draw_things_png, easy_diffusion_png, midjourney_png
from ui_helpers import answer_next_dialog, drop

CORPUS = Path(__file__).parent.parent / "gallery" / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))["files"]
ONE_PER_FAMILY = ["sd-parsers/automatic1111_cropped.png", "sd-parsers/automatic1111_cropped.jpg",
                  "sd-parsers/automatic1111_stealth.png", "sd-parsers/night_evening_day_morning_cropped.png",
                  "sd-parsers/fooocus1_cropped.png", "sd-parsers/invokeai_dream1.png", "sd-parsers/invokeai_sdmeta1.png",
                  "sd-parsers/invokeai_imeta1.png", "sd-parsers/novelai1_cropped.png",
                  "sd-metadata/png/forge-neo.png", "sd-metadata/jpg/sd-next.jpg", "sd-metadata/webp/reforge-hires.webp",
                  "sd-metadata/png/comfyui-hires.png", "sd-metadata/webp/comfyui-saveimage-plus.webp",
                  "sd-metadata/jpg/civitai-upscale.jpg", "sd-metadata/png/swarmui.png", "sd-metadata/webp/swarmui.webp",
                  "sd-metadata/png/stability-matrix.png", "sd-metadata/png/tensorart.png",
                  "sd-metadata/png/ruined-fooocus.png", "sd-metadata/png/huggingface-space.png",
                  "sd-metadata/png/novelai-full.png", "sd-metadata/webp/novelai-curated.webp", "sd-metadata/png/invokeai.png"]


# The weighting of InvokeAI's and NovelAI's prompts as reuse writes it in A1111's syntax: (written, as reused).
REWRITTEN = {
    "sd-parsers/invokeai_dream1.png": [("(imperfect skin)", "imperfect skin")],  # a compel group weighs 1
    "sd-parsers/invokeai_sdmeta1.png": [("(imperfect skin)", "imperfect skin")],
    "sd-parsers/invokeai_imeta1.png": [("grainy+", "(grainy:1.1)"), ("jpg+", "(jpg:1.1)"), ("noisy++", "(noisy:1.21)")],
    "sd-metadata/webp/novelai-curated.webp": [("-0.8::feet::", "(feet:-0.8)")],
}
RAN = {"sd-parsers/fooocus1_cropped.png"}  # Fooocus's scheme: the prompts it ran beside those typed


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_dropping_a_real_image_of_each_tool_fills_the_controls(qtbot, idle_app, name):
    window = idle_app.window
    expected = EXPECTED[name]
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [CORPUS / name])

    def shown(text: str) -> str:  # a text box keeps lines, not Windows line ends; other tools' weights as A1111's
        for written, reused in REWRITTEN.get(name, []):
            text = text.replace(written, reused)
        return text.strip().replace("\r\n", "\n")
    wanted = dict(expected)
    if name in RAN:  # the prompts Fooocus ran, its styles' words in them, as the file's JSON lists them
        with Image.open(CORPUS / name) as image:
            written = json.loads(image.info["parameters"])
        wanted.update(prompt=", ".join(written["full_prompt"]),
                      negative_prompt=", ".join(written["full_negative_prompt"]))
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == shown(wanted["prompt"]), timeout=5000)
    assert window.negative.toPlainText() == shown(wanted["negative_prompt"])
    assert (f"it was typed as \u201c{expected['prompt']}\u201d" in window.warnings.text()) == (name in RAN)
    assert ("weighting is written in A1111's syntax" in window.warnings.text()) == (name in REWRITTEN)
    assert window.seed.value() == expected["seed"] % (MAX_SEED + 1) and window.seed_lock.isChecked()
    if "width" in expected:
        assert window.size_box.currentData() == (expected["width"], expected["height"])
    if "novelai" in name:  # its models run only on NovelAI's service: no install is asked for
        assert "runs only on NovelAI's own service: a model installed here takes its place" in window.warnings.text()
        assert "not installed" not in window.errors.text()
    else:
        assert expected.get("model_name", "") in window.errors.text()  # not installed here: named in the banner


@pytest.mark.parametrize("write, prompt, seed", [
    (draw_things_png, "a paper boat & a frog", 123456789), (easy_diffusion_png, "an owl on a birch branch", 3)])
def test_dropping_an_image_of_a_tool_without_sample_files_fills_the_controls(qtbot, idle_app, tmp_path, write, prompt,
                                                                             seed):
    window = idle_app.window
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [write(tmp_path / "image.png")])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == prompt, timeout=5000)
    assert window.seed.value() == seed


def test_a_midjourney_image_gives_its_prompt_and_names_no_model_to_install(qtbot, idle_app, tmp_path):
    """Midjourney's models run only there: reuse takes the prompt, `--no` and the seed, keeps the model chosen, and
    says what it cannot repeat instead of asking for a model no one can install."""
    window = idle_app.window
    model = window.current_model()
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [midjourney_png(tmp_path / "lumen_artist_a_lighthouse.png")])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a lighthouse on a cliff, storm, oil painting",
                    timeout=5000)
    assert window.negative.toPlainText() == "boats, people" and window.seed.value() == 4242
    assert window.current_model() == model and window.errors.text() == ""
    assert ("The image was made with Midjourney v6.1, which runs only on Midjourney's own service: a model installed "
            "here takes its place; its other parameters (--ar 3:2 --stylize 250 --v 6.1) are not repeated."
            ) in window.warnings.text()


def a1111_png(path: Path, model: str, sampler: str = "TCD", steps: int = 1, guidance: float = 0,
              lora_hash: str | None = None, prompt: str = "a quiet harbour", extra: str = "") -> Path:
    """An image with A1111's `parameters` text; `extra` is more of its settings line (", Clip skip: 2")."""
    info = PngInfo()
    lora = f', Lora hashes: "Hyper-SD15-1step-lora: {lora_hash}"' if lora_hash else ""
    info.add_text("parameters", f"{prompt}\nSteps: {steps}, Sampler: {sampler}, CFG scale: {guidance}, Seed: 5, "
                                f"Size: 512x512, Model: {model}{lora}{extra}")
    Image.new("RGB", (32, 32)).save(path, pnginfo=info)
    return path


def test_an_image_made_without_hyper_sd_is_reused_with_the_nearest_recipe_installed(qtbot, idle_app, tmp_path):
    window = idle_app.window
    base = idle_app.library.registry.list(kind="base")[0]
    lora = next(m for m in idle_app.library.registry.list() if m.recipe)
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [a1111_png(tmp_path / "plain.png", base.name, "DPM++ 2M Karras", 25, 7.0,
                            extra=", Denoising strength: 0.6, Hires upscale: 2, Hires steps: 12")])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a quiet harbour", timeout=5000)
    assert window.hyper_box.currentData().id == lora.id
    assert window.steps.value() == 1  # the recipe's, not the image's 25
    # the Hires fix too runs the recipe's share of its steps, not the image's 12 of a plain model's schedule
    request = window.build_request()
    assert (request.hires_scale, request.hires_strength, request.hires_steps) == (2.0, 0.6, None)
    assert not window.hires_steps.isEnabled() and "Hyper-SD file" in window.hires_steps.toolTip()
    text = window.warnings.text()
    assert "made without Hyper-SD (the DPM++ 2M Karras sampler, 25 steps, guidance 7)" in text
    assert "reused with Hyper-SD15-1step-lora: 1 step, TCD" in text


def test_without_a_hyper_sd_file_an_image_keeps_the_steps_a_plain_model_was_run_with(qtbot, idle_app, tmp_path):
    window, library = idle_app.window, idle_app.library
    for lora in [m for m in library.registry.list() if m.recipe]:
        library.registry.remove(lora.id)
    window.reload_models()
    base = library.registry.list(kind="base")[0]
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [a1111_png(tmp_path / "plain.png", base.name, "Euler a", 28, 7.0)])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a quiet harbour", timeout=5000)
    assert window.hyper_box.currentData() is None
    assert window.steps.value() == 28 and window.build_request().steps == 28, "not cut to a Hyper-SD file's 12"


def test_a_plain_model_runs_up_to_the_engines_steps_and_a_hyper_sd_file_a_few_past_its_own(qtbot, idle_app):
    window = idle_app.window
    window.hyper_box.setCurrentIndex(0)  # None (plain model)
    window.steps.setValue(50)
    assert window.build_request().steps == 50
    window.steps.setValue(MAX_STEPS + 1)
    assert window.steps.value() == MAX_STEPS
    window.hyper_box.setCurrentIndex(1)  # the unified 1-step LoRA: its steps are free, to 12
    assert window.steps.isEnabled() and window.steps.value() == window.steps.maximum() == 12


def test_a_foreign_sampler_with_a_hyper_sd_lora_is_named_as_a_change(qtbot, idle_app, tmp_path):
    window = idle_app.window
    base = idle_app.library.registry.list(kind="base")[0]
    lora = next(m for m in idle_app.library.registry.list() if m.recipe)
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [a1111_png(tmp_path / "euler.png", base.name, "Euler a", 1, 0.0, lora.short_hash)])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a quiet harbour", timeout=5000)
    assert window.hyper_box.currentData().id == lora.id
    assert "made with the Euler a sampler; Hyper-SD15-1step-lora runs TCD" in window.warnings.text()


def test_a_lora_tag_in_an_a1111_prompt_checks_the_style_lora_at_its_weight(qtbot, idle_app, hyper_lora, tmp_path):
    """`<lora:NAME:WEIGHT>` applies the LoRA in A1111: reuse ticks it in the LoRA table at that weight and leaves
    the tag out of the prompt (the text encoder would read it as words)."""
    import shutil

    window = idle_app.window
    style = tmp_path / "watercolour_wash.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), style)  # a LoRA under a name no recipe has: a style LoRA
    idle_app.library.import_path(style)
    window.reload_models()
    base = idle_app.library.registry.list(kind="base")[0]
    tagged = a1111_png(tmp_path / "tagged.png", base.name, prompt="a quiet harbour, <lora:watercolour_wash:0.65> soft light")
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [tagged])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a quiet harbour, soft light", timeout=5000)
    request = window.build_request()
    assert [(Path(lora.path).name, lora.weight) for lora in request.loras][-1] == ("watercolour_wash.safetensors", 0.65)


def test_a_lora_tag_typed_or_pasted_into_the_prompt_applies_the_installed_lora(qtbot, idle_app, hyper_lora, tmp_path):
    """A prompt pasted from A1111 keeps its tags: an installed LoRA a tag names by its file's name applies at the
    tag's weight, as in A1111; one ticked in the table keeps the table's weight; a tag naming nothing installed
    applies nothing (the generation says so)."""
    import shutil

    window = idle_app.window
    style = tmp_path / "watercolour_wash.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), style)
    idle_app.library.import_path(style)
    window.reload_models()
    window.prompt.setPlainText("a quiet harbour <lora:watercolour_wash:0.4>, <lora:not_installed:1>")
    request = window.build_request()
    assert [(Path(lora.path).name, lora.weight) for lora in request.loras][-1] == ("watercolour_wash.safetensors", 0.4)
    assert not any("not_installed" in lora.path for lora in request.loras)
    row = next(r for r in range(window.styles.rowCount()) if "watercolour" in window.styles.item(r, 0).text())
    window.styles.item(row, 0).setCheckState(Qt.CheckState.Checked)
    window.styles.cellWidget(row, 1).setValue(0.8)
    assert [lora.weight for lora in window.build_request().loras if "watercolour" in lora.path] == [0.8]


def test_clip_skip_of_an_a1111_image_is_reused_on_an_sd15_model(qtbot, idle_app, tmp_path):
    window = idle_app.window
    base = idle_app.library.registry.list(kind="base")[0]
    skipped = a1111_png(tmp_path / "skipped.png", base.name, prompt="a paper lantern", extra=", Clip skip: 2")
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [skipped])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a paper lantern", timeout=5000)
    assert window.clip_skip.isEnabled() and window.clip_skip.value() == 2
    assert window.build_request().clip_skip == 2
    window.clip_skip.setValue(1)
    assert window.build_request().clip_skip == 1


def test_an_installed_embedding_a_prompt_names_goes_into_the_request(qtbot, idle_app, tmp_path):
    import torch
    from safetensors.torch import save_file

    window = idle_app.window
    embedding = tmp_path / "badhandv4.safetensors"
    save_file({"emb_params": torch.zeros(2, 32)}, str(embedding))
    idle_app.library.import_path(embedding)
    window.reload_models()
    window.prompt.setPlainText("a paper lantern")
    assert window.build_request().embeddings == ()
    window.prompt.setPlainText("a paper lantern, badhandv4")
    assert window.build_request().embeddings == (str(embedding),)


def test_a_comfyui_prompts_embedding_prefix_is_dropped_on_reuse(qtbot, idle_app, tmp_path):
    import json

    window = idle_app.window
    base = idle_app.library.registry.list(kind="base")[0]
    graph = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": f"{base.name}.safetensors"}},
             "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a paper lantern"}},
             "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1],
                                                              "text": "embedding:EasyNegative.pt, blurry"}},
             "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
             "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                        "latent_image": ["4", 0], "seed": 1, "steps": 8, "cfg": 5,
                                                        "sampler_name": "euler", "scheduler": "normal"}}}
    info = PngInfo()
    info.add_text("prompt", json.dumps(graph))
    Image.new("RGB", (32, 32)).save(tmp_path / "comfy.png", pnginfo=info)
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [tmp_path / "comfy.png"])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a paper lantern", timeout=5000)
    assert window.negative.toPlainText() == "EasyNegative, blurry"


def test_a_lora_and_an_embedding_are_found_by_the_hashes_a1111_wrote_under_other_names(qtbot, idle_app, hyper_lora,
                                                                                          tmp_path):
    """A1111 names a LoRA by its LoRA hash (12 digits of the sha256 of its tensor data) and an embedding by 12
    digits of its sha256; files installed here under other names are found by them, an embedding that is not
    installed is named, and one installed under another name says what to write."""
    import hashlib

    import torch
    from safetensors.torch import load_file, save_file

    from tool_layouts import a1111_lora_hash

    window = idle_app.window
    tensors = load_file(str(hyper_lora("Hyper-SD15-2steps-lora")))
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] * 1.5  # a LoRA of its own (the fixture's Hyper-SD files share their tensors)
    style = tmp_path / "renamed_style.safetensors"
    save_file(tensors, str(style), metadata={"ss_output_name": "watercolour_wash"})
    embedding = tmp_path / "easy_negative_v2.safetensors"
    save_file({"emb_params": torch.ones(2, 32)}, str(embedding))
    for path in (style, embedding):
        idle_app.library.import_path(path)
    window.reload_models()
    base = idle_app.library.registry.list(kind="base")[0]
    ti_hash = hashlib.sha256(embedding.read_bytes()).hexdigest()[:12]
    image = a1111_png(tmp_path / "a1111.png", base.name, prompt="a quiet harbour, <lora:watercolour_wash:0.65>",
                      extra=f', Lora hashes: "watercolour_wash: {a1111_lora_hash(style)}", '
                            f'TI hashes: "EasyNegative: {ti_hash}, badhandv4: 5e40d722fc3d"')
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [image])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a quiet harbour,", timeout=5000)
    request = window.build_request()
    assert [(Path(lora.path).name, lora.weight) for lora in request.loras][-1] == ("renamed_style.safetensors", 0.65)
    assert "the embedding badhandv4 is not installed" in window.errors.text() and "Install it from" in window.errors.text()
    assert "EasyNegative" not in window.errors.text()
    assert ("used the embedding EasyNegative, which is installed here as easy_negative_v2; write easy_negative_v2"
            in window.warnings.text())


def test_reusing_an_image_made_from_a_picture_sets_the_init_images_strength_and_says_so(qtbot, idle_app, tmp_path):
    """A1111's image-to-image: the picture is not in the file, so reuse makes the image from the prompt, says so,
    and sets the init image's strength to the image's for when the picture is given."""
    window = idle_app.window
    base = idle_app.library.registry.list(kind="base")[0]
    image = a1111_png(tmp_path / "img2img.png", base.name, extra=", Denoising strength: 0.45")
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [image])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() != "", timeout=5000)
    assert window.init_image.strength.value() == 0.45 and window.init_image.digest is None
    assert ("made with image-to-image from another picture at strength 0.45, which reuse does not repeat. Give that "
            "picture as the init image to make it again from it (at strength 0.45)." in window.warnings.text())


def test_reusing_an_image_with_adetailers_face_pass_turns_detail_faces_on(qtbot, idle_app):
    """Forge with ADetailer (a real file): reuse fills in the settings and repeats the face pass with Detail faces,
    at its strength, confidence and padding, and says how (the faces are found another way: the pose models, which
    are not installed here)."""
    from hypersd_desktop.ui.detail_rows import no_models

    window, row = idle_app.window, idle_app.window.face_detail
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [CORPUS / "sd-metadata/png/forge-classic-adetailer.png"])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() != "", timeout=5000)
    assert row.enabled.isChecked() and (row.strength.value(), row.confidence.value(), row.padding.value()) == (
        0.5, 0.3, 32)
    assert row.mask.dilate.value() == 4 and row.mask.button.text() == "Mask*"  # "ADetailer dilate erode: 4"
    assert row.prompt.text() == "" and row.negative.text() == ""  # ADetailer's prompts: the image's
    said = window.warnings.text()
    assert "faces were made again by ADetailer (face_yolov8n.pt, strength 0.5); reuse does that with Detail faces" \
           in said and no_models("face") in said
    assert "reuse does not repeat" not in said


def test_reusing_an_image_with_adetailers_hand_pass_turns_detail_hands_on(qtbot, idle_app, tmp_path):
    """ADetailer's face and hand passes, as it writes them (the second's fields end " 2nd", its prompts quoted):
    reuse turns Detail faces and Detail hands on, each with its own pass's settings and prompts."""
    window = idle_app.window
    base = idle_app.library.registry.list(kind="base")[0]
    image = a1111_png(tmp_path / "hands.png", base.name, extra=(
        ", ADetailer model: face_yolov8n.pt, ADetailer confidence: 0.3, ADetailer mask only top k largest: 1, "
        "ADetailer dilate/erode: 4, ADetailer mask "
        "blur: 4, ADetailer denoising strength: 0.3, ADetailer inpaint only masked: True, ADetailer inpaint padding: "
        '32, ADetailer model 2nd: hand_yolov8n.pt, ADetailer prompt 2nd: "hand, good hands, good fingers", '
        'ADetailer negative prompt 2nd: "bad anatomy, bad fingers, ", ADetailer confidence 2nd: 0.35, ADetailer '
        "dilate/erode 2nd: 4, ADetailer mask blur 2nd: 4, ADetailer denoising strength 2nd: 0.45, ADetailer inpaint "
        "only masked 2nd: True, ADetailer inpaint padding 2nd: 24, ADetailer version: 23.9.3"))
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [image])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() != "", timeout=5000)
    faces, hands = window.face_detail, window.hand_detail
    assert faces.enabled.isChecked() and faces.strength.value() == 0.3 and faces.prompt.text() == ""
    assert faces.largest.value() == 1 and hands.largest.value() == 0  # the largest face alone; every hand
    assert faces.mask.dilate.value() == hands.mask.dilate.value() == 4  # "dilate/erode", as ADetailer 23 wrote it
    assert window.build_request() is None  # the pose models are not installed here: Generate says so
    assert hands.enabled.isChecked() and (hands.strength.value(), hands.confidence.value(), hands.padding.value()) == (
        0.45, 0.35, 24)
    assert hands.prompt.text() == "hand, good hands, good fingers" and hands.negative.text() == "bad anatomy, bad " \
                                                                                                 "fingers,"
    said = window.warnings.text()
    assert "hands were made again by ADetailer (hand_yolov8n.pt, strength 0.45); reuse does that with Detail hands " \
           "with its own prompt" in said and "reuse does not repeat" not in said


@pytest.mark.parametrize(("name", "strength", "hires_steps"), [
    ("sd-metadata/png/sd-webui-hires.png", "0.3", 10),
    ("sd-metadata/webp/sd-next-hires.webp", "0.7 (A1111’s default", 20)])
def test_reusing_a_hires_fix_image_runs_the_hires_fix_and_says_how(qtbot, idle_app, name, strength, hires_steps):
    """A1111 (and Forge, reForge, SD.Next) write the first pass's size and how the Hires fix enlarged it: reuse
    makes the first pass at that size and this app's Hires fix after it, and says what differs (the upscaler)."""
    window = idle_app.window
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [CORPUS / name])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() != "", timeout=5000)
    assert window.size_box.currentData() == (1024, 1024)
    assert "made at 1024 × 1024 and then enlarged to 1536 × 1536 by a Hires fix pass" in window.warnings.text()
    assert f"reuse runs the Hires fix at ×1.5, strength {strength}" in window.warnings.text()
    request = window.build_request()
    assert (request.width, request.height, request.hires_scale) == (1024, 1024, 1.5)
    assert request.hires_strength == float(strength.split()[0])
    # A1111 runs its Hires steps, or without them all the first pass's steps again (SD.Next writes none)
    assert (request.steps, request.hires_steps) == (20, hires_steps)


def test_the_batch_dialog_takes_a_plain_models_request_as_it_is(qtbot, idle_app):
    window = idle_app.window
    window.hyper_box.setCurrentIndex(0)  # None (plain model), though a Hyper-SD LoRA is installed
    window.steps.setValue(30)
    window.open_batch()
    dialog = window._batch_dialog
    assert dialog.hyper_box.currentData() is None, "not the installed LoRA the request does not use"
    assert dialog.steps.value() == 30
    dialog.hyper_box.setCurrentIndex(1)
    assert dialog.steps.value() == 1 and dialog.steps.maximum() == 12
    dialog.reject()


def test_an_image_from_civitai_whose_model_is_missing_offers_to_download_it_from_there(qtbot, idle_app, hyper_lora,
                                                                                      monkeypatch):
    """The real image Civitai's generator wrote names its checkpoint's version: one button downloads it on the Models
    tab (here from a local server speaking Civitai's API, serving a tiny file for it)."""
    from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

    monkeypatch.delenv("CIVITAI_TOKEN", raising=False)
    window = idle_app.window
    with CivitaiServer() as civitai:
        civitai.add(CivitaiVersion(
            id=2514310, model_id=827184, model_name="WAI-illustrious-SDXL", name="v16.0", model_type="Checkpoint",
            base_model="Illustrious", files=[CivitaiFile("waiIllustriousSDXL_v160.safetensors",
                                                         hyper_lora("Hyper-SDXL-1step-lora").read_bytes())]))
        idle_app.library.downloader.civitai, idle_app.library.downloader.civitai_token = civitai.url, civitai.key
        answer_next_dialog(qtbot, "Reuse its settings")
        drop(window, [CORPUS / "sd-metadata/jpg/civitai.jpeg"])
        qtbot.waitUntil(lambda: window.errors.action.isVisible(), timeout=5000)
        assert "the base model WAI-illustrious-SDXL is not installed" in window.errors.text()
        assert window.errors.text().endswith("The image names it on Civitai: Download from Civitai fetches it there.")
        assert window.errors.action.text() == "Download from Civitai"
        window.errors.action.click()
        assert window.tabs.currentWidget() is window.models and not window.errors.isVisible()
        qtbot.waitUntil(lambda: window.models.download_task is None, timeout=30_000)
        assert window.models.download_label.text() == "Installed WAI-illustrious-SDXL v16.0."
    assert [path for _, path, *_ in civitai.requests][:2] == ["/api/v1/model-versions/2514310",
                                                              "/api/download/models/2514310"]


def test_another_tools_image_of_a_missing_model_offers_to_look_it_up_on_civitai_by_its_hash(qtbot, idle_app, tmp_path,
                                                                                          hyper_lora, monkeypatch):
    """A1111 writes the model's AutoV2 hash (`Model hash`), by which Civitai's API finds the version."""
    import hashlib

    from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

    monkeypatch.delenv("CIVITAI_TOKEN", raising=False)
    window = idle_app.window
    data = hyper_lora("Hyper-SD15-2steps-lora", seed=5).read_bytes()
    data = data[:-4] + bytes(4)  # weights of its own: not the installed 1-step LoRA's, whatever the fixture made
    with CivitaiServer() as civitai:
        civitai.add(CivitaiVersion(id=77, model_id=7, model_name="Ink Wash", name="v1", model_type="LORA",
                                   files=[CivitaiFile("ink-wash.safetensors", data)]))
        idle_app.library.downloader.civitai, idle_app.library.downloader.civitai_token = civitai.url, civitai.key
        base = idle_app.library.registry.list(kind="base")[0]
        autov2 = hashlib.sha256(data).hexdigest()[:10]
        answer_next_dialog(qtbot, "Reuse its settings")
        drop(window, [a1111_png(tmp_path / "ink.png", base.name, extra=f', Lora hashes: "ink-wash: {autov2}"')])
        qtbot.waitUntil(lambda: "ink-wash" in window.errors.text(), timeout=5000)
        assert "the LoRA ink-wash is not installed" in window.errors.text(), window.errors.text()
        assert window.errors.action.isVisible()
        assert window.errors.text().endswith("Download from Civitai looks it up there by the hash the image gives.")
        window.errors.action.click()
        qtbot.waitUntil(lambda: window.models.download_task is None, timeout=30_000)
        assert window.models.download_label.text() == "Installed Ink Wash v1."
    assert civitai.requests[0][1] == f"/api/v1/model-versions/by-hash/{autov2}"
