"""Benchmark: making one gallery thumbnail (decode, scale to 256 px, turn upright, encode WebP).

What a user waits for when a screenful of images is shown for the first time. Times
`Thumbnails.make` on generated-looking PNGs (512², 768², 1024²) and a 4000×3000 camera JPEG,
each in a fresh cache, against the baseline in the same run: the straightforward recipe (turn
upright and convert at full size, then scale, WebP at Pillow's default effort), which is what
the app did before.

    python bench/thumbnails.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypersd_desktop.gallery.thumbnails import DEFAULT_SIZE, Thumbnails  # noqa: E402


def picture(width: int, height: int) -> Image.Image:
    """Smooth gradients with grain: compresses like a generated image, not like noise or a flat fill."""
    rng = np.random.default_rng(width)
    x, y = np.linspace(0, 1, width), np.linspace(0, 1, height)
    channels = [np.outer(np.cos(y * 7), np.sin(x * 9)), np.outer(y, x), np.outer(y, np.cos(x * 5))]
    pixels = np.stack(channels, -1) * 127 + 128 + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(pixels.clip(0, 255).astype("uint8"))


def baseline(source_path: Path, target: Path, size: int = DEFAULT_SIZE) -> None:
    with Image.open(source_path) as source:
        source.draft("RGB", (size, size))
        thumb = ImageOps.exif_transpose(source).convert("RGB")
        thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    thumb.save(target, format="WEBP", quality=82)


def median_ms(make, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        make()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sources = []
        for width, height in ((512, 512), (768, 768), (1024, 1024)):
            path = root / f"generated-{width}.png"
            picture(width, height).save(path)
            sources.append((f"PNG {width}×{height}", path))
        camera = root / "camera.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6  # stored sideways, as phones do
        picture(4000, 3000).save(camera, quality=90, exif=exif.tobytes())
        sources.append(("JPEG 4000×3000, EXIF rotated", camera))

        print(f"one thumbnail, median of {args.repeat}, ms        baseline   app")
        for label, path in sources:
            counter = iter(range(10**6))

            def app(path=path) -> None:
                Thumbnails(root / f"cache-{next(counter)}", workers=1).make(path)

            old = median_ms(lambda path=path: baseline(path, root / "baseline.webp"), args.repeat)
            new = median_ms(app, args.repeat)
            print(f"  {label:<36} {old:8.1f} {new:6.1f}")


if __name__ == "__main__":
    main()
