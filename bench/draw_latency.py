"""Benchmark: the Draw tab's stroke-to-image latency, against the drawing demo's way, in the same run.

The window (offscreen) with its real worker and the tiny SD1.5 model, a tiny scribble ControlNet and
a unified 1-step LoRA (tests/tiny_models.py), at 64² or --size. Strokes are drawn with the mouse
(QTest) on the Draw tab's canvas; the time counted is from the stroke's last mouse event to the
moment the image made from that drawing is on screen (the pixmap set).

- single: one stroke, then wait for its image; repeated (the latency a person feels between strokes).
- burst: --strokes strokes, one every --interval ms (faster than an image is made); the latency of
  the last stroke, and how many jobs ran.
- demo: the drawing demo's way for the same burst: the pipeline (loaded once, in this process) called
  for every change in turn, with no cancellation; the last change's image comes after all the
  earlier ones. Its per-call time is measured here; its burst latency follows from those calls.

    python bench/draw_latency.py [--strokes 10] [--interval 50] [--repeat 5] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"


def make_models(root: Path) -> tuple[Path, Path, Path]:
    import torch
    from diffusers import UNet2DConditionModel

    import tiny_models

    base = tiny_models.save_pipeline("sd15", root / "tiny-sd15")
    controlnet = tiny_models.save_controlnet(base, root / "tiny-scribble")
    lora = root / "Hyper-SD15-1step-lora.safetensors"
    with torch.no_grad():
        tiny_models.kohya_lora(UNet2DConditionModel.from_pretrained(base, subfolder="unet"), lora)
    return base, controlnet, lora


def window_latency(args, models) -> dict:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from hypersd_desktop.app import build_app
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.models.library import ModelLibrary

    library = ModelLibrary(AppPaths.default())
    for model in models:
        library.import_path(model)
    library.close()
    parts = build_app(["bench"])
    window, tab = parts.window, parts.window.draw
    window.show()
    window.tabs.setCurrentWidget(tab)
    app = QApplication.instance()

    def wait_until(condition, seconds=300.0) -> None:
        deadline = time.perf_counter() + seconds
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError(tab.errors.text() or "no image came")
            app.processEvents()
            time.sleep(0.0005)

    wait_until(lambda: parts.bridge.client.ready is not None)
    tab.size_box.addItem(f"{args.size} × {args.size}", (args.size, args.size))
    tab.size_box.setCurrentIndex(tab.size_box.count() - 1)
    tab.prompt.setText("a house on a hill")
    shown_at: dict[int, float] = {}
    tab.live.shown.connect(lambda image: shown_at.__setitem__(image.serial, time.perf_counter()))

    def stroke(k: int) -> None:
        canvas = tab.canvas
        y = 0.1 + 0.8 * ((k * 0.37) % 1.0)
        points = [QPoint(round(x * canvas.width()), round(y * canvas.height())) for x in (0.1, 0.4, 0.7, 0.9)]
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
        for point in points[1:]:
            QTest.mouseMove(canvas, point)
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1])

    def serial() -> int:
        return tab.live._serial

    stroke(0)  # the first image loads the model
    wait_until(lambda: serial() in shown_at and tab.live.state == "idle")
    single = []
    for k in range(args.repeat):
        stroke(k + 1)
        done = time.perf_counter()
        wait_until(lambda: not tab.encoding)  # the drawing is encoded off the GUI thread, then asked for
        wanted = serial()
        wait_until(lambda: wanted in shown_at)
        single.append(shown_at[wanted] - done)
        wait_until(lambda: tab.live.state == "idle")
    bursts = []
    for k in range(args.repeat):
        before = tab.live.submitted
        for j in range(args.strokes):
            stroke(100 + k * args.strokes + j)
            pause_until = time.perf_counter() + args.interval / 1000
            while time.perf_counter() < pause_until:
                app.processEvents()
        done = time.perf_counter()
        wait_until(lambda: not tab.encoding)
        wanted = serial()
        wait_until(lambda: wanted in shown_at and tab.live.state == "idle")
        bursts.append((shown_at[wanted] - done, tab.live.submitted - before))
    parts.bridge.shutdown()
    window.close()
    return {"single": single, "bursts": bursts}


def demo_calls(args, models, calls: int) -> list[float]:
    """The demo's pipeline, loaded once, called per change: seconds per call (1 step, TCD, eta 1, scale 1)."""
    import numpy as np
    import torch
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, TCDScheduler
    from PIL import Image

    base, controlnet, lora = models
    pipe = StableDiffusionControlNetPipeline.from_pretrained(base, controlnet=ControlNetModel.from_pretrained(controlnet),
                                                             safety_checker=None)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(calls + 1):
        sketch = Image.fromarray((rng.random((args.size, args.size)) > 0.9).astype(np.uint8) * 255).convert("RGB")
        started = time.perf_counter()
        pipe("a house on a hill", image=sketch, num_inference_steps=1, guidance_scale=0.0, eta=1.0,
             controlnet_conditioning_scale=1.0, width=args.size, height=args.size,
             generator=torch.Generator().manual_seed(0))
        times.append(time.perf_counter() - started)
    return times[1:]  # the first call warms up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=int, default=10)
    parser.add_argument("--interval", type=float, default=50.0, help="ms between strokes in a burst")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["HYPERSD_HOME"] = str(Path(folder) / "home")
        models = make_models(Path(folder) / "models")
        ours = window_latency(args, models)
        demo = demo_calls(args, models, max(args.repeat, 5))

    ms = lambda seconds: f"{1000 * seconds:.0f} ms"  # noqa: E731
    call = statistics.median(demo)
    burst_span = (args.strokes - 1) * args.interval / 1000  # from the first stroke to the last
    # The demo queues every change: the last one's image comes once all earlier calls are done.
    demo_last = max(args.strokes * call - burst_span, call)
    print(f"Draw tab, tiny SD1.5 + scribble ControlNet, {args.size}², 1 step, this machine's CPU ({os.cpu_count()} cores)")
    print(f"single stroke → image shown: median {ms(statistics.median(ours['single']))}, "
          f"max {ms(max(ours['single']))} over {len(ours['single'])}")
    print(f"demo pipeline call (same model, in-process, no worker): median {ms(call)}")
    latencies = [latency for latency, _ in ours["bursts"]]
    jobs = [count for _, count in ours["bursts"]]
    print(f"burst of {args.strokes} strokes every {args.interval:.0f} ms → last drawing's image shown: "
          f"median {ms(statistics.median(latencies))}, max {ms(max(latencies))}; jobs run per burst {jobs}")
    print(f"demo's way for the same burst (every change run in turn): last drawing's image after "
          f"{ms(demo_last)} ({args.strokes} calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
