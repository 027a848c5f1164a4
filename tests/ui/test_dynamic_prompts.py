"""Dynamic prompts in the window: "Each combination" makes every combination of a prompt's {a|b} choices with the
same seed; without it each image makes its own choices by its seed; a wildcard with no file says where to put one
and queues nothing; File → Open the wildcards folder makes it with a sample."""

from __future__ import annotations

from PIL import Image

from hypersd_desktop.core.dynamic_prompts import chosen
from hypersd_desktop.gallery.metadata import read_request
from ui_helpers import WAIT


def test_each_combination_and_each_images_own_choices(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("a {red|blue} fox")
    window.seed.setValue(40)
    window.seed_lock.setChecked(True)
    window.every_combination.setChecked(True)
    saved = []
    window.image_saved.connect(saved.append)
    window.generate()
    qtbot.waitUntil(lambda: len(saved) == 2, timeout=WAIT)
    made = sorted((read_request(path)["prompt"], read_request(path)["seed"]) for path in saved)
    assert made == [("a blue fox", 40), ("a red fox", 40)]
    with Image.open(saved[0]) as image:  # as the Dynamic Prompts extension writes the prompt it came from
        assert ", Template: a {red|blue} fox, " in image.text["parameters"]
    browser = window.browser
    qtbot.waitUntil(lambda: browser.model.count() == 2, timeout=WAIT)
    browser.viewer.show_record(browser.model.record(0))
    assert "a {red|blue} fox" in browser.viewer.details.toPlainText()
    assert window.prompt.toPlainText() == "a {red|blue} fox"  # the prompt box keeps the template

    saved.clear()
    window.every_combination.setChecked(False)
    window.batch_count.setValue(3)
    window.generate()
    qtbot.waitUntil(lambda: len(saved) == 3, timeout=WAIT)
    made = sorted((read_request(path)["seed"], read_request(path)["prompt"]) for path in saved)
    assert made == [(seed, chosen("a {red|blue} fox", seed)) for seed in (40, 41, 42)]

    saved.clear()  # a batch of three: its images' own choices, made as one batch in one job
    window.batch_count.setValue(1)
    window.batch_size.setValue(3)
    window.prompt.setPlainText("a {red|blue|green|grey} {fox|owl}")
    before = len(window._job_ids)
    window.generate()
    assert len(window._job_ids) == before + 1
    qtbot.waitUntil(lambda: len(saved) == 3, timeout=WAIT)
    made = sorted((read_request(path)["seed"], read_request(path)["prompt"]) for path in saved)
    assert made == [(seed, chosen("a {red|blue|green|grey} {fox|owl}", seed)) for seed in (40, 41, 42)]
    assert len({prompt for _, prompt in made}) > 1


def test_a_missing_wildcard_says_where_to_put_it_and_the_folder_opens(qtbot, idle_app, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    window = idle_app.window
    window.prompt.setPlainText("a {red|green|blue} {fox|owl}")  # the count shows once typing pauses
    qtbot.waitUntil(lambda: window.every_combination.text() == "Each combination (6)", timeout=5000)
    window.prompt.setPlainText("{a|b|c|d|e}{a|b|c|d|e}{a|b|c|d|e}")
    qtbot.waitUntil(lambda: window.every_combination.text() == "Each combination (more than 100)", timeout=5000)
    window.prompt.setPlainText("a __animals__ at dawn")
    qtbot.waitUntil(lambda: window.every_combination.text() == "Each combination", timeout=5000)  # at Generate
    before = len(window._job_ids)
    window.generate()
    assert "no wildcard file animals.txt" in window.errors.text() and len(window._job_ids) == before
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    window.wildcards_action.trigger()
    folder = window.wildcards.folder
    assert opened == [str(folder)] and (folder / "colors.txt").is_file()
    (folder / "animals.txt").write_text("fox\nowl\n", encoding="utf-8")
    assert window.wildcards.options("animals") == ("fox", "owl")
