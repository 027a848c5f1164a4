"""Composition root: builds the services, the QApplication and the main window."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QDialog

from hypersd_desktop import __version__
from hypersd_desktop.core.logs import setup_logging
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.resources import resources_dir
from hypersd_desktop.core.settings import load_settings, save_settings, with_dialog_choices
from hypersd_desktop.core.vocab import ModelKind
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.runtime.install import runtime_worker_command, status as runtime_status
from hypersd_desktop.ui.first_run import FirstRunDialog
from hypersd_desktop.ui.main_window import MainWindow
from hypersd_desktop.ui.runtime_dialog import RuntimeDialog
from hypersd_desktop.ui.settings_dialog import SettingsDialog
from hypersd_desktop.ui.single_instance import ACTIVATION_TOKEN_ENV, SingleInstance
from hypersd_desktop.ui.theme import apply_theme
from hypersd_desktop.worker.bridge import WorkerBridge
from hypersd_desktop.worker.client import worker_command

log = logging.getLogger("hypersd")


class _ErrorRelay(QObject):
    """Carries uncaught exceptions from any thread to the window's error banner."""

    error = Signal(str)


@dataclass
class AppParts:
    app: QApplication
    window: MainWindow
    bridge: WorkerBridge
    library: ModelLibrary
    first_run: FirstRunDialog | None
    runtime: RuntimeDialog | None  # opened at start: no runtime yet (packaged app), or one to update
    error_relay: QObject  # carries uncaught exceptions from any thread to the window


def install_error_hooks(window: MainWindow, log_path: Path) -> _ErrorRelay:
    """Uncaught exceptions on any thread: the traceback to `log_path`, one line in the window's banner."""
    relay = _ErrorRelay(window)
    relay.error.connect(lambda text: window.errors.show_messages([text]), Qt.ConnectionType.QueuedConnection)

    def report(kind, value, tb) -> None:
        log.error("uncaught exception", exc_info=(kind, value, tb))
        relay.error.emit(f"Unexpected error: {''.join(traceback.format_exception_only(kind, value)).strip()}. "
                         f"This is a bug in HyperSD Desktop; please report it with the log, {log_path}.")

    sys.excepthook = report
    threading.excepthook = lambda hook: report(hook.exc_type, hook.exc_value, hook.exc_traceback)
    return relay


def freeze_startup_objects() -> None:
    """Keep what exists after start-up (modules, widgets, wrappers) out of the garbage collector's
    full passes: those passes scan every tracked object and stalled the GUI 40-90 ms while the
    gallery scrolled (bench/gallery_scroll.py)."""
    gc.collect()
    gc.freeze()


def choose_worker(settings, paths: AppPaths) -> list[str] | None:
    """The worker program: the interpreter chosen in Settings, else the installed compute runtime,
    else (from a source checkout) this interpreter; None for a packaged app with no runtime yet."""
    if settings.worker_python:
        return worker_command(settings.worker_python)
    return runtime_worker_command(paths) or worker_command()


def build_app(argv: list[str] | None = None, home: str | None = None, start_worker: bool = True) -> AppParts:
    """Everything the window needs, wired; `home` points the worker at the same HYPERSD_HOME (tests)."""
    app = QApplication.instance() or QApplication(argv or sys.argv)
    app.setApplicationName("HyperSD Desktop")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("hypersd-desktop")  # the .desktop file of the Linux packages: its icon in the dock
    app.setWindowIcon(QIcon(str(resources_dir() / "hypersd-desktop.png")))
    paths = AppPaths.default().ensure()
    log_path = setup_logging("app", paths)
    settings = load_settings(paths)
    apply_theme(app, settings.theme)
    library = ModelLibrary(paths, civitai_token=settings.civitai_token or None)
    gallery = Gallery(paths)
    command = choose_worker(settings, paths)
    bridge = WorkerBridge(home=home, command=command)
    bridge.client.previews = settings.previews
    bridge.client.engine_choice = (settings.backend, settings.device)
    window = MainWindow(library, bridge, settings, gallery)
    error_relay = install_error_hooks(window, log_path)
    notices = [gallery.notice, library.registry.notice and f"{library.registry.notice} The model files are "
               "untouched: import them again from the Models tab.", window.session.notice]
    window.say_at_start([notice for notice in notices if notice])

    def open_settings() -> None:
        ready = bridge.client.ready
        dialog = SettingsDialog(window.settings, window, tuple(b.name for b in ready.backends) if ready else ("torch",))
        if dialog.exec():
            previous = window.settings
            window.settings = with_dialog_choices(dialog.settings(), paths)
            bridge.client.engine_choice = (window.settings.backend, window.settings.device)
            library.downloader.civitai_token = window.settings.civitai_token or None
            if window.settings.worker_python != previous.worker_python:
                bridge.restart(choose_worker(window.settings, paths))
            if problem := save_settings(window.settings, paths):
                window.errors.show_messages([problem + " They hold until the app closes."])
            bridge.client.previews = window.settings.previews
            apply_theme(app, window.settings.theme)
            window.reload_models()

    window.settings_action.triggered.connect(open_settings)

    def runtime_dialog() -> RuntimeDialog:
        dialog = RuntimeDialog(paths, window, stop_worker=lambda: bridge.client.shutdown())
        dialog.runtime_changed.connect(lambda: bridge.restart(choose_worker(window.settings, paths)))
        return dialog

    window.runtime_action.triggered.connect(lambda: runtime_dialog().open())
    runtime = None
    if not settings.worker_python and runtime_status(paths).state == "outdated":
        runtime = runtime_dialog()  # made for another version of the app: brought in line, then the worker starts
        runtime.update_runtime()
        start_worker = False
    elif command is None:
        runtime = runtime_dialog()  # first start of the packaged app: what to install, and its size
    app.aboutToQuit.connect(bridge.shutdown)
    first_run = None
    if not library.registry.list(kind=ModelKind.BASE):
        first_run = FirstRunDialog(library, window)
        bridge.ready.connect(lambda message: first_run.set_hardware(message.devices))
        bridge.unavailable.connect(lambda _message: first_run.hardware_unknown())
        first_run.accepted.connect(window.reload_models)
    if start_worker:
        bridge.start()
    freeze_startup_objects()
    return AppParts(app, window, bridge, library, first_run, runtime, error_relay)


QUIT_WHEN_SHOWN_ENV = "HYPERSD_QUIT_WHEN_SHOWN"  # bench/start_time.py: quit once the window takes input


class _FileOpenEvents(QObject):
    """macOS hands files opened with the app (Finder's Open With, a drop on the Dock icon) to the running
    application as events, not arguments."""

    def __init__(self, opened, parent: QObject) -> None:
        super().__init__(parent)
        self._opened = opened

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.FileOpen and event.file():
            self._opened([event.file()])
            return True
        return False


def come_forward(window: MainWindow, files: list[str], activation_token: str = "") -> None:
    """The window to the front (restored if minimised), then `files` opened as if dropped on it. `activation_token`:
    the one a Wayland launcher gave the start that asked, without which the compositor keeps the focus elsewhere."""
    if activation_token:
        os.environ[ACTIVATION_TOKEN_ENV] = activation_token
    if window.isMinimized():
        window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.show()
    window.raise_()
    window.activateWindow()
    if files:
        QTimer.singleShot(0, window, lambda: open_when_answered(window, files))


def open_when_answered(window: MainWindow, files: list[str]) -> None:
    """`files` opened as if dropped on the window, once no dialog waits for an answer (the first start's model
    set-up, the compute runtime's, the settings): their questions would otherwise cover each other."""
    dialog = QApplication.activeModalWidget()
    if isinstance(dialog, QDialog) and dialog.isVisible():
        dialog.finished.connect(lambda _result: QTimer.singleShot(0, window, lambda: open_when_answered(window, files)),
                                Qt.ConnectionType.SingleShotConnection)
        return
    window.open_dropped([Path(f) for f in files])


def _let_the_running_window_come_forward() -> None:
    """Windows gives the foreground only to the process the user just started; this one passes it on."""
    if sys.platform == "win32":
        import ctypes

        ctypes.windll.user32.AllowSetForegroundWindow(-1)  # ASFW_ANY


def run_app(argv: list[str] | None = None, files: Sequence[str] = ()) -> int:
    """The window; `files` open in it as if dropped on it. With a window already open on the same data folder,
    `files` go to that one, which comes to the front, and this start ends."""
    app = QApplication.instance() or QApplication(argv or sys.argv)
    files = [str(Path(f).resolve()) for f in files]
    instance = SingleInstance(AppPaths.default().data)
    if not instance.claim():
        _let_the_running_window_come_forward()
        if instance.forward(files):
            print("HyperSD Desktop is already open: its window was brought to the front"
                  f"{' with the files given' if files else ''}.", file=sys.stderr)
            return 0
        print("HyperSD Desktop seems to be open already but its window does not answer; opening another.",
              file=sys.stderr)
    parts = build_app(argv)
    instance.setParent(parts.window)
    app.aboutToQuit.connect(instance.release)  # not left to a stale-lock check, which a reused process id could fool
    instance.files_received.connect(lambda received, token: come_forward(parts.window, received, token))
    if sys.platform == "darwin":  # a filter on the application sees every event: only where it is needed
        app.installEventFilter(_FileOpenEvents(lambda opened: come_forward(parts.window, opened), parts.window))
    parts.window.show()
    if parts.runtime is not None:
        parts.runtime.open()
    if parts.first_run is not None and parts.runtime is not None:
        parts.runtime.finished.connect(parts.first_run.open)  # one dialog at a time: the runtime first
    elif parts.first_run is not None:
        parts.first_run.open()
    if files:
        QTimer.singleShot(0, parts.window, lambda: open_when_answered(parts.window, files))
    if os.environ.get(QUIT_WHEN_SHOWN_ENV):
        def shown() -> None:  # runs once the event loop has drawn the window
            print("hypersd-desktop: window shown", flush=True)
            parts.app.quit()
        QTimer.singleShot(0, shown)
    return parts.app.exec()
