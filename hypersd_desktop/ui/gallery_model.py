"""The gallery grid's data: records fetched a page at a time, thumbnails decoded off the GUI thread.

`GalleryModel` is a table of `columns` cells a row over the images in order (image k is at row
k // columns, column k % columns), shown by a `QTableView` whose rows all have one height: the
view lays out nothing per image, so 100,000 images cost what 300 do (a wrapping `QListView`
re-lays out every item whenever rows are added: 170 ms at 100,000).

A new query shows its first page at once; the ids of all its matches are read on a background
thread (100 ms at 100,000) and then the grid and its scroll bar cover the whole result. The
records themselves are fetched a page at a time when a cell of that page is first painted, and
only the pages in use are kept. `ThumbnailLoader` makes, decodes and scales thumbnails on
background threads, newest request first, and forgets requests the view has scrolled past, so
fast scrolling never queues stale work.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable
from collections import OrderedDict, deque
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel, QMimeData, QModelIndex, QObject, QRect, QSize, Qt, QTimer, QUrl, Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.store import ImageQuery, ImageRecord
from hypersd_desktop.gallery.thumbnails import Thumbnails

PAGE = 120
RecordRole = Qt.ItemDataRole.UserRole
_IMAGE_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
_EMPTY_FLAGS = Qt.ItemFlag.NoItemFlags
CELL = 168  # logical pixels of one grid cell
THUMB = 152  # logical pixels of the thumbnail inside it


def background_workers() -> int:
    """Threads for thumbnails: leave a core to the GUI thread (scrolling is drawn there)."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def lower_this_threads_priority() -> None:
    """Let the GUI thread win the CPU over background work (best effort; Linux and Windows)."""
    try:
        if sys.platform.startswith("linux"):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        elif sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32
            kernel32.SetThreadPriority(kernel32.GetCurrentThread(), -1)  # THREAD_PRIORITY_BELOW_NORMAL
    except (OSError, AttributeError):
        pass


class ThumbnailLoader(QObject):
    """`request(id, path)` → `loaded(id, QImage)` later, on the GUI thread. A null image: unreadable."""

    loaded = Signal(int, int, QImage)  # image id, its position when asked for, thumbnail

    def __init__(self, thumbnails: Thumbnails, display: int, workers: int | None = None, keep: int = 400) -> None:
        super().__init__()
        self.thumbnails = thumbnails
        self.display = display  # device pixels: images are scaled here once, so painting is a plain copy
        self.keep = keep
        self._pending: deque[tuple[int, str, int]] = deque()
        self._queued: set[int] = set()
        self._condition = threading.Condition()
        self._closing = False
        self._threads = [threading.Thread(target=self._work, name=f"thumbnail-{n}", daemon=True)
                         for n in range(workers or background_workers())]
        for thread in self._threads:
            thread.start()

    def request(self, image_id: int, path: str, position: int = -1) -> None:
        with self._condition:
            if image_id in self._queued:
                return
            self._pending.append((image_id, path, position))
            self._queued.add(image_id)
            while len(self._pending) > self.keep:  # scrolled past: not worth making now
                old, _, _ = self._pending.popleft()
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
        lower_this_threads_priority()
        while True:
            with self._condition:
                while not self._pending and not self._closing:
                    self._condition.wait()
                if self._closing:
                    return
                image_id, path, position = self._pending.pop()  # the newest request is what is on screen now
            try:
                made = self.thumbnails.make(Path(path))
                image = QImage.fromData(made) if isinstance(made, bytes) else QImage(str(made))
            except (OSError, ValueError, SyntaxError):
                image = QImage()
            if image.width() > self.display or image.height() > self.display:
                image = image.scaled(self.display, self.display, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)
            with self._condition:
                self._queued.discard(image_id)
                if self._closing:
                    return
            self.loaded.emit(image_id, position, image)


class _IdReader(QObject):
    """Reads all ids of a query on a thread with its own read-only connection; `done(generation, ids)`."""

    done = Signal(int, list)

    def read(self, gallery: Gallery, query: ImageQuery, generation: int) -> None:
        def work() -> None:
            connection = gallery.store.open_reader()
            try:
                ids = gallery.store.ids(query, connection)
            finally:
                connection.close()
            self.done.emit(generation, ids)

        threading.Thread(target=work, name="gallery-ids", daemon=True).start()


class GalleryModel(QAbstractTableModel):
    """The images of the current query, newest first, addressed by position (0 = first shown).

    `index_at`/`position` convert between positions and the grid's cells; `record(position)`
    fetches the page holding it when needed. `complete` is False while the ids are being read.
    """

    counted = Signal(int)  # total matches of the current query

    def __init__(self, gallery: Gallery, device_pixel_ratio: float = 1.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.query = ImageQuery()
        self.ids: list[int] = []
        self.complete = True
        self.columns = 1
        self._pages: OrderedDict[int, list[ImageRecord | None]] = OrderedDict()
        self._positions: dict[int, int] | None = None
        self._generation = 0
        self._reader = _IdReader()
        self._reader.done.connect(self._ids_read)
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._broken: set[int] = set()
        self.cache_limit = 2500
        self.pages_kept = 60
        self.device_pixel_ratio = device_pixel_ratio
        # Thumbnails are made at the pixel size the screen shows, so HiDPI screens get sharp ones.
        size = max(256, 64 * math.ceil(THUMB * device_pixel_ratio / 64))
        self.loader = ThumbnailLoader(Thumbnails(gallery.paths.cache / "thumbnails", size=size),
                                      display=round(THUMB * device_pixel_ratio))
        self.loader.loaded.connect(self._thumbnail_loaded)

    def close(self) -> None:
        self.loader.close()

    # -- grid geometry -----------------------------------------------------------------------

    def count(self) -> int:
        """Images known so far (all matches once `complete`)."""
        return len(self.ids)

    def set_columns(self, columns: int) -> None:
        columns = max(1, columns)
        if columns != self.columns:
            self.beginResetModel()
            self.columns = columns
            self.endResetModel()

    def position(self, index: QModelIndex) -> int:
        """The image position of a cell, or -1 for an empty cell after the last image."""
        if not index.isValid():
            return -1
        position = index.row() * self.columns + index.column()
        return position if position < len(self.ids) else -1

    def index_at(self, position: int) -> QModelIndex:
        if not 0 <= position < len(self.ids):
            return QModelIndex()
        return self.index(position // self.columns, position % self.columns)

    # -- Qt model API ------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else -(-len(self.ids) // self.columns)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else self.columns

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        record = self.record(self.position(index))
        if record is None:
            return None
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
        return _IMAGE_FLAGS if self.position(index) >= 0 else _EMPTY_FLAGS  # empty: cells after the last image

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt API
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:  # noqa: N802 - Qt API
        """Dragged images are their files, so any application that takes files takes them."""
        mime = QMimeData()
        records = (self.record(p) for p in sorted(p for p in (self.position(i) for i in indexes) if p >= 0))
        mime.setUrls([QUrl.fromLocalFile(record.path) for record in records if record is not None])
        return mime

    # -- queries -----------------------------------------------------------------------------

    def set_query(self, query: ImageQuery) -> None:
        """Show the first page of `query` now; the rest of its matches follow from a background read."""
        page = self.gallery.store.query(query, PAGE)
        self._generation += 1
        self.beginResetModel()
        self.query = query
        self._set_ids([record.id for record in page.images])
        self._pages[0] = list(page.images)
        self.complete = page.cursor is None
        self.endResetModel()
        if self.complete:
            QTimer.singleShot(0, self, lambda: self.counted.emit(len(self.ids)))  # not after the model is gone
        else:
            self._reader.read(self.gallery, query, self._generation)

    def _ids_read(self, generation: int, ids: list) -> None:
        if generation != self._generation:
            return  # a newer query replaced this one meanwhile
        shown = len(self.ids)
        if ids[:shown] == self.ids:  # the usual case: the first page stays where it is
            self.beginInsertRows(QModelIndex(), self.rowCount(), max(self.rowCount(), -(-len(ids) // self.columns)) - 1)
            first = self._pages.get(0)
            self._set_ids(ids)
            if first is not None:
                self._pages[0] = first
            self.endInsertRows()
            if shown % self.columns:  # the last row of the first page had empty cells
                row = shown // self.columns
                self.dataChanged.emit(self.index(row, 0), self.index(row, self.columns - 1))
        else:
            self.beginResetModel()
            self._set_ids(ids)
            self.endResetModel()
        self.complete = True
        self.counted.emit(len(ids))

    def _set_ids(self, ids: list[int]) -> None:
        self.ids = ids
        self._pages.clear()
        self._positions = None

    def refresh(self) -> None:
        self.set_query(self.query)

    def wait_until_complete(self, process_events: Callable[[], None], timeout: float = 30.0) -> bool:
        """For tests and benchmarks: run `process_events` until every id is known."""
        import time

        deadline = time.monotonic() + timeout
        while not self.complete and time.monotonic() < deadline:
            process_events()
            time.sleep(0.002)
        return self.complete

    def add_newest(self) -> int:
        """Put at the top the images that arrived since the newest one shown; returns how many."""
        if self.query.oldest_first or not self.ids or not self.complete:
            self.refresh()
            return len(self.ids)
        first = self.record(0)
        if first is None:
            self.refresh()
            return len(self.ids)
        fresh = self.gallery.store.newer_than(self.query, first.created, first.id)
        if fresh:  # every cell shifts: a reset is as cheap as anything here (no per-item layout)
            self.beginResetModel()
            self._set_ids([record.id for record in fresh] + self.ids)
            self.endResetModel()
            self.counted.emit(len(self.ids))
        return len(fresh)

    # -- records -----------------------------------------------------------------------------

    def record(self, position: int) -> ImageRecord | None:
        """The image at `position`, reading its page from the database the first time."""
        if not 0 <= position < len(self.ids):
            return None
        number, offset = divmod(position, PAGE)
        page = self._pages.get(number)
        if page is None:
            chunk = self.ids[number * PAGE:(number + 1) * PAGE]
            found = {record.id: record for record in self.gallery.store.get_many(chunk)}
            page = [found.get(image_id) for image_id in chunk]  # None: deleted meanwhile
            self._pages[number] = page
            while len(self._pages) > self.pages_kept:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(number)
        return page[offset] if offset < len(page) else None

    def all_records(self) -> list[ImageRecord]:
        return [record for record in map(self.record, range(len(self.ids))) if record is not None]

    def position_of(self, image_id: int) -> int | None:
        if self._positions is None:
            self._positions = {image_id: k for k, image_id in enumerate(self.ids)}
        return self._positions.get(image_id)

    def reload_record(self, image_id: int) -> ImageRecord | None:
        """Re-read one image (after a rating or tag change) and repaint it; returns the new record."""
        position = self.position_of(image_id)
        record = self.gallery.store.get(image_id)
        if position is not None and record is not None:
            number, offset = divmod(position, PAGE)
            if number in self._pages and offset < len(self._pages[number]):
                self._pages[number][offset] = record
            index = self.index_at(position)
            self.dataChanged.emit(index, index)
        return record

    def remove_ids(self, ids: list[int]) -> None:
        """Take images out (deleted) without asking the database for the query again."""
        gone = set(ids)
        self.beginResetModel()
        self._set_ids([image_id for image_id in self.ids if image_id not in gone])
        self.endResetModel()
        self.counted.emit(len(self.ids))

    # -- thumbnails --------------------------------------------------------------------------

    def pixmap(self, record: ImageRecord, position: int = -1) -> QPixmap | None:
        pixmap = self._pixmaps.get(record.id)
        if pixmap is not None:
            self._pixmaps.move_to_end(record.id)
            return pixmap
        if record.id not in self._broken:
            self.loader.request(record.id, record.path, position)
        return None

    def is_broken(self, image_id: int) -> bool:
        return image_id in self._broken

    def _thumbnail_loaded(self, image_id: int, position: int, image: QImage) -> None:
        if image.isNull():
            self._broken.add(image_id)
        else:
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(self.device_pixel_ratio)
            self._pixmaps[image_id] = pixmap
            while len(self._pixmaps) > self.cache_limit:
                self._pixmaps.popitem(last=False)
        if not (0 <= position < len(self.ids) and self.ids[position] == image_id):
            position = self.position_of(image_id)  # the grid changed since it was asked for
        if position is not None:
            index = self.index_at(position)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ThumbnailDelegate(QStyledItemDelegate):
    """A thumbnail centred in its cell, with the favourite star and the rating over it."""

    def sizeHint(self, option, index) -> QSize:  # noqa: N802 - Qt API
        return QSize(CELL, CELL)

    def paint(self, painter: QPainter, option, index) -> None:
        # The model is asked directly rather than through index.data(): no QVariant round trip per cell.
        model = index.model()
        position = model.position(index)
        record = model.record(position)
        if record is None:
            return
        painter.save()
        cell = option.rect
        palette = option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(cell, palette.highlight())
        box = QRect(0, 0, THUMB, THUMB)
        box.moveCenter(cell.center())
        pixmap = model.pixmap(record, position)
        target = box
        if pixmap is not None and not pixmap.isNull():
            size = pixmap.deviceIndependentSize().toSize()  # already scaled to fit: a plain copy
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target.topLeft(), pixmap)
        else:
            painter.fillRect(box, palette.alternateBase())
            if model.is_broken(record.id):
                painter.setPen(palette.placeholderText().color())
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "file missing")
        badges = ("★" if record.favourite else "") + (" " if record.favourite and record.rating else "") \
            + "●" * record.rating
        if badges:  # over the picture's top-left corner
            width = painter.fontMetrics().horizontalAdvance(badges) + 8
            painter.fillRect(QRect(target.left(), target.top(), width, 18), QColor(0, 0, 0, 150))
            painter.setPen(QColor("#ffd54a"))
            painter.drawText(QRect(target.left() + 4, target.top(), width, 18), Qt.AlignmentFlag.AlignVCenter, badges)
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(palette.highlight().color())
            painter.drawRect(cell.adjusted(1, 1, -2, -2))
        painter.restore()
