"""The drawing canvas under a tablet's pen and the mouse: pressure sets the stroke's width, the pen's eraser end
erases, and a circle under the pointer shows the brush's size without becoming part of the drawing."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QInputDevice, QMouseEvent, QPointingDevice, QTabletEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from hypersd_desktop.ui.sketch_canvas import PRESSURE_FLOOR, SketchCanvas

SIDE = 128  # the drawing, shown at twice its size
BRUSH = 20


@pytest.fixture
def canvas(qtbot):
    canvas = SketchCanvas(SIDE, SIDE)
    canvas.setMinimumSize(2 * SIDE, 2 * SIDE)
    canvas.resize(2 * SIDE, 2 * SIDE)
    canvas.brush_size = BRUSH
    qtbot.addWidget(canvas)
    canvas.show()
    qtbot.waitExposed(canvas)
    return canvas


def pen(kind: QPointingDevice.PointerType) -> QPointingDevice:
    return QPointingDevice("a tablet's pen", 7 if kind == QPointingDevice.PointerType.Pen else 8,
                           QInputDevice.DeviceType.Stylus, kind,
                           QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 2)


def tablet_stroke(canvas, device, points, pressure: float) -> list[bool]:
    """Press, move through and lift at `points` (pixels of the drawing) with `pressure`; whether each event was
    accepted (else Qt would make mouse events of it too)."""
    accepted = []
    kinds = [QEvent.Type.TabletPress] + [QEvent.Type.TabletMove] * (len(points) - 2) + [QEvent.Type.TabletRelease]
    for kind, (x, y) in zip(kinds, points):
        where = QPointF(2 * x, 2 * y)
        buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.TabletRelease else Qt.MouseButton.LeftButton
        event = QTabletEvent(kind, device, where, canvas.mapToGlobal(where), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
                             Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton, buttons)
        QApplication.sendEvent(canvas, event)
        accepted.append(event.isAccepted())
    return accepted


def ink(canvas) -> np.ndarray:
    drawing = canvas.snapshot().convertToFormat(QImage.Format.Format_Grayscale8)
    rows = np.frombuffer(drawing.constBits(), np.uint8).reshape(SIDE, drawing.bytesPerLine())[:, :SIDE]
    return rows < 128


def thickness(mask: np.ndarray, column: int) -> int:
    return int(mask[:, column].sum())


def test_pressure_sets_the_width_of_a_tablet_stroke(canvas):
    strokes = []
    canvas.changed.connect(lambda final: strokes.append(final) if final else None)
    assert all(tablet_stroke(canvas, pen(QPointingDevice.PointerType.Pen), [(10, 30), (60, 30), (110, 30)], 1.0))
    assert all(tablet_stroke(canvas, pen(QPointingDevice.PointerType.Pen), [(10, 90), (60, 90), (110, 90)], 0.0))
    drawn = ink(canvas)
    assert abs(thickness(drawn[:64], 60) - BRUSH) <= 2  # pressed hard: the brush's width
    assert abs(thickness(drawn[64:], 60) - BRUSH * PRESSURE_FLOOR) <= 2  # the lightest touch: a fifth of it
    assert strokes == [True, True]  # one change a stroke: the tablet's events are not drawn again as the mouse's
    canvas.undo()
    assert ink(canvas)[64:].sum() == 0 and ink(canvas)[:64].sum() > 0  # a tablet stroke is undone at once


def test_the_pens_eraser_end_erases_and_the_brush_stays_a_brush(canvas):
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(20, 128))
    QTest.mouseMove(canvas, QPoint(236, 128))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(236, 128))
    assert thickness(ink(canvas), 64) == pytest.approx(BRUSH, abs=2)  # the mouse draws at the brush's size
    tablet_stroke(canvas, pen(QPointingDevice.PointerType.Eraser), [(64, 20), (64, 64), (64, 108)], 1.0)
    assert thickness(ink(canvas), 64) == 0 and thickness(ink(canvas), 20) > 0  # erased where the eraser went
    assert not canvas.erasing
    tablet_stroke(canvas, pen(QPointingDevice.PointerType.Pen), [(64, 20), (64, 64), (64, 108)], 1.0)
    assert thickness(ink(canvas), 64) > 80  # the pen's tip draws again


def test_a_circle_shows_the_brush_where_the_pointer_is_and_stays_off_the_drawing(canvas, qtbot):
    hover = QPointF(128, 128)  # the mouse moved over the canvas, no button held (QTest.mouseMove only moves the cursor)
    QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseMove, hover, canvas.mapToGlobal(hover),
                                               Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                               Qt.KeyboardModifier.NoModifier))
    qtbot.wait(20)
    shown = canvas.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    row = np.frombuffer(shown.constBits(), np.uint8).reshape(shown.height(), shown.bytesPerLine())[128, :shown.width()]
    dark = np.nonzero(row < 200)[0]
    assert len(dark) and {int(dark.min()), int(dark.max())} <= set(range(128 - BRUSH - 2, 128 - BRUSH + 3)) | set(
        range(128 + BRUSH - 2, 128 + BRUSH + 3))  # a ring of the brush's radius on screen (the drawing at 2×)
    assert ink(canvas).sum() == 0 and canvas.is_blank()
    canvas.brush_size = 8
    qtbot.wait(20)
    shown = canvas.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    row = np.frombuffer(shown.constBits(), np.uint8).reshape(shown.height(), shown.bytesPerLine())[128, :shown.width()]
    assert int(np.nonzero(row < 200)[0].min()) in range(128 - 8 - 2, 128 - 8 + 3)  # the circle follows the size
    QApplication.sendEvent(canvas, QEvent(QEvent.Type.Leave))
    qtbot.wait(20)
    shown = canvas.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    row = np.frombuffer(shown.constBits(), np.uint8).reshape(shown.height(), shown.bytesPerLine())[128, :shown.width()]
    assert (row < 200).sum() == 0  # the pointer left: no circle


def test_the_mask_painter_tints_each_stroke_and_the_moving_circle_does_not_tint_again(qtbot, monkeypatch):
    """Over a phone photo the tint takes tens of milliseconds: made again when the mask changes, not as the
    pointer moves."""
    from hypersd_desktop.ui import sketch_canvas

    canvas = SketchCanvas(SIDE, SIDE, mask=True)
    canvas.resize(2 * SIDE, 2 * SIDE)
    qtbot.addWidget(canvas)
    canvas.show()
    qtbot.waitExposed(canvas)
    picture = QImage(SIDE, SIDE, QImage.Format.Format_RGB32)
    picture.fill(Qt.GlobalColor.gray)
    canvas.set_trace(picture)
    made = []
    tint = sketch_canvas.tinted
    monkeypatch.setattr(sketch_canvas, "tinted", lambda *args: made.append(1) or tint(*args))

    def red_at(x: int, y: int) -> bool:
        colour = canvas.grab().toImage().pixelColor(x, y)
        return colour.red() > colour.green() + 40

    assert not red_at(128, 128)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(40, 128))
    QTest.mouseMove(canvas, QPoint(216, 128))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(216, 128))
    assert red_at(128, 128) and not red_at(128, 40)  # the stroke is tinted
    before = len(made)
    for x in range(20, 240, 10):
        hover = QPointF(x, 60)
        QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseMove, hover, canvas.mapToGlobal(hover),
                                                   Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                                   Qt.KeyboardModifier.NoModifier))
        canvas.grab()  # painted, as the screen would be
    assert len(made) == before  # the circle moved 22 times over an unchanged mask
    canvas.undo()
    assert not red_at(128, 128)  # and an undone stroke is gone from the view
