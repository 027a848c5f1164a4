"""What a look at the watched folders costs (gallery/watch.py's `FolderPoll.look`, made every two seconds by the
window in a background thread), against walking the same tree for its image files as an import does, in the same
run.

    python bench/watch_folders.py [--folders 4000] [--images 20]

A tree of `--folders` day folders (as A1111 and ComfyUI keep them, 64 under each of a few more) with `--images`
small PNGs in each, all in the gallery. Figures in milliseconds, median of 9: a look that finds nothing new, a look
after one image arrived in one folder, the count of each folder's entries one look in 15 adds, and the walk
(`image_files`, the rglob an import makes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median_ms(runs: list[float]) -> str:
    return f"{statistics.median(runs) * 1000:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=4000)
    parser.add_argument("--images", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        os.environ["HYPERSD_HOME"] = str(Path(temp) / "app")
        from hypersd_desktop.core.paths import AppPaths
        from hypersd_desktop.gallery.gallery import Gallery, image_files
        from hypersd_desktop.gallery.watch import FolderPoll

        gallery = Gallery(AppPaths.default())
        root = Path(temp) / "outputs"
        data = Path(temp) / "one.png"
        Image.new("RGB", (8, 8), "red").save(data)
        payload = data.read_bytes()
        folders = [root / f"{index // 64:03d}" / f"2026-12-{index % 64:02d}" for index in range(args.folders)]
        for folder in folders:
            folder.mkdir(parents=True)
            for number in range(args.images):
                (folder / f"{number:05d}.png").write_bytes(payload)
        started = time.perf_counter()
        report = gallery.import_folder(root)
        print(f"{len(folders):,} folders, {report.added:,} images imported in {time.perf_counter() - started:.1f} s")
        poll = FolderPoll([root], gallery.paths, catch_up=False)
        poll.look(gallery.import_files, gallery.store)
        print(f"folders looked at: {len(poll.folders):,}{' (cut at the limit)' if poll.cut else ''}")

        quiet, arrival, walk, counting = [], [], [], []
        for run in range(9):
            started = time.perf_counter()
            assert poll.look(gallery.import_files, gallery.store) is None  # nothing changed
            quiet.append(time.perf_counter() - started)
            target = folders[run * 97 % len(folders)] / f"new-{run}.png"
            target.write_bytes(payload)
            past = time.time() - 5
            os.utime(target, (past, past))
            os.utime(target.parent)
            started = time.perf_counter()
            poll.look(gallery.import_files, gallery.store)  # the first look notes the file
            arrival.append(time.perf_counter() - started)
            poll.look(gallery.import_files, gallery.store)  # the second takes it
            started = time.perf_counter()
            image_files(root)
            walk.append(time.perf_counter() - started)
            started = time.perf_counter()
            poll._recounted()  # what every COUNT_EVERY-th look adds: each folder's entries counted
            counting.append(time.perf_counter() - started)
        print(f"{'':32}  median ms")
        print(f"{'look, nothing new':32}{median_ms(quiet)}")
        print(f"{'look, one folder changed':32}{median_ms(arrival)}")
        print(f"{'counting entries (1 look in 15)':32}{median_ms(counting)}")
        print(f"{'baseline: walk the tree (import)':32}{median_ms(walk)}")
        gallery.close()


if __name__ == "__main__":
    main()
