"""The export dialog: live preview of the names, then a real export with progress and the files on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from ui_helpers import add_images, blocking_file, image_files, opened_urls


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
    dialog.folder.setText("export")  # a part of a path: from wherever the app started
    dialog.update_preview()
    assert "is not a whole path" in dialog.status.text() and not dialog.export_button.isEnabled()
    dialog.folder.setText(f'"{target}"')  # as Windows Explorer's "Copy as path" puts it on the clipboard
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
    # waited for by state: a three-image export can end before a signal wait would be connected
    qtbot.waitUntil(lambda: task.isFinished() and dialog.task is None, timeout=20_000)
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


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="a named pipe stands in for a slow drive")
def test_cancel_stops_a_running_export_without_freezing_and_open_folder_shows_it(qtbot, idle_app, tmp_path,
                                                                                 request):
    window = idle_app.window
    browser = window.browser
    add_images(window.gallery, [f"a night market {k}" for k in range(6)], start_seed=700)
    browser.apply_filters()
    release = blocking_file(Path(browser.model.record(1).path))  # the second image hangs, as on a stalled drive
    request.addfinalizer(release)  # also when an assertion fails: the window cannot close on a stuck thread
    browser.open_export()
    dialog = browser._export_dialog
    assert dialog.use_query.isChecked() and "All 6 images" in dialog.use_query.text()
    target = tmp_path / "export"
    dialog.folder.setText(str(target))
    task = dialog.start()
    assert dialog.close_button.text() == "Cancel"
    qtbot.waitUntil(lambda: dialog.status.text().startswith("1 of 6"), timeout=20_000)
    dialog.close_button.click()  # answered at once, while the export thread is still stuck
    assert dialog.status.text().startswith("Stopping") and not dialog.close_button.isEnabled()
    assert dialog.isVisible() and task.isRunning()
    with qtbot.waitSignal(task.finished, timeout=20_000):
        release()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=5000)
    assert dialog.status.text() == "Stopped: export cancelled after 2 of 6 images; the manifest lists them."
    assert dialog.close_button.text() == "Close" and dialog.close_button.isEnabled()
    assert len(image_files(target)) == 1
    (manifest,) = target.glob("manifest-*.csv")
    assert len(manifest.read_text().splitlines()) == 3  # a header, the written image, the unreadable one
    with opened_urls() as urls:
        dialog.open_button.click()
    assert urls == [str(target)]
    dialog.close_button.click()
    assert not dialog.isVisible()
