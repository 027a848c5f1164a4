"""Describe: a picture's booru tags written into the prompt by the worker's tagger, from the init image box or a
result, as one edit Ctrl+Z takes back."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from hypersd_desktop.engine.tagger import Tagger
from hypersd_desktop.gallery.store import ImageQuery
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


def test_describe_for_search_lets_the_gallery_search_find_pictures_by_what_they_show(qtbot, parts, tagger, tmp_path):
    """The gallery's *Describe for search*: without a tagger it says what to install; with one, every image not
    described yet (none selected) is read by the worker's tagger in turn, counted in the notice line, and the search
    finds each by its tags, which the large view shows; the selected ones are described again; a file gone is
    passed over and named."""
    window, browser = parts.window, parts.window.browser
    folder = tmp_path / "pictures"
    folder.mkdir()
    for name, colour in (("poster.png", "red"), ("sea.png", "blue"), ("gone.png", "blue")):
        Image.new("RGB", (40, 40), colour).save(folder / name)
    with qtbot.waitSignal(browser.model.counted, timeout=WAIT):
        task = browser.import_folder(folder)
        qtbot.waitUntil(lambda: not task.isRunning(), timeout=WAIT)
    qtbot.waitUntil(lambda: browser.model.count() == 3, timeout=WAIT)
    (folder / "gone.png").unlink()
    browser.describe_button.click()
    assert browser.notice.text() == NO_TAGGER
    parts.library.import_path(tagger)
    notices = []
    window.descriptions.progress.connect(notices.append)
    with qtbot.waitSignal(window.descriptions.ended, timeout=WAIT) as ended:
        browser.describe_button.click()
        assert browser.stop_describing_button.isVisible() or window.descriptions.running
    assert ended.args[0].startswith("Described 2 images for search") and "Not read: gone.png" in ended.args[0]
    assert notices[0] == "Describing for search: 1 of 2…" and not browser.stop_describing_button.isVisible()
    browser.search.setText("red background")
    browser.apply_filters()
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=WAIT)
    record = browser.model.record(0)
    assert record.path.endswith("poster.png") and record.described.startswith("red background")
    browser.viewer.show_record(record)
    assert "Described as" in browser.viewer.details.toPlainText()

    browser.grid.select_position(0)  # described again, with the thresholds of the settings
    window.settings = window.settings.replace(tag_threshold=0.6)
    with qtbot.waitSignal(window.descriptions.ended, timeout=WAIT) as ended:
        browser.describe_button.click()
    assert ended.args[0].startswith("Described 1 image for search")
    assert window.gallery.store.get(record.id).described == "red background, cosplay \\(costume\\)"
    browser.search.clear()
    browser.grid.clearSelection()
    browser.describe_button.click()  # the file gone is not described yet: it is tried again, and named
    qtbot.waitUntil(lambda: "gone.png" in browser.notice.text(), timeout=WAIT)
    ids = window.gallery.store.ids()
    with qtbot.waitSignal(window.descriptions.ended, timeout=WAIT) as ended:
        window.descriptions.start(ids)
        browser.stop_describing_button.click()  # the image being read is kept, the rest are not asked for
    assert notices[-1] == "Stopping after the image being read…" and ended.args[0].startswith("Described 1 image")


def test_taking_describe_for_searchs_job_off_the_queue_ends_the_run(qtbot, parts, tagger, tmp_path):
    """A person who removes the waiting describe job from the Generate tab's queue ends the run there: the gallery
    says so and *Describe for search* can be pressed again (the run did not wait for an answer that never comes)."""
    window, browser, client = parts.window, parts.window.browser, parts.bridge.client
    parts.library.import_path(tagger)
    picture = tmp_path / "poster.png"
    Image.new("RGB", (40, 40), "red").save(picture)
    window.gallery.import_files([picture])
    image = window.gallery.store.get(window.gallery.store.ids()[0])
    window.prompt.setPlainText("keeps the worker busy")
    window.steps.setValue(8)
    window.batch_count.setValue(2)
    window.generate()
    qtbot.waitUntil(lambda: client.running is not None, timeout=WAIT)
    with qtbot.waitSignal(window.descriptions.ended, timeout=WAIT) as ended:
        window.descriptions.start([image.id])
        qtbot.waitUntil(lambda: window.queue.count() == 3, timeout=WAIT)  # the generation's two, the description
        window.queue.setCurrentRow(2)
        window.queue_remove.click()
    assert ended.args[0] == "Describing stopped: its job was cancelled (Removed from the queue)."
    assert not window.descriptions.running and window.gallery.store.get(image.id).described is None
    with qtbot.waitSignal(window.descriptions.ended, timeout=WAIT) as ended:
        browser.describe_button.click()
    assert ended.args[0].startswith("Described 1 image for search")


def test_pictures_imported_without_a_prompt_are_described_for_search(qtbot, parts, tagger, tmp_path):
    """With a tagger installed, an import ends by describing the pictures that came without a prompt (not those made
    from one), the import's words kept in the notice line; Settings → Describe turns it off; without a tagger the
    import says nothing of describing."""
    from PIL.PngImagePlugin import PngInfo

    window, browser = parts.window, parts.window.browser

    def import_folder(name: str, colours: dict[str, str]):
        folder = tmp_path / name
        folder.mkdir()
        for file, colour in colours.items():
            info = PngInfo()
            if file.startswith("made"):
                info.add_text("parameters", "a castle\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 40x40")
            Image.new("RGB", (40, 40), colour).save(folder / file, pnginfo=info)
        task = browser.import_folder(folder)
        qtbot.waitUntil(lambda: not task.isRunning(), timeout=WAIT)

    import_folder("before", {"photo-before.png": "red"})  # no tagger: nothing asked for, nothing said
    qtbot.waitUntil(lambda: browser.notice.text() == "Imported 1 image.", timeout=WAIT)
    assert not window.descriptions.running and browser.notice.text() == "Imported 1 image."
    parts.library.import_path(tagger)
    with qtbot.waitSignal(window.descriptions.ended, timeout=WAIT) as ended:
        import_folder("photos", {"photo.png": "red", "made.png": "red"})
    assert ended.args[0].startswith("Imported 2 images. Described 1 image for search")
    assert browser.notice.text() == ended.args[0]
    store = window.gallery.store
    described = {Path(record.path).name: record.described for record in store.query(ImageQuery()).images}
    assert described["photo.png"].startswith("red background")
    assert described["made.png"] is None and described["photo-before.png"] is None  # made from a prompt; before

    from hypersd_desktop.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.settings, None, ("torch",))
    qtbot.addWidget(dialog)
    assert dialog.describe_imports.isChecked()  # on by default
    dialog.describe_imports.setChecked(False)
    window.settings = dialog.settings()
    import_folder("later", {"photo-later.png": "blue"})
    qtbot.waitUntil(lambda: browser.notice.text() == "Imported 1 image.", timeout=WAIT)
    qtbot.wait(200)
    later = [record for record in store.query(ImageQuery()).images if record.path.endswith("photo-later.png")]
    assert not window.descriptions.running and len(later) == 1 and later[0].described is None
