"""The light or dark look chosen in Settings, on every platform.

Qt switches a window between light and dark only where the platform does (Windows, macOS, GNOME and KDE
through their platform themes); an X11 session without a desktop theme ignores the request, so "dark" in
Settings changed nothing there. Where the request is not followed, the app takes Qt's Fusion style with a
palette of the chosen scheme; "system" goes back to the platform's own style and colours.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

SCHEMES = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}
_PLATFORM_STYLE = "hypersd_platform_style"  # the style the app started with, kept on the application object
_FORCED = "hypersd_forced_look"  # whether the app draws the look itself (the platform did not switch)


def apply_theme(app: QApplication, theme: str) -> None:
    """Light, dark, or the system's look ("system", and any other name)."""
    if app.property(_PLATFORM_STYLE) is None:
        app.setProperty(_PLATFORM_STYLE, app.style().name())
    wanted = SCHEMES.get(theme, Qt.ColorScheme.Unknown)
    hints = app.styleHints()
    hints.setColorScheme(wanted)
    if wanted == Qt.ColorScheme.Unknown or hints.colorScheme() == wanted:
        if app.property(_FORCED):  # a fallback was in place: the platform's own style and colours again
            app.setStyle(str(app.property(_PLATFORM_STYLE)))
            app.setPalette(QPalette())  # a palette that sets nothing: the platform's (a KDE colour scheme too)
            app.setProperty(_FORCED, False)
        return
    if app.style().name() != "fusion":
        app.setStyle(QStyleFactory.create("Fusion"))
    app.setPalette(dark_palette() if wanted == Qt.ColorScheme.Dark else app.style().standardPalette())
    app.setProperty(_FORCED, True)


def dark_palette() -> QPalette:
    """Fusion's colours for a dark window: light text on grey, blue selection, disabled text dimmed."""
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#353535", QPalette.ColorRole.WindowText: "#f0f0f0",
        QPalette.ColorRole.Base: "#262626", QPalette.ColorRole.AlternateBase: "#303030",
        QPalette.ColorRole.ToolTipBase: "#353535", QPalette.ColorRole.ToolTipText: "#f0f0f0",
        QPalette.ColorRole.Text: "#f0f0f0", QPalette.ColorRole.PlaceholderText: "#9a9a9a",
        QPalette.ColorRole.Button: "#3c3c3c", QPalette.ColorRole.ButtonText: "#f0f0f0",
        QPalette.ColorRole.BrightText: "#ff6b6b", QPalette.ColorRole.Link: "#5aa9ff",
        QPalette.ColorRole.Highlight: "#2f74c0", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Light: "#505050", QPalette.ColorRole.Midlight: "#454545",
        QPalette.ColorRole.Mid: "#2c2c2c", QPalette.ColorRole.Dark: "#1e1e1e", QPalette.ColorRole.Shadow: "#101010",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor("#505050"))
    return palette
