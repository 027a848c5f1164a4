"""Variations: a result's "Variations of this image" makes four images of its seed, each varied by a new variation
seed (A1111's variation seed), with "Latest wins" on too, also of an image made from a picture; the Variation row
asks for one by hand, comes back on reuse, and is read from an A1111 image's text."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hypersd_desktop.gallery.formats import parse_a1111
from hypersd_desktop.gallery.metadata import read_request
from ui_helpers import WAIT


def test_variations_of_a_result_keep_its_seed_and_vary_it(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("a harbour at dawn")
    window.seed.setValue(4321)
    window.latest_wins.setChecked(True)  # replaces older jobs, not the variations' own
    with qtbot.waitSignal(window.image_saved, timeout=WAIT):
        window.generate()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    window.prompt.setPlainText("something else entirely")  # the variations take the image's own settings
    window.seed.setValue(1)
    window.results.setCurrentRow(0)
    (action,) = [a for a in window.results.actions() if a.text() == "Variations of this image (× 4)"]
    saved = []
    window.image_saved.connect(saved.append)
    action.trigger()
    qtbot.waitUntil(lambda: len(saved) == 4, timeout=WAIT)
    requests = [read_request(path) for path in saved]
    assert {(r["prompt"], r["seed"], r["variation_strength"]) for r in requests} == {("a harbour at dawn", 4321, 0.25)}
    first = requests[0]["variation_seed"]
    assert sorted(r["variation_seed"] for r in requests) == list(range(first, first + 4))
    pictures = [np.asarray(Image.open(path).convert("RGB"), dtype=np.int16) for path in saved]
    assert min(np.abs(a - b).max() for k, a in enumerate(pictures) for b in pictures[k + 1:]) > 10
    assert window.seed.value() == 4321 and window.variation.seed.value() != first  # the next are new variations
    browser = window.browser  # the gallery's large view says how each was varied
    qtbot.waitUntil(lambda: browser.model.count() == 5, timeout=WAIT)
    browser.viewer.show_record(next(browser.model.record(k) for k in range(5)
                                    if browser.model.record(k).path == saved[0]))
    assert f"by seed {requests[0]['variation_seed']} at strength 0.25" in browser.viewer.details.toPlainText()
    window.apply_request(window.build_request().replace(variation_seed=first, variation_strength=0.4))
    assert (window.variation.seed.value(), window.variation.strength.value()) == (first, 0.4)


def test_variations_of_an_image_made_from_a_picture_start_from_that_picture(qtbot, parts, tmp_path):
    window = parts.window
    window.prompt.setPlainText("a harbour at dusk")
    window.seed.setValue(99)
    Image.new("RGB", (64, 64), (200, 120, 40)).save(tmp_path / "init.png")
    assert window.init_image.load_file(tmp_path / "init.png")
    window.init_image.strength.setValue(0.75)
    with qtbot.waitSignal(window.image_saved, timeout=WAIT):
        window.generate()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    window.init_image.clear()  # the variations take the image's own picture back
    window.results.setCurrentRow(0)
    saved = []
    window.image_saved.connect(saved.append)
    window.variations_of_result()
    qtbot.waitUntil(lambda: len(saved) == 4, timeout=WAIT)
    requests = [read_request(path) for path in saved]
    assert len({r["init_image"] for r in requests}) == 1 and requests[0]["init_image"] is not None
    assert {(r["seed"], r["strength"], r["variation_strength"]) for r in requests} == {(99, 0.75, 0.25)}
    assert len({r["variation_seed"] for r in requests}) == 4
    pictures = [np.asarray(Image.open(path).convert("RGB"), dtype=np.int16) for path in saved]
    assert min(np.abs(a - b).max() for k, a in enumerate(pictures) for b in pictures[k + 1:]) > 10


def test_the_variation_row_asks_for_one_also_with_an_init_image_and_reads_a1111s(qtbot, idle_app, tmp_path):
    window = idle_app.window
    window.prompt.setPlainText("a lantern")
    assert window.build_request().variation_strength == 0.0
    assert not window.variation.seed.isEnabled()  # Off: nothing to vary by
    window.variation.strength.setValue(0.2)
    window.variation.seed.setValue(77)
    request = window.build_request()
    assert (request.variation_seed, request.variation_strength) == (77, 0.2)
    Image.new("RGB", (64, 64), "white").save(tmp_path / "init.png")
    assert window.init_image.load_file(tmp_path / "init.png")
    request = window.build_request()  # from a picture: the noise added to it is varied
    assert request.init_image is not None and (request.variation_seed, request.variation_strength) == (77, 0.2)
    window.init_image.clear()
    assert window.build_request().varied

    window.apply_metadata(parse_a1111("a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 64x64, "
                                      "Variation seed: 4021, Variation seed strength: 0.15"))
    assert (window.variation.seed.value(), window.variation.strength.value()) == (4021, 0.15)
    window.apply_metadata(parse_a1111("a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 64x64"))
    assert window.variation.strength.value() == 0.0
