"""Each part of a model in each layout and precision the engine could run it in: ms per call, and how far its
output is from the fp32 one. It is what `devices.CHANNELS_LAST` and the VAE's dtype (`devices.placement_on`) are
chosen by.

Random full-size weights (as bench/engine_vs_model_card.py builds them; shared through HYPERSD_BENCH_MODELS),
batch 1, median of --repeats calls after warm-up:

- the UNet step (SD1.5 at 512², SDXL at 1024²; fp16 on a GPU) and the scribble ControlNet's (SD1.5), with their
  weights as loaded (contiguous) and channels_last, eager and replayed as a CUDA graph;
- a T2I-Adapter reading its picture (TencentARC's full adapter: SD1.5's, and SDXL's `full_adapter_xl`), which runs
  once an image where a ControlNet runs at every step;
- the VAE decode, the same four ways, in each precision: fp16 (as the fp16-fix VAE runs), bf16 (the stock SDXL
  VAE on GPUs with native bf16) and fp32. Each decode's image is compared with the fp32 eager one (8 bits: the
  largest and the mean difference, and PSNR). Random weights overflow fp16 less than a trained VAE does, so the
  fp16 rows say nothing of the stock VAE's overflow; --vae takes a trained one (a diffusers folder).

    python bench/parts.py --device cuda                   # SD1.5 and SDXL
    python bench/parts.py --device cpu --arch sd15 --size 128 --repeats 3   # a try of the script
    python bench/parts.py --device cpu --arch sd15 --no-vae --repeats 3     # UNet, ControlNet, T2I-Adapter
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_vs_model_card as models  # noqa: E402
from hypersd_desktop.engine import graphs  # noqa: E402
from hypersd_desktop.engine.devices import lay_out  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def timed(call, device: str, repeats: int) -> float:
    """Median ms of `call` after two warm-up calls."""
    for _ in range(2):
        call()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        call()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def ways(module: torch.nn.Module, step, inputs: list[torch.Tensor], device: str, repeats: int):
    """(layout, how, ms, output) for `step(*inputs)` with `module`'s weights contiguous and channels_last, eager and
    (on CUDA) from a graph."""
    for layout in ("contiguous", "channels_last"):
        lay_out(module, layout == "channels_last")
        with torch.inference_mode():
            yield layout, "eager", timed(lambda: step(*inputs), device, repeats), step(*inputs).clone()
            if device == "cuda":
                output, replay = graphs.record_cuda_graph(step, inputs)
                yield layout, "graph", timed(replay, device, repeats), output.clone()
                del output, replay
        lay_out(module, False)


def image(decoded: torch.Tensor) -> np.ndarray:
    return ((decoded[0].float() * 0.5 + 0.5).clamp(0, 1) * 255).round().cpu().numpy()


def compared(ours: np.ndarray, reference: np.ndarray) -> dict:
    difference = np.abs(ours - reference)
    if not np.isfinite(ours).all():
        return {"max": "NaN"}
    mse = float((difference**2).mean())
    return {"max": int(difference.max()), "mean": round(float(difference.mean()), 3),
            "psnr_db": round(10 * np.log10(255**2 / mse), 1) if mse else "inf"}


def unet_rows(folder: Path, architecture: str, size: int, device: str, dtype: torch.dtype, repeats: int):
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype).to(device).eval()
    latents = torch.randn(1, 4, size // 8, size // 8, device=device, dtype=dtype)
    timestep = torch.tensor(999, device=device)
    width = unet.config.cross_attention_dim
    text = torch.randn(1, 77, width, device=device, dtype=dtype)
    extra = []
    if architecture == "sdxl":
        extra = [torch.randn(1, 1280, device=device, dtype=dtype),
                 torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=dtype)]

    def unet_step(sample, t, hidden, *added):
        conditions = {"text_embeds": added[0], "time_ids": added[1]} if added else None
        return unet(sample, t, hidden, added_cond_kwargs=conditions, return_dict=False)[0]

    for layout, how, ms, _ in ways(unet, unet_step, [latents, timestep, text, *extra], device, repeats):
        yield {"part": f"{architecture} UNet step", "layout": layout, "how": how, "dtype": str(dtype)[6:], "ms": ms}
    yield from adapter_rows(architecture, size, device, dtype, repeats)
    if architecture != "sd15":
        return
    controlnet = ControlNetModel.from_pretrained(models.build_controlnet(folder), torch_dtype=dtype).to(device).eval()
    drawing = torch.rand(1, 3, size, size, device=device, dtype=dtype)

    def controlnet_step(sample, t, hidden, condition):
        down, middle = controlnet(sample, t, hidden, controlnet_cond=condition, return_dict=False)
        return middle

    for layout, how, ms, _ in ways(controlnet, controlnet_step, [latents, timestep, text, drawing], device, repeats):
        yield {"part": "sd15 ControlNet", "layout": layout, "how": how, "dtype": str(dtype)[6:], "ms": ms}


def adapter_rows(architecture: str, size: int, device: str, dtype: torch.dtype, repeats: int):
    """A full-size T2I-Adapter (random weights) reading a picture, as the engine runs it once an image."""
    from diffusers import T2IAdapter

    xl = architecture == "sdxl"
    adapter = T2IAdapter(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2,
                         downscale_factor=16 if xl else 8, adapter_type="full_adapter_xl" if xl else "full_adapter")
    adapter = adapter.to(device=device, dtype=dtype).eval()
    picture = torch.rand(1, 3, size, size, device=device, dtype=dtype)

    def read(x):
        return adapter(x)[-1]

    for layout, how, ms, _ in ways(adapter, read, [picture], device, repeats):
        yield {"part": f"{architecture} T2I-Adapter (once an image)", "layout": layout, "how": how,
               "dtype": str(dtype)[6:], "ms": ms}


def vae_rows(vae_folder: Path, architecture: str, size: int, device: str, precisions: list[str], repeats: int):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(vae_folder, torch_dtype=torch.float32).to(device).eval()
    generator = torch.Generator(device).manual_seed(0)
    latents = torch.randn(1, 4, size // 8, size // 8, device=device, generator=generator) / vae.config.scaling_factor
    reference = None
    for name in ["fp32", *(p for p in precisions if p != "fp32")]:
        vae.to(DTYPES[name])
        inputs = [latents.to(DTYPES[name])]

        def decode(z):
            return vae.decode(z, return_dict=False)[0]

        for layout, how, ms, output in ways(vae, decode, inputs, device, repeats):
            pixels = image(output)
            if reference is None:
                reference = pixels
            yield {"part": f"{architecture} VAE decode", "layout": layout, "how": how, "dtype": name, "ms": ms,
                   "vs fp32 eager": compared(pixels, reference)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--arch", default=None, help="sd15, sdxl or both (default: both on a GPU, sd15 on the CPU)")
    parser.add_argument("--size", type=int, default=None, help="image size (default 512 for SD1.5, 1024 for SDXL)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--vae", type=Path, default=None, help="a trained VAE (diffusers folder) for the decode rows")
    parser.add_argument("--no-vae", action="store_true", help="leave the VAE decode rows out")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    architectures = (args.arch or ("sd15,sdxl" if cuda else "sd15")).split(",")
    dtype = torch.float16 if cuda else torch.float32
    precisions = ["fp16", "bf16", "fp32"] if cuda else ["bf16", "fp32"]  # fp16 on the CPU: not every kernel
    print(f"# {torch.cuda.get_device_name() if cuda else 'CPU'}, torch {torch.__version__}; ms per call, median of "
          f"{args.repeats}", flush=True)
    models.quiet_libraries()
    with tempfile.TemporaryDirectory() as tmp:
        for architecture in architectures:
            folder, _ = models.random_model(architecture, Path(tmp))
            size = args.size or (1024 if architecture == "sdxl" else 512)
            vae_folder = args.vae if args.vae is not None else folder / "vae"
            decodes = [] if args.no_vae else vae_rows(vae_folder, architecture, size, args.device, precisions,
                                                      args.repeats)
            for row in [*unet_rows(folder, architecture, size, args.device, dtype, args.repeats), *decodes]:
                row["ms"] = round(row["ms"], 2)
                print(json.dumps({"size": size, **row}), flush=True)
            if cuda:
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
