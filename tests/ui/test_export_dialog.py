"""The export dialog: live preview of the names, then a real export with progress and the files on disk."""

from __future__ import annotations

from PIL import Image

from ui_helpers import add_images, image_files


def test_export_dialog_previews_names_and_exports_the_selection(qtbot, idle_app, tmp_path):
    window = idle_app.window
    browser = window.browser
    add_images(window.gallery, [f"a quiet harbour {k}" for k in range(6)], start_seed=500)
    browser.apply_filters()
    selection = browser.grid.selectionModel()
    for row in (0, 2, 4):
        selection.select(browser.model.index_at(row), selection.SelectionFlag.Select)
    browser.open_export()
    dialog = browser._export_dialog
    assert dialog.use_selection.isChecked() and "3 selected" in dialog.use_selection.text()
    target = tmp_path / "export"
    dialog.folder.setText(str(target))
    dialog.template.setText("{model}/{seed}-{prompt:15}")
    dialog.format.setCurrentText("jpeg")
    dialog.update_preview()
    chosen = sorted((browser.model.record(row) for row in (0, 2, 4)), key=lambda r: -r.created)
    lines = dialog.preview.toPlainText().splitlines()
    assert lines == [f"tiny-v15/{r.seed}-a quiet harbour.jpg" for r in chosen]
    dialog.template.setText("../{seed}")
    dialog.update_preview()
    assert "leave the export folder" in dialog.status.text() and not dialog.export_button.isEnabled()
    dialog.template.setText("{model}/{seed}-{prompt:15}")
    dialog.update_preview()
    task = dialog.start()
    with qtbot.waitSignal(task.finished, timeout=20_000):
        pass
    qtbot.waitUntil(lambda: dialog.task is None, timeout=5000)
    assert dialog.status.text().startswith("Exported 3 images") and dialog.open_button.isEnabled()
    assert dialog.bar.value() == 1000
    files = image_files(target)
    assert [f.relative_to(target).as_posix() for f in files] == sorted(lines)
    with Image.open(files[0]) as image:
        assert image.format == "JPEG" and image.size == (64, 64)
    (manifest,) = target.glob("manifest-*.csv")
    assert len(manifest.read_text().splitlines()) == 4 and manifest.name in dialog.status.text()

    dialog.update_preview()  # the same export again: the preview shows the numbering that would follow
    assert dialog.preview.toPlainText().splitlines()[0].endswith("-2.jpg")
    dialog.reject()
