"""Time to index a generated 1024 × 1024 PNG in the gallery: read back from the file (decode the
pixels, parse the AUTOMATIC1111 text: how the worker indexed images before) against the row made
from the values it was written with (`Gallery.add_generated`, how it indexes them now).

    python bench/index_generated.py [--images 20]

Both run in the same process on the same files; the figures are medians in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["HYPERSD_HOME"] = home
        from hypersd_desktop.core.paths import AppPaths
        from hypersd_desktop.gallery.gallery import Gallery
        from hypersd_desktop.gallery.metadata import ImageParameters, write_png

        paths = AppPaths.default().ensure()
        gallery = Gallery(paths)
        rng = np.random.default_rng(0)
        pixels = Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8))  # incompressible: worst case
        timings: dict[str, list[float]] = {"read back from the file": [], "from the written values": []}
        for k in range(args.images):
            params = ImageParameters(
                prompt=f"a lighthouse at dusk, number {k}", negative_prompt="", steps=1, sampler="tcd", guidance=0.0,
                seed=k, width=1024, height=1024, model_name="sdxl", model_hash="0123456789",
                loras=(("Hyper-SDXL-1step-lora", 1.0, "abcdef0123"),), extra=(("Hyper-SD", "Hyper-SDXL-1step-lora"),),
                request={"prompt": f"a lighthouse at dusk, number {k}", "seed": k}, recipe="Hyper-SDXL-1step-lora",
            )
            for label in timings:
                path = Path(home) / f"{label[:4]}-{k}.png"
                write_png(pixels, path, params)
                started = time.perf_counter()
                if label.startswith("read"):
                    gallery.add_file(path, device="cuda", time_taken=0.2)
                else:
                    gallery.add_generated(path, params, device="cuda", time_taken=0.2)
                timings[label].append((time.perf_counter() - started) * 1000)
        size = path.stat().st_size
        gallery.close()
    print(f"indexing a generated 1024x1024 PNG ({size / 1e6:.1f} MB), median of {args.images}:")
    for label, values in timings.items():
        print(f"  {label:26} {statistics.median(values):7.2f} ms  (min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    main()
