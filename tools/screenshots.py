"""Start the real app in a real window (xcb) under Xvfb, generate with a tiny model, save screenshots.

Also measures the time from launch to an interactive window and the longest stall of the GUI
event loop while a job runs (a 10 ms timer that records how late it fires).

After the generation window: a batch job of a few hundred images through the batch dialog
(shot mid-run), the gallery they fill, the large view, the export dialog, and the Models tab
mid-download from a local server speaking the hub's protocol (tests/hub_server.py).

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

    def shoot(name: str, whole_screen: bool = False) -> None:
        """The window, or the whole screen when a dialog is open on top of it."""
        app.processEvents()
        if whole_screen:
            app.primaryScreen().grabWindow(0).save(str(out / f"{name}.png"))
        else:
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
            ticker.stop()  # grabbing and saving the window is this script's work, not the app's
            shoot("main-window-generating")
            clock.invalidate()
            ticker.start()

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
        QTimer.singleShot(100, start_batch)

    prompts = ["a lighthouse on a cliff at dusk", "a fox in the snow, watercolor", "neon city street at night",
               "a castle above the clouds", "portrait of an old sailor, oil painting", "a bowl of ramen, macro",
               "a robot tending a garden", "desert dunes at golden hour", "a library with tall windows",
               "a koi pond in autumn", "a steam train in the mountains", "an astronaut on a red planet"]

    def start_batch() -> None:
        dialog = window.open_batch()
        state["batch"] = dialog
        dialog.resize(640, 600)
        dialog.move(window.x() + 320, window.y() + 90)
        dialog.prompts.setPlainText("\n".join(prompts))
        dialog.seeds_per_prompt.setValue(25)  # 12 prompts x 25 seeds = 300 images
        dialog.select_size(128, 128)  # the tiny test model
        dialog.steps.setValue(1)
        dialog.folder.setText(str(home / "exports" / "batch"))
        parts.bridge.batch_progress.connect(batch_progress)
        parts.bridge.batch_finished.connect(lambda _: QTimer.singleShot(500, show_gallery))
        dialog.start()

    def batch_progress(message) -> None:
        if message.done >= message.total * 0.4 and not state.get("batch_shot"):
            state["batch_shot"] = True
            shoot("batch-dialog", whole_screen=True)

    def show_gallery() -> None:
        state["batch"].reject()
        window.tabs.setCurrentWidget(window.browser)
        browser = window.browser
        browser.image_added()
        gallery = window.gallery
        records = browser.model.all_records()
        for k, record in enumerate(records[:60]):
            if k % 7 == 0:
                gallery.store.set_favourite(record.id, True)
            if k % 5 == 0:
                gallery.store.set_rating(record.id, 3 + k % 3)
        browser.model.refresh()
        QTimer.singleShot(2500, shoot_gallery)  # thumbnails arrive from the background thread

    def shoot_gallery() -> None:
        shoot("gallery")
        browser = window.browser
        browser.search.setText("fox")
        browser.apply_filters()
        QTimer.singleShot(1500, shoot_search)

    def shoot_search() -> None:
        shoot("gallery-search")
        browser = window.browser
        browser.open_viewer(0)
        viewer = browser.viewer
        viewer.tags.setText("winter, favourites")
        viewer.tags.editingFinished.emit()
        QTimer.singleShot(500, shoot_viewer)

    def shoot_viewer() -> None:
        shoot("gallery-large-view")
        browser = window.browser
        browser.close_viewer()
        selection = browser.grid.selectionModel()
        for position in range(6):
            selection.select(browser.model.index_at(position), selection.SelectionFlag.Select)
        browser.open_export()
        dialog = browser._export_dialog
        dialog.move(window.x() + 320, window.y() + 120)
        dialog.folder.setText(str(home / "exports" / "foxes"))
        dialog.template.setText("{model}/{date}/{seed}-{prompt:30}")
        dialog.format.setCurrentText("webp")
        dialog.update_preview()
        QTimer.singleShot(500, lambda: (shoot("export-dialog", whole_screen=True), dialog.reject(), start_download()))

    def start_download() -> None:
        from huggingface_hub import constants
        from huggingface_hub.utils import reset_sessions

        from hub_server import HubServer

        constants.HF_HUB_OFFLINE = False
        reset_sessions()
        server = HubServer()
        hub = server.__enter__()
        state["server"] = server
        hub.add("ByteDance/Hyper-SD", "Hyper-SD15-8steps-lora.safetensors", os.urandom(24 * 1024 * 1024))
        hub.pause_per_64k = 0.01
        manager = window.models
        manager.library.downloader.endpoint = hub.url
        manager.library.downloader.token = False
        manager.library.downloader.use_hf_cache = False
        window.tabs.setCurrentWidget(manager)
        manager.select_entry("hyper-sd15-8steps-lora")
        manager.download(manager.library.catalog.get("hyper-sd15-8steps-lora"))
        manager.download_task.progress.connect(download_progress)

    def download_progress(progress) -> None:
        if progress.done > progress.total * 0.45 and "/s" in window.models.download_label.text() \
                and not state.get("download_shot"):
            state["download_shot"] = True
            shoot("model-manager-downloading")
            window.models.pause()
            QTimer.singleShot(1000, done)

    def done() -> None:
        state["server"].__exit__(None, None, None)
        parts.bridge.shutdown()
        app.quit()

    parts.bridge.ready.connect(on_ready)
    parts.bridge.progress.connect(on_progress)
    parts.bridge.finished.connect(on_finished)
    QTimer.singleShot(900_000, app.quit)
    app.exec()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--prepare":
        os.environ["HYPERSD_HOME"] = sys.argv[2]
        prepare_home(Path(sys.argv[2]))
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
