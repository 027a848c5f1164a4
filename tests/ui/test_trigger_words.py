"""A style LoRA's trigger words on the Generate tab (checked by hand: added to the prompt; unchecked: taken out) and
their editor on the Models tab."""

from __future__ import annotations

import json
import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from hypersd_desktop.ui.trigger_words import TriggerWordsDialog
from ui_helpers import hovered


@pytest.fixture
def watercolour(idle_app, hyper_lora, tmp_path):
    """A style LoRA imported with A1111's notes beside it: its activation text and preferred weight."""
    style = tmp_path / "watercolour_wash.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), style)
    style.with_name("watercolour_wash.json").write_text(json.dumps(
        {"activation text": "watercolour, soft wash", "preferred weight": 0.65, "sd version": "SD1"}))
    (item,) = idle_app.library.import_path(style)
    idle_app.window.reload_models()
    idle_app.window.models.refresh()
    return idle_app.library.registry.get(item.model_id)


def style_row(window, name: str) -> int:
    return next(row for row in range(window.styles.rowCount()) if window.styles.item(row, 0).text() == name)


def test_checking_a_lora_adds_its_words_and_unchecking_takes_them_out(qtbot, idle_app, watercolour):
    window = idle_app.window
    row = style_row(window, watercolour.name)
    assert window.styles.item(row, 2).text() == "watercolour, soft wash"
    assert window.styles.cellWidget(row, 1).value() == 0.65  # its notes' weight
    window.prompt.setPlainText("a quiet harbour, Watercolour")
    window.styles.item(row, 0).setCheckState(Qt.CheckState.Checked)
    assert window.prompt.toPlainText() == "a quiet harbour, Watercolour, soft wash"  # one it had is not repeated
    assert [(lora.path, lora.weight) for lora in window.build_request().loras][-1] == (watercolour.path, 0.65)
    window.prompt.undo()  # one step undoes the words
    assert window.prompt.toPlainText() == "a quiet harbour, Watercolour"
    window.prompt.redo()
    window.prompt.moveCursor(window.prompt.textCursor().MoveOperation.End)
    window.prompt.insertPlainText(", at dusk")
    window.styles.item(row, 0).setCheckState(Qt.CheckState.Unchecked)
    assert window.prompt.toPlainText() == "a quiet harbour, at dusk"
    assert watercolour.path not in [lora.path for lora in window.build_request().loras]


def test_a_check_from_a_reused_image_leaves_the_prompt_as_it_is(qtbot, idle_app, watercolour):
    window = idle_app.window
    window.prompt.setPlainText("a lighthouse")
    window.styles.choose({watercolour.path: 0.5})
    row = style_row(window, watercolour.name)
    assert window.styles.item(row, 0).checkState() == Qt.CheckState.Checked
    assert window.styles.cellWidget(row, 1).value() == 0.5 and window.prompt.toPlainText() == "a lighthouse"


def test_the_models_tab_edits_the_words_and_the_checked_lora_stays_checked(qtbot, idle_app, watercolour):
    window, manager = idle_app.window, idle_app.window.models
    window.styles.item(style_row(window, watercolour.name), 0).setCheckState(Qt.CheckState.Checked)
    window.styles.cellWidget(style_row(window, watercolour.name), 1).setValue(1.1)
    table = manager.installed_table
    (row,) = [r for r in range(table.rowCount()) if table.item(r, 0).text() == watercolour.name]
    assert hovered(table, row) == "<b>watercolour_wash</b><br>Trigger words: watercolour, soft wash"
    table.selectRow(row)
    assert manager.words_button.isEnabled()
    manager.words_button.click()
    dialog = manager.findChild(TriggerWordsDialog)
    assert dialog.words_edit.text() == "watercolour, soft wash" and dialog.weight_box.value() == 0.65
    dialog.words_edit.setText("ink wash,  (muted colours:1.2), ink wash")
    dialog.weight_box.setValue(0)  # the default, 0.8
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save).click()
    model = idle_app.library.registry.get(watercolour.id)
    assert (model.trigger_words, model.preferred_weight) == (("ink wash", "(muted colours:1.2)"), None)
    row = style_row(window, watercolour.name)
    assert window.styles.item(row, 2).text() == "ink wash, (muted colours:1.2)"
    assert window.styles.item(row, 0).checkState() == Qt.CheckState.Checked
    assert window.styles.cellWidget(row, 1).value() == 1.1


def test_the_editor_is_offered_for_loras_and_embeddings_only(qtbot, idle_app, watercolour):
    manager = idle_app.window.models
    table = manager.installed_table
    offered = {}
    for row in range(table.rowCount()):
        table.selectRow(row)
        model = table.item(row, 0).data(Qt.ItemDataRole.UserRole)
        offered[model.kind, bool(model.recipe)] = manager.words_button.isEnabled()
    assert offered == {("base", False): False, ("lora", True): False, ("lora", False): True}


def test_the_editor_looks_the_file_up_on_civitai_and_adds_its_words(qtbot, idle_app, watercolour):
    from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

    manager = idle_app.window.models
    with CivitaiServer() as civitai:
        civitai.add(CivitaiVersion(id=7, model_id=3, model_name="Watercolour Wash", name="v1", trained_words=[
            "soft wash", "wet paper"], files=[CivitaiFile("watercolour_wash.safetensors",
                                                          open(watercolour.path, "rb").read())]))
        idle_app.library.downloader.civitai = civitai.url
        dialog = manager.edit_words(watercolour)
        dialog.lookup_button.click()
        qtbot.waitUntil(lambda: dialog.task is None, timeout=20_000)
        assert dialog.status.text() == ("Civitai knows this file as Watercolour Wash v1: 2 trigger words, added "
                                        "above. Save keeps them.")
        assert dialog.words_edit.text() == "watercolour, soft wash, wet paper"
        assert idle_app.library.registry.get(watercolour.id).trigger_words == ("watercolour", "soft wash")  # not yet
        dialog.accept()
        assert idle_app.library.registry.get(watercolour.id).trigger_words == (
            "watercolour", "soft wash", "wet paper")
        civitai.versions.clear()  # the file taken down: said, nothing changed
        dialog = manager.edit_words(idle_app.library.registry.get(watercolour.id))
        dialog.lookup_button.click()
        qtbot.waitUntil(lambda: dialog.task is None, timeout=20_000)
    assert dialog.status.text().startswith("⚠ Civitai has no file with the hash ") and dialog.lookup_button.isEnabled()
    assert dialog.words_edit.text() == "watercolour, soft wash, wet paper"


def test_a_long_list_of_loras_is_narrowed_by_a_word_of_a_name_or_trigger_word(qtbot, idle_app, watercolour, tmp_path):
    window = idle_app.window
    assert window.styles.filter.isHidden()  # one LoRA: nothing to narrow
    for n, name in enumerate(("ink_sketch", "pixel_art", "oil_paint", "pencil", "neon", "clay")):
        path = tmp_path / f"{name}.safetensors"
        shutil.copy(watercolour.path, path)
        path.write_bytes(path.read_bytes()[:-4] + bytes([n, 1, 2, 3]))  # a file of its own
        idle_app.library.import_path(path)
    window.reload_models()
    assert not window.styles.filter.isHidden()

    def shown() -> set[str]:
        return {window.styles.item(row, 0).text() for row in range(window.styles.rowCount())
                if not window.styles.isRowHidden(row)}

    window.styles.item(style_row(window, "neon"), 0).setCheckState(Qt.CheckState.Checked)
    window.styles.filter.setText("PAINT")
    assert shown() == {"oil_paint", "neon"}  # a checked one stays in view
    window.styles.filter.setText("soft wash")  # its trigger words
    assert shown() == {"watercolour_wash", "neon"}
    window.reload_models()  # a download or import refills the list: the filter still applies
    assert shown() == {"watercolour_wash", "neon"}
    window.styles.filter.clear()
    assert len(shown()) == 7


def test_the_installed_models_are_narrowed_by_a_word_of_their_row_or_trigger_words(qtbot, idle_app, watercolour):
    manager = idle_app.window.models
    table = manager.installed_table

    def shown() -> set[str]:
        return {table.item(row, 0).text() for row in range(table.rowCount()) if not table.isRowHidden(row)}

    everything = shown()
    assert len(everything) == 3
    manager.installed_filter.setText("LORA")
    assert shown() == everything - {idle_app.library.registry.list(kind="base")[0].name}
    manager.installed_filter.setText("lora soft")  # every word: a kind and a trigger word
    assert shown() == {"watercolour_wash"}
    manager.refresh()  # an import or download refreshes the table: the filter still applies
    assert shown() == {"watercolour_wash"}
    manager.installed_filter.clear()
    assert shown() == everything


def test_a_loras_tooltip_shows_the_picture_kept_beside_its_file(qtbot, idle_app, watercolour):
    """As A1111 and Civitai Helper keep it (`NAME.preview.png`), shown at 192 pixels wide, its shape kept."""
    from PIL import Image
    from PySide6.QtGui import QTextDocument

    Image.new("RGB", (40, 20), (30, 90, 200)).save(watercolour.path.replace(".safetensors", ".preview.png"))
    window = idle_app.window
    window.reload_models()
    tip = hovered(window.styles, style_row(window, watercolour.name))
    assert tip.startswith('<img src="file://') and 'watercolour_wash.preview.png" width="192">' in tip
    document = QTextDocument()
    document.setDocumentMargin(0)
    document.setHtml(tip.split("<br>")[0])  # the picture, as the tooltip shows it
    assert (document.size().width(), document.size().height()) == (192, 96)
    window.models.refresh()
    table = window.models.installed_table
    (row,) = [r for r in range(table.rowCount()) if table.item(r, 0).text() == watercolour.name]
    assert hovered(table, row) == tip


def click_words(qtbot, window, row: int):
    """Click a LoRA's trigger words, as a person does: the menu of them it opens."""
    styles = window.styles
    qtbot.mouseClick(styles.viewport(), Qt.MouseButton.LeftButton,
                     pos=styles.visualItemRect(styles.item(row, 2)).center())
    qtbot.waitUntil(lambda: styles.words_menu is not None and styles.words_menu.isVisible(), timeout=5000)
    return styles.words_menu


def menu_action(menu, text: str):
    return next(action for action in menu.actions() if action.text() == text)


def test_a_click_on_a_loras_words_offers_each_and_their_editor(qtbot, idle_app, watercolour):
    window = idle_app.window
    window.prompt.setPlainText("a harbour")
    menu = click_words(qtbot, window, style_row(window, watercolour.name))
    assert [action.text() for action in menu.actions() if not action.isSeparator()] == [
        "Add “watercolour”", "Add “soft wash”", "Add all of them", "Edit the trigger words…"]
    menu_action(menu, "Add “soft wash”").trigger()
    assert window.prompt.toPlainText() == "a harbour, soft wash"
    menu.hide()
    menu = click_words(qtbot, window, style_row(window, watercolour.name))
    menu_action(menu, "Edit the trigger words…").trigger()
    dialog = window.models.words_dialog
    assert dialog.isVisible() and dialog.model.id == watercolour.id
    dialog.words_edit.setText("wet paper")
    dialog.accept()
    assert window.styles.item(style_row(window, watercolour.name), 2).text() == "wet paper"


def test_a_pack_of_characters_adds_none_on_a_check_and_the_one_chosen_from_its_words(qtbot, idle_app, watercolour):
    """Civitai's packs list a word for each character: a check adds none of them (they would mix), the menu the one
    wanted, and unchecking takes it out again."""
    window = idle_app.window
    idle_app.library.registry.set_notes(watercolour.id, ("ganyu", "keqing", "hu tao", "ayaka", "yoimiya"), None)
    window.reload_models()
    row = style_row(window, watercolour.name)
    assert window.styles.item(row, 2).toolTip().startswith("5 trigger words, one for each character or style")
    window.prompt.setPlainText("a girl in a garden")
    window.styles.item(row, 0).setCheckState(Qt.CheckState.Checked)
    assert window.prompt.toPlainText() == "a girl in a garden"
    menu_action(click_words(qtbot, window, row), "Add “keqing”").trigger()
    assert window.prompt.toPlainText() == "a girl in a garden, keqing"
    window.styles.item(row, 0).setCheckState(Qt.CheckState.Unchecked)
    assert window.prompt.toPlainText() == "a girl in a garden"


def test_the_editor_shows_the_tags_a_lora_was_trained_with(qtbot, idle_app, hyper_lora, watercolour, tmp_path):
    from PySide6.QtWidgets import QLabel
    from safetensors.torch import load_file, save_file

    lora = tmp_path / "sks_dog.safetensors"
    save_file(load_file(hyper_lora("Hyper-SD15-2steps-lora")), str(lora), metadata={
        "ss_tag_frequency": json.dumps({"10_sks dog": {"sks": 40, "dog": 38, "<b>grass</b>": 5}})})
    (item,) = idle_app.library.import_path(lora)

    def hints(model) -> list[str]:
        dialog = idle_app.window.models.edit_words(model)
        shown = [label.text() for label in dialog.findChildren(QLabel) if label.text().startswith("Most frequent")]
        dialog.reject()
        return shown

    assert hints(idle_app.library.registry.get(item.model_id)) == [
        "Most frequent in its training captions: sks (40), dog (38), &lt;b&gt;grass&lt;/b&gt; (5)"]
    assert hints(watercolour) == []  # a file without them


def test_the_models_tab_reads_the_words_of_loras_imported_before_once_at_start(qtbot, app_home, hyper_lora, tmp_path):
    """A library from the version before trigger words: its LoRAs' notes are read in the background, and the lists
    refilled with them."""
    import sqlite3

    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.models.catalog import Catalog
    from hypersd_desktop.models.library import ModelLibrary
    from hypersd_desktop.ui.model_manager import ModelManager

    style = tmp_path / "ink_wash.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), style)
    library = ModelLibrary(AppPaths.default(), catalog=Catalog(()))
    (item,) = library.import_path(style)
    style.with_name("ink_wash.civitai.info").write_text(json.dumps({"trainedWords": ["sumi-e"]}))
    with sqlite3.connect(library.registry.database) as db:
        db.execute("UPDATE models SET trigger_words = NULL")
    manager = ModelManager(library)
    qtbot.addWidget(manager)
    with qtbot.waitSignal(manager.models_changed, timeout=20_000):
        pass
    assert library.registry.get(item.model_id).trigger_words == ("sumi-e",)
    manager.shutdown()
    library.close()
