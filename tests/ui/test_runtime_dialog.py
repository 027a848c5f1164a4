"""File → Compute runtime…: install with progress, cancel, remove; opened by itself when the packaged app has
no runtime, and updating by itself a runtime made for another version of the app."""

from __future__ import annotations

import subprocess
import sys

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.runtime.install import RuntimeInstaller, Sources, status
from hypersd_desktop.runtime.locks import load_lock
from hypersd_desktop.ui.runtime_dialog import RuntimeDialog

WAIT = 120_000


def checked(python) -> str:
    subprocess.run([str(python), "-I", "-c", "import big_part, small_a, small_b"], check=True)
    return "CPython (test)"


def dialog_for(qtbot, kit, stops: list) -> RuntimeDialog:
    sources = Sources(python=sys.executable, find_links=(kit["wheels"],), offline=True, app_wheel=kit["app"])
    dialog = RuntimeDialog(AppPaths.default(), stop_worker=lambda: stops.append(1), sources=sources, verify=checked)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "This machine:" in dialog.hardware.text(), timeout=30_000)  # the recommendation is made
    return dialog


def test_install_shows_progress_then_the_installed_runtime_and_remove_takes_it_away(qtbot, kit):
    stops = []
    dialog = dialog_for(qtbot, kit, stops)
    assert "No compute runtime is installed" in dialog.state.text()
    shipped = load_lock("cpu")  # what the dialog offers comes from the shipped locks; the kit's lock is installed
    assert dialog.variant.currentData() == "cpu"
    assert f"{shipped.download_bytes / 2**20:,.0f} MiB to download — recommended" in dialog.variant.currentText()
    assert "This machine:" in dialog.hardware.text() and dialog.install_button.text() == "Install"
    values = []
    dialog.bar.valueChanged.connect(values.append)
    with qtbot.waitSignal(dialog.runtime_changed, timeout=WAIT):
        dialog.install_button.click()
        assert dialog.cancel_button.isVisibleTo(dialog) and not dialog.install_button.isEnabled()
    assert stops == [1], "the worker is stopped before its runtime changes"
    assert values and values == sorted(values) and values[-1] == 1000
    assert dialog.message.text().startswith("Done.") and "cpu runtime is installed" in dialog.state.text()
    assert dialog.install_button.text() == "Installed" and not dialog.install_button.isEnabled()
    assert dialog.repair_button.isEnabled()
    with qtbot.waitSignal(dialog.runtime_changed, timeout=WAIT):
        dialog.remove()
    assert status(AppPaths.default()).state == "none" and "No compute runtime" in dialog.state.text()


def test_cancel_stops_the_install_and_says_what_is_kept(qtbot, kit):
    dialog = dialog_for(qtbot, kit, [])
    task = dialog.install("cpu")
    task.progress.connect(lambda progress: task.cancel())
    qtbot.waitUntil(lambda: task.isFinished(), timeout=WAIT)
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Stopped:"), timeout=WAIT)  # said on the GUI thread
    assert "installing again resumes" in dialog.message.text()
    assert status(AppPaths.default()).state == "none" and dialog.install_button.isEnabled()


def test_the_packaged_app_without_a_runtime_opens_the_dialog(qtbot, kit, monkeypatch, installed):
    from hypersd_desktop.app import build_app

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    parts = build_app(["test"], start_worker=False)
    qtbot.addWidget(parts.window)
    assert isinstance(parts.runtime, RuntimeDialog) and parts.runtime.task is None
    parts.runtime.detection.wait()


def test_a_runtime_for_another_app_version_is_updated_at_start(qtbot, kit, tmp_path, installed, monkeypatch):
    """The wiring: the worker's real handshake in a real runtime is the slow test's (tests/test_installer.py);
    these small wheels hold no worker, so the check here imports them instead."""
    from types import SimpleNamespace

    from runtime_kit import make_wheel

    from hypersd_desktop.app import build_app
    from hypersd_desktop.runtime import install

    monkeypatch.setattr(install, "handshake", lambda python, home=None: SimpleNamespace(python=checked(python)))
    old = make_wheel(tmp_path / "old", "hypersd-desktop", "0.0.9")
    RuntimeInstaller(AppPaths.default(), Sources(python=sys.executable, find_links=(kit["wheels"],), offline=True,
                                                 app_wheel=old), verify=checked).install("cpu")
    assert status(AppPaths.default()).state == "outdated"
    parts = build_app(["test"], start_worker=False)
    qtbot.addWidget(parts.window)
    task = parts.runtime.task
    assert task is not None and "Updating the runtime" in parts.runtime.message.text()
    qtbot.waitUntil(task.isFinished, timeout=WAIT)
    qtbot.waitUntil(lambda: parts.runtime.message.text().startswith("Done."), timeout=WAIT)  # said on the GUI thread
    assert status(AppPaths.default()).state == "ready"
    parts.runtime.detection.wait()
    parts.bridge.shutdown()
