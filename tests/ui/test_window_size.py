"""The window on small screens: a laptop at 150 % scaling lays out 1280 × 720 less its taskbar, and the
window must fit it with every tab usable; and it opens where and as large as it was closed."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QPushButton, QWidget

from hypersd_desktop.core.settings import load_settings
from tests.ui.conftest import close

LAPTOP = (800, 600)  # fits 1280 × 720 less a taskbar and title bar, with room to spare


def _inside(widget: QWidget, area: QWidget) -> bool:
    """Whether `widget` lies wholly within `area` (its ancestor)."""
    corner = widget.mapTo(area, widget.rect().bottomRight())
    origin = widget.mapTo(area, widget.rect().topLeft())
    return origin.x() >= 0 and origin.y() >= 0 and corner.x() < area.width() and corner.y() < area.height()


def _lines(widgets: list[QWidget], area: QWidget) -> int:
    """How many lines `widgets` take in `area`: tops more than a few pixels apart start another."""
    tops = sorted(widget.mapTo(area, widget.rect().topLeft()).y() for widget in widgets)
    return 1 + sum(1 for above, below in zip(tops, tops[1:]) if below - above > 8)


def test_a_first_start_fits_the_screen(qtbot, installed):
    from hypersd_desktop.app import build_app

    parts = build_app(["test"], start_worker=False)
    try:
        window, room = parts.window, parts.window.screen().availableGeometry()
        assert room.width() < 1280, "the offscreen platform's screen is smaller than the window's first size"
        assert window.width() <= room.width() and window.height() <= room.height()
    finally:
        close(parts)


def test_the_window_fits_a_laptop_screen_with_every_tab(qtbot, idle_app):
    window = idle_app.window
    hint = window.minimumSizeHint()
    assert hint.width() <= LAPTOP[0] and hint.height() <= LAPTOP[1], f"the window needs at least {hint.toTuple()}"
    window.resize(*LAPTOP)
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(50)
        page = window.tabs.currentWidget()
        hidden = [w.text() for w in page.findChildren(QPushButton) if w.isVisible() and not _inside(w, page)]
        assert not hidden, f"{window.tabs.tabText(index)}: buttons out of sight {hidden}"


def test_the_gallerys_filters_and_buttons_wrap_in_a_narrow_window(qtbot, idle_app):
    window, browser = idle_app.window, idle_app.window.browser
    window.tabs.setCurrentWidget(browser)
    window.resize(1400, 700)
    qtbot.wait(50)
    boxes = [box for box in browser.findChildren(QComboBox) if box.isVisible()]
    assert _lines(boxes, browser) == 1, "on a wide screen the filters are one row"
    wide_grid = browser.grid.height()
    window.resize(*LAPTOP)
    qtbot.wait(50)
    boxes = [box for box in browser.findChildren(QComboBox) if box.isVisible()]
    assert _lines(boxes, browser) >= 2, "they wrap onto a second line"
    assert all(_inside(box, browser) for box in boxes) and _inside(browser.search, browser)
    assert browser.search.width() >= 200
    buttons = [browser.open_button, browser.export_button, browser.import_button]
    assert all(_inside(button, browser) for button in buttons)
    assert 0 < browser.grid.height() < wide_grid


def test_the_window_opens_as_it_was_closed(qtbot, idle_app):
    from hypersd_desktop.app import build_app

    window = idle_app.window
    window.resize(777, 611)
    qtbot.wait(20)
    window.close()  # saves the settings, the window's size with them
    assert load_settings().window_geometry
    again = build_app(["test"], start_worker=False)
    try:
        assert again.window.size().toTuple() == (777, 611)
    finally:
        close(again)


def test_the_models_tables_fit_their_width_with_every_column_in_view(qtbot, idle_app):
    window = idle_app.window
    window.tabs.setCurrentWidget(window.models)
    window.resize(*LAPTOP)
    qtbot.wait(50)
    for table in (window.models.catalog_table, window.models.installed_table, window.models.exports_table):
        last = table.columnCount() - 1
        right = table.columnViewportPosition(last) + table.columnWidth(last)
        assert right <= table.viewport().width(), f"{table.horizontalHeaderItem(last).text()} is out of view"
        assert not table.horizontalScrollBar().isVisible()
    catalog = window.models.catalog_table
    status = [catalog.horizontalHeaderItem(c).text() for c in range(catalog.columnCount())].index("Status")
    assert catalog.columnWidth(status) > 20
    long_item = catalog.item(0, [catalog.horizontalHeaderItem(c).text() for c in range(catalog.columnCount())]
                             .index("What it enables"))
    assert long_item.toolTip() == long_item.text(), "the whole text, where the column shortens it"
