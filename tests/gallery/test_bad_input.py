"""Bad input in the gallery: one bad image never sinks an import, and nothing is overwritten."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.store import ImageQuery


@pytest.fixture
def gallery(app_home):
    gallery = Gallery(AppPaths.default())
    yield gallery
    gallery.close()


def png_with(path, parameters: str) -> None:
    info = PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", (16, 16), (40, 90, 200)).save(path, pnginfo=info)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb(path) -> None:
    """A PNG that declares 60000 x 60000 pixels (a decompression bomb) with almost no data."""
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_huge_seeds_and_steps_do_not_sink_the_import(gallery, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(300):
        png_with(folder / f"good-{i:03}.png", f"a good one {i}\nSteps: 4, Sampler: Euler, CFG scale: 7, Seed: {i}")
    png_with(folder / "comfy-seed.png", "max seed\nSteps: 4, Seed: 18446744073709551615, Size: 16x16")
    png_with(folder / "steps.png", "silly steps\nSteps: 1e30, Seed: 5")
    bomb(folder / "bomb.png")
    report = gallery.import_folder(folder)
    assert report.added == 303 and report.failed == ()  # the bomb is listed, never decoded (see the test below)
    assert report.warnings == ("bomb.png: 60,000 × 60,000 pixels are too many to show or convert here; it is listed "
                               "without a thumbnail (Show in folder finds it for another app).",)
    (seeded,) = gallery.store.query(ImageQuery(text="max seed")).images
    assert seeded.seed == 2**64 - 1  # exact, though SQLite integers stop at 2^63 - 1
    (steps,) = gallery.store.query(ImageQuery(text="silly steps")).images
    assert steps.steps is None and steps.seed == 5


def test_undo_restores_beside_a_newer_file_and_overwrites_nothing(gallery, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    png_with(folder / "a.png", "the old one\nSteps: 4, Seed: 1")
    gallery.import_folder(folder)
    (old,) = gallery.store.query().images
    old_bytes = (folder / "a.png").read_bytes()
    gallery.delete([old.id])
    png_with(folder / "a.png", "a newer one made since\nSteps: 8, Seed: 2")
    newer_bytes = (folder / "a.png").read_bytes()
    assert gallery.undo_delete([old.id]).moved == [old.id]
    assert (folder / "a.png").read_bytes() == newer_bytes
    assert (folder / "a (restored).png").read_bytes() == old_bytes
    assert gallery.store.get(old.id).path == str(folder / "a (restored).png")


def test_delete_killed_at_any_moment_leaves_no_orphan(gallery, tmp_path):
    import os
    import random
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(1500):
        png_with(folder / f"{i:04}.png", f"image {i}\nSteps: 4, Seed: {i}")
    gallery.import_folder(folder)
    contents = {record.id: Path(record.path).read_bytes() for record in gallery.store.iterate(ImageQuery())}
    ids = [str(i) for i in sorted(contents)]

    # Each attempt is killed part way through by how far it has gone, not by a clock: when a random number of the
    # files have left the folder (a busy machine only slows the delete; it still stops at that point).
    rng = random.Random(15)
    kills, attempt = 0, 0
    while kills < 6 and attempt < 12:
        attempt += 1
        moved = rng.randint(1, len(contents) - 100)
        process = subprocess.Popen([sys.executable, "-m", "hypersd_desktop", "gallery", "delete", *ids],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while process.poll() is None and sum(1 for _ in folder.iterdir()) > len(contents) - moved:
            time.sleep(0.002)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        for image_id in contents:  # every image is findable: in place if live, in place or in the trash if not
            record, trashed = gallery.store.get(image_id), gallery.store.trash_path(image_id)
            places = [Path(record.path)] + ([Path(trashed)] if trashed else [])
            assert any(place.exists() for place in places), (attempt, image_id, record, trashed)
        gallery.undo_delete(list(contents))
        for image_id, data in contents.items():
            record = gallery.store.get(image_id)
            assert gallery.store.trash_path(image_id) is None and Path(record.path).read_bytes() == data
    assert kills >= 5, (kills, attempt)  # deletes were stopped part way: the checks above saw what a kill leaves
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{i:04}.png" for i in range(1500))


def test_a_pasted_page_searches_by_its_first_words_only(gallery, tmp_path):
    from hypersd_desktop.gallery.store import MAX_SEARCH_WORDS, fts_query

    page = " ".join(f"word{i}" for i in range(20_000)) + " " + "x" * 5000
    assert fts_query(page).count('"*') == MAX_SEARCH_WORDS and len(fts_query(page)) < 400
    folder = tmp_path / "in"
    folder.mkdir()
    png_with(folder / "a.png", "word0 word1 word2 lighthouse\nSteps: 4, Seed: 1")
    gallery.import_folder(folder)
    assert len(gallery.store.query(ImageQuery(text="word0 word1 " + "zzz " * 5000)).images) == 0
    assert len(gallery.store.query(ImageQuery(text="word0 word1 lighthouse " + "zzz" * 5000)).images) == 0
    assert len(gallery.store.query(ImageQuery(text="lighthouse word2")).images) == 1


def test_an_image_over_pillows_size_guard_is_listed_with_its_parameters_and_never_decoded(gallery, tmp_path):
    """A 16K² upscale (here 13,600², 185 megapixels; a two-colour PNG keeps the file small) is over the size Pillow
    refuses to open even for its text, as a guard against decompression bombs: it is listed with its size and
    parameters; its thumbnail and a conversion are declined saying why, where decoding would take gigabytes, and
    its PNG copies as it is. A JPEG that large has a thumbnail all the same, decoded at an eighth of its size."""
    from hypersd_desktop.core.vocab import ExportFormat
    from hypersd_desktop.gallery.export import ExportOptions, export_images
    from hypersd_desktop.gallery.gallery import parameters_text

    side = 13_600
    parameters = f"a very large lighthouse\nSteps: 4, Sampler: DDIM, CFG scale: 0, Seed: 7, Size: {side}x{side}"
    info = PngInfo()
    info.add_text("parameters", parameters)
    png, jpeg = tmp_path / "upscale.png", tmp_path / "upscale.jpg"
    Image.new("1", (side, side), 0).save(png, pnginfo=info)
    Image.new("L", (side, side), 128).save(jpeg, quality=50)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(png)

    report = gallery.import_files([png, jpeg])
    assert report.added == 2 and report.failed == () and len(report.warnings) == 2
    record = gallery.store.get(gallery.store.id_of_path(str(png)))
    assert (record.width, record.height, record.prompt, record.seed) == (side, side, "a very large lighthouse", 7)
    assert parameters_text(record) == parameters

    with pytest.raises(ValueError, match=f"upscale.png has too many pixels \\({side} × {side}\\) for a thumbnail"):
        gallery.thumbnails.make(png)
    with Image.open(gallery.thumbnails.make(jpeg)) as thumbnail:
        assert max(thumbnail.size) == gallery.thumbnails.size

    result = export_images([record], tmp_path / "as-jpeg", ExportOptions(template="{seed}", format=ExportFormat.JPEG))
    (entry,) = result.entries
    assert entry.status.endswith(f"{side} × {side} pixels is too many to convert; export it as PNG")
    result = export_images([record], tmp_path / "as-png", ExportOptions(template="{seed}"))
    assert result.written == 1 and (tmp_path / "as-png" / "7.png").read_bytes() == png.read_bytes()


def test_a_file_name_that_is_no_utf8_text_is_listed_and_the_rest_imported(gallery, tmp_path):
    """On Linux a file name is bytes: café.png saved by an older system (Latin-1) is no UTF-8, and its name cannot
    go into the database. It is listed with why and what to do; it sank the whole import before."""
    import os

    folder = tmp_path / "old-drive"
    folder.mkdir()
    png_with(folder / "fine.png", "a fine one\nSteps: 4, Seed: 1")
    try:
        odd = Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png"))
        png_with(odd, "a latin-1 one\nSteps: 4, Seed: 2")
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names (macOS, Windows)")
    report = gallery.import_folder(folder)
    assert report.added == 1
    assert report.failed == ((f"{folder}/caf\ufffd.png", "its name is not UTF-8 text (a file from an older system or "
                                                         "drive); rename it to add it"),)
