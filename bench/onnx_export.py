"""Time, disk use and peak memory of an ONNX export of the full-size SD1.5 (or SDXL) architecture with random
weights and a fused rank-64 LoRA, as the ONNX backend makes it on first use (hypersd_desktop/engine/onnx/export.py).

    python bench/onnx_export.py [--architecture sd15] [--keep DIR]

Baseline in the same run: loading the same pipeline and fusing the LoRA in torch, which every export starts
with (the rest is the export's own cost). Weight values do not change the figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine_vs_model_card import PeakMemory, build_lora, build_random_model  # noqa: E402

from hypersd_desktop.core.files import folder_size  # noqa: E402
from hypersd_desktop.engine.onnx.export import ExportCache, ExportSpec, load_fused_pipeline  # noqa: E402
from hypersd_desktop.engine.types import LoraSpec  # noqa: E402
from hypersd_desktop.core.hashes import sha256_file  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", choices=("sd15", "sdxl"), default="sd15")
    parser.add_argument("--keep", type=Path, help="leave the export in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model = work / "model"
        build_random_model(args.architecture, model)
        lora = build_lora(model, args.architecture)
        spec = ExportSpec(args.architecture, str(model), loras=(LoraSpec(str(lora), 1.0),))

        with PeakMemory("cpu") as load_peak:
            started = time.perf_counter()
            load_fused_pipeline(spec)
            load_s = time.perf_counter() - started

        cache = ExportCache(args.keep or work / "onnx", hash_of=sha256_file)
        steps = []
        with PeakMemory("cpu") as export_peak:
            started = time.perf_counter()
            folder = cache.export(spec, on_progress=lambda p: steps.append((p.item, time.perf_counter())))
            export_s = time.perf_counter() - started
        started = time.perf_counter()
        assert cache.export(spec) == folder
        hit_s = time.perf_counter() - started

        print(f"{args.architecture}, random weights + rank-64 LoRA, fp32, opset {spec.opset}")
        print(f"baseline: load + fuse in torch   {load_s:7.1f} s   peak RSS {load_peak.peak / 2**30:5.1f} GiB")
        print(f"export (load, fuse, write)        {export_s:7.1f} s   peak RSS {export_peak.peak / 2**30:5.1f} GiB")
        for (name, at), (_, end) in zip(steps, steps[1:]):
            print(f"  {name:14} {end - at:7.1f} s   {folder_size(folder / name) / 2**20:8.0f} MiB")
        print(f"on disk                           {folder_size(folder) / 2**30:7.2f} GiB")
        print(f"second request (cache hit)        {hit_s * 1000:7.0f} ms")
        if args.keep is None:
            shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
