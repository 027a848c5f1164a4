"""Benchmark: an image from a prompt read before (the text encoders' kept outputs) against an image from a
new prompt each time, in the same run, on the random full-size model (bench/engine_vs_model_card.py).

    python bench/prompt_reuse.py --device cuda --arch sdxl         # 1024², 1 step, fp16
    python bench/prompt_reuse.py --device cpu --size 128           # SD1.5 on the CPU
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_vs_model_card as models  # noqa: E402
from hypersd_desktop.engine.torch_engine import TorchEngine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    models.model_arguments(parser)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    with models.fast_model(args) as (folder, request):
        engine = TorchEngine()
        engine.generate(request)
        fresh = (f"{models.PROMPT}, take {n}" for n in itertools.count())
        sides = {"same prompt": lambda: request, "new prompt": lambda: request.replace(prompt=next(fresh))}
        times: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeats + 1):  # interleaved, the first round a warm-up
            for name, make in sides.items():
                asked = make()
                if cuda:
                    torch.cuda.synchronize()
                started = time.perf_counter()
                engine.generate(asked)
                if cuda:
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - started)
    device = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"# {device}, torch {torch.__version__}, {args.arch} {request.width}², {args.steps} step(s), median of "
          f"{args.repeats}")
    new = statistics.median(times["new prompt"][1:])
    for name, measured in times.items():
        median = statistics.median(measured[1:])
        print(f"{name:12} {median * 1000:9.1f} ms  ({median / new:.2f} × a new prompt's)")


if __name__ == "__main__":
    main()
