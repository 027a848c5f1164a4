"""Help → About names the app's version, the worker protocol, the compute runtime and the logs."""

from __future__ import annotations

from hypersd_desktop import __version__
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.worker.protocol import PROTOCOL_VERSION


def test_about_names_the_versions_and_the_log_folder(idle_app):
    window = idle_app.window
    menus = {action.text(): action.menu() for action in window.menuBar().actions()}
    assert window.about_action in menus["&Help"].actions()
    text = window.about_text()
    assert f"HyperSD Desktop {__version__}" in text and f"Worker protocol {PROTOCOL_VERSION}" in text
    assert "Compute runtime: not running" in text  # no worker in this window
    assert str(AppPaths.default().data) in text
