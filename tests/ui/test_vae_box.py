"""The VAE list on the Generate tab: "Automatic" and the installed VAEs, a checkpoint shared without a VAE, and
reuse of an image made with a VAE of its own."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from safetensors.torch import load_file, save_file

from ui_helpers import answer_next_dialog, drop

VAE_PREFIX = "first_stage_model."


@pytest.fixture
def split(tiny_sd15, tmp_path):
    """The tiny SD1.5 model as a checkpoint shared without its VAE, and the VAE as a file of its own."""
    from diffusers import StableDiffusionPipeline

    import ldm_format

    whole = ldm_format.save_single_file(StableDiffusionPipeline.from_pretrained(tiny_sd15), tmp_path / "whole.safetensors")
    state = load_file(whole)
    bare, vae = tmp_path / "bare-model.safetensors", tmp_path / "vaes" / "kl-f8-test.safetensors"
    vae.parent.mkdir()
    save_file({k: t for k, t in state.items() if not k.startswith(VAE_PREFIX)}, bare)
    save_file({k[len(VAE_PREFIX):]: t for k, t in state.items() if k.startswith(VAE_PREFIX)}, vae)
    return bare, vae


def _choose_model(window, name: str) -> None:
    window.model_box.setCurrentIndex(next(i for i in range(window.model_box.count())
                                          if window.model_box.itemData(i).name == name))


def _items(box) -> list[str]:
    return [box.itemText(i) for i in range(box.count())]


def test_the_vae_list_offers_automatic_and_the_installed_vaes(qtbot, idle_app, split):
    window = idle_app.window
    _, vae = split
    window.prompt.setPlainText("a red kite")
    assert _items(window.vae_box) == ["Automatic (the model's own)"]
    assert window.build_request().vae is None
    idle_app.library.import_path(vae)
    window.reload_models()
    assert _items(window.vae_box) == ["Automatic (the model's own)", "kl-f8-test"]
    window.vae_box.setCurrentIndex(1)
    assert window.build_request().vae == str(vae)
    window.reload_models()  # a download or import elsewhere keeps the choice
    assert window.build_request().vae == str(vae)

    window.apply_request(window.build_request().replace(vae=None))  # reuse: as each image was made
    assert window.vae_box.currentIndex() == 0 and window.build_request().vae is None
    window.apply_request(window.build_request().replace(vae=str(vae)))
    assert window.vae_box.currentText() == "kl-f8-test"
    window.apply_request(window.build_request().replace(vae="/gone/old-vae.safetensors"))
    assert "the VAE old-vae.safetensors is not installed" in window.errors.text()


def test_a_checkpoint_without_a_vae_says_so_until_one_is_chosen_or_installed(qtbot, idle_app, split):
    from hypersd_desktop.models.registry import InstalledModel

    window = idle_app.window
    bare, vae = split
    idle_app.library.import_path(bare)
    idle_app.library.import_path(vae)  # a VAE file does not say its architecture: offered, not picked
    window.reload_models()
    _choose_model(window, "bare-model")
    window.prompt.setPlainText("a red kite")
    assert window.model_box.currentText() == "bare-model  (SD1.5, no VAE)"
    assert _items(window.vae_box) == ["Automatic (the model has none)", "kl-f8-test"]
    assert "bare-model.safetensors has no VAE inside it" in window.warnings.text()
    assert "Choose one in the VAE list" in window.warnings.text()
    window.vae_box.setCurrentIndex(1)
    assert "no VAE inside" not in window.warnings.text()
    assert window.build_request().vae == str(vae)

    window.vae_box.setCurrentIndex(0)
    catalog = Path(vae).with_name("vae-ft-mse-840000-ema-pruned.safetensors")
    catalog.write_bytes(vae.read_bytes())
    idle_app.library.registry.add(InstalledModel(
        id="sd-vae-ft-mse", name="SD1.5 VAE (ft-MSE)", kind="vae", architecture="sd15", layout="file",
        path=str(catalog), size=1, sha256=None, short_hash=None, source="download", owned=True,
        catalog_id="sd-vae-ft-mse"))
    window.reload_models()
    assert window.vae_box.currentText() == "Automatic (SD1.5 VAE (ft-MSE))"
    assert window.build_request().vae == str(catalog)
    assert "no VAE inside" not in window.warnings.text()
    _choose_model(window, next(m.name for m in idle_app.library.registry.list(kind="base") if Path(m.path).is_dir()))
    assert window.vae_box.currentText() == "Automatic (the model's own)"


def test_an_a1111_image_made_with_a_vae_chooses_it_by_hash(qtbot, idle_app, split, tmp_path):
    window = idle_app.window
    _, vae = split
    (item,) = idle_app.library.import_path(vae)
    window.reload_models()
    installed = idle_app.library.registry.get(item.model_id)
    base = idle_app.library.registry.list(kind="base")[0]
    for name, vae_fields in (("hashed.png", f"VAE hash: {installed.short_hash}, VAE: renamed.safetensors"),
                             ("missing.png", "VAE hash: 0123456789, VAE: orangemix.vae.pt")):
        info = PngInfo()
        info.add_text("parameters", f"a quiet harbour\nSteps: 1, Sampler: TCD, CFG scale: 0, Seed: 5, Size: 512x512, "
                                    f"Model: {base.name}, {vae_fields}")
        Image.new("RGB", (32, 32)).save(tmp_path / name, pnginfo=info)
    window.vae_box.setCurrentIndex(0)
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [tmp_path / "hashed.png"])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a quiet harbour", timeout=5000)
    assert window.vae_box.currentText() == "kl-f8-test" and window.build_request().vae == str(vae)
    window.prompt.clear()
    answer_next_dialog(qtbot, "Reuse its settings")
    drop(window, [tmp_path / "missing.png"])
    qtbot.waitUntil(lambda: window.prompt.toPlainText() == "a quiet harbour", timeout=5000)
    assert "the VAE orangemix.vae.pt is not installed" in window.errors.text()
    assert window.vae_box.currentIndex() == 0

    gallery = window.gallery
    record = gallery.store.get(gallery.add_file(tmp_path / "hashed.png", source="imported"))
    window.prompt.clear()
    window.reuse_record(record)  # from the gallery: the row has no VAE, the file has
    assert window.prompt.toPlainText() == "a quiet harbour" and window.vae_box.currentText() == "kl-f8-test"


def test_the_draw_tab_runs_its_model_with_the_vae_chosen_for_it(qtbot, idle_app, split, tiny_sd15, tmp_path):
    import tiny_models

    window, tab = idle_app.window, idle_app.window.draw
    _, vae = split
    idle_app.library.import_path(vae)
    idle_app.library.import_path(tiny_models.save_controlnet(tiny_sd15, tmp_path / "tiny-scribble"))
    window.models.models_changed.emit()
    tab.prompt.setText("a house on a hill")
    assert tab.model_box.currentData().id == window.current_model().id
    assert tab.build_request().vae is None
    window.vae_box.setCurrentIndex(window.vae_box.findText("kl-f8-test"))
    assert tab.build_request().vae == str(vae), "the Generate tab's choice for the same model"


def test_a_batch_keeps_the_vae_chosen_for_its_model_and_takes_the_automatic_one_for_another(qtbot, idle_app, split,
                                                                                            tmp_path):
    import shutil

    window = idle_app.window
    bare, vae = split
    shutil.copy(vae, bare.with_name("bare-model.vae.safetensors"))  # as AUTOMATIC1111 keeps a model's VAE
    idle_app.library.import_path(bare)
    idle_app.library.import_path(vae)
    window.reload_models()
    window.prompt.setPlainText("a red kite")
    window.vae_box.setCurrentIndex(window.vae_box.findText("kl-f8-test"))
    dialog = window.open_batch()
    dialog.prompts.setPlainText("a castle\na dragon")
    dialog.folder.setText(str(tmp_path / "batch"))
    assert {unit.request.vae for unit in dialog.build_spec().units} == {str(vae)}
    dialog.model_box.setCurrentIndex(next(i for i in range(dialog.model_box.count())
                                          if dialog.model_box.itemData(i).name == "bare-model"))
    assert {unit.request.vae for unit in dialog.build_spec().units} == {str(bare.with_name("bare-model.vae.safetensors"))}
    dialog.reject()



def test_the_window_makes_an_image_from_a_model_without_a_vae_with_the_one_installed_for_it(qtbot, parts, split,
                                                                                           tiny_sd15, tmp_path):
    """Through the worker: a model folder fetched without its VAE's weights runs with the SD1.5 VAE installed (the
    automatic choice reaches the engine), and the PNG names that VAE as A1111 does."""
    import shutil

    from hypersd_desktop.models.registry import InstalledModel
    from ui_helpers import WAIT

    window = parts.window
    _, vae = split
    folder = shutil.copytree(tiny_sd15, tmp_path / "no-vae-weights")
    for weights in (folder / "vae").glob("*.safetensors"):
        weights.unlink()
    parts.library.import_path(folder)
    parts.library.registry.add(InstalledModel(
        id="sd-vae-ft-mse", name="SD1.5 VAE (ft-MSE)", kind="vae", architecture="sd15", layout="file", path=str(vae),
        size=vae.stat().st_size, sha256=None, short_hash=None, source="download", owned=True, catalog_id="sd-vae-ft-mse"))
    window.reload_models()
    _choose_model(window, "no-vae-weights")
    window.size_box.addItem("64 × 64 (test)", (64, 64))
    window.size_box.setCurrentIndex(window.size_box.count() - 1)
    assert window.vae_box.currentText() == "Automatic (SD1.5 VAE (ft-MSE))"
    window.prompt.setPlainText("a lighthouse at dusk")
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as saved:
        window.generate()
    assert not window.errors.text()
    with Image.open(saved.args[0]) as image:
        settings = image.text["parameters"].splitlines()[-1]
    digest = hashlib.sha256(vae.read_bytes()).hexdigest()[:10]
    assert f"VAE hash: {digest}, VAE: kl-f8-test.safetensors" in settings


def test_the_vae_chosen_is_chosen_again_after_a_restart(qtbot, idle_app, split):
    from hypersd_desktop.app import build_app
    from tests.ui.conftest import close

    window = idle_app.window
    _, vae = split
    idle_app.library.import_path(vae)
    window.reload_models()
    window.vae_box.setCurrentIndex(window.vae_box.findText("kl-f8-test"))
    window._remember_choices()  # as closing the window does
    again = build_app(["test"], start_worker=False)
    try:
        assert again.window.vae_box.currentText() == "kl-f8-test"
    finally:
        close(again)
    vae.unlink()  # a VAE removed since: Automatic
    idle_app.library.registry.remove(next(m.id for m in idle_app.library.registry.list(kind="vae")))
    again = build_app(["test"], start_worker=False)
    try:
        assert again.window.vae_box.currentIndex() == 0
    finally:
        close(again)


def test_forges_modules_choose_the_one_that_is_an_installed_vae():
    """Forge writes the VAE and text encoders chosen beside a model as `Module 1: …`, `Module 2: …`, without saying
    which is which: reuse takes the one installed here as a VAE, and names none of them as missing."""
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.models.registry import InstalledModel
    from hypersd_desktop.worker.matching import match_metadata

    def model(name: str, kind: str) -> InstalledModel:
        return InstalledModel(id=name, name=name, kind=kind, architecture="sdxl", layout="file",
                              path=f"/models/{name}.safetensors", size=1, sha256=None, short_hash=None,
                              source="import-reference", owned=False)

    models = [model("juggernautXL", "base"), model("sdxl_vae", "vae")]
    text = ("a fox\\nSteps: 6, Sampler: Euler, CFG scale: 2, Seed: 1, Size: 1024x1024, Model: juggernautXL, "
            "Module 1: clip_l, Module 2: sdxl_vae.safetensors, Version: f2.0.1v1.10.1")
    match = match_metadata(parse_a1111(text), models)
    assert match.vae is not None and match.vae.name == "sdxl_vae" and match.missing == []
    assert match_metadata(parse_a1111(text.replace("sdxl_vae.safetensors", "ae.safetensors")), models).vae is None


def test_the_models_tab_says_which_checkpoint_has_no_vae_and_that_a_vae_file_is_for_either(qtbot, idle_app, split):
    bare, vae = split
    idle_app.library.import_path(bare)
    idle_app.library.import_path(vae)
    manager = idle_app.window.models
    manager.refresh()
    table = manager.installed_table
    rows = {table.item(row, 0).text(): (table.item(row, 1).text(), table.item(row, 2).text())
            for row in range(table.rowCount())}
    assert rows["bare-model"] == ("SD1.5", "base, no VAE")
    assert rows["kl-f8-test"] == ("SD1.5 or SDXL", "vae")
    assert next(kind for name, (_, kind) in rows.items() if name not in ("bare-model", "kl-f8-test")
                and kind.startswith("base")) == "base"
