"""The work in the window survives a restart and a crash: the prompts and prompt styles, the locked seed, the init
image with its mask (or with Faces and hands only), the ControlNets' pictures, Tiling, and the Draw tab's drawing and
prompt come back when the app starts again."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from hypersd_desktop.core.prompt_styles import PromptStyle, styles_file, write_styles
from hypersd_desktop.ui.job_view import SEED_ROLE, ResultStrip
from hypersd_desktop.ui.session import SAVE_DELAY_MS, session_paths


def png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def test_the_work_in_the_window_comes_back_after_a_crash(qtbot, idle_app, tmp_path):
    from hypersd_desktop.app import build_app
    from tests.ui.conftest import close

    window = idle_app.window
    write_styles(styles_file(idle_app.library.paths), [PromptStyle("Dusk", "{prompt}, golden hour"),
                                                       PromptStyle("Oil", "oil painting")])
    window.prompt_styles.reload()
    window.prompt_styles.choose(["Oil", "Dusk"])
    window.prompt.setPlainText("a lighthouse at dusk")
    window.negative.setPlainText("blurry")
    window.seed.setValue(2**40 + 7)
    window.seed_lock.setChecked(True)
    photo = tmp_path / "harbour.png"
    Image.new("RGB", (96, 64), (30, 90, 160)).save(photo)
    assert window.init_image.load_file(photo)
    mask = Image.new("L", (96, 64), 0)
    ImageDraw.Draw(mask).rectangle((10, 10, 40, 30), fill=255)
    window.init_image.set_mask(png(mask))
    window.init_image.strength.setValue(0.4)
    window.init_image.only_masked.setChecked(True)
    window.init_image.masked_padding.setValue(16)
    sketch = tmp_path / "sketch.png"
    Image.new("RGB", (64, 64), "white").save(sketch)
    assert window.control_image.load_file(sketch)
    window.control_image.scale.setValue(0.8)
    assert not window.control_stack.add_button.isHidden()  # offered once the first ControlNet has a picture
    second = window.control_stack.add_box()  # a second ControlNet, with a picture of its own
    Image.new("RGB", (64, 64), "black").save(tmp_path / "edges.png")
    assert second.load_file(tmp_path / "edges.png")
    second.scale.setValue(0.3)
    window.set_tiling("x")  # a texture being made: it stays seamless

    draw = window.draw
    window.tabs.setCurrentWidget(draw)
    draw.prompt.setText("a house on a hill")
    canvas = draw.canvas
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(60, 60))
    QTest.mouseMove(canvas, QPoint(160, 120))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(160, 120))
    drawn = canvas.png()
    qtbot.wait(SAVE_DELAY_MS + 300)  # then the app is killed: nothing more is written
    session, drawing = session_paths(idle_app.library.paths)
    assert session.is_file() and drawing.is_file()

    again = build_app(["test"], start_worker=False)
    try:
        restored = again.window
        assert restored.prompt.toPlainText() == "a lighthouse at dusk" and restored.negative.toPlainText() == "blurry"
        assert restored.seed.value() == 2**40 + 7 and restored.seed_lock.isChecked()
        box = restored.init_image
        assert (box.digest, box.mask) == (window.init_image.digest, window.init_image.mask)
        assert (box.strength.value(), box.padding()) == (0.4, 16)
        assert restored.control_image.digest == window.control_image.digest
        assert restored.control_image.scale.value() == 0.8
        assert [(box.digest, box.scale.value()) for box in restored.control_stack.boxes] == [
            (box.digest, box.scale.value()) for box in window.control_stack.boxes]
        assert len(restored.control_stack.boxes) == 2
        assert restored.tiling.currentData() == "x" and restored.prompt_styles.chosen_names() == ["Oil", "Dusk"]
        assert restored.build_request(quiet=True) == window.build_request(quiet=True)
        assert restored.draw.prompt.text() == "a house on a hill"
        assert np.array_equal(pixels(restored.draw.canvas.png()), pixels(drawn))
        assert restored.draw.canvas.image_size() == canvas.image_size()
        assert restored.draw.errors.text() == ""  # restoring makes no image (here it would say what is missing)
    finally:
        close(again)


def test_a_closed_window_saves_at_once_and_a_damaged_session_is_left_aside(qtbot, idle_app):
    from hypersd_desktop.app import build_app
    from tests.ui.conftest import close

    idle_app.window.prompt.setPlainText("a quiet street")
    idle_app.window.draw.canvas.clear()
    idle_app.window.close()  # at once, not a second later
    session, drawing = session_paths(idle_app.library.paths)
    again = build_app(["test"], start_worker=False)
    try:
        assert again.window.prompt.toPlainText() == "a quiet street" and not again.window.seed_lock.isChecked()
        assert again.window.init_image.digest is None and again.window.draw.canvas.is_blank()
    finally:
        close(again)
    assert not drawing.exists()  # nothing drawn: no drawing file
    for damaged in ("{not json", "[1, 2]", '{"prompt": 5, "seed": "x", "init_image": {"strength": "a lot"}}'):
        session.write_text(damaged)
        again = build_app(["test"], start_worker=False)
        try:
            assert again.window.init_image.digest is None and again.window.isEnabled()
        finally:
            close(again)


def test_faces_and_hands_only_comes_back_with_its_picture(qtbot, idle_app, tmp_path):
    from hypersd_desktop.app import build_app
    from tests.ui.conftest import close

    window = idle_app.window
    photo = tmp_path / "portrait.png"
    Image.new("RGB", (96, 64), (200, 150, 120)).save(photo)
    assert window.init_image.load_file(photo)
    window.init_image.details_only.setChecked(True)
    assert window.init_image.detailing()
    qtbot.wait(SAVE_DELAY_MS + 300)
    again = build_app(["test"], start_worker=False)
    try:
        box = again.window.init_image
        assert box.digest == window.init_image.digest and box.details_only.isChecked() and box.detailing()
    finally:
        close(again)


def test_the_queue_comes_back_waiting_after_a_restart_and_runs_when_resumed(qtbot, idle_app):
    from hypersd_desktop.app import build_app
    from tests.ui.conftest import close
    from ui_helpers import WAIT

    window = idle_app.window  # no worker: what is asked for stays queued, as behind a long job
    window.size_box.addItem("64 × 64 (test)", (64, 64))
    window.size_box.setCurrentIndex(window.size_box.count() - 1)
    window.prompt.setPlainText("a red kite")
    window.seed_lock.setChecked(True)
    window.seed.setValue(41)
    assert len(window.generate(count=2)) == 2
    window.prompt.setPlainText("a blue kite")
    [third] = window.generate(count=1)
    window.bridge.client.cancel(third)  # removed from the queue: not kept
    asked = [job.request for job in window.bridge.client.queued()]
    window.close()

    again = build_app(["test"])
    try:
        restored = again.window
        restored.show()  # closed below, not by qtbot
        queue = restored.queue
        qtbot.waitUntil(lambda: queue.count() == 2, timeout=WAIT)
        assert [queue.item(row).text().split(":", 1)[0].split(" ", 1)[1] for row in range(2)] == ["from last time"] * 2
        assert "2 jobs were in the queue when the app closed" in restored.warnings.text()
        assert not restored.resume_queue.isHidden()
        qtbot.waitSignal(again.bridge.ready, timeout=WAIT).wait()
        qtbot.wait(300)
        assert restored.results.count() == 0  # nothing started behind the person's back
        assert "2 jobs were in the queue" in restored.warnings.text()  # still said once the worker is ready
        assert [job.request for job in again.bridge.client.queued()] == asked
        restored.resume_queue.click()
        qtbot.waitUntil(lambda: restored.results.count() == 2 and queue.count() == 0, timeout=WAIT)
        assert restored.resume_queue.isHidden() and "in the queue" not in restored.warnings.text()
        made = [restored.results.item(row) for row in range(2)]
        assert sorted(item.data(SEED_ROLE) for item in made) == sorted(request.seed for request in asked)
        assert all(Path(ResultStrip.path_of(item)).is_file() for item in made)  # saved as any image made
    finally:
        close(again)


def test_events_the_bridge_sends_after_the_window_is_gone_reach_nothing_of_it(qtbot, installed, monkeypatch):
    """The app's bridge outlives its window (it is shut down after it, and its last events come then): the window's
    parts that listen to it (the session, the job views, Generate forever, the workers' requests) go with the
    window, not left to touch its deleted widgets."""
    import sys
    from types import SimpleNamespace

    import shiboken6
    from PySide6.QtCore import QCoreApplication, QEvent

    from hypersd_desktop.app import build_app

    parts = build_app(["test"], start_worker=False)
    window, bridge = parts.window, parts.bridge
    window.prompt.setPlainText("a lighthouse")  # the session has something to save
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not shiboken6.isValid(window)
    raised = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, error, trace: raised.append(f"{kind.__name__}: {error}"))
    event = SimpleNamespace(job_id=7)  # nothing of the window reads it now
    for signal in (bridge.queue_changed, bridge.ready, bridge.restarted, bridge.started, bridge.progress,
                   bridge.finished, bridge.batch_finished, bridge.failed):
        signal.emit(event)
    qtbot.wait(50)
    parts.library.close()
    assert raised == []  # before: "RuntimeError: … Internal C++ object (PySide6.QtCore.QTimer) already deleted", …
