"""Help → Keyboard shortcuts lists the keys the window has, from the shortcuts themselves."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from hypersd_desktop.ui.init_image import MaskDialog
from hypersd_desktop.ui.shortcuts import ShortcutsDialog, shortcut_rows, undescribed


def test_every_shortcut_is_listed_with_what_it_does(qtbot, idle_app):
    window = idle_app.window
    mask = MaskDialog(QImage(64, 64, QImage.Format.Format_RGB32), window)  # its keys count while it is open
    assert undescribed(window) == [], "a shortcut made without saying what it does would be missing from the list"
    rows = {(place, keys): what for place, keys, what in shortcut_rows(window)}
    assert rows[("Everywhere", "Ctrl+Return or Ctrl+Enter")].startswith("Generate")
    assert rows[("Everywhere", "Ctrl+B")] == "Batch job" and rows[("Everywhere", "Ctrl+4")] == "Models tab"
    assert rows[("Draw tab", "Ctrl+Shift+Z or Ctrl+Y")] == "Redo"
    assert rows[("Gallery", "0 or 1 or 2 or 3 or 4 or 5")].startswith("Rate")
    assert rows[("Gallery's large view", "+ or =")] == "Zoom in"
    assert ("Painting a mask", "Ctrl+Z") in rows
    assert rows[("Generate tab", "Ctrl+S")].startswith("Save the selected result") and ("Draw tab", "Ctrl+S") in rows
    mask.deleteLater()


def test_f1_opens_the_list(qtbot, idle_app):
    window = idle_app.window
    qtbot.keyClick(window, Qt.Key.Key_F1)
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, ShortcutsDialog) and w.isVisible())
    text = dialog.text.toPlainText()
    assert "Draw tab" in text and "Pause or go on making images" in text and "Ctrl+P" in text
    dialog.close()


def test_help_shows_the_folder_of_the_log_files(qtbot, idle_app):
    from hypersd_desktop.core.paths import AppPaths
    from ui_helpers import opened_urls

    with opened_urls() as urls:
        idle_app.window.logs_action.trigger()
    folder = AppPaths.default().data
    assert urls == [str(folder)] and (folder / "app.log").is_file()
