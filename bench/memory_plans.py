"""Benchmark: peak memory and time of the engine's memory plans, for choosing the default (issue 16: SDXL
1024² within 7.5 GiB on CUDA).

Random full-size weights (the bundled configs, as bench/engine_vs_model_card.py builds them), the unified
LoRA fused, TCD, guidance 0. Each plan runs in a fresh process, so its peak is its own: one warm-up call,
then the median of --repeats calls, and the image of seed 7 against the eager plan's (max difference).

- eager: the engine without graphs (the fp16-safe VAE on SDXL, as the app uses it when installed);
- fast: UNet and VAE decode as CUDA graphs (the app's default on NVIDIA);
- fast-taesd: the fast plan decoding with TAESD;
- vae-tiling: eager, the VAE decoding in tiles (Settings: VAE tiling);
- offload: each model moved to the GPU only while it runs (Settings: model offload);
- fast-in-7.5GiB: the fast plan with the process held to 7.5 GiB of the GPU (`set_per_process_memory_fraction`),
  as on an 8 GB card: the engine decodes in tiles where a whole decode does not fit.

Also printed: the weights each component holds (the floor of any plan that keeps them all on the device).

    python bench/memory_plans.py --device cuda                 # SDXL 1024², 4 steps, fp16
    python bench/memory_plans.py --device cpu --arch sd15 --size 128 --steps 1 --repeats 1   # a try of the script
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_vs_model_card as models  # noqa: E402  (the random full-size models and the timing helpers)
from hypersd_desktop.core.vocab import Decoder, Preview  # noqa: E402
from hypersd_desktop.engine import GenerationRequest, LoraSpec  # noqa: E402
from hypersd_desktop.engine.torch_engine import TorchEngine, quiet_libraries  # noqa: E402

PLANS = {
    "eager": {"cuda_graphs": False},
    "fast": {"cuda_graphs": True},
    "fast-taesd": {"cuda_graphs": True, "decoder": Decoder.TAESD},
    "vae-tiling": {"cuda_graphs": False, "vae_tiling": True},
    "offload": {"cuda_graphs": False, "cpu_offload": True},
    "fast-in-7.5GiB": {"cuda_graphs": True, "cap_gib": 7.5},
}
CUDA_ONLY = ("fast", "fast-taesd", "offload", "fast-in-7.5GiB")


def request_for(folder: Path, lora: Path, args, plan: str) -> GenerationRequest:
    request = GenerationRequest(prompt=models.PROMPT, base_model=str(folder), loras=(LoraSpec(str(lora)),), seed=0,
                                width=args.size, height=args.size, steps=args.steps, device=args.device,
                                dtype=args.dtype, compile=False, preview=Preview.NONE)
    if folder.name == "sdxl":
        request = request.replace(vae=str(folder.parent / "sdxl-fp16-vae"))
    changes = dict(PLANS[plan])
    changes.pop("cap_gib", None)
    if changes.get("decoder") == Decoder.TAESD:
        changes["taesd"] = str(folder.parent / f"{folder.name}-taesd")
    return request.replace(**changes)


def measure(folder: Path, lora: Path, args, plan: str) -> dict:
    """One plan, in this process: warm-up, timed calls, peak, the image of seed 7 (as a file for the comparison)."""
    import numpy as np

    cap = PLANS[plan].get("cap_gib")
    if cap is not None:
        torch.cuda.set_per_process_memory_fraction(cap * 2**30 / torch.cuda.get_device_properties(0).total_memory)
    engine = TorchEngine()
    request = request_for(folder, lora, args, plan)
    with models.PeakMemory(args.device) as memory:
        times = models.time_calls(lambda: engine.generate(request), args.repeats)
    image = np.asarray(engine.generate(request.replace(seed=7))[0].image)
    np.save(folder.parent / f"{plan}.npy", image)
    weights = {}
    pipe = engine._loaded.pipe
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, name, None)
        if module is not None:
            weights[name] = sum(p.numel() * p.element_size() for p in module.parameters())
    return {"median_s": statistics.median(times), "peak": memory.peak, "reserved": memory.reserved,
            "weights": weights}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--arch", default="sdxl", choices=["sd15", "sdxl"])
    parser.add_argument("--size", type=int, default=None, help="image size (default: 1024 for SDXL, 512 for SD1.5)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--plans", default=",".join(PLANS))
    parser.add_argument("--plan", choices=sorted(PLANS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lora-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.size = args.size or (1024 if args.arch == "sdxl" else 512)
    args.dtype = args.dtype or ("fp16" if args.device == "cuda" else "fp32")
    quiet_libraries()
    if args.plan:
        print(json.dumps(measure(args.folder, args.lora_file, args, args.plan)), flush=True)
        return
    import numpy as np

    plans = [plan for plan in args.plans.split(",") if plan]
    if args.device != "cuda":
        plans = [plan for plan in plans if plan not in CUDA_ONLY]
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"# {device}, {args.arch} {args.size}², {args.steps} steps, {args.dtype}, torch {torch.__version__}, "
          f"median of {args.repeats} after one warm-up", flush=True)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder, lora = models.random_model(args.arch, Path(tmp))
        for plan in plans:
            command = [sys.executable, __file__, "--plan", plan, "--folder", str(folder), "--lora-file", str(lora),
                       "--device", args.device, "--arch", args.arch, "--size", str(args.size), "--steps",
                       str(args.steps), "--dtype", args.dtype, "--repeats", str(args.repeats)]
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if done.returncode != 0:
                print(f"# {plan}: failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            rows[plan] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"# {plan}: {rows[plan]['median_s'] * 1000:.0f} ms, peak {rows[plan]['peak'] / 2**30:.2f} GiB",
                  flush=True)
        eager = np.load(folder.parent / "eager.npy").astype(np.int16) if "eager" in rows else None
        for plan in rows:
            other = np.load(folder.parent / f"{plan}.npy").astype(np.int16)
            rows[plan]["difference"] = None if eager is None else int(np.abs(other - eager).max())
    if not rows:
        sys.exit("no plan ran")
    weights = next(iter(rows.values()))["weights"]
    print("\nweights: " + ", ".join(f"{name} {size / 2**30:.2f} GiB" for name, size in weights.items())
          + f"; all {sum(weights.values()) / 2**30:.2f} GiB")
    print(f"{'plan':>14} {'ms':>8} {'peak':>9} {'reserved':>9} {'max diff vs eager':>18}")
    for plan, row in rows.items():
        difference = "" if row["difference"] is None else f"{row['difference']}/255"
        reserved = "" if row["reserved"] is None else f"{row['reserved'] / 2**30:.2f}Gi"
        print(f"{plan:>14} {row['median_s'] * 1000:>8.1f} {row['peak'] / 2**30:>7.2f}Gi {reserved:>9} "
              f"{difference:>18}")
    memory = "peak CUDA memory allocated" if args.device == "cuda" else "peak resident memory of the plan's process"
    print(f"\npeak: {memory}; reserved: what torch's allocator held at most (CUDA); the CUDA context (a few hundred "
          "MiB) comes on top on a GPU.")


if __name__ == "__main__":
    main()
