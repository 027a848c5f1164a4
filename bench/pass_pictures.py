"""Benchmark: handing a pass's picture to the next run (a Hires fix's first pass, a canvas repainted a tile at a
time, an image before its face pass), held as it is (`InputImages.hold_picture`, what the service does) against
the baseline in the same run, the picture written as a PNG file's bytes and read back (what it did before: the
input store names pictures by their files' bytes). Each tile of a repaint in tiles pays this once for its canvas.

Random pixels (the worst case for PNG's compression; a generated image compresses better, so the PNG times are
an upper bound) at the sizes a Hires fix, Upscale and a repaint in tiles reach; the median of the repeats.

    python bench/pass_pictures.py [--sides 1024 2048 4096] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def median_s(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    import numpy as np
    from PIL import Image

    from hypersd_desktop.core.images import InputImages, png_data

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        inputs = InputImages(Path(folder))
        print(f"{'picture':>11} {'PNG (default level)':>20} {'PNG (level 1)':>14} {'held as it is':>14}")
        for side in args.sides:
            picture = Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
            encoded = median_s(lambda: inputs.open(inputs.hold(png_data(picture))), args.repeats)
            quick = median_s(lambda: inputs.open(inputs.hold(png_data(picture, quick=True))), args.repeats)
            held = median_s(lambda: inputs.open(inputs.hold_picture(picture)), args.repeats)
            print(f"{side:>5} × {side:<5} {encoded * 1000:>17.0f} ms {quick * 1000:>11.0f} ms {held * 1000:>11.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
