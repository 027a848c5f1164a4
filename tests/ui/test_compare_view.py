"""The Compare view's pictures: zoomed alike about the pointer (the picture's point under it stays), moved with the
right button, fitted again on a double-click, the divider across the part in view."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPixmap, QWheelEvent
from PySide6.QtTest import QTest

from hypersd_desktop.ui.compare_view import MOST_ZOOM, SplitView


def picture(colour: str) -> QPixmap:
    pixmap = QPixmap(400, 300)
    pixmap.fill(QColor(colour))
    return pixmap


def fraction(place, point: QPointF) -> tuple[float, float]:
    return (point.x() - place.x()) / place.width(), (point.y() - place.y()) / place.height()


def wheel(view: SplitView, point: QPointF, notches: int) -> None:
    global_point = view.mapToGlobal(point.toPoint())
    view.wheelEvent(QWheelEvent(point, QPointF(global_point), QPoint(), QPoint(0, 120 * notches),
                                Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                                False))


@pytest.mark.parametrize("side_by_side", [False, True])
def test_the_wheel_zooms_both_pictures_about_the_pointer_and_a_double_click_fits_them(qtbot, side_by_side):
    view = SplitView(picture("red"), picture("blue"))
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.side_by_side = side_by_side
    view.show()
    qtbot.waitExposed(view)
    point = QPointF(view.width() * 0.3, view.height() * 0.4)
    before = view.places()
    wheel(view, point, 2)  # 1.25² times
    after = view.places()
    assert view.zoom == pytest.approx(1.5625)
    assert after[0].width() == pytest.approx(before[0].width() * 1.5625)
    assert fraction(after[0], point) == pytest.approx(fraction(before[0], point))  # the point under it stays
    assert after[1].size().width() == pytest.approx(after[0].size().width())  # both alike
    wheel(view, point, 40)
    assert view.zoom == MOST_ZOOM
    QTest.mouseDClick(view, Qt.MouseButton.LeftButton, pos=point.toPoint())
    assert view.zoom == 1.0 and view.places() == before


def test_a_right_drag_moves_the_zoomed_pictures_and_the_divider_stays_in_view(qtbot):
    view = SplitView(picture("red"), picture("blue"))
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    view.zoom_at(QPointF(400, 300), 4.0)
    place = view.places()[0]
    assert place.width() > view.width()  # larger than the view: the divider is across the part in view
    assert 0 <= view.cut() <= view.width() and view.cut() == pytest.approx(view.width() / 2)
    QTest.mousePress(view, Qt.MouseButton.RightButton, pos=QPoint(400, 300))
    QTest.mouseMove(view, QPoint(350, 280))
    QTest.mouseRelease(view, Qt.MouseButton.RightButton, pos=QPoint(350, 280))
    moved = view.places()[0]
    assert (moved.x() - place.x(), moved.y() - place.y()) == pytest.approx((-50, -20))
    QTest.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(200, 300))  # a click puts the divider there
    assert view.cut() == pytest.approx(200)
    picture_seen = view.grab().toImage()
    assert picture_seen.pixelColor(150, 300).red() > 200 and picture_seen.pixelColor(250, 300).blue() > 200
