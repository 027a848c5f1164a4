"""The status bar's word from the engine outside any job: "Optimising … Images keep coming meanwhile."
with a moving bar while that work goes on, then the outcome ("… 26.1 → 9.4 ms per call"), which
stays a while and then goes."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

SHOWN_MS = 30_000  # how long an outcome stays


class EngineNoticeView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("")
        self.busy = QProgressBar(maximumWidth=70, maximumHeight=12, textVisible=False)
        self.busy.setRange(0, 0)
        self.busy.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.busy)
        layout.addWidget(self.label)
        self._clear = QTimer(self, singleShot=True, interval=SHOWN_MS)
        self._clear.timeout.connect(lambda: self.label.setText(""))

    def show_notice(self, notice) -> None:
        """An `EngineNotice`."""
        self.label.setText(notice.text)
        self.label.setToolTip(notice.text)
        self.busy.setVisible(notice.busy)
        if notice.busy:
            self._clear.stop()
        else:
            self._clear.start()
