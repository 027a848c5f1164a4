"""One window per data folder: a second start (a double-click while the first loads, Open With from a file
manager) hands its files to the open window and ends; a window whose process died leaves nothing that keeps
the next start from opening one. File → Open an image does what a drop does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QKeySequence

from hypersd_desktop.cli import opened_files
from hypersd_desktop.ui.single_instance import SingleInstance
from ui_helpers import answer_next_dialog

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "gallery" / "corpus"
A1111_IMAGE = CORPUS / "sd-parsers" / "automatic1111_cropped.png"

# A start of its own: claims the window for DATA, prints whether it has it, and holds it until killed.
HOLDER = """
import sys, time
from pathlib import Path
from PySide6.QtCore import QCoreApplication
from hypersd_desktop.ui.single_instance import SingleInstance
app = QCoreApplication([])
instance = SingleInstance(Path(sys.argv[1]))
print("claimed" if instance.claim() else "taken", flush=True)
time.sleep(60)
"""


def start(*args: str, **env: str) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_second_start_hands_its_files_to_the_window_that_has_the_data_folder(qtbot, app_home):
    from hypersd_desktop.core.paths import AppPaths

    first = SingleInstance(AppPaths.default().data)
    assert first.claim()
    with qtbot.waitSignal(first.files_received, timeout=30_000) as received:
        second = start("main.py", str(A1111_IMAGE.relative_to(ROOT)),  # as a file manager's Open With starts it
                       XDG_ACTIVATION_TOKEN="token-from-the-launcher")
    _out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert "already open: its window was brought to the front with the files given" in err
    assert received.args[0] == [str(A1111_IMAGE)], "absolute: the window has another working folder"
    assert received.args[1] == "token-from-the-launcher", "for the window to take the focus on Wayland"

    with qtbot.waitSignal(first.files_received, timeout=30_000) as received:
        again = start("main.py", XDG_ACTIVATION_TOKEN="")  # a double-click on the icon while the window is open
    assert again.wait(timeout=30) == 0
    assert received.args == [[], ""]


def test_a_window_whose_process_died_does_not_keep_the_next_start_from_having_one(qtbot, tmp_path):
    holder = start("-c", HOLDER, str(tmp_path))
    assert holder.stdout.readline().strip() == "claimed"
    assert not SingleInstance(tmp_path).claim(), "held by a live process"
    holder.send_signal(signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
    holder.wait(timeout=10)
    instance = SingleInstance(tmp_path)
    assert instance.claim(), "its lock is stale once its process is gone"
    with qtbot.waitSignal(instance.files_received, timeout=10_000) as received:
        late = start("-c", HOLDER.replace('print("claimed" if instance.claim() else "taken", flush=True)',
                                          'print(instance.claim() or instance.forward(["x"]), flush=True)'),
                     str(tmp_path))
        assert late.stdout.readline().strip() == "True"
    late.kill()
    assert received.args[0] == ["x"], "and it listens where the dead one did"
    instance.release()  # the window closed
    assert SingleInstance(tmp_path).claim(), "the next start has the window"


def test_files_handed_to_the_window_bring_it_forward_and_open_as_if_dropped(qtbot, idle_app, monkeypatch):
    from hypersd_desktop.app import come_forward

    monkeypatch.delenv("XDG_ACTIVATION_TOKEN", raising=False)  # and restored after

    window = idle_app.window
    window.showMinimized()
    answer_next_dialog(qtbot, "Reuse its settings")
    come_forward(window, [str(A1111_IMAGE)], "token-from-the-launcher")
    assert not window.isMinimized()
    assert os.environ["XDG_ACTIVATION_TOKEN"] == "token-from-the-launcher", "where Qt's Wayland plugin reads it"
    qtbot.waitUntil(lambda: window.prompt.toPlainText().startswith("photo of a duck"), timeout=5000)


@pytest.mark.parametrize("arguments, files", [
    ([str(A1111_IMAGE)], [str(A1111_IMAGE)]),
    ([str(A1111_IMAGE), str(CORPUS)], [str(A1111_IMAGE), str(CORPUS)]),  # a models folder goes to the library
    (["-psn_0_1234", str(A1111_IMAGE)], [str(A1111_IMAGE)]),  # older macOS adds a process serial number
    ([], None), (["gallery", "list"], None), (["--version"], None),
    (["no-such-file.png"], None),  # left to the command line's error: not an image to open
])
def test_files_instead_of_a_command_open_in_the_window(arguments, files):
    assert opened_files(arguments) == files


def test_file_open_an_image_reuses_it_as_a_drop_would(qtbot, idle_app, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    window = idle_app.window
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",  # the platform's dialog, answered as a person would
                        lambda *args: (asked.append(args[3]), ([str(A1111_IMAGE)], ""))[1])
    answer_next_dialog(qtbot, "Reuse its settings")
    window.open_action.trigger()
    qtbot.waitUntil(lambda: window.prompt.toPlainText().startswith("photo of a duck"), timeout=5000)
    assert "*.png" in asked[0] and "*.heic" in asked[0]
    assert window.open_action.shortcut().matches(QKeySequence(QKeySequence.StandardKey.Open)) == \
        QKeySequence.SequenceMatch.ExactMatch


def test_files_wait_for_a_dialog_that_is_open_to_be_answered(qtbot, idle_app):
    """The first start's model set-up (or the settings) open when an image comes: its question comes after."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDialog

    from hypersd_desktop.app import come_forward

    window = idle_app.window
    setup = QDialog(window)
    setup.open()
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is setup, timeout=5000)
    over_it: list[str] = []

    def look() -> None:  # a question over the set-up is closed, so that the test goes on to fail
        shown = QApplication.activeModalWidget()
        if shown is not setup:
            over_it.append(shown.windowTitle())
            shown.reject()
    QTimer.singleShot(300, look)
    come_forward(window, [str(A1111_IMAGE)])
    qtbot.wait(500)
    assert over_it == [], "not a second question over it"
    answer_next_dialog(qtbot, "Reuse its settings")
    setup.reject()
    qtbot.waitUntil(lambda: window.prompt.toPlainText().startswith("photo of a duck"), timeout=5000)


def test_a_folder_of_images_dropped_or_opened_goes_to_the_gallery(qtbot, idle_app, tmp_path):
    import shutil

    from hypersd_desktop.app import come_forward

    window, browser = idle_app.window, idle_app.window.browser
    outputs = tmp_path / "outputs"
    shutil.copytree(CORPUS / "sd-parsers", outputs / "sd-parsers")  # images and no weights: an outputs folder
    images = [p for p in outputs.rglob("*") if p.suffix in (".png", ".jpg")]
    come_forward(window, [str(outputs)])
    qtbot.waitUntil(lambda: browser.model.count() == len(images), timeout=30_000)
    assert window.tabs.currentWidget() is browser, "not the Models tab, importing no model"
