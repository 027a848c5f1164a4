"""Which backend is faster on this machine: full-size SD1.5 (random weights, a fused rank-64 LoRA) at 512², 1 and
4 steps, through the engines themselves, each with the full VAE and with TAESD decode.

    python bench/backends.py [--device cpu|cuda] [--size 512] [--repeats N]

Rows, in one run. On the CPU: torch fp32 (the baseline), torch bf16 (only where the CPU has native bf16
arithmetic), ONNX Runtime fp32 with basic graph optimisations, with all of them (layout transforms and
fusions) and memory patterns on (ONNX Runtime's default), and with all of them and memory patterns off (what the
app uses). On CUDA: torch fp16 (the baseline) against ONNX Runtime's CUDA execution provider on the fp16
export; that row needs `onnxruntime-gpu` in place of `onnxruntime` (on a machine without an index, carry its
wheel and `pip install --no-deps` it). `--rows a,b` runs some of them, the first named the baseline.

Each row runs in its own process, so its peak memory is its own (resident memory on the CPU; device memory in
use on CUDA, sampled). The ONNX export is made once beforehand and timed. Time per image is the median of
`--repeats` runs after warm-up runs, prompt to 8-bit image.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

ROWS = {"cpu": ("torch-fp32", "torch-bf16", "onnx-basic", "onnx-pattern", "onnx-all"),
        "cuda": ("torch-fp16", "onnx-cuda")}
CASES = ((1, "vae"), (1, "taesd"), (4, "vae"), (4, "taesd"))
LORA = "Hyper-SD15-1step-lora.safetensors"


class DeviceMemory:
    """Peak GPU memory in use on the whole device while running (ONNX Runtime allocates outside torch)."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.baseline = self._used()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _used(self) -> int:
        free, total = self.torch.cuda.mem_get_info()
        return total - free

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._used() - self.baseline)
            time.sleep(0.005)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_row(row: str, device: str, work: Path, size: int, repeats: int) -> dict:
    """One row in this process: seconds per image for every case, and the peak memory."""
    from peak_memory import peak_resident_bytes

    from hypersd_desktop.core.hashes import HashCache
    from hypersd_desktop.engine.types import GenerationRequest, LoraSpec

    memory = DeviceMemory() if device == "cuda" else None
    backend, _, variant = row.partition("-")
    if backend == "torch":
        from hypersd_desktop.engine.torch_engine import TorchEngine

        engine, dtype = TorchEngine(), variant
    else:
        from hypersd_desktop.engine.onnx.engine import OnnxEngine
        from hypersd_desktop.engine.onnx.export import ExportCache
        from hypersd_desktop.engine.onnx.providers import CPU, CUDA

        provider = CUDA if device == "cuda" else dataclasses.replace(CPU, memory_pattern=True) \
            if variant == "pattern" else dataclasses.replace(CPU, optimisation=variant)
        # The app's hash cache, as the app uses it: the files were hashed when the export was made, and a request
        # only compares their size and mtime.
        engine = OnnxEngine(ExportCache(work / "onnx", HashCache(work / "hashes.json").sha256, budget_bytes=None),
                            provider)
        dtype = "fp16" if device == "cuda" else "fp32"
    base = GenerationRequest(prompt="a lighthouse on a cliff at dusk, oil painting", base_model=str(work / "model"),
                             loras=(LoraSpec(str(work / LORA)),), seed=1, width=size, height=size, device=device,
                             dtype=dtype, backend=backend, taesd=str(work / "taesd"))
    started = time.perf_counter()
    engine.generate(base.replace(steps=1, decoder="taesd"))  # warm-up: loading, sessions, both decoders
    second = time.perf_counter()
    engine.generate(base.replace(steps=1))
    figures = {"load_s": time.perf_counter() - started, "second_s": time.perf_counter() - second}
    for steps, decoder in CASES:
        request = base.replace(steps=steps, decoder=decoder)
        times = []
        for _ in range(repeats):
            begun = time.perf_counter()
            engine.generate(request)
            times.append(time.perf_counter() - begun)
        figures[f"{steps}-{decoder}"] = statistics.median(times)
    figures["peak"] = memory.stop() if memory else peak_resident_bytes()
    if backend == "torch":
        import torch

        figures["runtime"] = f"torch {torch.__version__}"
    else:
        import onnxruntime

        figures["runtime"] = f"onnxruntime {onnxruntime.__version__} ({provider.ort_name})"
    return figures


def prepare(work: Path, device: str) -> float:
    """The random model, LoRA and TAESD in `work`, and the export the ONNX rows read; returns the export's seconds."""
    import torch
    from diffusers import AutoencoderTiny
    from engine_vs_model_card import build_lora, build_random_model

    from hypersd_desktop.core.hashes import HashCache
    from hypersd_desktop.engine.onnx.export import ExportCache, ExportSpec
    from hypersd_desktop.engine.types import LoraSpec

    build_random_model("sd15", work / "model")
    lora = build_lora(work / "model", "sd15")  # written beside the model, named LORA
    torch.manual_seed(0)
    AutoencoderTiny().save_pretrained(work / "taesd")  # TAESD's own architecture, random weights
    started = time.perf_counter()
    dtype = "fp16" if device == "cuda" else "fp32"
    ExportCache(work / "onnx", HashCache(work / "hashes.json").sha256, budget_bytes=None).export(
        ExportSpec("sd15", str(work / "model"), loras=(LoraSpec(str(lora)),), dtype=dtype))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=None, help="runs per case (default: 1 on the CPU, 5 on CUDA)")
    parser.add_argument("--rows", help="comma-separated rows to run, the first the baseline (default: all)")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.device == "cuda" else 1)
    if args.row:
        print(json.dumps(run_row(args.row, args.device, args.work, args.size, repeats)))
        return 0

    from hypersd_desktop.engine.devices import cpu_supports_bf16

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        export_s = prepare(work, args.device)
        print(f"ONNX export ({'fp16' if args.device == 'cuda' else 'fp32'}) made beforehand in {export_s:.0f} s")
        rows = [row for row in ROWS[args.device] if row != "torch-bf16" or cpu_supports_bf16()]
        if args.rows:
            rows = [row for row in args.rows.split(",") if row in rows]
        if args.device == "cpu" and "torch-bf16" not in rows:
            print("torch bf16: skipped, this CPU has no native bf16 arithmetic (avx512_bf16 / AMX)")
        results = {}
        for row in rows:
            done = subprocess.run([sys.executable, __file__, "--row", row, "--work", str(work), "--size", str(args.size),
                                   "--repeats", str(repeats), "--device", args.device], capture_output=True, text=True)
            if done.returncode:
                print(f"{row}: failed\n{done.stderr[-3000:]}")
                continue
            results[row] = json.loads(done.stdout.strip().splitlines()[-1])

    where = f"CPU ({os.cpu_count()} logical cores)" if args.device == "cpu" else "CUDA"
    unit, scale = ("ms", 1000) if args.device == "cuda" else ("s", 1)
    print(f"\nSD1.5 {args.size}², random weights + fused LoRA, {where}, {unit} per image "
          f"(median of {repeats} after warm-up)")
    header = "".join(f"{f'{s} step' + ('s' if s > 1 else '') + ' ' + d:>16}" for s, d in CASES)
    memory = "peak RSS" if args.device == "cpu" else "peak GPU"
    print(f"{'backend':14}{header}{'first load':>12}{'2nd image':>11}{memory:>11}")
    for row, figures in results.items():
        cells = "".join(f"{figures[f'{s}-{d}'] * scale:16.{0 if scale > 1 else 2}f}" for s, d in CASES)
        print(f"{row:14}{cells}{figures['load_s']:11.1f}s{figures['second_s']:10.1f}s{figures['peak'] / 2**30:8.1f}GiB")
    print("runtimes: " + "; ".join(f"{row}: {figures['runtime']}" for row, figures in results.items()))
    first = next(iter(results), None)
    for row, figures in results.items():
        if row != first:
            ratios = " ".join(f"{results[first][f'{s}-{d}'] / figures[f'{s}-{d}']:.2f}×" for s, d in CASES)
            print(f"speed-up of {row} over {first}: {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
