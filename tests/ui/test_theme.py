"""The light and dark looks of Settings → Theme, on a platform that does not switch by itself (offscreen, as an
X11 session without a desktop theme)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QToolButton

from hypersd_desktop.ui.banner import Banner
from hypersd_desktop.ui.theme import apply_theme


@pytest.fixture
def app(qapp):
    yield qapp
    apply_theme(qapp, "system")  # the other tests see the platform's look


def lightness(role: QPalette.ColorRole) -> int:
    return QApplication.palette().color(role).lightness()


def test_dark_and_light_change_the_colours_and_system_brings_back_the_platforms(app):
    platform_style = app.style().name()
    platform_window = lightness(QPalette.ColorRole.Window)
    apply_theme(app, "dark")
    assert lightness(QPalette.ColorRole.Window) < 80 and lightness(QPalette.ColorRole.Base) < 80
    assert lightness(QPalette.ColorRole.WindowText) > 200 and lightness(QPalette.ColorRole.Text) > 200
    disabled = QApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text).lightness()
    assert 80 < disabled < 200, "disabled text is dimmed, still readable"
    apply_theme(app, "light")
    assert lightness(QPalette.ColorRole.Window) > 180 and lightness(QPalette.ColorRole.Text) < 80
    apply_theme(app, "system")
    assert app.style().name() == platform_style and lightness(QPalette.ColorRole.Window) == platform_window


def test_a_banners_close_button_shows_on_its_light_box_in_the_dark_look(qtbot, app):
    apply_theme(app, "dark")
    for kind in ("warning", "error"):
        banner = Banner(kind)
        qtbot.addWidget(banner)
        banner.resize(400, 40)
        banner.show_messages(["Something to say."])
        qtbot.waitExposed(banner)
        close = banner.findChild(QToolButton)
        image = banner.grab(close.geometry()).toImage()  # the button as drawn on its box
        dark = sum(image.pixelColor(x, y).lightness() < 128 for x in range(image.width()) for y in range(image.height()))
        assert dark > 5, "the ✕ is drawn in the box's dark text colour, not the palette's light one"
        text = banner.label.grab().toImage()
        assert any(text.pixelColor(x, y).lightness() < 128 for x in range(text.width()) for y in range(text.height()))


def test_the_system_look_leaves_the_platforms_colours_alone(app):
    """At start with "system" (the default), a palette the platform gives (a KDE colour scheme, Windows' dark
    mode) is not replaced by the style's own."""
    platform = QPalette(app.palette())
    platform.setColor(QPalette.ColorRole.Window, "#123456")
    app.setPalette(platform)
    try:
        apply_theme(app, "system")
        assert app.palette().color(QPalette.ColorRole.Window).name() == "#123456"
    finally:
        app.setPalette(QPalette())
