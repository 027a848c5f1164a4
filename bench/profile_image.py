"""Where one image's time goes: the engine's fast path (as bench/engine_vs_model_card.py's `fast` side) under
torch.profiler, for the time outside the UNet that a 1-step image is mostly made of.

Prints the engine's own split of each image (load, denoise, decode; median of --repeats), then the
operators that took the most host time and the most device time over --repeats images, and writes a
Chrome trace of one image (open it in chrome://tracing or Perfetto) beside --trace.

    python bench/profile_image.py --device cuda                  # SD1.5 512², 1 step, fp16
    python bench/profile_image.py --device cpu --size 128        # a try of the script
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_vs_model_card as models  # noqa: E402
from hypersd_desktop.core.vocab import Decoder  # noqa: E402
from hypersd_desktop.engine.torch_engine import TorchEngine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    models.model_arguments(parser)
    parser.add_argument("--taesd", action="store_true", help="decode with TAESD")
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--trace", type=Path, default=None, help="where to write the Chrome trace of one image")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    with models.fast_model(args) as (folder, request):
        size = request.width
        if args.taesd:
            request = request.replace(decoder=Decoder.TAESD, taesd=str(folder.parent / f"{args.arch}-taesd"))
        engine = TorchEngine()
        for _ in range(3):  # loading, graph recording, kernel choice
            engine.generate(request)
        splits = [engine.generate(request)[0].timings for _ in range(args.repeats)]
        print(f"# {torch.cuda.get_device_name() if cuda else 'CPU'}, torch {torch.__version__}, {args.arch} {size}², "
              f"{args.steps} step(s){', TAESD' if args.taesd else ''}; median of {args.repeats}:")
        for name in ("load_s", "denoise_s", "decode_s", "total_s"):
            print(f"  {name[:-2]:8} {statistics.median(split[name] for split in splits) * 1000:8.1f} ms")
        activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
        with torch.profiler.profile(activities=activities) as profile:
            for _ in range(args.repeats):
                engine.generate(request)
        table = profile.key_averages()
        print(table.table(sort_by="self_cpu_time_total", row_limit=args.rows))
        if cuda:
            print(table.table(sort_by="self_device_time_total", row_limit=args.rows))
        if args.trace is not None:
            with torch.profiler.profile(activities=activities) as one:
                engine.generate(request)
            one.export_chrome_trace(str(args.trace))
            print(f"# trace of one image: {args.trace}")


if __name__ == "__main__":
    main()
