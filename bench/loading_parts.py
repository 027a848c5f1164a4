"""Loading full-size SDXL parts from single files as the engine does: a ControlNet, a Control-LoRA, a UNet.

    python bench/loading_parts.py [--device cpu|cuda] [--dtype bf16|fp16|fp32] [--repeats 3]

Random weights in the real layouts: the SDXL UNet from the bundled config (2.57 G parameters).

- ControlNets: a Control-LoRA of rank 128 with the published conditioning embedding (as
  `control-lora-canny-rank128`, fp16) against the same ControlNet whole in the original single-file
  layout (fp16, as the `*_fp16.safetensors` ControlNets people have), each made as the engine makes it
  (`load_controlnet`, then to the device), median of `--repeats`, and compared with the ControlNet it
  stands for.
- A whole UNet file (the Hyper-SDXL 1-step UNet's layout, fp16, 5.1 GB), the engine's way
  (`load_unet_override`) against the plain one (built in fp32 with random weights, filled, converted),
  each in a fresh process for its own peak memory: load time and peak resident memory.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

HINT = (16, 32, 96, 256)  # the published conditioning embedding: 8× down to the latents


def build_unet(dtype, device: str):
    import torch
    from diffusers import UNet2DConditionModel

    from hypersd_desktop.core.resources import resources_dir

    config = json.loads((resources_dir() / "configs" / "sdxl" / "unet" / "config.json").read_text())
    torch.manual_seed(0)
    return UNet2DConditionModel.from_config(config).to(device=device, dtype=dtype).eval()


def timed(make, repeats: int, device: str):
    import torch

    seconds, model = [], None
    for _ in range(repeats):
        del model
        started = time.perf_counter()
        model = make()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), model


def load_unet_file(way: str, path: str, dtype_name: str) -> dict:
    """One UNet load in this process: seconds and the peak resident memory, and a checksum of the weights."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    from hypersd_desktop.core.resources import resources_dir
    from hypersd_desktop.engine.devices import TORCH_DTYPES
    from hypersd_desktop.engine.loading import load_unet_override
    from peak_memory import peak_resident_bytes  # beside this script

    dtype = TORCH_DTYPES[dtype_name]
    config = json.loads((resources_dir() / "configs" / "sdxl" / "unet" / "config.json").read_text())
    started = time.perf_counter()
    if way == "engine":
        unet = load_unet_override(path, config, "sdxl", dtype)
    else:
        unet = UNet2DConditionModel.from_config(config)
        unet.load_state_dict(load_file(path))
        unet = unet.to(dtype)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak": peak_resident_bytes(), "checksum": float(sum(p.double().sum() for p in unet.parameters()))}


def compare_unet_loads(path: Path, dtype_name: str) -> None:
    print(f"UNet file {path.stat().st_size / 1e9:.2f} GB (fp16), loaded in {dtype_name}, each way in its own process:")
    for way in ("plain", "engine"):
        run = subprocess.run([sys.executable, __file__, "--unet-run", way, str(path), dtype_name],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(f"  {way}: failed\n{run.stderr[-2000:]}")
            continue
        figures = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"  {way:7} {figures['seconds']:6.2f} s   peak memory {figures['peak'] / 2**30:5.2f} GiB   "
              f"(checksum {figures['checksum']:.8g})")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--unet-run":
        print(json.dumps(load_unet_file(*sys.argv[2:])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), help="default: fp16 on CUDA, bf16 on the CPU")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    if arguments.repeats < 1:
        parser.error("--repeats must be at least 1")

    import torch
    from safetensors.torch import save_file

    import ldm_format
    import tiny_models
    from hypersd_desktop.engine.controlnet_files import load_controlnet
    from hypersd_desktop.engine.devices import TORCH_DTYPES

    dtype = TORCH_DTYPES[arguments.dtype or ("fp16" if arguments.device == "cuda" else "bf16")]
    unet = build_unet(dtype, arguments.device)
    config = dict(unet.config)
    with tempfile.TemporaryDirectory() as folder:
        # rounded to fp16 as the file stores them, so the reference is made of what the loader reads
        tensors = {key: tensor.half().float() for key, tensor in
                   tiny_models.control_lora_tensors(unet, rank=128, hint=HINT).items()}
        expected = tiny_models.controlnet_from_control_lora(unet, tensors, hint=HINT)
        control_lora = Path(folder) / "control-lora-canny-rank128.safetensors"
        original = ldm_format.convert_controlnet(tensors, config["layers_per_block"], prefix="")
        save_file({key: tensor.half() for key, tensor in original.items()} | {"lora_controlnet": torch.zeros(1)},
                  control_lora)
        whole = Path(folder) / "controlnet-canny-sdxl_fp16.safetensors"
        save_file({key: tensor.half().contiguous() for key, tensor in
                   ldm_format.convert_controlnet(expected.state_dict(), config["layers_per_block"], "").items()},
                  whole)
        del tensors, original
        expected = expected.to(dtype=dtype)  # held beside the runs: in the run's dtype, not fp32
        parameters = sum(p.numel() for p in expected.parameters())
        print(f"SDXL UNet {sum(p.numel() for p in unet.parameters()) / 1e9:.2f} G parameters, {dtype}, "
              f"{arguments.device}; ControlNet {parameters / 1e9:.2f} G parameters")
        print(f"files: Control-LoRA {control_lora.stat().st_size / 1e6:.0f} MB, whole ControlNet "
              f"{whole.stat().st_size / 1e6:.0f} MB (fp16)")
        reference = expected.to(device=arguments.device).state_dict()

        def difference(model) -> float:
            return max(float((tensor.float() - reference[key].float()).abs().max())
                       for key, tensor in model.state_dict().items())

        baseline, loaded = timed(lambda: load_controlnet(whole, dtype, config).to(arguments.device),
                                 arguments.repeats, arguments.device)
        print(f"  whole ControlNet file  {baseline:6.2f} s   (median of {arguments.repeats}; largest weight "
              f"difference from the ControlNet {difference(loaded):.2g}, fp16 file)")
        del loaded
        seconds, made = timed(lambda: load_controlnet(control_lora, dtype, config, unet).to(arguments.device),
                              arguments.repeats, arguments.device)
        print(f"  Control-LoRA           {seconds:6.2f} s   ({seconds / baseline:.2f}× the whole file; "
              f"largest weight difference from the ControlNet it stands for {difference(made):.2g})")
        made = expected = reference = None
        path = Path(folder) / "Hyper-SDXL-1step-Unet.safetensors"
        save_file({key: tensor.half().contiguous().cpu() for key, tensor in unet.state_dict().items()}, path)
        unet = None  # the loads below have the memory to themselves
        gc.collect()
        compare_unet_loads(path, arguments.dtype or ("fp16" if arguments.device == "cuda" else "bf16"))


if __name__ == "__main__":
    main()
