"""Benchmark: steps compiled in the background (engine/compiled.py), cold and warm, and what the
person sees meanwhile.

A random-weight model (full-size SD1.5 or SDXL as in bench/engine_vs_model_card.py, or the tests'
tiny SD1.5 for a quick try on the CPU), the unified LoRA, TCD, --steps steps. Each phase runs in a
fresh process, as after a restart:

- cold: an empty package folder and an empty inductor cache. Images are asked for one after another
  from the start; the figures are the plain (eager) image time before any compiling, the image time
  while the compile runs in the background (the worker's own slowdown), the time until both parts
  are compiled, then the compiled image time and its largest difference from the eager image.
- warm: the packages of the cold phase, a new empty inductor cache. Time from the process start (the
  model loaded) to the first image, and to the first image made with the compiled steps.
- window: the app's side of a cold compile: a `WorkerBridge` and its Qt event loop in this process,
  the real worker process generating on --device meanwhile (with a fresh home, so it compiles from
  scratch on CUDA; on the CPU the worker does not compile, and this phase measures plain generation).
  A 10 ms timer measures how late the event loop runs: the largest lateness is the stall a person
  would feel in the window.

    python bench/compile_cache.py --device cuda --arch sdxl --steps 1
    python bench/compile_cache.py --arch tiny          # the CPU try-out: minutes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SIZES = {"tiny": 64, "sd15": 512, "sdxl": 1024}


def build(arch: str, root: Path) -> tuple[Path, Path]:
    if arch == "tiny":
        import torch
        from diffusers import UNet2DConditionModel

        import tiny_models

        base = tiny_models.save_pipeline("sd15", root / "sd15")
        lora = root / "Hyper-SD15-1step-lora.safetensors"
        with torch.no_grad():
            tiny_models.kohya_lora(UNet2DConditionModel.from_pretrained(base, subfolder="unet"), lora)
        return base, lora
    from engine_vs_model_card import random_model

    return random_model(arch, root)


def request_for(args, base: Path, lora: Path):
    from hypersd_desktop.engine import GenerationRequest, LoraSpec

    return GenerationRequest(prompt="a lighthouse on a cliff at dusk", base_model=str(base), seed=1,
                             loras=(LoraSpec(str(lora)),), steps=args.steps, width=SIZES[args.arch],
                             height=SIZES[args.arch], device=args.device, backend="torch",
                             dtype="fp16" if args.device == "cuda" else "fp32")


def timed(engine, request) -> tuple[float, object]:
    import torch

    started = time.perf_counter()
    result = engine.generate(request)[0]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - started) * 1000, result


def phase(args, base: Path, lora: Path, packages: Path, which: str) -> dict:
    """One phase in this process (called in a fresh process by `main`)."""
    process_started = time.perf_counter()
    import numpy as np

    from hypersd_desktop.engine.compiled import Compiler
    from hypersd_desktop.engine.torch_engine import TorchEngine

    request = request_for(args, base, lora)
    compiler = Compiler(packages)
    engine = TorchEngine(compiler=compiler)
    engine.prepare(request)
    row: dict = {"load_s": time.perf_counter() - process_started}
    if which == "cold":
        plain = [timed(engine, request.replace(compile=False))[0] for _ in range(args.repeats + 1)][1:]
        eager_image = engine.generate(request.replace(compile=False, seed=7))[0].image
        started = time.perf_counter()
        meanwhile = []
        while True:
            meanwhile.append(timed(engine, request)[0])
            if compiler.wait(0):
                break
        row.update(plain_ms=statistics.median(plain), during_ms=statistics.median(meanwhile),
                   during_max_ms=max(meanwhile), images_during=len(meanwhile),
                   compile_s=time.perf_counter() - started)
    else:
        first_ms, _ = timed(engine, request)
        row["first_image_s"] = time.perf_counter() - process_started
        row["first_ms"] = first_ms
        while not compiler.wait(0):
            timed(engine, request)
        row["compiled_ready_s"] = time.perf_counter() - process_started
        eager_image = engine.generate(request.replace(compile=False, seed=7))[0].image
    timed(engine, request)  # the graphs (CUDA) are recorded around the compiled steps here
    row["first_compiled_image_s"] = time.perf_counter() - process_started
    compiled_ms = [timed(engine, request)[0] for _ in range(args.repeats)]
    row["compiled_ms"] = statistics.median(compiled_ms)
    image = engine.generate(request.replace(seed=7))[0].image
    row["difference"] = int(np.abs(np.asarray(image, np.int16) - np.asarray(eager_image, np.int16)).max())
    row["status"] = compiler.status()
    return row


def window_phase(args, base: Path, lora: Path, home: Path) -> dict:
    """The event loop's lateness in this process while the worker generates (and on CUDA compiles)."""
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from hypersd_desktop.worker.bridge import WorkerBridge

    os.environ["HYPERSD_HOME"] = str(home)
    if args.compile_on_cpu:  # the worker compiles on the CPU as it does on CUDA (engine/torch_engine.py)
        os.environ["HYPERSD_BENCH_COMPILE_ON_CPU"] = "1"
    app = QApplication.instance() or QApplication([])
    bridge = WorkerBridge()
    notices: list[str] = []
    bridge.notice.connect(lambda notice: notices.append(notice.text))
    lateness: list[float] = []
    clock = QElapsedTimer()
    ticker = QTimer(interval=10)
    last = [0.0]

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        lateness.append(now - last[0] - 10)
        last[0] = now

    ticker.timeout.connect(tick)
    finished = []
    bridge.finished.connect(finished.append)
    bridge.failed.connect(lambda failed: finished.append(failed) or print("# failed:", failed.message, file=sys.stderr))
    bridge.start()
    request = request_for(args, base, lora)
    deadline = time.monotonic() + args.window_s
    clock.start()
    ticker.start()
    submitted = 0
    while time.monotonic() < deadline:
        if len(finished) == submitted:
            bridge.client.submit(request)
            submitted += 1
        app.processEvents()
        time.sleep(0.002)
        if any(text.startswith(("Optimised the VAE", "Could not optimise the VAE", "Compiled the VAE")) for text in notices):
            break
        if args.device != "cuda" and not args.compile_on_cpu and len(finished) >= 5:  # nothing compiles on the CPU
            break
    ticker.stop()
    bridge.shutdown()
    return {"jobs": len(finished), "max_stall_ms": max(lateness, default=0.0),
            "p99_stall_ms": statistics.quantiles(lateness, n=100)[98] if len(lateness) > 100 else None,
            "notices": notices[-3:]}


def run_phase(which: str, args, base: Path, lora: Path, packages: Path, inductor: Path) -> dict:
    command = [sys.executable, __file__, "--phase", which, "--base", str(base), "--lora", str(lora),
               "--packages", str(packages), "--device", args.device, "--arch", args.arch, "--steps", str(args.steps),
               "--repeats", str(args.repeats), "--window-s", str(args.window_s)]
    if args.compile_on_cpu:
        command.append("--compile-on-cpu")
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(inductor)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    if done.returncode != 0:
        raise SystemExit(f"the {which} phase failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--arch", default="tiny", choices=sorted(SIZES))
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--window-s", type=float, default=600, help="the window phase's longest run")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per phase")
    parser.add_argument("--skip-window", action="store_true")
    parser.add_argument("--window-only", action="store_true", help="the window phase alone")
    parser.add_argument("--compile-on-cpu", action="store_true",
                        help="window phase on the CPU: the worker compiles there, as it does on CUDA")
    parser.add_argument("--phase", choices=["cold", "warm", "window"], help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lora", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--packages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "window":
        print(json.dumps(window_phase(args, args.base, args.lora, args.packages)))
        return
    if args.phase:
        print(json.dumps(phase(args, args.base, args.lora, args.packages, args.phase)))
        return
    import torch

    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"# {name}, torch {torch.__version__}, {args.arch} {SIZES[args.arch]}², {args.steps} step(s), "
          f"median of {args.repeats}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base, lora = build(args.arch, root)
        packages = root / "packages"
        cold = warm = window = None
        if not args.window_only:
            cold = run_phase("cold", args, base, lora, packages, root / "inductor-cold")
            print(f"# cold: {json.dumps(cold)}", flush=True)
            warm = run_phase("warm", args, base, lora, packages, root / "inductor-warm")
            print(f"# warm: {json.dumps(warm)}", flush=True)
        if not args.skip_window:
            window = run_phase("window", args, base, lora, root / "home", root / "inductor-window")
            print(f"# window: {json.dumps(window)}", flush=True)
    print()
    if cold is not None:
        print_compile(cold, warm)
    if window is not None:
        p99 = "n/a" if window["p99_stall_ms"] is None else f"{window['p99_stall_ms']:.1f} ms"
        print(f"window event loop during the worker's run: max lateness {window['max_stall_ms']:.1f} ms, p99 {p99} "
              f"({window['jobs']} jobs; last notices {window['notices']})")


def print_compile(cold: dict, warm: dict) -> None:
    print(f"plain (eager) image                      {cold['plain_ms']:8.1f} ms")
    print(f"image while compiling (median / max)     {cold['during_ms']:8.1f} / {cold['during_max_ms']:.1f} ms "
          f"({cold['images_during']} images)")
    print(f"compile, both parts (cold)               {cold['compile_s']:8.1f} s")
    print(f"compiled image                           {cold['compiled_ms']:8.1f} ms "
          f"({cold['plain_ms'] / cold['compiled_ms']:.2f}× the plain one; max difference {cold['difference']}/255)")
    print(f"after a restart, first image (cold / warm) {cold['load_s'] + cold['plain_ms'] / 1000:6.1f} / "
          f"{warm['first_image_s']:.1f} s after the process started (model loaded in {warm['load_s']:.1f} s)")
    print(f"after a restart, first compiled image      cold {cold['first_compiled_image_s']:6.1f} s / warm "
          f"{warm['first_compiled_image_s']:.1f} s (warm: compiled steps ready at {warm['compiled_ready_s']:.1f} s)")


if __name__ == "__main__":
    main()
