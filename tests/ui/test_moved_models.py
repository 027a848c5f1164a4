"""Models whose files were moved or deleted after they were imported: named so in the lists, not chosen by default,
and said before Generate."""

from __future__ import annotations

import shutil

from ui_helpers import hovered


def test_a_model_whose_files_are_gone_is_marked_and_not_chosen_by_default(qtbot, idle_app, tiny_sd15, tmp_path):
    from hypersd_desktop.ui.generate_form import fill_base_models

    moved = tmp_path / "old-disk" / "aaa-moved-model"  # listed first: the registry lists by name
    shutil.copytree(tiny_sd15, moved)
    library = idle_app.library
    library.import_path(moved)
    shutil.rmtree(moved)
    window = idle_app.window
    window.models.models_changed.emit()
    labels = [window.model_box.itemText(i) for i in range(window.model_box.count())]
    assert "aaa-moved-model  (SD1.5, files missing)" in labels
    assert window.current_model().name != "aaa-moved-model", "an installed model whose files are here is chosen"

    window.model_box.setCurrentIndex(labels.index("aaa-moved-model  (SD1.5, files missing)"))
    window.prompt.setPlainText("a harbour")
    window._update_recipe_controls()
    assert "The files of aaa-moved-model are no longer at" in window.warnings.text()

    manager = window.models
    manager.refresh()
    rows = {manager.installed_table.item(row, 0).text(): row for row in range(manager.installed_table.rowCount())}
    kind = manager.installed_table.item(rows["aaa-moved-model"], 2)
    assert kind.text() == "base, files missing" and "moved or deleted" in kind.toolTip()
    assert "moved or deleted" in hovered(  # its name's tooltip, once the pointer rests on it, still says so
        manager.installed_table, rows["aaa-moved-model"])
    fill_base_models(window.model_box, library)  # refilled with the choice kept
    assert window.current_model().name == "aaa-moved-model"
