"""Benchmark: scrolling and searching the gallery tab with 100,000 images.

Builds a gallery of `--rows` images (a few hundred distinct 512² PNGs, hard-linked under
100,000 names, so every row has its own file and its own thumbnail to make), shows the real
gallery tab in a 1280×800 window and measures:

- steady scrolling (a fast flick, `--speed` pixels a second for `--seconds`): the longest and
  the 99th-percentile frame (scroll + repaint, timed around the paint) and the longest stall of
  the event loop (a 5 ms timer's lateness), while thumbnails arrive from the background threads;
- dragging the scroll bar: jumps to 200 random places in the whole gallery, each frame including
  reading the page of records there from SQLite;
- search: time from the query to the grid painted with its first page, and until every visible
  thumbnail is shown (cold: thumbnails made; warm: read from the cache).

Baseline in the same run: the same scrolling over a plain `QListView` in icon mode with 100,000
text items in a `QStandardItemModel` (Qt's own cost of a frame, no thumbnails, no paging).

    QT_QPA_PLATFORM=offscreen python bench/gallery_scroll.py   # or under xvfb-run for a real X server
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gallery_100k import MODELS, WORDS  # noqa: E402

from hypersd_desktop.gallery.store import ImageRecord  # noqa: E402


def make_files(folder: Path, distinct: int, rows: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(3)
    sources = []
    for k in range(distinct):
        top, bottom = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
        image = Image.linear_gradient("L").resize((512, 512)).convert("RGB")
        image = Image.merge("RGB", [band.point(lambda v, a=a, b=b: a + (b - a) * v // 255)
                                    for band, a, b in zip(image.split(), top, bottom)])
        path = folder / f"source-{k:04d}.png"
        image.save(path, compress_level=1)
        sources.append(path)
    files = []
    for i in range(rows):
        link = folder / f"{i // 1000:03d}" / f"{i:06d}.png"
        link.parent.mkdir(exist_ok=True)
        os.link(sources[i % distinct], link)
        files.append(link)
    return files


def fill(gallery, files: list[Path]) -> None:
    rng = random.Random(1)
    start = time.time() - 365 * 86400
    batch = []
    for i, path in enumerate(files):
        batch.append(ImageRecord(
            path=str(path), created=start + i * 300.0, source="generated", file_size=path.stat().st_size,
            prompt=" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))), seed=rng.randrange(2**31),
            steps=rng.choice((1, 2, 4, 8)), guidance=0.0, scheduler="tcd", model_name=rng.choice(MODELS),
            width=512, height=512, rating=rng.choice((0, 0, 3, 5)),
        ))
        if len(batch) == 5000:
            gallery.store.add_many(batch)
            batch = []
    if batch:
        gallery.store.add_many(batch)


class FrameClock:
    """Frame times (scroll + synchronous repaint) and event-loop lateness of a 5 ms timer."""

    def __init__(self) -> None:
        from PySide6.QtCore import QElapsedTimer, QTimer

        self.frames: list[float] = []
        self.lateness: list[float] = []
        self._clock = QElapsedTimer()
        self._ticker = QTimer(interval=5)
        self._ticker.timeout.connect(self._tick)

    def _tick(self) -> None:
        if self._clock.isValid():
            self.lateness.append(max(0.0, self._clock.nsecsElapsed() / 1e6 - 5))
        self._clock.restart()

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def frame(self, view, action) -> None:
        started = time.perf_counter()
        action()
        view.viewport().repaint()
        self.frames.append((time.perf_counter() - started) * 1000)

    def summary(self) -> str:
        frames = sorted(self.frames) or [0.0]
        p99 = frames[min(len(frames) - 1, int(len(frames) * 0.99))]
        late = max(self.lateness) if self.lateness else 0.0
        return (f"frames {len(self.frames)}, longest {frames[-1]:.1f} ms, p99 {p99:.1f} ms, "
                f"median {statistics.median(frames):.1f} ms; longest event-loop stall {late:.1f} ms")


def run_for(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)


def flick(app, view, clock: FrameClock, speed: float, seconds: float) -> None:
    """Scroll down at `speed` px/s, one frame every 16 ms, letting events (thumbnails) in between."""
    bar = view.verticalScrollBar()
    clock.start()
    started = last = time.perf_counter()
    position = float(bar.value())
    while time.perf_counter() - started < seconds:
        now = time.perf_counter()
        position += speed * (now - last)
        last = now
        clock.frame(view, lambda: bar.setValue(int(position)))
        run_for(app, 0.016)
    clock.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=300)
    parser.add_argument("--speed", type=float, default=3000.0, help="flick speed, pixels a second")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="hypersd-scroll-"))
    os.environ["HYPERSD_HOME"] = str(home)

    from PySide6.QtCore import QSize
    from PySide6.QtGui import QStandardItem, QStandardItemModel
    from PySide6.QtWidgets import QApplication, QListView, QMainWindow

    from hypersd_desktop.app import freeze_startup_objects
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.gallery.gallery import Gallery
    from hypersd_desktop.ui.gallery_browser import GalleryBrowser
    from hypersd_desktop.ui.gallery_model import CELL

    app = QApplication(sys.argv)
    paths = AppPaths.default().ensure()
    gallery = Gallery(paths)
    started = time.perf_counter()
    files = make_files(paths.images, args.distinct, args.rows)
    fill(gallery, files)
    print(f"gallery of {args.rows:,} images ({args.distinct} distinct pictures) made in "
          f"{time.perf_counter() - started:.1f} s; platform {app.platformName()}")

    window = QMainWindow()
    browser = GalleryBrowser(gallery)
    window.setCentralWidget(browser)
    window.resize(1280, 800)
    window.show()
    freeze_startup_objects()  # as the app does once its window is up
    run_for(app, 0.5)
    view = browser.grid

    def visible_rows() -> list[int]:
        rows = []
        rect = view.viewport().rect()
        for y in range(10, rect.height(), 84):
            for x in range(10, rect.width(), 84):
                position = browser.model.position(view.indexAt(rect.topLeft() + type(rect.topLeft())(x, y)))
                if position >= 0:
                    rows.append(position)
        return sorted(set(rows))

    def search(text: str) -> tuple[float, float, int]:
        t0 = time.perf_counter()
        browser.search.setText(text)
        browser.apply_filters()
        view.viewport().repaint()
        painted = (time.perf_counter() - t0) * 1000
        browser.model.wait_until_complete(app.processEvents)
        complete = (time.perf_counter() - t0) * 1000
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            rows = visible_rows()
            if all(browser.model._pixmaps.get(browser.model.ids[r]) is not None for r in rows):
                break
            app.processEvents()
            time.sleep(0.001)
        thumbs = (time.perf_counter() - t0) * 1000
        app.processEvents()  # the total is counted after the first paint
        return painted, complete, thumbs, browser.model.count()

    for label, text in (("cold", "lighthouse"), ("cold", "neon city night"), ("warm", "lighthouse")):
        painted, complete, thumbs, count = search(text)
        total = browser.count_label.text()
        print(f"search {text!r} ({label} thumbnails): first page painted {painted:.1f} ms, all matches in the "
              f"grid {complete:.0f} ms, every visible thumbnail {thumbs:.0f} ms ({total})")
    search("")
    print(f"every image in the grid: {browser.model.count():,}")

    clock = FrameClock()
    flick(app, view, clock, args.speed, args.seconds)
    print(f"gallery flick at {args.speed:.0f} px/s for {args.seconds:.0f} s: {clock.summary()}")

    jumps = FrameClock()
    jumps.start()
    bar = view.verticalScrollBar()
    rng = random.Random(5)
    for _ in range(200):
        jumps.frame(view, lambda: bar.setValue(rng.randrange(bar.maximum() + 1)))
        run_for(app, 0.016)
    jumps.stop()
    print(f"scroll bar dragged to 200 random places in {browser.model.count():,} images: {jumps.summary()}")
    browser.close_resources()
    window.close()

    baseline_model = QStandardItemModel()
    for i in range(args.rows):
        baseline_model.appendRow(QStandardItem(f"image {i:06d}"))
    baseline = QListView()
    baseline.setViewMode(QListView.ViewMode.IconMode)
    baseline.setUniformItemSizes(True)
    baseline.setResizeMode(QListView.ResizeMode.Adjust)
    baseline.setGridSize(QSize(CELL, CELL))
    baseline.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
    baseline.setModel(baseline_model)
    baseline.resize(1280, 720)
    baseline.show()
    run_for(app, 0.5)
    base_clock = FrameClock()
    flick(app, baseline, base_clock, args.speed, args.seconds / 3)
    print(f"baseline: plain QListView, {args.rows:,} text rows, same flick: {base_clock.summary()}")
    gallery.close()


if __name__ == "__main__":
    main()
