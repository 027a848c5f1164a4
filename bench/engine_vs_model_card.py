"""Benchmark: the engine against the plain model-card diffusers code, in the same run.

Builds the full-size SD1.5 (and on CUDA, SDXL) architecture from the bundled configs with
random weights (speed does not depend on weight values), plus a random rank-64 LoRA with the
Hyper-SD key layout, saves them, and times text encoding + denoising + VAE decode + conversion
to PIL for 1, 2, 4 and 8 steps through both paths (unified LoRA, TCD, guidance 0).

    python bench/engine_vs_model_card.py                      # CPU: SD1.5 at 256², a few minutes
    python bench/engine_vs_model_card.py --device cuda        # SD1.5 512² and SDXL 1024², fp16
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hypersd_desktop.core.resources import resources_dir  # noqa: E402
from hypersd_desktop.engine import GenerationRequest, LoraSpec  # noqa: E402
from hypersd_desktop.engine.torch_engine import TorchEngine, quiet_libraries  # noqa: E402

DTYPES = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}
PROMPT = "a photo of a cat sitting on a windowsill, golden hour"


class PeakMemory:
    """Peak device memory on CUDA; peak resident memory of the process on the CPU (sampled)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, process.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc):
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()


def build_random_model(architecture: str, folder: Path) -> None:
    """Save the architecture with random weights, in fp16 to halve the disk traffic (loading casts)."""
    from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
    from diffusers.schedulers import EulerDiscreteScheduler, PNDMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    config = resources_dir() / "configs" / architecture
    torch.manual_seed(0)
    parts = {
        "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")),
        "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae")),
        "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")),
        "tokenizer": CLIPTokenizer.from_pretrained(config / "tokenizer"),
    }
    if architecture == "sdxl":
        parts["text_encoder_2"] = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(config / "text_encoder_2"))
        parts["tokenizer_2"] = CLIPTokenizer.from_pretrained(config / "tokenizer_2")
        parts["scheduler"] = EulerDiscreteScheduler.from_pretrained(config / "scheduler")
    else:
        parts.update(scheduler=PNDMScheduler.from_pretrained(config / "scheduler"), safety_checker=None,
                     feature_extractor=None, requires_safety_checker=False)
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if architecture == "sdxl" else StableDiffusionPipeline
    pipe: DiffusionPipeline = cls(**parts)
    pipe.to(torch.float16).save_pretrained(folder, safe_serialization=True)


def build_lora(folder: Path, architecture: str) -> Path:
    """A random rank-64 LoRA over the Hyper-SD target layers, under the unified LoRA's name."""
    import tiny_models
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    name = "Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora"
    return tiny_models.kohya_lora(unet, folder.parent / f"{name}.safetensors", rank=64, alpha=64.0)


def time_calls(call, repeats: int) -> list[float]:
    call()  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def card_side(folder: Path, lora: Path, size: int, device: str, dtype_name: str, repeats: int, steps_list):
    """The model card's code: load, load_lora_weights, fuse_lora, TCD, call."""
    from diffusers import DiffusionPipeline, TCDScheduler

    card = DiffusionPipeline.from_pretrained(folder, torch_dtype=DTYPES[dtype_name]).to(device)
    card.set_progress_bar_config(disable=True)
    card.load_lora_weights(str(lora.parent), weight_name=lora.name)
    card.fuse_lora()
    card.scheduler = TCDScheduler.from_config(card.scheduler.config)
    for steps in steps_list:
        def call(steps=steps, pipe=card):
            pipe(prompt=PROMPT, num_inference_steps=steps, guidance_scale=0, eta=1.0, width=size, height=size,
                 generator=torch.Generator("cpu").manual_seed(0)).images[0]
        with PeakMemory(device) as memory:
            times = time_calls(call, repeats)
        yield steps, times, memory.peak


def engine_side(folder: Path, lora: Path, size: int, device: str, dtype_name: str, repeats: int, steps_list):
    engine = TorchEngine()
    request = GenerationRequest(prompt=PROMPT, base_model=str(folder), loras=(LoraSpec(str(lora)),), seed=0,
                                width=size, height=size, device=device, dtype=dtype_name)
    for steps in steps_list:
        with PeakMemory(device) as memory:
            times = time_calls(lambda steps=steps: engine.generate(request.replace(steps=steps)), repeats)
        yield steps, times, memory.peak


SIDES = {"card": card_side, "engine": engine_side}


def measure_in_subprocess(side: str, folder: Path, lora: Path, size: int, args, dtype: str, repeats: int) -> dict:
    """Run one side in a fresh process, so its peak memory is its own."""
    command = [sys.executable, __file__, "--side", side, "--folder", str(folder), "--lora-file", str(lora),
               "--size", str(size), "--device", args.device, "--dtype", dtype, "--repeats", str(repeats),
               "--steps", args.steps]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return {row["steps"]: row for row in map(json.loads, output.splitlines()) if row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda", "mps"])
    parser.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="SD1.5 image size (default 512 on GPU, 256 on CPU)")
    parser.add_argument("--steps", default="1,2,4,8")
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lora-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_libraries()
    gpu = args.device != "cpu"
    dtype = args.dtype or ("fp16" if gpu else "fp32")
    repeats = args.repeats or (5 if gpu else 1)
    steps_list = [int(s) for s in args.steps.split(",")]
    if args.side:
        for steps, times, peak in SIDES[args.side](args.folder, args.lora_file, args.size, args.device, dtype, repeats,
                                                   steps_list):
            print(json.dumps({"steps": steps, "median_s": statistics.median(times), "peak": peak}), flush=True)
        return
    plans = [("sd15", args.size or (512 if gpu else 256))]
    if gpu:
        plans.append(("sdxl", 1024))
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    print(f"# device {device_name}, {dtype}, torch {torch.__version__}, median of {repeats} after one warm-up")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for architecture, size in plans:
            folder = Path(tmp) / architecture
            print(f"# building {architecture} with random weights ...", flush=True)
            build_random_model(architecture, folder)
            lora = build_lora(folder, architecture)
            card = measure_in_subprocess("card", folder, lora, size, args, dtype, repeats)
            ours = measure_in_subprocess("engine", folder, lora, size, args, dtype, repeats)
            for steps in steps_list:
                rows.append((architecture, size, steps, ours[steps], card[steps]))
            shutil.rmtree(folder)
    print()
    print(f"{'model':6} {'size':>5} {'steps':>5} {'engine ms':>10} {'card ms':>9} {'ratio':>6} "
          f"{'engine img/s':>12} {'card img/s':>10} {'engine peak':>12} {'card peak':>10}")
    for architecture, size, steps, ours, theirs in rows:
        mine, other = ours["median_s"], theirs["median_s"]
        print(f"{architecture:6} {size:>5} {steps:>5} {mine * 1000:>10.0f} {other * 1000:>9.0f} {mine / other:>6.2f} "
              f"{1 / mine:>12.2f} {1 / other:>10.2f} {ours['peak'] / 2**30:>10.2f}Gi {theirs['peak'] / 2**30:>8.2f}Gi")
    memory = "peak CUDA memory allocated" if args.device == "cuda" else "peak resident memory of each side's process"
    print(f"\nratio = engine / model card (below 1: the engine is faster). Peaks: {memory}.")


if __name__ == "__main__":
    main()
