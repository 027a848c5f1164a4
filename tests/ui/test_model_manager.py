"""The Models tab against a local server speaking the hub's protocol: download, pause, resume after a
restart, cancel; import; verify; a model in use cannot be removed."""

from __future__ import annotations

import random
import shutil

import pytest
from PySide6.QtCore import Qt

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.models.catalog import Catalog, CatalogEntry, CatalogFile, format_size, load_catalog
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.ui.model_manager import DROP_HINT, ModelManager
from hypersd_desktop.ui.tasks import Task
from hub_server import HubServer
from ui_helpers import drop

REPO = "ByteDance/Hyper-SD"
NAME = "Hyper-SD15-8steps-lora.safetensors"
SIZE = 4 * 1024 * 1024 + 77
ENTRY = CatalogEntry(
    id="hyper-sd15-8steps-lora", name="Hyper-SD15-8steps-lora", kind="lora", architecture="sd15", layout="file",
    repo=REPO, revision="main", licence="openrail++", enables="SD1.5 in 8 steps", files=(CatalogFile(NAME, SIZE),),
    recipe="Hyper-SD15-8steps-lora",
)


@pytest.fixture
def hub(online):
    with HubServer() as hub:
        hub.add(REPO, NAME, random.Random(3).randbytes(SIZE))
        hub.pause_per_64k = 0.01  # about 0.6 s for the file: long enough to act on it mid-transfer
        yield hub


def manager_for(qtbot, hub) -> ModelManager:
    library = ModelLibrary(AppPaths.default(), catalog=Catalog((ENTRY,)), endpoint=hub.url, token=False)
    library.downloader.use_hf_cache = False
    manager = ModelManager(library)
    qtbot.addWidget(manager)
    manager.show()
    manager.select_entry(ENTRY.id)
    return manager


def test_closing_mid_download_lets_its_late_end_go(qtbot, hub):
    """The app closes while a file downloads: the download stops, and its end,
    reported after the library is closed, is let go (it once raised "Cannot operate on a closed database")."""
    manager = manager_for(qtbot, hub)
    manager.download(ENTRY)
    qtbot.waitUntil(lambda: "/s" in manager.download_label.text(), timeout=10_000)
    manager.shutdown()
    manager.library.close()
    qtbot.wait(300)  # the download's end arrives now; an error here fails the test
    assert manager.closed and manager.downloading == ENTRY.id  # left as it was: nothing ran on the closed library


def status_of(manager: ModelManager) -> str:
    return manager.catalog_table.item(0, 6).text()


def test_download_shows_progress_and_survives_a_pause_and_a_restart(qtbot, hub):
    manager = manager_for(qtbot, hub)
    assert manager.download_button.isEnabled() and status_of(manager) == ""
    manager.download(ENTRY)
    qtbot.waitUntil(lambda: "/s" in manager.download_label.text(), timeout=10_000)  # the rate is measured
    text = manager.download_label.text()
    assert text.startswith("Hyper-SD15-8steps-lora: ") and " of 4.2 MB" in text and " left" in text
    assert status_of(manager).startswith("Downloading") and 0 < manager.bar.value() < 1000
    manager.pause()
    qtbot.waitUntil(lambda: manager.download_task is None, timeout=10_000)
    assert "Paused" in manager.download_label.text()
    kept = manager.library.downloader.partial(ENTRY)
    assert 0 < kept < SIZE
    manager.library.close()

    restarted = manager_for(qtbot, hub)  # a new start of the app finds the paused download
    assert status_of(restarted).startswith("Paused at") and restarted.download_button.text() == "Resume"
    with qtbot.waitSignal(restarted.models_changed, timeout=20_000):
        restarted.download(ENTRY)
    assert status_of(restarted) == "Installed"
    assert hub.gets(NAME)[-1] == f"bytes={kept}-"  # resumed from the kept bytes, not from zero
    model = restarted.library.registry.get(ENTRY.id)
    assert restarted.installed_table.rowCount() == 1 and model.size == SIZE
    restarted.library.close()


def test_cancel_deletes_the_partial_download(qtbot, hub):
    manager = manager_for(qtbot, hub)
    manager.download(ENTRY)
    qtbot.waitUntil(lambda: manager.bar.value() > 50, timeout=10_000)
    manager.cancel_download(ENTRY)
    qtbot.waitUntil(lambda: manager.download_task is None, timeout=10_000)
    assert "Cancelled" in manager.download_label.text()
    assert manager.library.downloader.partial(ENTRY) == 0
    assert not (manager.library.paths.models / ENTRY.id).exists()
    assert manager.library.registry.list() == []
    manager.library.close()


def test_import_verify_and_remove_but_not_while_in_use(qtbot, app_home, hyper_lora, tmp_path):
    library = ModelLibrary(AppPaths.default())
    in_use: set[str] = set()
    manager = ModelManager(library, lambda: in_use)
    qtbot.addWidget(manager)
    assert manager.disk_label.text() == "No models yet"
    source = tmp_path / "Hyper-SD15-2steps-lora.safetensors"
    source.write_bytes(hyper_lora("Hyper-SD15-2steps-lora").read_bytes())
    with qtbot.waitSignal(manager.models_changed, timeout=20_000):
        manager.import_paths([tmp_path])  # a folder, as from A1111
    qtbot.waitUntil(lambda: manager.side_task is None, timeout=5000)
    assert "Imported 1 model" in manager.status.text() and manager.installed_table.rowCount() == 1
    size = format_size(source.stat().st_size)
    assert manager.disk_label.text() == f"1 model, {size}, used where it was imported from"  # not copied
    model = library.registry.list()[0]
    manager.verify(model)
    qtbot.waitUntil(lambda: manager.side_task is None, timeout=20_000)
    assert "all files match" in manager.status.text()
    with source.open("r+b") as handle:  # the file changes behind the app's back
        handle.seek(200)
        handle.write(b"\xff" * 8)
    manager.verify(model)
    qtbot.waitUntil(lambda: manager.side_task is None, timeout=20_000)
    assert "sha256 differs" in manager.status.text()

    in_use.add(model.path)
    assert not manager.remove(model, ask=False)
    assert "used by a running or queued job" in manager.status.text() and library.registry.list()
    in_use.clear()
    assert manager.remove(model, ask=False)
    assert library.registry.list() == [] and source.exists()  # imported by reference: the file stays
    assert manager.disk_label.text() == "No models yet"
    library.close()


def test_disk_use_says_where_the_installed_models_are():
    from hypersd_desktop.ui.model_manager import disk_use_words

    gb = 10**9
    assert disk_use_words(2, 3 * gb, 3 * gb) == "2 models, 3.0 GB, in the app's models folder"
    assert disk_use_words(2, 3 * gb, 0) == "2 models, 3.0 GB, used where they were imported from"
    assert disk_use_words(3, 3 * gb, gb) == ("3 models, 3.0 GB; 1.0 GB of it in the app's models folder, the rest used "
                                             "where it was imported from")


def test_the_window_blocks_removing_a_model_a_queued_job_needs(qtbot, idle_app):
    window = idle_app.window
    base = idle_app.library.registry.list(kind="base")[0]
    window.bridge.client.submit(GenerationRequest(prompt="waits for the worker", base_model=base.path))
    assert base.path in window._paths_in_use()
    assert not window.models.remove(base, ask=False)
    assert idle_app.library.registry.find(base.id) is not None


def test_first_run_downloads_a_base_model_with_progress(qtbot, online):
    from hypersd_desktop.ui.first_run import FirstRunDialog

    base = CatalogEntry(
        id="tiny-base", name="Tiny base", kind="base", architecture="sd15", layout="diffusers", repo="org/tiny",
        revision="main", licence="mit", enables="test",
        files=(CatalogFile("model_index.json", 64), CatalogFile("unet/diffusion_pytorch_model.safetensors", SIZE)),
    )
    with HubServer() as hub:
        hub.add("org/tiny", "model_index.json", b"{}".ljust(64), lfs=False)
        hub.add("org/tiny", "unet/diffusion_pytorch_model.safetensors", random.Random(4).randbytes(SIZE))
        hub.pause_per_64k = 0.005
        catalog = Catalog(load_catalog().entries + (base,))  # the dialog shows the sizes of its real offers
        library = ModelLibrary(AppPaths.default(), catalog=catalog, endpoint=hub.url, token=False)
        library.downloader.use_hf_cache = False
        dialog = FirstRunDialog(library)
        qtbot.addWidget(dialog)
        dialog.open()
        texts: list[str] = []
        dialog.download(("tiny-base",))
        dialog._thread.progress.connect(lambda _: texts.append(dialog.status.text()))
        qtbot.waitUntil(lambda: dialog.result() == dialog.DialogCode.Accepted, timeout=20_000)
        assert library.registry.get("tiny-base").kind == "base"
        assert any(t.startswith("tiny-base: ") and " of 4.2 MB" in t for t in texts)
        library.close()


def test_model_files_dropped_on_the_window_are_imported(qtbot, idle_app, hyper_lora, tmp_path):
    window = idle_app.window
    source = tmp_path / "Hyper-SD15-4steps-lora.safetensors"
    source.write_bytes(hyper_lora("Hyper-SD15-4steps-lora").read_bytes())
    with qtbot.waitSignal(window.models.models_changed, timeout=20_000):
        drop(window, [source])
    assert window.tabs.currentWidget() is window.models
    assert any(m.recipe == "Hyper-SD15-4steps-lora" for m in idle_app.library.registry.list())
    qtbot.waitUntil(lambda: window.hyper_box.findText("Hyper-SD15-4steps-lora") >= 0, timeout=5000)


def test_a_damaged_weights_file_dropped_on_the_window_is_named_with_its_reason(qtbot, idle_app, hyper_lora, tmp_path):
    import json
    import struct

    window = idle_app.window
    bad = tmp_path / "overlapping.safetensors"
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    bad.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    good = tmp_path / "Hyper-SD15-4steps-lora.safetensors"
    good.write_bytes(hyper_lora("Hyper-SD15-4steps-lora").read_bytes())
    with qtbot.waitSignal(window.models.models_changed, timeout=20_000):
        drop(window, [bad, good])
    text = window.models.status.text()
    assert text.startswith("Imported 1 model.")  # the good one went in beside the bad one
    assert "overlapping.safetensors: broken — overlapping.safetensors is corrupt: tensor 'b' overlaps" in text


def test_the_onnx_exports_are_listed_with_their_size_and_can_be_removed(qtbot, app_home, tiny_sd15, hyper_lora):
    from hypersd_desktop.core.files import folder_size
    from hypersd_desktop.engine.onnx.engine import default_cache
    from hypersd_desktop.engine.onnx.export import ExportSpec
    from hypersd_desktop.engine.types import LoraSpec

    paths = AppPaths.default()
    library = ModelLibrary(paths)
    manager = ModelManager(library)
    qtbot.addWidget(manager)
    assert manager.exports_table.rowCount() == 0 and manager.exports_label.text() == "No exports yet"

    lora = hyper_lora("Hyper-SD15-2steps-lora")
    folder = default_cache(paths).export(ExportSpec("sd15", str(tiny_sd15), loras=(LoraSpec(str(lora), 0.75),)))
    manager.show()  # showing the tab reads the cache again: the worker may have exported meanwhile
    assert manager.exports_table.rowCount() == 1
    assert manager.exports_table.item(0, 0).text() == "sd15 + Hyper-SD15-2steps-lora × 0.75, fp32"
    size = folder_size(folder)
    assert manager.exports_table.item(0, 1).text() == format_size(size)
    assert manager.exports_label.text() == f"1 export, {format_size(size)}"
    assert not manager.remove_export_button.isEnabled()
    manager.exports_table.selectRow(0)
    assert manager.remove_export_button.isEnabled()
    assert manager.remove_export(manager._selected_export(), ask=False)
    assert not folder.exists() and manager.exports_table.rowCount() == 0
    assert manager.status.text().startswith("Removed the ONNX export of sd15 + Hyper-SD15-2steps-lora")
    library.close()


def test_models_installed_by_an_earlier_version_get_their_hashes_in_the_background(qtbot, hyper_lora):
    """The Models tab reads the hashes other tools name files by for models registered without them, off the GUI
    thread, once; closing the app stops it."""
    library = ModelLibrary(AppPaths.default())
    (item,) = library.import_path(hyper_lora("Hyper-SD15-2steps-lora"))
    recorded = library.registry.get(item.model_id).lora_hash
    library.registry._db.execute("UPDATE models SET lora_hash = NULL, legacy_hash = NULL")  # as the old version left it
    assert [model.id for model in library.lacking_hashes()] == [item.model_id]
    manager = ModelManager(library)
    qtbot.addWidget(manager)
    assert manager.hash_task is not None
    qtbot.waitUntil(lambda: manager.hash_task.isFinished(), timeout=10_000)
    assert library.lacking_hashes() == [] and library.registry.get(item.model_id).lora_hash == recorded
    manager.shutdown()
    again = ModelManager(library)  # nothing left to read: no task
    qtbot.addWidget(again)
    assert again.hash_task is None


def test_a_model_is_downloaded_by_its_hugging_face_address_pasted_or_dropped(qtbot, hub, hyper_lora):
    """An address pasted below the catalog (Enter) or a link dropped from a browser: listed with the catalog,
    downloaded with progress, then installed with its kind read from the file. A link to another site says what to
    do instead."""
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    hub.add("someone/pixel-art", "pixel-art.safetensors", hyper_lora("Hyper-SD15-1step-lora").read_bytes())
    hub.add("someone/ink", "ink.safetensors", hyper_lora("Hyper-SD15-2steps-lora", seed=2).read_bytes())
    manager = manager_for(qtbot, hub)
    manager.address.setText("https://openmodeldb.info/models/4x-UltraSharp")
    qtbot.keyClick(manager.address, Qt.Key.Key_Return)
    assert "is not a Hugging Face or Civitai address" in manager.download_label.text()
    assert manager.download_task is None
    assert manager.address.text() and manager.catalog_table.rowCount() == 1  # kept, to be mended

    changed = []
    manager.models_changed.connect(lambda: changed.append(True))
    manager.address.setText(f"{hub.url}/someone/pixel-art/blob/main/pixel-art.safetensors")
    qtbot.keyClick(manager.address, Qt.Key.Key_Return)
    assert manager.address.text() == "" and manager.catalog_table.rowCount() == 2
    assert manager.catalog_table.item(1, 0).text() == "pixel-art" and manager._selected_entry().address
    mime = QMimeData()
    mime.setUrls([QUrl(f"{hub.url}/someone/ink/resolve/main/ink.safetensors?download=true")])
    manager.dropEvent(QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                 Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: len(changed) == 2 and manager.download_task is None, timeout=30_000)
    installed = {model.name: model for model in manager.library.registry.list()}
    assert {name: (m.kind, m.architecture, m.source) for name, m in installed.items()} == {
        "pixel-art": ("lora", "sd15", "download"), "ink": ("lora", "sd15", "download")}
    assert [manager.catalog_table.item(row, 6).text() for row in (1, 2)] == ["Installed", "Installed"]
    assert manager.download_label.text() == "Installed ink."


def test_a_model_is_downloaded_by_its_civitai_address_once_the_api_key_is_given(qtbot, app_home, hyper_lora,
                                                                               monkeypatch):
    """Without a key Civitai refuses the file: the Models tab says where the key goes, and the download goes on
    from there once it is given."""
    from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

    monkeypatch.delenv("CIVITAI_TOKEN", raising=False)
    with CivitaiServer() as civitai:
        civitai.add(CivitaiVersion(id=250000, model_id=120000, model_name="Pixel Art", name="v2", files=[
            CivitaiFile("pixel-art-v2.safetensors", hyper_lora("Hyper-SD15-1step-lora").read_bytes())]))
        library = ModelLibrary(AppPaths.default(), catalog=Catalog((ENTRY,)), token=False, civitai=civitai.url)
        manager = ModelManager(library)
        qtbot.addWidget(manager)
        manager.show()
        manager.address.setText(f"{civitai.url}/models/120000/pixel-art?modelVersionId=250000")
        qtbot.keyClick(manager.address, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: manager.download_task is None, timeout=20_000)
        assert manager.download_label.text().startswith("⚠ Civitai refused Pixel Art v2 (pixel-art-v2.safetensors) "
                                                        "(401): it asks for your API key")
        assert manager.catalog_table.item(1, 0).text() == "Pixel Art v2"  # as Civitai names it, once asked
        library.downloader.civitai_token = civitai.key  # as Settings sets it
        manager.download(manager._selected_entry())
        qtbot.waitUntil(lambda: manager.download_task is None, timeout=20_000)
        assert manager.download_label.text() == "Installed Pixel Art v2."
        assert manager.catalog_table.item(1, 6).text() == "Installed"
        manager.shutdown()
        library.close()


def test_civitai_is_searched_from_the_models_tab_and_a_result_downloaded_there(qtbot, app_home, hyper_lora):
    """Only what the app runs is listed (not the FLUX LoRA); Download hands the version to the Models tab; the dialog
    keeps its results when opened again."""
    from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    with CivitaiServer() as civitai:
        for n, (name, base) in enumerate((("Pixel Art", "SD 1.5"), ("Pixel Art XL", "SDXL 1.0"),
                                          ("Pixel Art Flux", "Flux.1 D"))):
            civitai.add(CivitaiVersion(id=10 + n, model_id=1 + n, model_name=name, name="v1", base_model=base,
                                       files=[CivitaiFile(f"pixel-{n}.safetensors", data)]))
        civitai.add(CivitaiVersion(id=20, model_id=20, model_name="Pixel Art Upscaler", name="v1",
                                   model_type="Upscaler", base_model="Other",
                                   files=[CivitaiFile("4x-pixel.safetensors", data)]))
        library = ModelLibrary(AppPaths.default(), catalog=Catalog((ENTRY,)), token=False, civitai=civitai.url,
                               civitai_token=civitai.key)
        manager = ModelManager(library)
        qtbot.addWidget(manager)
        manager.show()
        manager.search_button.click()
        dialog = manager.search_dialog
        assert dialog.isVisible() and not dialog.download_button.isEnabled()
        qtbot.keyClicks(dialog.query, "pixel art")
        qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: dialog.task is None and dialog.table.rowCount() == 2, timeout=20_000)
        rows = [[dialog.table.item(row, column).text() for column in range(4)] for row in range(2)]
        assert rows == [["Pixel Art XL", "v1", "lora", "SDXL"], ["Pixel Art", "v1", "lora", "SD1.5"]]
        assert dialog.status.text() == "2 models found." and not dialog.more_button.isEnabled()
        dialog.kind.setCurrentIndex(dialog.kind.findText("Upscalers"))  # for any model: the family does not apply
        assert not dialog.family.isEnabled()
        dialog.search()
        qtbot.waitUntil(lambda: dialog.task is None, timeout=20_000)
        assert [dialog.table.item(0, column).text() for column in range(4)] == [
            "Pixel Art Upscaler", "v1", "upscaler", "any model"]
        dialog.kind.setCurrentIndex(0)
        assert dialog.family.isEnabled()
        dialog.search()
        qtbot.waitUntil(lambda: dialog.task is None and dialog.table.rowCount() == 2, timeout=20_000)
        dialog.table.selectRow(1)
        dialog.download_button.click()
        rows = []  # the new row as the download goes: named from the address, then as Civitai names it
        manager.download_task.progress.connect(lambda _: rows.append(tuple(
            manager.catalog_table.item(1, column).text() for column in (0, 2, 3))))
        qtbot.waitUntil(lambda: manager.download_task is None and manager.download_label.text().startswith(
            "Installed"), timeout=20_000)
        assert rows and rows[-1] == ("Pixel Art v1", "lora", format_size(len(data)))
        assert manager.download_label.text() == "Installed Pixel Art v1."
        assert dialog.status.text() == "Pixel Art v1 is downloading on the Models tab."
        dialog.close()
        assert manager.search_civitai() is dialog and dialog.table.rowCount() == 2
        dialog.table.selectRow(0)
        dialog.table.selectRow(1)  # installed now: said, and not offered again
        assert (dialog.download_button.text(), dialog.download_button.isEnabled()) == ("Installed", False)
        manager.download_address(dialog.selected().address)  # pasted again
        assert manager.download_label.text() == "Pixel Art v1 is installed already." and manager.download_task is None
        dialog.search()
        qtbot.waitUntil(lambda: dialog.task is None, timeout=20_000)
        assert [dialog.table.item(row, 1).text() for row in range(2)] == ["v1", "v1 · installed"]
        manager.shutdown()
        library.close()


def test_a_searched_models_picture_and_trigger_words_show_beside_the_list(qtbot, app_home, tmp_path):
    """Fetched once when selected, its shape kept; a picture that cannot be read, or none, is said."""
    import io

    from PIL import Image

    from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

    picture = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(picture, "PNG")
    with CivitaiServer() as civitai:
        civitai.pictures.update({"red": picture.getvalue(), "broken": b"\x89PNG\r\n\x1a\n broken"})
        for n, (name, images) in enumerate((("Ink Red", [("red", 1, "image")]), ("Ink Broken", [("broken", 1, "image")]),
                                            ("Ink Mature", [("red", 8, "image")]))):
            civitai.add(CivitaiVersion(id=10 + n, model_id=1 + n, model_name=name, name="v1", images=images,
                                       trained_words=["ink <b>wash</b>"] if n == 0 else [],
                                       files=[CivitaiFile(f"ink-{n}.safetensors", b"x" * 100)]))
        library = ModelLibrary(AppPaths.default(), catalog=Catalog((ENTRY,)), token=False, civitai=civitai.url)
        manager = ModelManager(library)
        qtbot.addWidget(manager)
        dialog = manager.search_civitai()
        dialog.query.setText("ink")
        dialog.sort.setCurrentIndex(dialog.sort.findText("Newest"))
        dialog.search_button.click()
        qtbot.waitUntil(lambda: dialog.task is None and dialog.table.rowCount() == 3, timeout=20_000)
        row = {dialog.table.item(r, 0).text(): r for r in range(3)}
        assert "sort=Newest" in civitai.search_requests[-1]

        def select(name: str) -> None:
            dialog.table.selectRow(row[name])
            qtbot.waitUntil(lambda: dialog.picture_task is None, timeout=20_000)

        select("Ink Red")
        shown = dialog.picture.pixmap()
        assert (shown.width(), shown.height()) == (296, 222) and shown.toImage().pixelColor(148, 111).red() == 200
        assert "Trigger words: ink &lt;b&gt;wash&lt;/b&gt;" in dialog.details.text()  # as text, not markup
        select("Ink Broken")
        assert dialog.picture.text() == "The picture could not be read."
        select("Ink Mature")  # its only picture is rated for adults: not shown
        assert dialog.picture.text() == "No picture to show for this model."
        fetched = [path for _, path, *_ in civitai.requests if "width=450" in path]
        select("Ink Red")
        assert dialog.picture.pixmap().width() == 296 and len(fetched) == 2  # each fetched once
        assert [path for _, path, *_ in civitai.requests if "width=450" in path] == fetched
        # an older version of a model: chosen beside the list, shown in its row and downloaded
        civitai.add(CivitaiVersion(id=9, model_id=1, model_name="Ink Red", name="v0", base_model="SD 1.5",
                                   images=[("broken", 1, "image")], trained_words=["old ink"],
                                   files=[CivitaiFile("ink-old.safetensors", b"y" * 100)]))
        dialog.search()
        qtbot.waitUntil(lambda: dialog.task is None and dialog.table.rowCount() == 3, timeout=20_000)
        row = {dialog.table.item(r, 0).text(): r for r in range(3)}
        select("Ink Red")
        assert [dialog.version_box.itemText(i) for i in range(dialog.version_box.count())] == [
            "v1 (SD 1.5)", "v0 (SD 1.5)"] and dialog.version_box.isEnabled()
        dialog.version_box.setCurrentIndex(1)
        qtbot.waitUntil(lambda: dialog.picture_task is None, timeout=20_000)
        assert dialog.table.item(row["Ink Red"], 1).text() == "v0" and dialog.selected().version_id == 9
        assert "Trigger words: old ink" in dialog.details.text()
        assert dialog.picture.text() == "The picture could not be read."  # the old version's own picture
        chosen = []
        dialog.chosen.connect(chosen.append)
        dialog.download_button.click()
        assert chosen == ["https://civitai.com/models/1/ink-red?modelVersionId=9"]
        select("Ink Broken")
        assert not dialog.version_box.isEnabled()  # one version only
        manager.shutdown()
        library.close()


def test_a_civitai_search_that_cannot_be_made_says_why(qtbot, app_home, monkeypatch):
    monkeypatch.delenv("CIVITAI_TOKEN", raising=False)
    library = ModelLibrary(AppPaths.default(), catalog=Catalog((ENTRY,)), token=False, civitai="http://127.0.0.1:9")
    library.downloader.sleep = lambda seconds: None  # nothing listens there: refused at once, each try
    manager = ModelManager(library)
    qtbot.addWidget(manager)
    dialog = manager.search_civitai()
    assert dialog.status.text().startswith("Civitai asks for your API key to download any file")  # none given
    dialog.search_button.click()
    assert dialog.status.text() == "Type words of a model's name first." and dialog.task is None
    dialog.query.setText("dreamshaper")
    dialog.search_button.click()
    assert not dialog.search_button.isEnabled()  # one search at a time
    qtbot.waitUntil(lambda: dialog.task is None, timeout=20_000)
    assert dialog.status.text().startswith("⚠ Could not reach Civitai for the search after 6 tries")
    assert dialog.search_button.isEnabled() and dialog.table.rowCount() == 0
    library.close()


def test_the_civitai_key_given_in_settings_is_kept_and_used(qtbot, idle_app):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from hypersd_desktop.core.settings import load_settings
    from hypersd_desktop.ui.settings_dialog import SettingsDialog

    def give_key():  # inside the dialog's own event loop, once it is open
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, SettingsDialog):
            QTimer.singleShot(20, give_key)
            return
        dialog.civitai_token.setText("0123abcd")
        dialog.accept()

    QTimer.singleShot(0, give_key)
    idle_app.window.settings_action.trigger()
    assert idle_app.library.downloader.civitai_token == "0123abcd" == load_settings().civitai_token


def test_links_dropped_on_the_window_go_to_the_models_tab_or_are_said_to_be_links(qtbot, idle_app):
    window = idle_app.window
    window.open_dropped([], ["https://example.com/gallery/cat.png"])
    assert window.errors.isVisible() and window.errors.text().startswith(
        "https://example.com/gallery/cat.png is a link, not a file: save what it points to")
    window.open_dropped([], ["https://huggingface.co/someone/pixel-art/blob/main/pixel-art.safetensors"])
    assert window.tabs.currentWidget() is window.models
    assert window.models._selected_entry().name == "pixel-art"
    qtbot.waitUntil(lambda: window.models.download_task is None, timeout=20_000)  # offline here: it fails, saying so
    assert window.models.download_label.text().startswith("⚠ ")
    window.library.downloader.civitai = "http://127.0.0.1:9"  # offline here too: nothing listens there
    window.library.downloader.sleep = lambda seconds: None
    window.open_dropped([], ["https://civitai.com/models/4384/dreamshaper?modelVersionId=128713"])
    assert window.models._selected_entry().name == "dreamshaper"
    qtbot.waitUntil(lambda: window.models.download_task is None, timeout=20_000)
    assert window.models.download_label.text().startswith("⚠ Could not reach Civitai for dreamshaper")


def test_a_lora_saved_in_a_linked_folder_is_installed_at_the_next_start(qtbot, app_home, hyper_lora, tmp_path,
                                                                       monkeypatch):
    """A ComfyUI models folder imported where it is becomes a linked folder: a LoRA downloaded into it later is
    installed when the app next starts (the Models tab says so), one removed here is not brought back, and the
    Linked folders dialog adds and stops folders."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from hypersd_desktop.ui.folder_list import FolderListDialog

    models = tmp_path / "ComfyUI" / "models"
    (models / "loras").mkdir(parents=True)
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), models / "loras" / "old.safetensors")
    library = ModelLibrary(AppPaths.default())
    manager = ModelManager(library)
    qtbot.addWidget(manager)
    with qtbot.waitSignal(manager.models_changed, timeout=20_000):
        manager.import_paths([models])
    qtbot.waitUntil(lambda: manager.side_task is None, timeout=5000)
    manager.shutdown()
    library.close()

    shutil.copy(hyper_lora("Hyper-SD15-4steps-lora"), models / "loras" / "new-style.safetensors")
    library = ModelLibrary(AppPaths.default())
    changed = []
    later = ModelManager(library)  # the next start
    later.models_changed.connect(lambda: changed.append(True))
    qtbot.addWidget(later)
    qtbot.waitUntil(lambda: later.side_task is None and bool(changed), timeout=20_000)
    assert later.status.text() == "1 new model in the linked folders, installed: new-style.safetensors."
    assert later.installed_table.rowCount() == 2
    assert later.remove(library.registry.find("new-style"), ask=False)

    home = tmp_path / "someone"  # A1111 where its installer puts it: the dialog suggests it
    other = home / "stable-diffusion-webui" / "models"
    (other / "Lora").mkdir(parents=True)
    shutil.copy(hyper_lora("Hyper-SD15-8steps-lora"), other / "Lora" / "a1111.safetensors")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf-cache"))

    def in_dialog() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, FolderListDialog):
            QTimer.singleShot(20, in_dialog)
            return
        assert dialog.folders() == [models.resolve()]
        assert not dialog.add_folder(library.paths.models) and "the app's own models folder" in dialog.problem.text()
        (suggested,) = dialog.suggestions
        assert suggested.text() == f"Add AUTOMATIC1111's models — {other.resolve()} (1 file)"
        suggested.click()
        assert not suggested.isEnabled() and dialog.folders()[-1] == other.resolve()
        dialog.list.setCurrentRow(0)
        dialog.remove_button.click()  # ComfyUI's: no longer looked through
        dialog.accept()

    QTimer.singleShot(20, in_dialog)
    later.open_linked_folders()
    qtbot.waitUntil(lambda: later.side_task is None, timeout=20_000)
    assert library.registry.linked_folders() == [other.resolve()]
    assert later.status.text() == "1 new model in the linked folders, installed: a1111.safetensors."
    names = {model.name for model in library.registry.list()}
    assert "new-style" not in names and len(names) == 2  # removed here: left out
    QTimer.singleShot(20, lambda: QApplication.activeModalWidget().accept())  # again: nothing new
    later.open_linked_folders()
    qtbot.waitUntil(lambda: later.side_task is None, timeout=20_000)
    assert later.status.text() == "The linked folders hold no new model."
    later.shutdown()
    library.close()


def test_a_library_without_linked_folders_is_told_where_other_tools_keep_models(qtbot, app_home, hyper_lora,
                                                                                tmp_path, monkeypatch):
    """A library from before folders were linked, or one filled by hand: the Models tab says where ComfyUI keeps
    its models and what Linked folders… does with them; with nothing found it keeps its own hint."""
    home = tmp_path / "someone"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf-cache"))
    library = ModelLibrary(AppPaths.default())
    lora = tmp_path / "style.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), lora)
    library.import_path(lora)
    quiet = ModelManager(library)
    qtbot.addWidget(quiet)
    qtbot.waitUntil(lambda: not quiet.findChildren(Task), timeout=10_000)
    assert quiet.status.text() == DROP_HINT
    quiet.shutdown()

    comfy = home / "ComfyUI" / "models" / "loras"
    comfy.mkdir(parents=True)
    shutil.copy(hyper_lora("Hyper-SD15-4steps-lora"), comfy / "other.safetensors")
    told = ModelManager(library)
    qtbot.addWidget(told)
    qtbot.waitUntil(lambda: told.status.text() != DROP_HINT, timeout=10_000)
    assert told.status.text() == (f"ComfyUI's models — {comfy.parent.resolve()} (1 file): Linked folders… uses "
                                  "them where they are, and installs the models saved there later.")
    told.shutdown()
    library.close()
