"""Start the real app in a real window (xcb) under Xvfb, generate with a tiny model, save screenshots.

Also measures the time from launch to an interactive window and the longest stall of the GUI
event loop while a job runs (a 10 ms timer that records how late it fires).

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python tools/screenshots.py docs/screenshots

Needs Debian's xvfb and the xcb libraries listed in ../shared/DESIGN.md §4. Uses a temporary
HYPERSD_HOME with a tiny SD1.5 model and a tiny Hyper-SD LoRA built by the test helpers.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def prepare_home(home: Path) -> None:
    """A model library holding a tiny SD1.5 model and a Hyper-SD LoRA (built in a subprocess-free way)."""
    import tiny_models
    from diffusers import UNet2DConditionModel

    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.models.library import ModelLibrary

    folder = home / "weights" / "tiny-sd15"
    tiny_models.save_pipeline("sd15", folder)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    lora = tiny_models.kohya_lora(unet, home / "weights" / "Hyper-SD15-1step-lora.safetensors")
    library = ModelLibrary(AppPaths.default())
    library.import_path(folder)
    library.import_path(lora)
    library.close()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="hypersd-shots-"))
    os.environ["HYPERSD_HOME"] = str(home)
    # Prepare the models in a child process, so this (GUI) process never imports torch.
    import subprocess

    subprocess.run([sys.executable, __file__, "--prepare", str(home)], check=True)
    started = time.perf_counter()

    from PySide6.QtCore import QElapsedTimer, QTimer
    from hypersd_desktop.app import build_app

    parts = build_app(["HyperSD Desktop"])
    app, window = parts.app, parts.window
    window.resize(1280, 800)
    window.show()
    interactive = []
    QTimer.singleShot(0, lambda: interactive.append(time.perf_counter() - started))

    def shoot(name: str) -> None:
        app.processEvents()
        window.grab().save(str(out / f"{name}.png"))
        print(f"saved {out / name}.png", flush=True)

    stalls: list[float] = []
    clock = QElapsedTimer()
    ticker = QTimer(interval=10)

    def tick() -> None:
        if clock.isValid():
            stalls.append(clock.elapsed() - 10)
        clock.restart()

    ticker.timeout.connect(tick)
    state = {"mid": False}

    def on_ready(_message) -> None:
        shoot("main-window-idle")
        window.prompt.setPlainText("a lighthouse on a cliff at dusk, oil painting")
        # The tiny test model's full-resolution attention makes 512² impractical; 192² keeps it quick.
        window.size_box.addItem("192 × 192 (tiny test model)", (192, 192))
        window.size_box.setCurrentIndex(window.size_box.count() - 1)
        window.steps.setValue(8)
        ticker.start()
        window.generate()

    def on_progress(message) -> None:
        if message.step >= 4 and not state["mid"]:
            state["mid"] = True
            shoot("main-window-generating")

    def on_finished(_message) -> None:
        ticker.stop()
        QTimer.singleShot(300, finish)

    def finish() -> None:
        shoot("main-window-done")
        worst = max(stalls) if stalls else 0.0
        print(f"launch to interactive window: {interactive[0]:.2f} s (imports, services, window shown, first event loop turn)")
        print(f"event-loop ticks during the job: {len(stalls)}, longest stall: {worst:.0f} ms, "
              f"median lateness: {sorted(stalls)[len(stalls) // 2] if stalls else 0:.0f} ms")
        print(f"torch in the GUI process: {'torch' in sys.modules}")
        parts.bridge.shutdown()
        app.quit()

    parts.bridge.ready.connect(on_ready)
    parts.bridge.progress.connect(on_progress)
    parts.bridge.finished.connect(on_finished)
    QTimer.singleShot(300_000, app.quit)
    app.exec()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--prepare":
        os.environ["HYPERSD_HOME"] = sys.argv[2]
        prepare_home(Path(sys.argv[2]))
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
