"""Benchmark: the engine against the plain model-card diffusers code, in the same run.

Builds the full-size SD1.5 (and on CUDA, SDXL) architecture from the bundled configs with
random weights (speed does not depend on weight values), plus a random rank-64 LoRA with the
Hyper-SD key layout, saves them, and times text encoding + denoising + VAE decode + conversion
to PIL for 1, 2, 4 and 8 steps through each side (unified LoRA, TCD, guidance 0):

- card: the model card's code (load, load_lora_weights, fuse_lora, TCD, call);
- engine: the engine run eagerly (no CUDA graphs), with the base model's own VAE;
- fast: the engine as the app runs it on an NVIDIA GPU: UNet and VAE decode replayed as CUDA graphs, and
  for SDXL the fp16-safe VAE (here the same random VAE with `force_upcast` off, as the fp16-fix VAE's
  config has it), so it decodes in fp16; its images are compared with the eager engine's (max difference);
- fast-own-vae (SDXL): the fast side with the model's own VAE, as it runs where the fp16-fix VAE is not
  installed: in bf16 on GPUs with native bf16, fp32 on older ones (the model card's code decodes it in fp32);
- fast-taesd (SD1.5): the fast side with TAESD decode (random TAESD weights);
- compiled: the fast side once the background compile (engine/compiled.py) has made the UNet and VAE
  decode steps for this GPU; the compile's own time is printed, its packages kept in --packages (a
  later run with the same folder loads them in seconds); images compared with the eager engine's.

With --throughput, batch jobs instead: images per second of the fast side one image per call, and of
the fast side as a batch job runs it (`batched`): different prompts, as many per call as the job's
BatchSizer settles on (the sizes it tried and its choice are printed); the model card's code at one
image per call is the baseline.

With --scribble, the drawing demo instead: SD1.5 with a scribble ControlNet (random full-size
weights, made from the UNet as ControlNets are), the unified LoRA, TCD trailing, eta 1, scale 1, each
call on the next of a few drawings (black strokes on white, as a canvas gives them):

- demo: the demo's way: the ControlNet pipeline, loaded once, called afresh per change of the canvas
  (the drawing inverted to white on black first);
- scribble: the engine as the Draw tab runs it (graphs on CUDA), the full VAE;
- scribble-taesd: the same with TAESD decode.

    python bench/engine_vs_model_card.py                      # CPU: SD1.5 at 256², card and engine
    python bench/engine_vs_model_card.py --device cuda        # SD1.5 512² and SDXL 1024², fp16, every side
    python bench/engine_vs_model_card.py --device cuda --scribble --steps 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
        self.reserved = None
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
            self.reserved = torch.cuda.max_memory_reserved()  # what the process held: the allocator's cache too
        else:
            self._stop.set()
            self._thread.join()


def random_model(architecture: str, root: Path) -> tuple[Path, Path]:
    """The random model of `architecture` and its LoRA, built under `root`; or, where the variable
    HYPERSD_BENCH_MODELS names a folder, built there once and reused by later runs (the benches of one
    GPU machine share them: saving SDXL's random weights takes a minute)."""
    shared = os.environ.get("HYPERSD_BENCH_MODELS")
    root = Path(shared) if shared else root
    folder = root / architecture
    done = root / f"{architecture}.complete"
    if not done.is_file():
        for partial in (folder, root / f"{architecture}-fp16-vae", root / f"{architecture}-taesd"):
            shutil.rmtree(partial, ignore_errors=True)
        build_random_model(architecture, folder)
        done.write_text(str(build_lora(folder, architecture)))
    return folder, Path(done.read_text())


def shared_models() -> bool:
    return bool(os.environ.get("HYPERSD_BENCH_MODELS"))


def model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a bench that runs the fast side on one random model (bench/profile_image.py and others)."""
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--arch", default="sd15", choices=["sd15", "sdxl"])
    parser.add_argument("--size", type=int, default=None, help="image size (default 512 for SD1.5, 1024 for SDXL)")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)


def fast_request(folder: Path, lora: Path, args: argparse.Namespace) -> GenerationRequest:
    """The request of the fast side (graphs on CUDA, fp16 there, the fp16-safe SDXL VAE) for `model_arguments`."""
    from hypersd_desktop.core.vocab import Preview

    cuda = args.device == "cuda"
    size = args.size or (1024 if args.arch == "sdxl" else 512)
    request = GenerationRequest(prompt=PROMPT, base_model=str(folder), loras=(LoraSpec(str(lora)),), seed=0,
                                width=size, height=size, steps=args.steps, device=args.device,
                                dtype="fp16" if cuda else "fp32", cuda_graphs=cuda, compile=False,
                                preview=Preview.NONE)
    if args.arch == "sdxl":
        request = request.replace(vae=str(folder.parent / "sdxl-fp16-vae"))
    return request


@contextlib.contextmanager
def fast_model(args: argparse.Namespace):
    """(folder, request): the random model of `model_arguments`' options, built or reused, and the fast side's request
    for it; the model is removed at the end unless HYPERSD_BENCH_MODELS keeps it."""
    quiet_libraries()
    with tempfile.TemporaryDirectory() as tmp:
        folder, lora = random_model(args.arch, Path(tmp))
        yield folder, fast_request(folder, lora, args)


def build_random_model(architecture: str, folder: Path) -> None:
    """Save the architecture with random weights, in fp16 to halve the disk traffic (loading casts).

    Built on the GPU where there is one: initialising SDXL's 3.5 billion weights on the CPU takes minutes."""
    from diffusers import DiffusionPipeline

    config = resources_dir() / "configs" / architecture
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        parts = _random_parts(config, architecture)
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if architecture == "sdxl" else StableDiffusionPipeline
    pipe: DiffusionPipeline = cls(**parts)
    pipe.to(torch.float16).save_pretrained(folder, safe_serialization=True)
    del pipe, parts
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    # The fp16-safe VAE of the fast side: the same weights, with the fp16-fix VAE's `force_upcast: false`.
    shutil.copytree(folder / "vae", folder.parent / f"{architecture}-fp16-vae")
    config_file = folder.parent / f"{architecture}-fp16-vae" / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "force_upcast": False}))
    from diffusers import AutoencoderTiny

    AutoencoderTiny().save_pretrained(folder.parent / f"{architecture}-taesd")


def _random_parts(config: Path, architecture: str) -> dict:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.schedulers import EulerDiscreteScheduler, PNDMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

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
    return parts


def build_lora(folder: Path, architecture: str) -> Path:
    """A random rank-64 LoRA over the Hyper-SD target layers, under the unified LoRA's name; small, as a trained
    LoRA's update is, so that fp16 stays finite (images of NaN would make every comparison vacuous)."""
    import tiny_models
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    name = "Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora"
    return tiny_models.kohya_lora(unet, folder.parent / f"{name}.safetensors", rank=64, alpha=64.0, relative=0.05)


def build_controlnet(folder: Path) -> Path:
    """A full-size ControlNet from the model's UNet (random zero convolutions too: speed is what is measured)."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    target = folder.parent / "scribble-controlnet"
    if (target / "config.json").is_file() and shared_models():
        return target
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    controlnet = ControlNetModel.from_unet(unet)
    for name, parameter in controlnet.named_parameters():
        if "zero_conv" in name or "controlnet_" in name:
            torch.nn.init.normal_(parameter, std=0.01)
    controlnet.to(torch.float16).save_pretrained(target, safe_serialization=True)
    return target


def drawings(size: int, count: int = 6) -> list:
    """Black strokes on white, a few different ones (each call of a side takes the next)."""
    import random

    from PIL import Image, ImageDraw

    made = []
    rng = random.Random(0)
    for _ in range(count):
        picture = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(picture)
        for _ in range(8):
            draw.line([(rng.randrange(size), rng.randrange(size)) for _ in range(3)], fill="black", width=size // 64 + 2)
        made.append(picture)
    return made


def demo_side(folder: Path, lora: Path, size: int, device: str, dtype_name: str, repeats: int, steps_list):
    """The drawing demo: the ControlNet pipeline loaded once, called afresh for each change of the canvas."""
    import itertools

    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, TCDScheduler
    from PIL import ImageOps

    dtype = DTYPES[dtype_name]
    controlnet = ControlNetModel.from_pretrained(folder.parent / "scribble-controlnet", torch_dtype=dtype)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(folder, controlnet=controlnet, torch_dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    canvas = itertools.cycle(drawings(size))
    for steps in steps_list:
        def call(steps=steps):
            scribble = ImageOps.invert(next(canvas))  # white strokes on black, as the ControlNet wants them
            pipe(prompt=PROMPT, image=scribble, num_inference_steps=steps, guidance_scale=0.0, eta=1.0,
                 controlnet_conditioning_scale=1.0, width=size, height=size,
                 generator=torch.Generator("cpu").manual_seed(0)).images[0]
        with PeakMemory(device) as memory:
            times = time_calls(call, repeats)
        yield steps, times, memory.peak, None


def scribble_side(folder: Path, lora: Path, size: int, device: str, dtype_name: str, repeats: int, steps_list,
                  taesd: bool = False):
    """The engine as the Draw tab runs it: each call a new drawing, held in memory, made a scribble by the engine."""
    import io
    import itertools

    from hypersd_desktop.core.images import InputImages
    from hypersd_desktop.core.vocab import Decoder, Preprocessor, Preview
    from hypersd_desktop.engine import ControlSpec

    store = InputImages(folder.parent / "inputs")
    held = []
    for picture in drawings(size):
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        held.append(store.hold(buffer.getvalue()))
    canvas = itertools.cycle(held)
    engine = TorchEngine(inputs=store)
    request = GenerationRequest(prompt=PROMPT, base_model=str(folder), loras=(LoraSpec(str(lora)),), seed=0,
                                width=size, height=size, device=device, dtype=dtype_name,
                                cuda_graphs=device == "cuda", compile=False)
    if taesd:
        request = request.replace(decoder=Decoder.TAESD, preview=Preview.NONE, taesd=str(folder.parent / "sd15-taesd"))
    controlnet = str(folder.parent / "scribble-controlnet")
    for steps in steps_list:
        def call(steps=steps):
            control = ControlSpec(controlnet, next(canvas), 1.0, preprocessor=Preprocessor.SCRIBBLE)
            engine.generate(request.replace(steps=steps, controls=(control,)))
        with PeakMemory(device) as memory:
            times = time_calls(call, repeats)
        yield steps, times, memory.peak, None


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
        yield steps, times, memory.peak, None


def engine_side(folder: Path, lora: Path, size: int, device: str, dtype_name: str, repeats: int, steps_list,
                fast: bool = False, taesd: bool = False, packages: Path | None = None, own_vae: bool = False):
    from hypersd_desktop.core.vocab import Decoder, Preview
    from hypersd_desktop.engine.compiled import Compiler

    compiler = Compiler(packages) if packages is not None else None
    engine = TorchEngine(compiler=compiler)
    request = GenerationRequest(prompt=PROMPT, base_model=str(folder), loras=(LoraSpec(str(lora)),), seed=0,
                                width=size, height=size, device=device, dtype=dtype_name, cuda_graphs=fast,
                                compile=compiler is not None)
    architecture = folder.name
    if fast and architecture == "sdxl" and not own_vae:
        request = request.replace(vae=str(folder.parent / "sdxl-fp16-vae"))
    if taesd:
        request = request.replace(decoder=Decoder.TAESD, preview=Preview.NONE, taesd=str(folder.parent / f"{architecture}-taesd"))
    for steps in steps_list:
        if compiler is not None:  # every layout this step count calls, compiled before the timing
            started = time.perf_counter()
            engine.generate(request.replace(steps=steps))
            compiler.wait()
            print(json.dumps({"compile_s": time.perf_counter() - started, "status": compiler.status()}),
                  file=sys.stderr, flush=True)
        with PeakMemory(device) as memory:
            times = time_calls(lambda steps=steps: engine.generate(request.replace(steps=steps)), repeats)
        difference = None
        if fast:  # graphed (and compiled) against eager, same request and seed
            import numpy as np

            graphed = np.asarray(engine.generate(request.replace(steps=steps, seed=7))[0].image, dtype=np.int16)
            eager = np.asarray(engine.generate(request.replace(steps=steps, seed=7, cuda_graphs=False,
                                                               compile=False))[0].image, dtype=np.int16)
            difference = int(np.abs(graphed - eager).max())
            if graphed.min() == graphed.max():  # NaN latents give a flat image: the comparison would prove nothing
                print(json.dumps({"flat_image": True}), file=sys.stderr, flush=True)
                difference = -1
        yield steps, times, memory.peak, difference


def batched_side(folder: Path, lora: Path, size: int, device: str, dtype_name: str, repeats: int, steps_list):
    """The fast side as a batch job runs it: prompts together, as many per call as BatchSizer settles on.
    Times are per image. The graphs of the sizes tried stay allocated, so the peak is an upper bound."""
    from hypersd_desktop.core.errors import OutOfMemoryError
    from hypersd_desktop.engine.backend import batch_key
    from hypersd_desktop.worker.batch import BatchSizer

    engine = TorchEngine()
    request = GenerationRequest(prompt=PROMPT, base_model=str(folder), loras=(LoraSpec(str(lora)),), seed=0,
                                width=size, height=size, device=device, dtype=dtype_name, cuda_graphs=True,
                                compile=False)
    if folder.name == "sdxl":
        request = request.replace(vae=str(folder.parent / "sdxl-fp16-vae"))
    for steps in steps_list:
        base = request.replace(steps=steps)
        key, sizer, tried = batch_key(base), BatchSizer(), {}

        def call(count: int):
            return engine.generate_batch([base.replace(prompt=f"{PROMPT}, view {n}", seed=n) for n in range(count)])

        while sizer.chosen(key) is None:
            count = sizer.size(key)
            try:
                per_image = call(count)[0].timings["per_image_s"]
            except OutOfMemoryError:
                sizer.too_large(key, count)
                tried[count] = "out of memory"
                continue
            sizer.record(key, count, per_image)
            tried[count] = round(min(per_image * 1000, tried.get(count, float("inf"))), 1)
        chosen = sizer.chosen(key)
        print(json.dumps({"batch_sizes": {"steps": steps, "ms_per_image": tried, "chosen": chosen}}), file=sys.stderr,
              flush=True)
        with PeakMemory(device) as memory:
            times = time_calls(lambda count=chosen: call(count), repeats)
        yield steps, [seconds / chosen for seconds in times], memory.peak, None


def fast_side(*args):
    return engine_side(*args, fast=True)


def fast_own_vae_side(*args):
    return engine_side(*args, fast=True, own_vae=True)


def fast_taesd_side(*args):
    return engine_side(*args, fast=True, taesd=True)


def compiled_side(*args):
    return engine_side(*args, fast=True, packages=PACKAGES[0])


PACKAGES: list[Path | None] = [None]  # --packages
SIDES = {"card": card_side, "engine": engine_side, "fast": fast_side, "fast-own-vae": fast_own_vae_side,
         "fast-taesd": fast_taesd_side,
         "compiled": compiled_side, "batched": batched_side,
         "demo": demo_side, "scribble": scribble_side,
         "scribble-taesd": lambda *args: scribble_side(*args, taesd=True)}


def measure_in_subprocess(side: str, folder: Path, lora: Path, size: int, args, dtype: str, repeats: int) -> dict:
    """Run one side in a fresh process, so its peak memory is its own."""
    command = [sys.executable, __file__, "--side", side, "--folder", str(folder), "--lora-file", str(lora),
               "--size", str(size), "--device", args.device, "--dtype", dtype, "--repeats", str(repeats),
               "--steps", args.steps, "--packages", str(args.packages)]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:  # the other sides still run: a GPU machine's minutes are few
        print(f"# {folder.name} {side} failed:\n" + "\n".join(done.stderr.strip().splitlines()[-25:]), flush=True)
    for line in done.stderr.splitlines():
        if line.startswith(('{"compile_s"', '{"batch_sizes"')):
            print(f"# {folder.name} {side}: {line}", flush=True)
    return {row["steps"]: row for row in map(json.loads, done.stdout.splitlines()) if row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda", "mps"])
    parser.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="SD1.5 image size (default 512 on GPU, 256 on CPU)")
    parser.add_argument("--steps", default="1,2,4,8")
    parser.add_argument("--scribble", action="store_true", help="the drawing demo: SD1.5 with a scribble ControlNet")
    parser.add_argument("--throughput", action="store_true", help="batch jobs: images per second, one per call and "
                        "batched")
    parser.add_argument("--arch", default=None, help="sd15, sdxl or both (default: both on a GPU, sd15 on the CPU)")
    parser.add_argument("--sides", default=None, help="the sides to run, in order (default: each mode's own)")
    parser.add_argument("--compiled", action="store_true", help="add the compiled side (minutes of compiling on "
                                                                "the first run with a --packages folder)")
    parser.add_argument("--packages", type=Path, default=Path(tempfile.gettempdir()) / "hypersd-bench-packages",
                        help="where the compiled side keeps its packages")
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lora-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_libraries()
    PACKAGES[0] = args.packages
    gpu = args.device != "cpu"
    dtype = args.dtype or ("fp16" if gpu else "fp32")
    repeats = args.repeats or (5 if gpu else 1)
    steps_list = [int(s) for s in args.steps.split(",")]
    if args.side:
        for steps, times, peak, difference in SIDES[args.side](args.folder, args.lora_file, args.size, args.device,
                                                               dtype, repeats, steps_list):
            print(json.dumps({"steps": steps, "median_s": statistics.median(times), "peak": peak,
                              "difference": difference}), flush=True)
        return
    architectures = (args.arch or ("sd15" if args.scribble or not gpu else "sd15,sdxl")).split(",")
    if set(architectures) - {"sd15", "sdxl"}:  # the tests' tiny model is bench/compile_cache.py's --arch tiny
        parser.error(f"--arch takes sd15, sdxl or sd15,sdxl; got {args.arch}")
    plans = [(architecture, args.size or (512 if gpu else 256) if architecture == "sd15" else 1024)
             for architecture in architectures]
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    print(f"# device {device_name}, {dtype}, torch {torch.__version__}, median of {repeats} after one warm-up")
    results: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for architecture, size in plans:
            print(f"# building {architecture} with random weights (or reusing them) ...", flush=True)
            folder, lora = random_model(architecture, Path(tmp))
            sides = ["card", "engine"]  # on CUDA the fast sides first: a run cut short keeps what matters most
            if args.device == "cuda":
                sides = (["card", "fast", "fast-taesd", "engine"] if architecture == "sd15"
                         else ["card", "fast", "fast-own-vae", "engine"])
            if args.compiled and not args.scribble:
                sides.insert(sides.index("engine") if "engine" in sides else len(sides), "compiled")
            if args.scribble:
                build_controlnet(folder)
                sides = ["demo", "scribble", "scribble-taesd"]
            if args.throughput:
                sides = ["card", "fast", "batched"] if args.device == "cuda" else ["card", "engine", "batched"]
            if args.sides:
                sides = args.sides.split(",")
            for side in sides:
                started = time.perf_counter()
                results[architecture, side] = measure_in_subprocess(side, folder, lora, size, args, dtype, repeats)
                figures = " ".join(f"{steps} step(s) {row['median_s'] * 1000:.0f} ms" for steps, row in
                                   results[architecture, side].items())
                print(f"# {architecture} {side}: {figures} ({time.perf_counter() - started:.0f} s)", flush=True)
            if not shared_models():
                shutil.rmtree(folder)
    baseline = "demo" if args.scribble else "card"
    print()
    print(f"{'model':6} {'steps':>5} {'side':>14} {'ms':>8} {'img/s':>7} {'vs ' + baseline:>8} {'peak':>9} "
          f"{'max diff vs eager':>18}")
    for architecture, size in plans:
        for steps in steps_list:
            card = results.get((architecture, baseline), {}).get(steps, {}).get("median_s")
            for (arch, side), rows in results.items():
                if arch != architecture:
                    continue
                if steps not in rows:
                    continue
                row = rows[steps]
                difference = {None: "", -1: "flat image!"}.get(row["difference"], f"{row['difference']}/255")
                print(f"{architecture:6} {steps:>5} {side:>14} {row['median_s'] * 1000:>8.1f} {1 / row['median_s']:>7.2f} "
                      f"{row['median_s'] / card if card else float('nan'):>8.2f} {row['peak'] / 2**30:>7.2f}Gi {difference:>18}")
    memory = "peak CUDA memory allocated" if args.device == "cuda" else "peak resident memory of each side's process"
    print(f"\nvs {baseline} = the side's time / the {'drawing demo' if args.scribble else 'model card'} code's (below 1: "
          f"faster). Peak: {memory}. Sizes: "
          + ", ".join(f"{architecture} {size}²" for architecture, size in plans) + ".")

if __name__ == "__main__":
    main()
