"""The window driving the real worker process with tiny models (pytest-qt, offscreen)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.settings import load_settings
from hypersd_desktop.gallery.store import GalleryStore
from ui_helpers import WAIT


def test_generate_shows_the_image_and_saves_it_to_the_gallery(qtbot, parts):
    window = parts.window
    assert window.hyper_box.currentText() == "Hyper-SD15-1step-lora"
    assert not window.negative.isEnabled() and not window.guidance.isEnabled() and window.eta.isEnabled()
    window.prompt.setPlainText("a lighthouse at dusk")
    window.steps.setValue(2)
    shown = []
    parts.bridge.started.connect(lambda _: shown.append(window.preview.text()))
    assert [model.last_used for model in parts.library.registry.list()] == [None, None]
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as saved:
        qtbot.keyClick(window.prompt, "\r", modifier=qtbot_modifier())
    path = Path(saved.args[0])
    assert path.exists() and window.results.count() == 1
    assert not window.preview.pixmap().isNull()
    assert shown == ["Making the image: the steps show here as it forms"], "the empty preview says a job runs"
    assert all(model.last_used for model in parts.library.registry.list()), "the Models tab's Last used"
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    assert re.fullmatch(r"Done in [\d.]+ s on CPU \(fp32\), [\d.]+ s of it loading the model", window.timing.text())
    store = GalleryStore(AppPaths.default().data / "gallery.sqlite3")
    (record,) = store.query().images
    assert record.path == str(path) and record.prompt == "a lighthouse at dusk" and record.steps == 2
    store.close()

    with qtbot.waitSignal(window.image_saved, timeout=WAIT):  # the model is loaded now: only the image's time
        window.generate()
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    assert re.fullmatch(r"Done in [\d.]+ s on CPU \(fp32\)", window.timing.text())


def qtbot_modifier():
    from PySide6.QtCore import Qt

    return Qt.KeyboardModifier.ControlModifier


def test_cancel_mid_job_saves_nothing(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("a slow one")
    window.steps.setValue(8)
    saved = []
    window.image_saved.connect(saved.append)
    parts.bridge.progress.connect(lambda message: window.cancel())
    with qtbot.waitSignal(parts.bridge.failed, timeout=WAIT) as failed:
        window.generate()
    assert failed.args[0].cancelled
    qtbot.wait(300)
    assert saved == [] and not window.cancel_button.isEnabled()
    assert window.preview.text() == "Type a prompt and press Ctrl+Enter"


def test_killed_worker_is_reported_and_the_next_job_works(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("first")
    window.steps.setValue(8)
    killed = []

    def kill(message):
        if not killed:
            killed.append(parts.bridge.client.pid)
            os.kill(parts.bridge.client.pid, signal.SIGKILL)

    parts.bridge.progress.connect(kill)
    with qtbot.waitSignal(parts.bridge.failed, timeout=WAIT):
        window.generate()
    assert "stopped unexpectedly" in window.errors.text()
    parts.bridge.progress.disconnect(kill)
    qtbot.waitSignal(parts.bridge.ready, timeout=WAIT).wait()
    assert parts.bridge.client.pid != killed[0]
    window.prompt.setPlainText("second")
    window.steps.setValue(2)
    with qtbot.waitSignal(window.image_saved, timeout=WAIT):
        window.generate()


def test_queue_lists_reorders_and_removes(qtbot, parts):
    window = parts.window
    client = parts.bridge.client
    window.prompt.setPlainText("queued work")
    window.steps.setValue(8)
    window.batch_count.setValue(3)
    finished = []
    parts.bridge.finished.connect(lambda m: finished.append(m.job_id))
    window.generate()
    qtbot.waitUntil(lambda: client.running is not None, timeout=WAIT)
    queued = [job.job_id for job in client.queued()]
    assert len(queued) == 2
    qtbot.waitUntil(lambda: window.queue.count() == 3, timeout=5000)  # the list follows on the GUI thread
    client.move(queued[1], 0)
    assert [job.job_id for job in client.queued()] == [queued[1], queued[0]]
    client.cancel(queued[0])
    assert [job.job_id for job in client.queued()] == [queued[1]]
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=WAIT)
    assert finished[1] == queued[1]


def test_settings_persist_between_runs(qtbot, parts):
    from hypersd_desktop.core.settings import save_settings

    window = parts.window
    window.latest_wins.setChecked(True)
    window.steps.setValue(5)
    window._remember_choices()
    save_settings(window.settings.replace(vae_tiling=True, theme="dark"), parts.library.paths)
    settings = load_settings()
    assert settings.latest_wins and settings.last_steps == 5 and settings.vae_tiling and settings.theme == "dark"
    assert settings.last_hyper == "hyper-sd15-1step-lora"


def test_the_window_closes_when_its_settings_cannot_be_written(qtbot, idle_app):
    """A full or read-only disk (here a folder where the settings file goes): the choices are not remembered,
    which the log and `save_settings`'s answer say, and the window closes all the same."""
    from hypersd_desktop.core.settings import save_settings, settings_file

    paths = idle_app.library.paths
    settings_file(paths).unlink(missing_ok=True)
    (settings_file(paths) / "in the way").mkdir(parents=True)
    problem = save_settings(idle_app.window.settings, paths)
    assert problem.startswith(f"The settings were not saved: it could not be written into {paths.config}")
    idle_app.window._remember_choices()  # as closing the window does
    assert idle_app.window.close()


def test_first_run_with_an_imported_tiny_model(qtbot, app_home, tiny_sd15, hyper_lora):
    from hypersd_desktop.app import build_app
    from hypersd_desktop.ui.generate_form import NO_MODEL_HINT

    parts = build_app(["test"], start_worker=False)
    qtbot.addWidget(parts.window)
    try:
        assert parts.first_run is not None and parts.window.model_box.count() == 0
        assert "GB" in parts.first_run.offer_buttons[0].text()
        # behind the dialog, and once it is closed: where a model comes from, not "type a prompt" (the Draw tab's
        # banner says what drawing needs)
        assert parts.window.preview.text() == NO_MODEL_HINT and parts.window.draw.model_box.count() == 0
        task = parts.first_run.import_paths([tiny_sd15, hyper_lora("Hyper-SD15-2steps-lora")])
        qtbot.waitUntil(task.isFinished, timeout=30_000)  # imported off the GUI thread
        qtbot.waitUntil(lambda: parts.first_run.result() != 0, timeout=5000)
        assert parts.first_run.result() == parts.first_run.DialogCode.Accepted
        assert parts.window.model_box.count() == 1
        assert parts.window.hyper_box.currentText() == "Hyper-SD15-2steps-lora"
        assert parts.window.steps.value() == 2 and not parts.window.steps.isEnabled()
        assert parts.window.preview.text() == "Type a prompt and press Ctrl+Enter"
        assert parts.window.draw.model_box.count() == 1  # the Draw tab has the model too, without a restart
    finally:
        parts.library.close()


def test_the_gui_process_never_imports_torch(installed, tmp_path):
    script = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QTimer
        from hypersd_desktop.app import build_app
        parts = build_app(["probe"])
        window = parts.window
        window.size_box.addItem("64", (64, 64)); window.size_box.setCurrentIndex(window.size_box.count() - 1)
        window.prompt.setPlainText("a probe")
        parts.bridge.ready.connect(lambda _: window.generate())
        done = []
        window.image_saved.connect(lambda path: (done.append(path), parts.app.quit()))
        QTimer.singleShot(170000, parts.app.quit)
        parts.app.exec()
        heavy = [m for m in ("torch", "diffusers", "transformers") if m in sys.modules]
        print("saved" if done else "nothing", ",".join(heavy) or "none")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert run.stdout.split() == ["saved", "none"], run.stderr[-2000:]


def test_uncaught_exceptions_in_any_thread_reach_the_error_banner(qtbot, installed):
    import threading

    from hypersd_desktop.app import build_app

    parts = build_app(["test"], start_worker=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    try:
        thread = threading.Thread(target=lambda: 1 / 0)
        thread.start()
        thread.join()
        qtbot.waitUntil(lambda: "ZeroDivisionError" in parts.window.errors.text(), timeout=5000)
        log = AppPaths.default().data / "app.log"
        assert f"please report it with the log, {log}" in parts.window.errors.text()
        assert "Traceback" in log.read_text() and "ZeroDivisionError: division by zero" in log.read_text()
    finally:
        sys.excepthook, threading.excepthook = sys.__excepthook__, threading.__excepthook__
        parts.library.close()


def test_latest_wins_replaces_queued_jobs(qtbot, parts):
    window = parts.window
    window.latest_wins.setChecked(True)
    window.steps.setValue(8)
    dropped = []
    parts.bridge.failed.connect(lambda m: dropped.append(m.job_id) if "newer request" in m.message else None)
    finished = []
    parts.bridge.finished.connect(lambda m: finished.append(m.job_id))
    for text in ("a", "a c", "a ca", "a cat"):
        window.prompt.setPlainText(text)
        window.generate()
    qtbot.waitUntil(lambda: window._job_ids[-1] in finished, timeout=WAIT)
    # The first job was already running; of the three queued after it only the latest ran.
    assert set(dropped) == set(window._job_ids[1:3])
    assert set(finished) == {window._job_ids[0], window._job_ids[3]}


def test_a_damaged_gallery_database_is_named_in_the_window(qtbot, installed):
    import threading

    from hypersd_desktop.app import build_app

    database = AppPaths.default().data / "gallery.sqlite3"
    database.write_bytes(b"")
    parts = build_app(["test"], start_worker=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    try:
        text = parts.window.warnings.text()
        assert f"The database {database} was damaged (it is empty: 0 bytes)" in text
        assert "File → Rebuild the gallery" in text
        assert list(database.parent.glob("gallery.sqlite3.damaged-*"))
    finally:
        sys.excepthook, threading.excepthook = sys.__excepthook__, threading.__excepthook__
        parts.library.close()


def test_first_run_says_when_the_gpu_cannot_be_detected(qtbot, app_home, monkeypatch):
    """The packaged app without a compute runtime: the dialog stops saying "Detecting the GPU…"."""
    import sys

    from hypersd_desktop.app import build_app

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    parts = build_app(["test"])
    qtbot.addWidget(parts.window)
    parts.window.show()
    try:
        qtbot.waitUntil(lambda: "could not be detected" in parts.first_run.hardware.text(), timeout=5000)
        assert "compute runtime" in parts.window.errors.text()
    finally:
        parts.bridge.shutdown()
        parts.library.close()


def test_the_onnx_backend_chosen_in_settings_exports_on_first_use_with_progress_then_generates(qtbot, parts):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from hypersd_desktop.engine.onnx.export import cache_root
    from hypersd_desktop.ui.settings_dialog import SettingsDialog

    window = parts.window

    def choose_onnx_runtime():  # runs inside the dialog's own event loop, once it is open
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, SettingsDialog):
            QTimer.singleShot(20, choose_onnx_runtime)
            return
        dialog.backend.setCurrentIndex(dialog.backend.findData("onnx"))
        dialog.accept()

    QTimer.singleShot(0, choose_onnx_runtime)
    window.settings_action.trigger()
    assert window.settings.backend == "onnx" and load_settings().backend == "onnx"
    window.size_box.addItem("64 × 64 (test)", (64, 64))  # the settings refilled the sizes
    window.size_box.setCurrentIndex(window.size_box.count() - 1)

    shown = []
    parts.bridge.progress.connect(lambda message: shown.append(window.timing.text()))
    window.prompt.setPlainText("a lighthouse at dusk")
    window.steps.setValue(2)
    with qtbot.waitSignal(window.image_saved, timeout=WAIT * 3) as saved:
        window.generate()
    exporting = [text for text in shown if text.startswith("Exporting the model to ONNX")]
    assert exporting and re.fullmatch(r"Exporting the model to ONNX \(first use of this model and LoRA set\): "
                                      r"[a-z0-9 ]+ · \d+% · \d+\u00a0s", exporting[0])  # kept together
    assert [text.split(" · ")[0] for text in shown if text.startswith("Step ")] == ["Step 1/2", "Step 2/2"]
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done in"), timeout=WAIT)
    assert "ONNX Runtime" in window.device_label.text() and window.device_label.text().startswith("Device: CPU · fp32")
    assert len(list(cache_root(AppPaths.default().data).iterdir())) == 1
    store = GalleryStore(AppPaths.default().data / "gallery.sqlite3")
    (record,) = store.query().images
    assert record.path == saved.args[0] and '"backend": "onnx"' in record.request
    store.close()

    shown.clear()
    with qtbot.waitSignal(window.image_saved, timeout=WAIT):  # exported once: the second image only generates
        window.generate()
    assert not any(text.startswith("Exporting") for text in shown)


def test_a_progress_bar_moves_while_the_model_loads_then_counts_the_steps(qtbot, parts):
    window = parts.window
    bar = window.progress
    assert bar.isHidden()
    seen: list[tuple[bool, int, int]] = []
    parts.bridge.started.connect(lambda _m: seen.append((bar.isVisible(), bar.maximum(), bar.value())))
    parts.bridge.progress.connect(lambda m: seen.append((bar.isVisible(), bar.maximum(), bar.value()))
                                  if not m.stage else None)
    window.prompt.setPlainText("a lighthouse at dusk")
    window.steps.setValue(3)
    with qtbot.waitSignal(parts.bridge.finished, timeout=WAIT):
        window.generate()
    assert seen[0] == (True, 0, seen[0][2]), "busy (no maximum) before the first step"
    steps = [(shown, maximum, value) for shown, maximum, value in seen[1:] if maximum == 3]
    assert steps and [value for _, _, value in steps] == sorted(value for _, _, value in steps)
    assert steps[-1] == (True, 3, 3) and all(shown for shown, _, _ in steps)
    assert bar.isHidden(), "gone when the image is done"


def test_an_image_done_while_the_window_is_in_the_background_flashes_its_taskbar_entry(qtbot, parts, monkeypatch):
    from PySide6.QtWidgets import QApplication, QLineEdit

    window = parts.window
    alerts: list = []
    monkeypatch.setattr(QApplication, "alert", staticmethod(lambda widget, duration=0: alerts.append(widget)))
    window.prompt.setPlainText("a lighthouse at dusk")
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    with qtbot.waitSignal(parts.bridge.finished, timeout=WAIT):
        window.generate()
    assert alerts == [], "in front: nothing to tell"
    other = QLineEdit()  # another app's window in front
    qtbot.addWidget(other)
    other.show()
    other.activateWindow()
    qtbot.waitUntil(lambda: not window.isActiveWindow(), timeout=5000)
    with qtbot.waitSignal(parts.bridge.finished, timeout=WAIT):
        window.generate()
    assert alerts == [window]


def test_first_run_offers_the_models_another_tool_keeps_on_this_computer(qtbot, app_home, tiny_sd15, hyper_lora,
                                                                         tmp_path, monkeypatch):
    """Someone who has used ComfyUI starts with its models: the first-run dialog finds its models folder in the
    home folder, says how many files it holds, and uses them where they are (the folder linked)."""
    import shutil

    from hypersd_desktop.app import build_app

    home = tmp_path / "someone"
    models = home / "ComfyUI" / "models"
    shutil.copytree(tiny_sd15, models / "diffusers" / "tiny-sd15")
    (models / "loras").mkdir(parents=True)
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), models / "loras" / "Hyper-SD15-2steps-lora.safetensors")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf-cache"))
    parts = build_app(["test"], start_worker=False)
    qtbot.addWidget(parts.window)
    try:
        dialog = parts.first_run
        qtbot.waitUntil(lambda: bool(dialog.found_buttons), timeout=10_000)
        files = sum(1 for path in models.rglob("*.safetensors"))
        assert [button.text() for button in dialog.found_buttons] == [
            f"Use ComfyUI's models — {models.resolve()} ({files} files)"]
        dialog.found_buttons[0].click()
        qtbot.waitUntil(lambda: dialog.result() != 0, timeout=30_000)
        assert dialog.result() == dialog.DialogCode.Accepted and parts.window.model_box.count() == 1
        assert parts.library.registry.linked_folders() == [models.resolve()]
    finally:
        parts.library.close()


def test_generate_forever_keeps_making_images_with_the_settings_as_they_are_until_stopped(qtbot, parts):
    """Generate forever (the Generate button's right-click, Ctrl+Shift+Enter) queues the image again each time the
    last is done, with a new seed and the prompt as it is then; Escape stops it; a prompt emptied meanwhile stops
    it with the reason."""
    from PySide6.QtGui import QKeySequence, QShortcut

    window = parts.window
    window.prompt.setPlainText("a red kite")
    saved = []
    window.image_saved.connect(saved.append)
    assert window.forever.action in window.generate_button.actions()
    toggle = next(shortcut for shortcut in window.findChildren(QShortcut)
                  if shortcut.key() == QKeySequence("Ctrl+Shift+Return"))
    toggle.activated.emit()
    assert window.forever.running and window.generate_button.text() == "Generate (forever: Esc stops)"
    qtbot.waitUntil(lambda: len(saved) >= 2, timeout=WAIT)
    window.prompt.setPlainText("a blue kite")  # taken by the next round
    count = len(saved)
    qtbot.waitUntil(lambda: len(saved) >= count + 2, timeout=WAIT)
    records = [window.gallery.store.get(window.gallery.store.id_of_path(path)) for path in saved]
    assert records[-1].prompt == "a blue kite" and records[0].prompt == "a red kite"
    assert len({record.seed for record in records}) == len(records)  # a new seed each time
    window.cancel()  # Escape
    assert not window.forever.running and window.generate_button.text() == "Generate"
    qtbot.waitUntil(lambda: window.bridge.client.running is None, timeout=WAIT)
    stopped_at = len(saved)
    qtbot.wait(500)
    assert len(saved) == stopped_at and not window.bridge.client.queued()

    window.forever.action.setChecked(True)
    window.prompt.setPlainText("")  # the next round cannot be queued: it stops, saying why
    qtbot.waitUntil(lambda: not window.forever.running, timeout=WAIT)
    assert "Type a prompt first." in window.errors.text()
    assert window.statusBar().currentMessage() == "Generate forever stopped: the image could not be queued."


def test_pause_queue_holds_what_is_asked_for_until_resume_queue(qtbot, idle_app):
    """The buttons and what the queue says (the client's own test runs a paused queue through a worker)."""
    window = idle_app.window
    window.prompt.setPlainText("a lighthouse")
    window.pause_queue.click()
    qtbot.waitUntil(lambda: window.pause_queue.isHidden() and not window.resume_queue.isHidden(), timeout=5000)
    assert len(window.generate(count=2)) == 2
    qtbot.waitUntil(lambda: window.queue.count() == 2, timeout=5000)
    assert all(" paused: a lighthouse" in window.queue.item(row).text() for row in range(2))
    assert window.timing.text().startswith("Queue paused · 2 waiting")
    assert window.bridge.client.paused
    window.resume_queue.click()
    qtbot.waitUntil(lambda: window.resume_queue.isHidden() and not window.pause_queue.isHidden(), timeout=5000)
    assert not window.bridge.client.paused
    assert all(" queued: a lighthouse" in window.queue.item(row).text() for row in range(2))  # no worker here


def test_queued_jobs_are_removed_several_at_once_and_moved_to_the_top(qtbot, idle_app):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    window = idle_app.window  # no worker: everything asked for stays queued
    removed = []
    window.bridge.failed.connect(lambda message: removed.append(message.job_id) if message.cancelled else None)
    for prompt in ("one", "two", "three", "four", "five"):
        window.prompt.setPlainText(prompt)
        window.generate(count=1)
    queue = window.queue
    qtbot.waitUntil(lambda: queue.count() == 5, timeout=5000)

    def texts() -> list[str]:
        return [queue.item(row).text().split(": ", 1)[1].split(" (seed")[0] for row in range(queue.count())]

    queue.item(3).setSelected(True)
    queue.setCurrentRow(3, queue.selectionModel().SelectionFlag.NoUpdate)
    window.queue_up.click()
    qtbot.waitUntil(lambda: texts() == ["one", "two", "four", "three", "five"], timeout=5000)
    window.queue_up.click()  # the same job again: it stays the current one
    qtbot.waitUntil(lambda: texts() == ["one", "four", "two", "three", "five"], timeout=5000)
    queue.clearSelection()
    for row in (2, 4):
        queue.item(row).setSelected(True)
    window._queued_to(top=True)
    qtbot.waitUntil(lambda: texts() == ["two", "five", "one", "four", "three"], timeout=5000)
    queue.clearSelection()
    for row in (0, 1):
        queue.item(row).setSelected(True)
    queue.setFocus()
    QTest.keyClick(queue, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: texts() == ["one", "four", "three"], timeout=5000)
    window._remove_all_queued()
    qtbot.waitUntil(lambda: queue.count() == 0 and len(removed) == 5, timeout=5000)
    assert len(set(removed)) == 5  # each removal reported once, as any job taken off the queue
