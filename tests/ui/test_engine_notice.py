"""What the engine says outside any job (a background compile) crosses from the worker process to the
window's status bar: a moving bar while the work goes on, the outcome after it."""

from __future__ import annotations

from hypersd_desktop.engine.types import GenerationRequest
from ui_helpers import WAIT


def test_the_status_bar_shows_what_the_engine_says_outside_jobs(qtbot, fake_backend, parts, tiny_sd15):
    view = parts.window.engine_notice
    request = GenerationRequest(prompt="notice: Optimising for this device: compiling the UNet for 1 × 512 × 512.",
                                base_model=str(tiny_sd15), backend="fake", device="cpu", width=64, height=64)
    with qtbot.waitSignal(parts.bridge.notice, timeout=WAIT):
        parts.bridge.client.submit(request)
    qtbot.waitUntil(lambda: view.label.text().startswith("Optimising"), timeout=WAIT)
    assert view.busy.isVisible() and not view._clear.isActive()

    done = request.replace(prompt="notice done: Optimised the UNet for 1 × 512 × 512: 26.1 → 9.4 ms per call.")
    with qtbot.waitSignal(parts.bridge.notice, timeout=WAIT):
        parts.bridge.client.submit(done)
    qtbot.waitUntil(lambda: "26.1 → 9.4 ms" in view.label.text(), timeout=WAIT)
    assert not view.busy.isVisible() and view._clear.isActive()  # the outcome goes after a while
    view._clear.timeout.emit()
    assert view.label.text() == ""
