"""Time to read the generation parameters of 1,000 mixed real files, against a plain Pillow open
of the same files in the same run.

    python bench/read_metadata.py [--files 1000] [--side 1024]

The files are the real-file corpus (tests/gallery/corpus: 90 files of 19 tools and forks, see
its SOURCES.md) cycled to `--files`: once as they are (crops of a few
pixels), and once with each file's metadata carried onto `--side`² pixels as the tools write them
(PNG chunks, JPEG EXIF; the stealth file's alpha record re-embedded), since reading can depend on
the pixels (text after the image data, the alpha channel); then PNGs without any metadata at
`--side`² (photo-like noise, RGB and RGBA), where a stealth record in the pixels' low bits is
looked for. Per-file figures in milliseconds: median and worst.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "tests" / "gallery" / "corpus"


def enlarge(source: Path, target: Path, side: int) -> Path:
    """The file's metadata on a side² image, written the way its tool writes it."""
    with Image.open(source) as image:
        image.load()
        mode = "RGBA" if "A" in image.getbands() else "RGB"
        big = Image.new(mode, (side, side), (90, 120, 150, 255)[: len(mode)])
        if image.format == "JPEG":
            big.save(target.with_suffix(".jpg"), "JPEG", exif=image.getexif().tobytes(), quality=90)
            return target.with_suffix(".jpg")
        info = PngInfo()
        for key, value in getattr(image, "text", {}).items():
            info.add_text(key, value)
        if mode == "RGBA":
            from hypersd_desktop.gallery.formats.stealth import read_stealth
            text = read_stealth(image)
            if text is not None:
                payload = gzip.compress(text.encode())
                bits = "".join(f"{b:08b}" for b in b"stealth_pngcomp" + (len(payload) * 8).to_bytes(4, "big") + payload)
                alpha = big.getchannel("A").load()
                for index, bit in enumerate(bits):
                    x, y = divmod(index, side)
                    alpha_value = alpha[x, y]
                    alpha[x, y] = (alpha_value & ~1) | int(bit)
                big.putalpha(big.getchannel("A"))
        big.save(target, pnginfo=info)
        return target


def timed(function, paths: list[Path]) -> list[float]:
    times = []
    for path in paths:
        started = time.perf_counter()
        function(path)
        times.append((time.perf_counter() - started) * 1000)
    return times


def plain_open(path: Path) -> None:
    with Image.open(path) as image:
        _ = image.size, image.info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--side", type=int, default=1024)
    args = parser.parse_args()
    from hypersd_desktop.gallery.gallery import read_metadata

    names = list(json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))["files"])
    with tempfile.TemporaryDirectory() as folder:
        large = [enlarge(CORPUS / name, Path(folder) / f"{k}.png", args.side) for k, name in enumerate(names)]
        plain = []
        for mode in ("RGB", "RGBA"):
            plain.append(Path(folder) / f"plain-{mode}.png")
            Image.effect_noise((args.side, args.side), 40).convert(mode).save(plain[-1])
        for label, files in (("as in the corpus", [CORPUS / n for n in names]), (f"at {args.side}² pixels", large),
                             (f"without metadata at {args.side}² pixels", plain)):
            paths = [files[k % len(files)] for k in range(args.files)]
            read_metadata(paths[0])  # imports and caches warm for both
            baseline = timed(plain_open, paths)
            ours = timed(lambda p: read_metadata(p), paths)
            print(f"{args.files} files {label}:")
            for name, times in (("Pillow open", baseline), ("read_metadata", ours)):
                print(f"  {name:14} median {statistics.median(times):7.3f} ms   worst {max(times):7.3f} ms")


if __name__ == "__main__":
    main()
