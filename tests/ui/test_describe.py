"""Describe: a picture's booru tags written into the prompt by the worker's tagger, from the init image box or a
result, as one edit Ctrl+Z takes back."""

from __future__ import annotations

import io

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from hypersd_desktop.engine.tagger import Tagger
from hypersd_desktop.ui.describe import NO_TAGGER
from ui_helpers import WAIT, answer_next_dialog, drop


def png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_describe_writes_the_init_images_tags_into_the_prompt_and_ctrl_z_takes_them_back(qtbot, parts, tagger):
    window, box = parts.window, parts.window.init_image
    assert not box.describe_button.isEnabled()  # no picture yet
    window.prompt.setPlainText("my own words")
    assert box.load_bytes(png(Image.new("RGB", (64, 64), "red")), "red.png")
    assert box.describe_button.isEnabled()
    box.describe_button.click()
    assert NO_TAGGER in window.errors.text() and window.prompt.toPlainText() == "my own words"
    parts.library.import_path(tagger)
    window.errors.show_messages([])
    with qtbot.waitSignal(window.describer.described, timeout=WAIT):
        box.describe_button.click()
    assert window.prompt.toPlainText() == "red background, cosplay \\(costume\\), ^_^, long hair"
    assert "the picture's 4 tags, rated general (wd-swinv2-tagger-v3)" in window.statusBar().currentMessage()
    assert not window.errors.text() and not window.results.count()  # no image was made or shown for it
    window.prompt.setFocus()
    qtbot.keyClick(window.prompt, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.prompt.toPlainText() == "my own words"


def test_a_results_tags_become_the_prompt(qtbot, parts, tagger):
    window = parts.window
    parts.library.import_path(tagger)
    window.prompt.setPlainText("a lighthouse at dusk")
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as saved:
        window.generate()
    qtbot.waitUntil(lambda: window.results.count() == 1, timeout=WAIT)
    [action] = [a for a in window.results.actions() if a.text().startswith("Describe")]
    with qtbot.waitSignal(window.describer.described, timeout=WAIT) as described:
        action.trigger()
    with Image.open(saved.args[0]) as image:
        expected = Tagger(tagger).describe(image.convert("RGB"))
    assert described.args[1] == expected
    assert window.prompt.toPlainText() == expected.prompt and expected.tags

    # the gallery's large view: Describe, and the Generate tab shows the prompt it wrote
    window.prompt.setPlainText("something else")
    browser = window.browser
    window.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=5000)
    browser.open_viewer(0)
    [button] = [b for b in browser.viewer.findChildren(QPushButton) if b.text() == "Describe"]
    with qtbot.waitSignal(window.describer.described, timeout=WAIT):
        button.click()
    assert window.tabs.currentIndex() == 0 and window.prompt.toPlainText() == expected.prompt


def test_a_dropped_picture_without_settings_can_be_described(qtbot, parts, tagger, tmp_path):
    """A picture that carries no prompt is offered Describe when dropped: its tags become the prompt, and it is
    neither the init image nor imported."""
    window = parts.window
    parts.library.import_path(tagger)
    photo = tmp_path / "holiday.jpg"
    Image.new("RGB", (120, 120), "blue").save(photo, quality=95)
    answer_next_dialog(qtbot, "Describe")
    with qtbot.waitSignal(window.describer.described, timeout=WAIT):
        drop(window, [photo])
    assert window.prompt.toPlainText() == "blue theme, ^_^, long hair"
    assert window.init_image.digest is None and parts.window.browser.model.count() == 0


def test_the_thresholds_come_from_the_settings(qtbot, parts, tagger):
    """Settings → Describe: a higher tag threshold gives fewer tags; the dialog keeps the values."""
    from hypersd_desktop.ui.settings_dialog import SettingsDialog

    window = parts.window
    parts.library.import_path(tagger)
    dialog = SettingsDialog(window.settings, None, ("torch",))
    qtbot.addWidget(dialog)
    assert (dialog.tag_threshold.value(), dialog.character_threshold.value()) == (0.35, 0.85)
    dialog.tag_threshold.setValue(0.6)
    window.settings = dialog.settings()
    assert (window.settings.tag_threshold, window.settings.character_threshold) == (0.6, 0.85)
    assert window.init_image.load_bytes(png(Image.new("RGB", (64, 64), "red")), "red.png")
    with qtbot.waitSignal(window.describer.described, timeout=WAIT) as described:
        window.init_image.describe_button.click()
    assert described.args[0].threshold == 0.6
    assert window.prompt.toPlainText() == "red background, cosplay \\(costume\\)"

    dialog.describe_exclude.setText(" Cosplay \\(costume\\) ")  # left out, written as the prompt writes it
    window.settings = dialog.settings()
    assert window.settings.describe_exclude == "Cosplay \\(costume\\)"
    with qtbot.waitSignal(window.describer.described, timeout=WAIT):
        window.init_image.describe_button.click()
    assert window.prompt.toPlainText() == "red background"
