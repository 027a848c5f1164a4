"""Fusing a Hyper-SD LoRA into the full-size SD1.5 UNet: the engine's own fuse (engine/lora.py)
against diffusers' `load_lora_weights` + `fuse_lora` as the model card does it.

    python bench/lora_fuse.py

Random weights in the real layouts: the SD1.5 UNet (859.5 M parameters, from the bundled config)
and a kohya LoRA of rank 64 over the Hyper-SD target modules (the published files' layout,
about 270 MB). Each way runs in a fresh process (fp32, CPU) so its peak memory is its own;
the figures are wall time and the peak resident memory above the UNet already loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak_memory import peak_resident_bytes  # beside this script (its folder is on the path)

ROOT = Path(__file__).resolve().parents[1]


def build_unet():
    import torch
    from diffusers import UNet2DConditionModel

    from hypersd_desktop.core.resources import resources_dir

    config = json.loads((resources_dir() / "configs" / "sd15" / "unet" / "config.json").read_text())
    torch.manual_seed(0)
    return UNet2DConditionModel.from_config(config)


def current_rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def run_one(way: str, lora: str) -> dict:
    import torch

    unet = build_unet()
    before = current_rss_bytes()
    reference = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.weight.detach().clone()
    started = time.perf_counter()
    with torch.no_grad():
        if way == "engine":
            from hypersd_desktop.engine.lora import apply_layers, load_lora_layers

            components = {"unet": unet}
            layers, _ = load_lora_layers(lora, components, dict(unet.config))
            apply_layers(components, layers, 1.0)
        else:
            from diffusers import DDIMScheduler, StableDiffusionPipeline

            pipe = StableDiffusionPipeline(vae=None, text_encoder=None, tokenizer=None, unet=unet,
                                           scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None,
                                           requires_safety_checker=False)
            pipe.load_lora_weights(lora)
            pipe.fuse_lora()
            pipe.unload_lora_weights()  # keep the fused weights, drop the adapter layers
    seconds = time.perf_counter() - started
    changed = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.weight
    return {"way": way, "seconds": seconds, "extra_peak_bytes": peak_resident_bytes() - before,
            "changed": float((changed - reference).abs().max()), "checksum": float(changed.double().sum())}


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(run_one(sys.argv[1], sys.argv[2])))
        return
    sys.path.insert(0, str(ROOT / "tests"))
    import tiny_models

    with tempfile.TemporaryDirectory() as folder:
        lora = Path(folder) / "Hyper-SD15-1step-lora.safetensors"
        tiny_models.kohya_lora(build_unet(), lora, rank=64, alpha=64.0)
        print(f"LoRA: {lora.stat().st_size / 1e6:.0f} MB, rank 64, fp32; UNet 859.5 M parameters, fp32, CPU")
        for way in ("engine", "diffusers"):
            run = subprocess.run([sys.executable, __file__, way, str(lora)], capture_output=True, text=True)
            if run.returncode != 0:
                print(f"{way}: failed\n{run.stderr[-2000:]}")
                continue
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"  {way:10} {figures['seconds']:6.1f} s   peak memory above the UNet "
                  f"{figures['extra_peak_bytes'] / 2**20:7.0f} MiB   (max change of one weight "
                  f"{figures['changed']:.4f}, checksum {figures['checksum']:.6g})")


if __name__ == "__main__":
    main()
