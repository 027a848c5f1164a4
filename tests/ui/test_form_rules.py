"""The rules the Generate tab and the batch dialog share, and matching an image's models."""

from __future__ import annotations

from pathlib import Path

from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.formats import ImageMetadata
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.ui.drops import DroppedFiles
from hypersd_desktop.ui.generate_form import RecipeRules, hyper_parts
from hypersd_desktop.worker.matching import match_metadata, match_request


def model(model_id: str, kind: str, recipe: str | None = None, short_hash: str | None = None) -> InstalledModel:
    return InstalledModel(model_id, model_id, kind, "sd15", "file", f"/models/{model_id}.safetensors", 1, None,
                          short_hash, "import-reference", False, recipe=recipe)


UNIFIED = model("Hyper-SD15-1step-lora", "lora", "Hyper-SD15-1step-lora", "aaaaaaaaaa")
CFG = model("Hyper-SD15-8steps-CFG-lora", "lora", "Hyper-SD15-8steps-CFG-lora")
TWO = model("Hyper-SD15-2steps-lora", "lora", "Hyper-SD15-2steps-lora")
BASE = model("dreamshaper", "base", short_hash="bbbbbbbbbb")
STYLE = model("watercolour", "lora", short_hash="cccccccccc")


def test_recipe_rules():
    plain, unified, cfg, two = (RecipeRules.of(m) for m in (None, UNIFIED, CFG, TWO))
    assert plain.uses_guidance and plain.steps_free and not plain.uses_eta and plain.guidance_for(7.5) == 7.5
    assert unified.steps_free and unified.uses_eta and not unified.uses_guidance and unified.guidance_for(7.5) == 0.0
    assert not unified.negative_applies(0.0) and cfg.negative_applies(6.0) and not cfg.negative_applies(1.0)
    assert cfg.guidance_for(2.0) == 5.0 and cfg.guidance_for(7.0) == 7.0 and not cfg.steps_free
    assert (two.default_steps, two.steps_free, two.uses_eta) == (2, False, False)
    one_step_unet = RecipeRules.of(model("Hyper-SDXL-1step-Unet", "unet", "Hyper-SDXL-1step-Unet"))
    assert one_step_unet.least_strength == 1.0, "its one fixed timestep must run"
    assert plain.least_strength == unified.least_strength == two.least_strength == 0.0


def test_the_steps_box_follows_the_recipe_and_says_why(qtbot):
    from PySide6.QtWidgets import QSpinBox

    box = QSpinBox(minimum=1, maximum=100, value=30)
    RecipeRules.of(None).fit_steps(box)
    assert (box.value(), box.maximum(), box.isEnabled()) == (30, 100, True)
    assert "20 to 50 steps" in box.toolTip()
    RecipeRules.of(TWO).fit_steps(box)
    assert (box.value(), box.isEnabled()) == (2, False)
    assert "trained for exactly 2 steps" in box.toolTip() and "1 to 8" in box.toolTip(), "why it is greyed out"
    RecipeRules.of(UNIFIED).fit_steps(box)
    assert (box.maximum(), box.isEnabled()) == (12, True) and "made for 1 to 8 steps" in box.toolTip()


def test_hyper_parts_put_a_lora_or_a_unet_into_the_request():
    unet = model("Hyper-SDXL-1step-Unet", "unet", "Hyper-SDXL-1step-Unet")
    assert hyper_parts(None) == (None, ())
    assert hyper_parts(UNIFIED) == (None, (LoraSpec(UNIFIED.path, 1.0),))
    assert hyper_parts(unet) == (unet.path, ())


def test_a_request_is_matched_by_path_and_what_is_missing_is_named():
    request = GenerationRequest(prompt="x", base_model=BASE.path, loras=(
        LoraSpec(UNIFIED.path, 1.0), LoraSpec(STYLE.path, 0.6), LoraSpec("/elsewhere/gone.safetensors", 0.5)))
    match = match_request(request, [BASE, UNIFIED, STYLE])
    assert (match.base, match.hyper, match.styles) == (BASE, UNIFIED, [LoraSpec(STYLE.path, 0.6)])
    assert match.missing == ["the LoRA gone.safetensors"]


def test_a_request_made_on_another_computer_finds_the_models_of_the_same_names_and_says_so():
    """Paths written on Windows, or before the models folder moved: matched by file name, with a warning."""
    request = GenerationRequest(prompt="x", base_model="C:\\sd\\models\\dreamshaper.safetensors", loras=(
        LoraSpec("D:\\loras\\Hyper-SD15-1step-lora.safetensors", 1.0), LoraSpec("/old/home/watercolour.safetensors", 0.6),
        LoraSpec("C:\\loras\\gone.safetensors", 0.5)))
    match = match_request(request, [BASE, UNIFIED, STYLE])
    assert (match.base, match.hyper, match.styles) == (BASE, UNIFIED, [LoraSpec(STYLE.path, 0.6)])
    assert match.missing == ["the LoRA gone.safetensors"]
    (warning,) = match.warnings
    assert "the ones installed here of the same names are used: dreamshaper.safetensors (/models/dreamshaper" in warning


def test_a_request_naming_a_stale_entry_takes_the_model_imported_again_after_a_move(tmp_path):
    """The request's path is still registered, but its files moved and were imported again under another id."""
    moved = tmp_path / "new-disk" / "dreamshaper.safetensors"
    moved.parent.mkdir()
    moved.write_bytes(b"weights")
    stale = InstalledModel("dreamshaper", "dreamshaper", "base", "sd15", "file", str(tmp_path / "old" / moved.name), 1,
                           None, None, "import-reference", False)
    again = InstalledModel("dreamshaper-2", "dreamshaper", "base", "sd15", "file", str(moved), 1, None, None,
                           "import-reference", False)
    match = match_request(GenerationRequest(prompt="x", base_model=stale.path), [stale, again])
    assert match.base == again and match.missing == [] and str(moved) in match.warnings[0]
    alone = match_request(GenerationRequest(prompt="x", base_model=stale.path), [stale])
    assert alone.base == stale and alone.warnings == []  # nothing better here: the banner says its files are missing


def test_another_tools_parameters_match_by_hash_then_by_name():
    metadata = ImageMetadata("a1111", prompt="x", model_name="renamed", model_hash="BBBBBBBBBB",
                             loras=(("Hyper-SD15-1step-lora", 1.0, None), ("style", 0.7, "cccccccccc"),
                                    ("unknown", 1.0, "dddddddddd")))
    match = match_metadata(metadata, [BASE, UNIFIED, STYLE])
    assert (match.base, match.hyper, match.styles) == (BASE, UNIFIED, [LoraSpec(STYLE.path, 0.7)])
    assert match.missing == ["the LoRA unknown"]


def test_what_is_missing_is_offered_from_civitai_where_the_image_names_its_versions_there():
    """Of the kinds missing only, and not a version downloaded here before (an image made with a LoRA the person
    has, but a checkpoint they have not, offers the checkpoint)."""
    from dataclasses import replace

    metadata = ImageMetadata("a1111", prompt="x", model_name="WAI-illustrious-SDXL", loras=(("watercolour", 0.7, None),),
                             civitai=(("checkpoint", 2514310), ("lora", 11), ("embedding", 12)))
    match = match_metadata(metadata, [BASE, STYLE])
    assert match.missing == ["the base model WAI-illustrious-SDXL"]
    assert match.downloads == ["https://civitai.com/api/download/models/2514310"]
    downloaded = replace(BASE, id="wai", name="WAI", short_hash=None, source="download", revision="2514310")
    again = match_metadata(metadata, [downloaded, STYLE])  # named otherwise, yet downloaded here: that version
    assert (again.base, again.missing, again.downloads) == (downloaded, [], [])
    air = replace(metadata, model_name="urn:air:sdxl:checkpoint:civitai:827184@2514310", civitai=())  # its graphs
    assert match_metadata(air, [BASE, downloaded]).base == downloaded
    with_format = replace(air, model_name="urn:air:sdxl:checkpoint:civitai:827184@2514310.safetensors")
    assert match_metadata(with_format, [BASE, downloaded]).base == downloaded
    assert match_metadata(air, [BASE, STYLE]).missing == ["the base model urn:air:sdxl:checkpoint:civitai:827184@2514310"]
    unsaid = replace(metadata, civitai=(("", 2514310), ("", 11)))  # Civitai's record of versions without kinds
    assert match_metadata(unsaid, [BASE, STYLE]).downloads == [
        "https://civitai.com/api/download/models/2514310", "https://civitai.com/api/download/models/11"]
    assert match_metadata(replace(unsaid, model_name="dreamshaper"), [BASE, STYLE]).downloads == []  # none missing
    # another tool's image gives hashes only: the missing files are looked up by them ("unknown" is no hash)
    hashed = ImageMetadata("a1111", prompt="x", model_name="juggernaut", model_hash="879DB523C3",
                           loras=(("watercolour", 0.7, None), ("detail", 1.0, "ABCDEF012345"), ("x", 1.0, "unknown")))
    assert match_metadata(hashed, [BASE, STYLE]).by_hash and not match.by_hash
    assert match_metadata(hashed, [BASE, STYLE]).downloads == [
        "https://civitai.com/api/v1/model-versions/by-hash/879db523c3",
        "https://civitai.com/api/v1/model-versions/by-hash/abcdef012345"]


def test_a_hyper_sd_file_an_image_names_by_its_tools_own_name_is_the_installed_one():
    """Fooocus's Hyper-SD performance runs the 4-step SDXL LoRA under its own file name: reusing such an image
    takes the installed Hyper-SD file, and says the image's sampler is not the recipe's, not that it was made
    without Hyper-SD."""
    four = InstalledModel("Hyper-SDXL-4steps-lora", "Hyper-SDXL-4steps-lora", "lora", "sdxl", "file",
                          "/models/Hyper-SDXL-4steps-lora.safetensors", 1, None, None, "download", True,
                          recipe="Hyper-SDXL-4steps-lora")
    base = InstalledModel("juggernaut", "juggernautXL_v8", "base", "sdxl", "file", "/models/juggernautXL_v8.safetensors",
                          1, None, None, "import-reference", False)
    metadata = ImageMetadata("fooocus", prompt="x", model_name="juggernautXL_v8", steps=4, sampler="dpmpp_sde_gpu",
                             loras=(("sdxl_hyper_sd_4step_lora", 0.8, None),))
    match = match_metadata(metadata, [base, four])
    assert (match.base, match.hyper, match.missing) == (base, four, [])
    assert not any("without Hyper-SD" in warning for warning in match.warnings)


def test_an_image_of_krita_ais_hyper_preset_is_reused_with_the_cfg_recipe_and_said_to_be_hyper_sd():
    """Krita's AI plugin runs Hyper-SD's 8-step CFG LoRA in its "Realtime - Hyper" preset without naming the
    LoRA: reuse takes the nearest installed recipe and does not say the image was made without Hyper-SD."""
    metadata = ImageMetadata("a1111", prompt="x", model_name="dreamshaper", steps=8, guidance=3.5,
                             sampler="Realtime - Hyper")
    match = match_metadata(metadata, [BASE, UNIFIED, CFG, TWO])
    assert match.hyper == CFG
    (warning,) = match.warnings
    assert warning.startswith("The image was made with Hyper-SD as another tool runs it (the Realtime - Hyper "
                              "sampler, 8 steps, guidance 3.5); it is reused with Hyper-SD15-8steps-CFG-lora")


def test_dropped_images_and_model_files_are_told_apart(tmp_path):
    image, upper, weights, folder = (tmp_path / n for n in ("a.png", "B.JPG", "m.safetensors", "models"))
    for path in (image, upper, weights):
        path.write_bytes(b"x")
    folder.mkdir()
    (tmp_path / "dir.png").mkdir()
    outputs, checkpoints = tmp_path / "outputs", tmp_path / "checkpoints"
    (outputs / "txt2img-images" / "2026-12-03").mkdir(parents=True)
    (outputs / "txt2img-images" / "2026-12-03" / "00001-123.PNG").write_bytes(b"x")  # an A1111 outputs folder
    (checkpoints / "previews").mkdir(parents=True)
    (checkpoints / "previews" / "model.preview.png").write_bytes(b"x")  # a checkpoint's preview beside it
    (checkpoints / "model.ckpt").write_bytes(b"x")
    saved = tmp_path / "photo.jfif"  # a JPEG as a browser on Windows saves it: an image, not a model
    saved.write_bytes(b"x")
    dropped = DroppedFiles.sort([image, upper, weights, saved, folder, tmp_path / "dir.png", outputs, checkpoints])
    assert dropped.images == (image, upper, saved)
    assert dropped.image_folders == (outputs,), "images and no weights: for the gallery"
    assert dropped.models == (weights, folder, Path(tmp_path / "dir.png"), checkpoints)


def test_the_settings_dialog_keeps_the_backend_and_the_worker_python(qtbot):
    from hypersd_desktop.core.settings import Settings
    from hypersd_desktop.ui.settings_dialog import SettingsDialog

    chosen = Settings(backend="onnx", device="cpu", worker_python="/opt/runtime/bin/python", fast_decode=True)
    dialog = SettingsDialog(chosen, None, ("torch",))
    qtbot.addWidget(dialog)
    assert [dialog.backend.itemData(i) for i in range(dialog.backend.count())] == ["auto", "torch", "onnx"]
    assert [dialog.backend.itemText(i) for i in range(1, 3)] == ["PyTorch", "ONNX Runtime"]
    assert dialog.backend.currentText() == "ONNX Runtime" and dialog.fast_decode.isChecked()
    assert dialog.settings() == chosen
    dialog.backend.setCurrentIndex(0)
    assert dialog.settings().backend == "auto"
    dialog.backend.setCurrentIndex(2)
    dialog.worker_python.setText("  ")
    assert dialog.settings().worker_python == ""  # empty: the app's own Python


def test_the_settings_dialog_keeps_the_civitai_key_hidden_and_as_pasted_without_spaces(qtbot):
    from PySide6.QtWidgets import QLineEdit

    from hypersd_desktop.core.settings import Settings
    from hypersd_desktop.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings(civitai_token="0123abcd"), None)
    qtbot.addWidget(dialog)
    assert dialog.civitai_token.echoMode() == QLineEdit.EchoMode.PasswordEchoOnEdit
    assert dialog.settings().civitai_token == "0123abcd"
    dialog.civitai_token.setText(" 4567ef89\n")  # copied with the line's end
    assert dialog.settings().civitai_token == "4567ef89"


def test_the_settings_dialog_takes_folders_as_people_type_them_and_says_what_is_wrong(qtbot, tmp_path,
                                                                                      monkeypatch):
    """A folder typed with ~, pasted in quotes or dropped as a file:// address is the folder meant, made at OK; a
    part of a path, a file, or a worker Python that is not there keeps the dialog open saying so."""
    from hypersd_desktop.core.settings import Settings
    from hypersd_desktop.ui.settings_dialog import SettingsDialog

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    dialog = SettingsDialog(Settings(), None, ("torch",))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.images_dir.edit.setText("Pictures/ai")
    dialog.accept()
    assert dialog.isVisible() and "\"Pictures/ai\" is not a whole path" in dialog.problem.text()
    (tmp_path / "a file").write_text("")
    dialog.images_dir.edit.setText(f"'{tmp_path / 'a file'}'")
    dialog.accept()
    said = dialog.problem.text()
    assert dialog.isVisible() and said == f"⚠ The images folder {tmp_path / 'a file'} is a file, not a folder."
    dialog.images_dir.edit.setText(str(Path("~") / "Pictures" / "ai"))
    dialog.models_dir.edit.setText((tmp_path / "my models").as_uri())
    dialog.worker_python.setText(str(tmp_path / "runtime" / "python"))
    dialog.accept()
    said = dialog.problem.text()
    assert dialog.isVisible() and "The worker Python" in said and "is not there" in said
    dialog.worker_python.setText("python3")  # a command the system finds, as typed in a terminal
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}" if name == "python3" else None)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted and dialog.settings().worker_python == "python3"
    dialog.worker_python.setText("")
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    chosen = dialog.settings()
    assert (chosen.images_dir, chosen.models_dir, chosen.worker_python) == (
        str(tmp_path / "Pictures" / "ai"), str(tmp_path / "my models"), "")
    assert (tmp_path / "Pictures" / "ai").is_dir() and (tmp_path / "my models").is_dir()


def test_a_folder_written_with_a_tilde_into_the_settings_file_is_the_home_folders(app_home, tmp_path, monkeypatch):
    """Settings written by hand, or by an older version that kept what was typed: "~/…" is under the home folder,
    for the window and the worker alike (both read the folders from the file), not a folder named ~."""
    import json

    from hypersd_desktop.core.paths import AppPaths

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    paths = AppPaths.default().ensure()
    (paths.config / "settings.json").write_text(json.dumps({"images_dir": "~/Pictures/ai", "models_dir": "~/models"}))
    assert (paths.images, paths.models) == (tmp_path / "Pictures" / "ai", tmp_path / "models")


def test_the_settings_dialog_names_devices_precisions_and_themes_in_words_and_keeps_their_values(qtbot):
    from hypersd_desktop.core.settings import Settings
    from hypersd_desktop.ui.settings_dialog import SettingsDialog

    chosen = Settings(device="cuda", dtype="bf16", theme="dark")
    dialog = SettingsDialog(chosen, None, ("torch",))
    qtbot.addWidget(dialog)
    assert (dialog.device.currentText(), dialog.dtype.currentText(), dialog.theme.currentText()) == (
        "NVIDIA GPU (CUDA)", "bf16 (newer NVIDIA GPUs, CPUs with bf16)", "Dark")
    assert dialog.settings() == chosen
    assert [dialog.device.itemData(i) for i in range(dialog.device.count())] == ["auto", "cuda", "mps", "directml",
                                                                                 "cpu"]
    dialog.theme.setCurrentIndex(dialog.theme.findText("As the system"))
    dialog.dtype.setCurrentIndex(0)
    assert (dialog.settings().theme, dialog.settings().dtype) == ("system", "auto")
    odd = SettingsDialog(Settings(device="xpu"), None, ("torch",))  # written by another version: kept as it is
    qtbot.addWidget(odd)
    assert odd.settings().device == "xpu"
