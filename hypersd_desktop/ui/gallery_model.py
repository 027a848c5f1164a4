"""The gallery grid's data: records fetched a page at a time, thumbnails decoded off the GUI thread.

`GalleryModel` holds only the pages the view has scrolled to (Qt asks for more through
`canFetchMore`/`fetchMore`), so a 100,000-image gallery costs what the visible part costs.
`ThumbnailLoader` makes and decodes thumbnails on background threads, newest request first, and
forgets requests the view has scrolled past, so fast scrolling never queues up stale work.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QMimeData, QModelIndex, QObject, QRect, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.store import ImageQuery, ImageRecord
from hypersd_desktop.gallery.thumbnails import Thumbnails

PAGE = 300
RecordRole = Qt.ItemDataRole.UserRole
CELL = 168  # logical pixels of one grid cell
THUMB = 152  # logical pixels of the thumbnail inside it


class ThumbnailLoader(QObject):
    """`request(id, path)` → `loaded(id, QImage)` later, on the GUI thread. A null image: unreadable."""

    loaded = Signal(int, QImage)

    def __init__(self, thumbnails: Thumbnails, workers: int = 2, keep: int = 400) -> None:
        super().__init__()
        self.thumbnails = thumbnails
        self.keep = keep
        self._pending: deque[tuple[int, str]] = deque()
        self._queued: set[int] = set()
        self._condition = threading.Condition()
        self._closing = False
        self._threads = [threading.Thread(target=self._work, name=f"thumbnail-{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def request(self, image_id: int, path: str) -> None:
        with self._condition:
            if image_id in self._queued:
                return
            self._pending.append((image_id, path))
            self._queued.add(image_id)
            while len(self._pending) > self.keep:  # scrolled past: not worth making now
                old, _ = self._pending.popleft()
                self._queued.discard(old)
            self._condition.notify()

    def close(self) -> None:
        with self._condition:
            self._closing = True
            self._pending.clear()
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(5)

    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._closing:
                    self._condition.wait()
                if self._closing:
                    return
                image_id, path = self._pending.pop()  # the newest request is what is on screen now
            try:
                image = QImage(str(self.thumbnails.make(Path(path))))
            except (OSError, ValueError, SyntaxError):
                image = QImage()
            with self._condition:
                self._queued.discard(image_id)
                if self._closing:
                    return
            self.loaded.emit(image_id, image)


class GalleryModel(QAbstractListModel):
    """Records of the current query, newest first, fetched `PAGE` at a time as the view scrolls."""

    counted = Signal(int)  # total matches of the current query

    def __init__(self, gallery: Gallery, device_pixel_ratio: float = 1.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.query = ImageQuery()
        self.records: list[ImageRecord] = []
        self._rows: dict[int, int] = {}
        self._cursor: tuple[float, int] | None = None
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._broken: set[int] = set()
        self.cache_limit = 2500
        self.device_pixel_ratio = device_pixel_ratio
        # Thumbnails are made at the pixel size the screen shows, so HiDPI screens get sharp ones.
        size = max(256, 64 * math.ceil(THUMB * device_pixel_ratio / 64))
        self.loader = ThumbnailLoader(Thumbnails(gallery.paths.cache / "thumbnails", size=size))
        self.loader.loaded.connect(self._thumbnail_loaded)

    def close(self) -> None:
        self.loader.close()

    # -- Qt model API ------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.records)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.records):
            return None
        record = self.records[index.row()]
        if role == RecordRole:
            return record
        if role == Qt.ItemDataRole.DecorationRole:
            return self.pixmap(record)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{record.prompt[:200] or Path(record.path).name}\nseed {record.seed} · {record.model_name or ''}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return record.prompt or Path(record.path).name
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt API
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:  # noqa: N802 - Qt API
        """Dragged images are their files, so any application that takes files takes them."""
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(self.records[i.row()].path) for i in indexes if i.isValid()])
        return mime

    def canFetchMore(self, parent: QModelIndex = QModelIndex()) -> bool:  # noqa: N802 - Qt API
        return not parent.isValid() and self._cursor is not None

    def fetchMore(self, parent: QModelIndex = QModelIndex()) -> None:  # noqa: N802 - Qt API
        if parent.isValid() or self._cursor is None:
            return
        page = self.gallery.store.query(self.query, PAGE, self._cursor)
        self._append(page.images, page.cursor)

    # -- queries -----------------------------------------------------------------------------

    def set_query(self, query: ImageQuery) -> None:
        """Show the first page of `query` (more pages follow as the view scrolls)."""
        self.beginResetModel()
        self.query = query
        self.records, self._rows, self._cursor = [], {}, None
        page = self.gallery.store.query(query, PAGE)
        self.records = list(page.images)
        self._rows = {record.id: row for row, record in enumerate(self.records)}
        self._cursor = page.cursor
        self.endResetModel()
        self.counted.emit(self.gallery.store.count(query))

    def refresh(self) -> None:
        self.set_query(self.query)

    def add_newest(self) -> int:
        """Insert at the top the images that arrived since the newest one shown; returns how many."""
        if self.query.oldest_first:
            if self._cursor is None:  # at the end already: the new ones belong after the last row
                self.refresh()
            return 0
        if not self.records:
            self.refresh()
            return len(self.records)
        first = self.records[0]
        fresh = self.gallery.store.newer_than(self.query, first.created, first.id)
        if fresh:
            self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
            self.records[:0] = fresh
            self._rows = {record.id: row for row, record in enumerate(self.records)}
            self.endInsertRows()
            self.counted.emit(self.gallery.store.count(self.query))
        return len(fresh)

    def _append(self, images: list[ImageRecord], cursor: tuple[float, int] | None) -> None:
        self._cursor = cursor
        if not images:
            return
        start = len(self.records)
        self.beginInsertRows(QModelIndex(), start, start + len(images) - 1)
        self.records.extend(images)
        for row, record in enumerate(images, start=start):
            self._rows[record.id] = row
        self.endInsertRows()

    # -- single records ----------------------------------------------------------------------

    def row_of(self, image_id: int) -> int | None:
        return self._rows.get(image_id)

    def record(self, row: int) -> ImageRecord | None:
        return self.records[row] if 0 <= row < len(self.records) else None

    def reload_record(self, image_id: int) -> ImageRecord | None:
        """Re-read one image (after a rating or tag change) and repaint it; returns the new record."""
        row = self._rows.get(image_id)
        record = self.gallery.store.get(image_id)
        if row is not None and record is not None:
            self.records[row] = record
            index = self.index(row)
            self.dataChanged.emit(index, index)
        return record

    def remove_ids(self, ids: list[int]) -> None:
        """Take rows out (deleted images) without refetching the pages around them."""
        for row in sorted((self._rows[i] for i in ids if i in self._rows), reverse=True):
            self.beginRemoveRows(QModelIndex(), row, row)
            del self.records[row]
            self.endRemoveRows()
        self._rows = {record.id: row for row, record in enumerate(self.records)}
        self.counted.emit(self.gallery.store.count(self.query))

    # -- thumbnails --------------------------------------------------------------------------

    def pixmap(self, record: ImageRecord) -> QPixmap | None:
        pixmap = self._pixmaps.get(record.id)
        if pixmap is not None:
            self._pixmaps.move_to_end(record.id)
            return pixmap
        if record.id not in self._broken:
            self.loader.request(record.id, record.path)
        return None

    def is_broken(self, image_id: int) -> bool:
        return image_id in self._broken

    def _thumbnail_loaded(self, image_id: int, image: QImage) -> None:
        if image.isNull():
            self._broken.add(image_id)
        else:
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(self.device_pixel_ratio)
            self._pixmaps[image_id] = pixmap
            while len(self._pixmaps) > self.cache_limit:
                self._pixmaps.popitem(last=False)
        row = self._rows.get(image_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ThumbnailDelegate(QStyledItemDelegate):
    """A thumbnail centred in its cell, with the favourite star and the rating over it."""

    def sizeHint(self, option, index) -> QSize:  # noqa: N802 - Qt API
        return QSize(CELL, CELL)

    def paint(self, painter: QPainter, option, index) -> None:
        record: ImageRecord | None = index.data(RecordRole)
        if record is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        cell = option.rect
        palette = option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(cell, palette.highlight())
        box = QRect(0, 0, THUMB, THUMB)
        box.moveCenter(cell.center())
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is not None and not pixmap.isNull():
            size = pixmap.deviceIndependentSize().toSize().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(box, palette.alternateBase())
            broken = index.model().is_broken(record.id) if hasattr(index.model(), "is_broken") else False
            painter.setPen(palette.placeholderText().color())
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "file missing" if broken else "")
        badges = ("★ " if record.favourite else "") + ("●" * record.rating)
        if badges:
            painter.setPen(QColor("#ffd54a"))
            font = painter.font()
            font.setBold(True)
            painter.setFont(font)
            painter.fillRect(QRect(box.left(), box.top(), 14 + 9 * len(badges), 18), QColor(0, 0, 0, 140))
            painter.drawText(QRect(box.left() + 4, box.top(), 200, 18), Qt.AlignmentFlag.AlignVCenter, badges)
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(palette.highlight().color())
            painter.drawRect(cell.adjusted(1, 1, -2, -2))
        painter.restore()
