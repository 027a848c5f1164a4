"""Benchmark: the gallery with 100,000 images.

Fills a fresh gallery with synthetic rows (prompts drawn from a vocabulary, a few models and
LoRAs, dates over a year), then times what a user waits for: opening the first page in a new
process-like connection, a full-text search, a filtered query, paging deep into the gallery,
the filters' values (read again after each image made), and exporting 1,000 images (512×512 PNGs written by this
script). Baselines in the same run: the search as a plain `LIKE` scan, the filters' values a query a column, and
copying the same 1,000 files with shutil.

    python bench/gallery_100k.py [--rows 100000] [--export 1000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypersd_desktop.gallery.export import ExportOptions, export_images  # noqa: E402
from hypersd_desktop.gallery.store import GalleryStore, ImageQuery, ImageRecord  # noqa: E402

WORDS = ("fox cat lighthouse castle dragon forest river mountain portrait city night neon rain snow desert ocean "
         "sunset dawn oil painting watercolor photo cinematic macro bokeh golden hour ancient ruins robot spaceship "
         "garden flowers tea cup library window storm").split()
MODELS = ("sd15", "dreamshaper_8", "sdxl", "juggernautXL")
PHRASES = ("窓辺に座る猫", "一只猫坐在窗台上", "夜の街とネオン", "古い城と森")  # a prompt in twenty ends with one
LORAS = ("Hyper-SD15-1step-lora", "Hyper-SD15-4steps-lora", "Hyper-SDXL-2steps-lora", "detail-tweaker", "pixel-art")


def timed(call, repeats: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def fill(store: GalleryStore, rows: int, files: list[Path]) -> None:
    rng = random.Random(1)
    start = time.time() - 365 * 86400
    batch = []
    for i in range(rows):
        model = rng.choice(MODELS)
        loras = tuple((name, 1.0, None) for name in rng.sample(LORAS, rng.randint(0, 2)))
        path = str(files[i]) if i < len(files) else f"/gallery/{i:06d}.png"
        batch.append(ImageRecord(
            path=path, created=start + i * (365 * 86400 / rows), source="generated",
            prompt=" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16)))
            + (f", {rng.choice(PHRASES)}" if rng.random() < 0.05 else ""),
            negative_prompt=" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4))),
            seed=rng.randrange(2**32), steps=rng.choice((1, 2, 4, 8)), guidance=0.0, scheduler="TCD",
            model_name=model, loras=loras, width=512, height=512, favourite=rng.random() < 0.05,
            rating=rng.choice((0, 0, 0, 3, 4, 5)),
        ))
        if len(batch) == 5000:
            store.add_many(batch)
            batch = []
    if batch:
        store.add_many(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--export", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        source = tmp_path / "images"
        source.mkdir()
        rng = random.Random(2)
        files = []
        for i in range(args.export):
            path = source / f"{i:05d}.png"
            Image.effect_noise((512, 512), 40 + rng.random() * 20).convert("RGB").save(path)
            files.append(path)
        database = tmp_path / "gallery.sqlite3"
        store = GalleryStore(database)
        started = time.perf_counter()
        fill(store, args.rows, files)
        fill_s = time.perf_counter() - started
        store.close()

        def first_page():
            fresh = GalleryStore(database)
            page = fresh.query(limit=100)
            fresh.close()
            return page

        store = GalleryStore(database)
        rows = [
            ("open + first page (100)", *timed(first_page)),
            ("full-text search 'fox', first page", *timed(lambda: store.query(ImageQuery(text="fox"), limit=100))),
            ("  baseline: LIKE '%fox%' scan", *timed(lambda: store._db.execute(
                "SELECT * FROM images WHERE prompt LIKE '%fox%' ORDER BY created DESC LIMIT 100").fetchall())),
            ("search 'neon city night', first page",
             *timed(lambda: store.query(ImageQuery(text="neon city night"), limit=100))),
            ("search '猫' (inside CJK words: scanned)",
             *timed(lambda: store.query(ImageQuery(text="猫"), limit=100))),
            ("search '鯨' (in no prompt: a whole scan)",
             *timed(lambda: store.query(ImageQuery(text="鯨"), limit=100))),
            ("filter model+steps+rating, first page", *timed(
                lambda: store.query(ImageQuery(model="sdxl", steps=4, min_rating=3), limit=100))),
            ("filter LoRA, first page", *timed(lambda: store.query(ImageQuery(lora="pixel-art"), limit=100))),
            ("count all", *timed(lambda: store.count())),
            ("the filters' values (after each image made)", *timed(store.facets)),
            ("  baseline: one query a column, as before", *timed(lambda: [store._db.execute(sql).fetchall() for sql in (
                "SELECT DISTINCT model_name FROM images WHERE trashed_at IS NULL AND model_name IS NOT NULL ORDER BY 1",
                "SELECT DISTINCT lora_names FROM images WHERE trashed_at IS NULL",
                "SELECT DISTINCT steps FROM images WHERE trashed_at IS NULL AND steps IS NOT NULL ORDER BY 1",
                "SELECT DISTINCT metadata_format FROM images WHERE trashed_at IS NULL")])),
        ]
        cursor = None
        deep = time.perf_counter()
        for _ in range(500):
            page = store.query(limit=100, cursor=cursor)
            cursor = page.cursor
        rows.append(("page 500 deep (100 rows per page), each", (time.perf_counter() - deep) / 500, None))

        exportable = store.query(ImageQuery(), limit=args.rows).images
        chosen = [r for r in exportable if r.path.startswith(str(source))][: args.export]
        options = ExportOptions(template="{model}/{date}/{seed}-{prompt:30}")
        start = time.perf_counter()
        result = export_images(chosen, tmp_path / "export", options)
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        for i, record in enumerate(chosen):
            shutil.copyfile(record.path, tmp_path / f"copy-{i}.png")
        copy_s = time.perf_counter() - start
        store.close()

    print(f"# {args.rows:,} rows filled in {fill_s:.1f} s; medians of 5 unless noted")
    print(f"{'operation':44} {'ms':>9}")
    for name, seconds, _ in rows:
        print(f"{name:44} {seconds * 1000:>9.1f}")
    print(f"{f'export {result.written} PNGs (templated, metadata kept)':44} {export_s * 1000:>9.0f}")
    print(f"{'  baseline: shutil.copyfile of the same files':44} {copy_s * 1000:>9.0f}")


if __name__ == "__main__":
    main()
