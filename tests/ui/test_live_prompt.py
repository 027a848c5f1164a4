"""The Generate tab's Live mode: an image follows the prompt and settings once they hold still, one job at a time,
saved nowhere until Keep, which saves exactly the image shown (or makes it again with the full VAE where TAESD
decoded it); Generate works alongside."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.gallery.metadata import read_request
from hypersd_desktop.ui.live_jobs import took
from hypersd_desktop.ui.shortcuts import shortcut_rows
from ui_helpers import WAIT, image_files


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16)


def settled(qtbot, window, prompt: str) -> None:
    """Wait until the live image shown is of `prompt` and nothing more runs."""
    qtbot.waitUntil(lambda: window.live.image is not None and window.live.image.request.prompt == prompt
                    and window.live.live.state == "idle", timeout=WAIT)


def test_live_images_follow_the_prompt_and_save_nothing_until_keep(qtbot, parts):
    window = parts.window
    assert any(keys == "Ctrl+L" for _, keys, _ in shortcut_rows(window))
    finished, ready = [], []
    window.bridge.finished.connect(finished.append)
    window.bridge.image_ready.connect(ready.append)
    window.seed_lock.setChecked(True)
    window.prompt.setPlainText("a red kite")
    window.live.button.click()
    assert window.live.button.text() == "Live: on"
    assert window.live.keep_button.isVisible() and not window.live.keep_button.isEnabled()
    settled(qtbot, window, "a red kite")
    first = window.live.image
    # the time the image took, as its job reported it (the first one loads the model)
    assert re.fullmatch(r"\d+\.\d+ s(, \d+\.\d s of it loading the model)?", window.live.live.made_in)
    assert window.live.live.made_in == took(finished[-1].seconds, ready[-1].load_s)
    assert window.preview.shown() is not None
    assert window.timing.text().startswith(f"Live image made in {window.live.live.made_in}, saved nowhere")
    assert window.results.count() == 0 and image_files(AppPaths.default().images) == []  # saved nowhere
    assert first.request.batch_size == 1 and read_request(io.BytesIO(first.png))["prompt"] == "a red kite"

    submitted = window.live.live.submitted
    window.live._timer.stop()  # the readings, one by one: an image is asked for once the settings hold still
    for text in ("a b", "a bl", "a blu", "a blue", "a blue kite"):  # changed at each reading: typing
        window.prompt.setPlainText(text)
        window.live.read()
    assert window.live.live.submitted == submitted
    window.live.read()  # as they were: typing paused
    assert window.live.live.submitted == submitted + 1
    window.steps.setValue(window.steps.value())
    window.live.read()  # the same settings again: nothing new to make
    assert window.live.live.submitted == submitted + 1
    window.live._timer.start()
    settled(qtbot, window, "a blue kite")
    assert window.live.live.submitted == submitted + 1
    assert ready[-1].load_s < 0.05 and window.live.live.made_in == f"{finished[-1].seconds:.2f} s"  # loaded before

    shown = window.live.image
    path = window.live.keep()
    assert path is not None and path.read_bytes() == shown.png  # exactly the image shown
    assert image_files(AppPaths.default().images) == [path] and not window.live.keep_button.isEnabled()
    assert window.results.count() == 1 and window.results.item(0).data(Qt.ItemDataRole.UserRole) == str(path)
    qtbot.waitUntil(lambda: window.browser.model.count() == 1, timeout=WAIT)

    # Generate alongside Live: the image kept the usual way is the live one made again
    saved = []
    window.image_saved.connect(saved.append)
    window.generate()
    qtbot.waitUntil(lambda: len(saved) == 1, timeout=WAIT)
    with open(saved[0], "rb") as made:
        assert np.abs(pixels(made.read()) - pixels(shown.png)).max() <= 1
    window.live.button.click()  # off: no more live images
    window.prompt.setPlainText("a green kite")
    qtbot.wait(700)
    assert window.live.live.submitted == submitted + 1 and not window.live.keep_button.isVisible()


def test_live_waits_for_a_prompt_and_keeps_a_fast_decoded_image_made_again_with_the_full_vae(qtbot, parts,
                                                                                             monkeypatch):
    from hypersd_desktop.core.vocab import Decoder

    window = parts.window
    window.seed_lock.setChecked(True)
    window.live.button.click()
    qtbot.wait(700)
    assert window.live.live.submitted == 0  # no prompt: nothing to make
    window.prompt.setPlainText("a {red|blue} kite")  # a dynamic prompt: the first image's choices, by its seed
    qtbot.waitUntil(lambda: window.live.image is not None and window.live.live.state == "idle", timeout=WAIT)
    assert window.live.image.request.prompt in ("a red kite", "a blue kite")
    assert window.live.image.request.prompt_template == "a {red|blue} kite"

    asked = []
    monkeypatch.setattr(window.bridge.client, "submit", lambda request, **kw: asked.append(request) or 99)
    image = window.live.image
    fast = image.request.replace(decoder=Decoder.TAESD, taesd="/models/taesd")  # as Fast decode makes it
    window.live.image = type(image)(image.serial, image.png, fast)
    assert window.live.keep() is None  # made again, saved as any generated image
    assert asked == [fast.replace(decoder=Decoder.VAE)] and 99 in window._job_ids
    assert image_files(AppPaths.default().images) == []


def test_keep_says_why_an_image_could_not_be_kept_and_stays_ready_to_try_again(qtbot, parts, tmp_path):
    window = parts.window
    window.seed_lock.setChecked(True)
    window.prompt.setPlainText("a red kite")
    window.live.button.click()
    settled(qtbot, window, "a red kite")
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the images folder should be")
    window.live.images = lambda: blocked
    assert window.live.keep() is None
    assert window.timing.text().startswith("The image could not be kept:") and window.live.keep_button.isEnabled()
    assert window.results.count() == 0


def test_live_turned_off_at_an_image_still_keeps_it_until_another_image_is_in_view(qtbot, parts):
    """Turning Live off is how one stops at an image worth keeping: Keep stays, and saves exactly it; once another
    image is in the preview (a Generate's), there is no live image in view to keep."""
    window = parts.window
    window.seed_lock.setChecked(True)
    window.prompt.setPlainText("a yellow kite")
    window.live.button.click()
    settled(qtbot, window, "a yellow kite")
    shown = window.live.image
    window.live.button.click()  # off
    assert window.live.button.text() == "Live"
    assert window.live.keep_button.isVisible() and window.live.keep_button.isEnabled()
    assert "Keep (Ctrl+K) still saves the live image shown" in window.timing.text()
    window.prompt.setPlainText("a grey kite")
    qtbot.wait(600)
    assert window.live.image is shown and window.preview.shown() is not None  # no newer live image
    path = window.live.keep()
    assert path is not None and path.read_bytes() == shown.png
    assert image_files(AppPaths.default().images) == [path]

    window.live.button.click()  # on again: a live image of the new prompt, then off, then a Generate
    settled(qtbot, window, "a grey kite")
    window.live.button.click()
    assert window.live.keep_button.isVisible() and window.live.keep_button.isEnabled()
    saved = []
    window.image_saved.connect(saved.append)
    window.generate()
    qtbot.waitUntil(lambda: len(saved) == 1, timeout=WAIT)
    qtbot.waitUntil(lambda: not window.live.keep_button.isVisible(), timeout=WAIT)
    assert window.live.image is None and window.live.keep() is None
    assert sorted(image_files(AppPaths.default().images)) == sorted([path, *map(Path, saved)])
