"""The banner that shows the window's warnings and errors."""

from __future__ import annotations

from hypersd_desktop.ui.banner import Banner
from tests.ui.conftest import close


def test_the_banner_marks_its_kind_with_the_styles_icon_and_lists_several_messages(qtbot):
    for kind in ("warning", "error"):
        banner = Banner(kind)
        qtbot.addWidget(banner)
        banner.show_messages(["The model is missing."])
        assert banner.isVisibleTo(None) and banner.text() == "The model is missing."
        assert not banner.icon.pixmap().isNull(), "an icon every platform draws, not an emoji a font may lack"
        banner.show_messages(["First.", "Second."])
        assert banner.text() == "• First.\n• Second."
        banner.show_messages([])
        assert banner.isHidden() and banner.text() == ""


def test_generate_without_a_model_says_where_to_get_one(qtbot, app_home):
    from hypersd_desktop.app import build_app

    parts = build_app(["test"], start_worker=False)
    try:
        assert parts.first_run is not None, "the set-up dialog offers the downloads on first start"
        parts.window.show()
        parts.window.prompt.setPlainText("a lighthouse")
        parts.window.generate()
        message = parts.window.errors.text()
        assert "No base model is installed" in message and "Models tab (Ctrl+4)" in message
        assert "File → Import models…" in message
        tabs = parts.window.tabs
        assert tabs.tabText(3).replace("&", "") == "Models"
        tabs.setCurrentWidget(parts.window.draw)
        draw_note = parts.window.draw.notes.text()
        assert draw_note.startswith("Drawing needs a base model and a scribble ControlNet")
        assert "\"ControlNet Scribble (SD1.5)\"" in draw_note
    finally:
        close(parts)
