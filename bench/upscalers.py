"""Benchmark: enlarging a picture with an upscaler model (engine/upscalers.py), as a Hires fix's first pass, an
enlarged init image or Upscale is enlarged, against Lanczos (the baseline, what runs without a model) in the same run.

Models of the sizes people use, with random weights in the file layouts they have (no download):
- ESRGAN ×4, 23 blocks of 64 features (4x-UltraSharp, RealESRGAN_x4plus, 4x_NMKD-Siax …);
- Real-ESRGAN Compact ×4, 32 convolutions of 64 features (realesr-general-x4v3);
- SPAN ×4, 48 channels (the architecture's default, as most SPAN models on OpenModelDB keep it);
- RealPLKSR ×4, 28 blocks of 64 features, 17 × 17 kernels, with DySample (the architecture's defaults);
- DAT-light ×4 (60 channels, one group of 18 blocks) and DAT ×4 (180 channels, six groups of six blocks), with
  8 × 32 windows, as the paper's (and 4xNomos8kDAT's) are;
- HAT-S ×4 (144 channels) and HAT ×4 (180 channels; Real_HAT_GAN's size), six groups of six blocks, 16-pixel
  windows, as the paper's are;
- SwinIR-M ×4 (classical: 180 channels, six groups of six blocks, pixel shuffles) and SwinIR-L ×4 (real-world, as
  A1111's SwinIR_4x: 240 channels, nine groups of six blocks, three convolutions ending each, nearest-neighbour
  doublings), 8-pixel windows.
`--skip-transformers` leaves DAT, HAT and SwinIR out: on a CPU they take the longest. `--only WORD` runs the models
whose label has WORD (the baseline runs always).
Each enlarges a picture (by default 128 × 128; on a GPU ask for 512) in
tiles, as the app does; the time is per megapixel of the model's output, the median of the repeats.

    python bench/upscalers.py [--device cpu|cuda|mps] [--side 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from depth_map import median_s  # noqa: E402
from hypersd_desktop.engine.upscalers import Upscalers  # noqa: E402
from tests.tiny_models import save_upscaler  # noqa: E402

MODELS = {"ESRGAN ×4, 23 blocks (4x-UltraSharp's size)": ("esrgan", {"blocks": 23, "features": 64}),
          "Compact ×4, 32 convolutions (realesr-general-x4v3's size)": ("compact", {"blocks": 32, "features": 64}),
          "SPAN ×4, 48 channels": ("span", {"features": 48}),
          "RealPLKSR ×4, 28 blocks, DySample": ("plksr-dysample", {"blocks": 28, "features": 64, "kernel": 17}),
          "DAT-light ×4, 18 blocks, 60 channels": ("dat-light", {"blocks": 17, "features": 60, "heads": 6,
                                                                 "window": (8, 32)}),
          "DAT ×4, 6 × 6 blocks, 180 channels": ("dat", {"blocks": 5, "groups": 6, "features": 180, "heads": 6,
                                                         "window": (8, 32)}),
          "HAT-S ×4, 6 × 6 blocks, 144 channels": ("hat", {"blocks": 5, "groups": 6, "features": 144, "heads": 6,
                                                           "window": 16, "compress": 24, "squeeze": 24}),
          "HAT ×4, 6 × 6 blocks, 180 channels": ("hat", {"blocks": 5, "groups": 6, "features": 180, "heads": 6,
                                                         "window": 16, "compress": 3, "squeeze": 30}),
          "SwinIR-M ×4, 6 × 6 blocks, 180 channels": ("swinir", {"blocks": 5, "groups": 6, "features": 180,
                                                              "heads": 6, "window": 8, "trained_at": 64}),
          "SwinIR-L ×4 (real-world), 9 × 6 blocks, 240 channels": ("swinir-real", {
              "blocks": 5, "groups": 9, "features": 240, "heads": 8, "window": 8, "trained_at": 64})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--only", default="", help="run the models whose label has this word")
    args = parser.parse_args()
    picture = Image.effect_mandelbrot((args.side, args.side), (-2, -1.5, 1, 1.5), 60).convert("RGB")
    target = (args.side * 4, args.side * 4)
    megapixels = target[0] * target[1] / 1e6
    lanczos = median_s(lambda: picture.resize(target, Image.Resampling.LANCZOS), max(args.repeats, 5))
    print(f"{args.side} × {args.side} → {target[0]} × {target[1]} on {args.device}")
    print(f"  Lanczos (baseline): {lanczos * 1000:.1f} ms ({lanczos / megapixels * 1000:.1f} ms per megapixel)")
    with tempfile.TemporaryDirectory() as folder:
        for label, (layout, shape) in MODELS.items():
            if args.skip_transformers and layout.startswith(("dat", "hat", "swinir")) or args.only not in label:
                continue
            path = save_upscaler(Path(folder) / f"{layout}.safetensors", layout, scale=4, **shape)
            upscalers = Upscalers()
            began = time.perf_counter()
            upscalers.enlarge(path, picture, (8, 8), args.device)  # loads it; nothing to enlarge
            loaded = time.perf_counter() - began
            took = median_s(lambda: upscalers.enlarge(path, picture, target, args.device), args.repeats)
            print(f"  {label}: {took:.2f} s ({took / megapixels:.2f} s per megapixel; {took / lanczos:.0f}× "
                  f"Lanczos), load {loaded * 1000:.0f} ms, file {path.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
