"""Time to bring in pictures the app converts as they come in, each against a plain Pillow read of the same picture
in the same run.

    python bench/picture_formats.py [--width 4000] [--height 3000] [--layers 8] [--repeats 3]

Rows (median of `--repeats`, milliseconds):
- a GIMP file of `--layers` translucent layers over a noisy background (zlib tiles, written as GIMP writes them:
  tests/pictures.xcf_file), its layers put together and kept as PNG; baseline: the same picture as a PNG, decoded
  and written again as PNG (what an exported picture costs);
- a 16000 × 3000 panorama JPEG, kept scaled down to 8192 as PNG; baseline: decoding the JPEG at full size;
- a 2000 × 1500 PNG's size as shown (a picture batch's Enlarge): walking its chunks for EXIF; baseline: asking
  Pillow for its EXIF, which decodes the pixels to look past them.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def timed(call, repeats: int) -> float:
    """Median seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def gimp_file(folder: Path, width: int, height: int, layers: int) -> tuple[Path, bytes]:
    """A GIMP file of translucent discs over noise, and the PNG of its picture as GIMP would export it."""
    from pictures import XcfLayer, xcf_file

    from hypersd_desktop.core.images import kept_bytes

    rng = np.random.default_rng(0)
    stack = [XcfLayer(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))]
    rows, columns = np.ogrid[:height, :width]
    for index in range(layers):
        pixels = np.zeros((height, width, 4), np.uint8)
        centre = (height * (index + 1) // (layers + 1), width * (index + 1) // (layers + 1))
        disc = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 < (min(width, height) // 3) ** 2
        pixels[disc] = (30 * index % 256, 120, 255 - 30 * index % 256, 255)
        stack.insert(0, XcfLayer(pixels, opacity=0.7))
    path = xcf_file(folder / "painting.xcf", (width, height), stack, compression=2)
    return path, kept_bytes(path.read_bytes())[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from hypersd_desktop.core.images import kept_bytes, read_formats
    from hypersd_desktop.worker.batch import upright_size

    read_formats()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        painting, exported = gimp_file(folder, args.width, args.height, args.layers)
        data = painting.read_bytes()

        def png_again() -> None:
            with Image.open(io.BytesIO(exported)) as image:
                image.load()
                image.save(io.BytesIO(), "PNG", compress_level=1)

        rows.append((f"GIMP file {args.width} × {args.height}, {args.layers + 1} layers ({len(data) >> 20} MiB)",
                     timed(lambda: kept_bytes(data), args.repeats), "its picture as a PNG, read and written",
                     timed(png_again, args.repeats)))

        across = np.linspace(0, 255, 16000, dtype=np.float32)[None, :]
        down = np.linspace(0, 255, 3000, dtype=np.float32)[:, None]
        pixels = np.stack([np.broadcast_to(across, (3000, 16000)), np.broadcast_to(down, (3000, 16000)),
                           np.full((3000, 16000), 90, np.float32)], axis=-1).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        panorama = buffer.getvalue()

        def decoded() -> None:
            with Image.open(io.BytesIO(panorama)) as image:
                image.load()

        rows.append(("panorama JPEG 16000 × 3000, kept 8192 long", timed(lambda: kept_bytes(panorama), args.repeats),
                     "the JPEG decoded at full size", timed(decoded, args.repeats)))

        photo = folder / "photo.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)).save(photo)

        def pillow_exif() -> None:
            with Image.open(photo) as image:
                image.getexif()

        rows.append(("PNG 2000 × 1500: size as shown", timed(lambda: upright_size(photo), args.repeats * 10),
                     "Pillow's EXIF of it", timed(pillow_exif, args.repeats * 10)))

    print(f"{'what':52} {'ms':>8}   {'baseline':40} {'ms':>8}")
    for name, seconds, baseline, base_seconds in rows:
        print(f"{name:52} {seconds * 1000:8.1f}   {baseline:40} {base_seconds * 1000:8.1f}")


if __name__ == "__main__":
    main()
