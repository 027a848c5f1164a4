"""Start the real app in a real window (xcb) under Xvfb, generate with a tiny model, save screenshots.

Also measures the time from launch to an interactive window and the longest stall of the GUI
event loop while a job runs (a 10 ms timer that records how late it fires).

After the generation window: a batch job of a few hundred images through the batch dialog
(shot mid-run), the gallery they fill, the large view, the export dialog, the Models tab
mid-download from a local server speaking the hub's protocol (tests/hub_server.py), and its Civitai search
against one speaking Civitai's API (tests/civitai_server.py).

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python tools/screenshots.py docs/screenshots
    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python tools/screenshots.py --images-in docs/screenshots

With --images-in: the Draw tab mid-drawing (strokes drawn with the mouse, a tiny scribble ControlNet),
then the Generate tab with an init image and a mask painted in the mask dialog (shot open), the
inpainting result, the same again with an inpainting ControlNet chosen by hand and a second ControlNet
following a drawing, an image taking after a picture through a tiny IP-Adapter, and a seamless image
(Tiling both ways) shown three by three.

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
    controlnet = tiny_models.save_controlnet(folder, home / "weights" / "scribble-controlnet")
    inpaint = tiny_models.save_controlnet(folder, home / "weights" / "control_v11p_sd15_inpaint", seed=5)
    adapter = tiny_models.save_ip_adapter(folder, home / "weights" / "ip-adapter_sd15.safetensors")
    encoder = tiny_models.save_image_encoder(home / "weights" / "image_encoder", folder=True)
    library = ModelLibrary(AppPaths.default())
    for path in (folder, lora, controlnet, inpaint, adapter, encoder):
        library.import_path(path)
    library.close()


def a_picture(path: Path) -> Path:
    """A landscape to start from: sky, sun, hills, a lake (drawn here, no outside image)."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (192, 192), (120, 170, 230))
    draw = ImageDraw.Draw(picture)
    for y in range(96):
        draw.line((0, y, 191, y), fill=(120 + y, 170 + y // 2, 230))
    draw.ellipse((130, 20, 170, 60), fill=(255, 220, 120))
    draw.polygon([(0, 120), (60, 70), (120, 115), (191, 80), (191, 140), (0, 140)], fill=(70, 120, 60))
    draw.rectangle((0, 140, 191, 191), fill=(50, 90, 150))
    picture.save(path)
    return path


def a_drawing(path: Path) -> Path:
    """A lighthouse drawn in dark strokes on white, where the landscape's mask is painted."""
    from PIL import Image, ImageDraw

    drawing = Image.new("RGB", (192, 192), "white")
    draw = ImageDraw.Draw(drawing)
    draw.polygon([(118, 130), (126, 70), (138, 70), (146, 130)], outline="black", width=3)
    draw.rectangle((122, 58, 142, 70), outline="black", width=3)
    draw.line([(110, 62), (154, 62)], fill="black", width=2)
    drawing.save(path)
    return path


def pixel_picture(seed: int) -> bytes:
    """A 512² picture of coloured blocks, as a pixel-art model's page shows one (drawn here, no outside image)."""
    import io
    import random

    from PIL import Image

    rng = random.Random(seed)
    palette = [tuple(rng.randrange(40, 256) for _ in range(3)) for _ in range(5)]
    small = Image.new("RGB", (16, 16))
    small.putdata([palette[min(4, (x * y + rng.randrange(3) + seed) % 5)] for y in range(16) for x in range(16)])
    out = io.BytesIO()
    small.resize((512, 512), Image.Resampling.NEAREST).save(out, "PNG")
    return out.getvalue()


def images_in(out: Path) -> None:
    """The Draw tab mid-drawing, and inpainting from the Generate tab with a painted mask."""
    import subprocess

    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="hypersd-shots-"))
    os.environ["HYPERSD_HOME"] = str(home)
    subprocess.run([sys.executable, __file__, "--prepare", str(home)], check=True)

    from PySide6.QtCore import QPoint, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QScrollArea

    from hypersd_desktop.app import build_app
    from hypersd_desktop.engine.plot import Axis

    parts = build_app(["HyperSD Desktop"])
    app, window = parts.app, parts.window
    window.resize(1280, 800)
    window.show()
    draw = window.draw
    house = [[(0.2, 0.85), (0.8, 0.85)], [(0.25, 0.85), (0.25, 0.5), (0.75, 0.5), (0.75, 0.85)],
             [(0.2, 0.52), (0.5, 0.25), (0.8, 0.52)], [(0.45, 0.85), (0.45, 0.68), (0.55, 0.68), (0.55, 0.85)],
             [(0.32, 0.58), (0.4, 0.58), (0.4, 0.65), (0.32, 0.65), (0.32, 0.58)],
             [(0.05, 0.3), (0.12, 0.22), (0.2, 0.3)], [(0.85, 0.15), (0.92, 0.1), (0.95, 0.2)]]
    state = {"stroke": 0}

    def shoot(name: str, whole_screen: bool = False) -> None:
        app.processEvents()
        (app.primaryScreen().grabWindow(0) if whole_screen else window.grab()).save(str(out / f"{name}.png"))
        print(f"saved {out / name}.png", flush=True)

    def stroke(canvas, points) -> None:
        where = [QPoint(round(x * canvas.width()), round(y * canvas.height())) for x, y in points]
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, where[0])
        for start, end in zip(where, where[1:]):  # the pen moves through the line, as a hand would
            for k in range(1, 9):
                QTest.mouseMove(canvas, start + (end - start) * k / 8)
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, where[-1])

    def on_ready(_message) -> None:
        window.tabs.setCurrentWidget(draw)
        draw.size_box.addItem("192 × 192 (tiny test model)", (192, 192))
        draw.size_box.setCurrentIndex(draw.size_box.count() - 1)
        draw.prompt.setText("a cottage on a hill, spring morning, watercolor")
        QTimer.singleShot(600, next_stroke)

    def next_stroke() -> None:
        if state["stroke"] < len(house):
            stroke(draw.canvas, house[state["stroke"]])
            state["stroke"] += 1
            if state["stroke"] == len(house) - 2:  # a job for an earlier drawing on screen, a newer one running
                QTimer.singleShot(150, lambda: shoot("draw-tab-drawing"))
            if state["stroke"] == 1:  # the first image loads the model: wait for it, as a person would see it
                wait_idle(lambda: QTimer.singleShot(300, next_stroke))
            else:
                QTimer.singleShot(400, next_stroke)
        else:
            wait_idle(lambda: (shoot("draw-tab-done"), start_inpainting()))

    def wait_idle(then) -> None:
        if draw.live.state == "idle" and draw.shown is not None:
            then()
        else:
            QTimer.singleShot(100, lambda: wait_idle(then))

    def start_inpainting() -> None:
        window.tabs.setCurrentIndex(0)
        window.prompt.setPlainText("a lighthouse on the shore, oil painting")
        window.init_image.load_file(a_picture(home / "landscape.png"))
        window.init_image.strength.setValue(0.8)
        window.steps.setValue(4)
        QTimer.singleShot(300, paint_mask)
        window.init_image.mask_button.click()  # modal: the painting happens in paint_mask

    def paint_mask() -> None:
        dialog = QApplication.activeModalWidget()
        dialog.move(window.x() + 280, window.y() + 80)
        canvas = dialog.canvas
        dialog.brush.setValue(26)
        for x0, x1 in ((0.5, 0.85), (0.55, 0.8)):
            stroke(canvas, [(x0, 0.62), (x1, 0.62)])
            stroke(canvas, [(x0, 0.5), (x1, 0.45)])
        # generate once the dialog has closed and the box has taken the mask, as a click after OK would
        QTimer.singleShot(300, lambda: (shoot("mask-dialog", whole_screen=True), dialog.accept(),
                                        QTimer.singleShot(0, generate)))

    def after_next_job(callback) -> None:
        """`callback` once, after the next job ends (the window's own handlers stay)."""
        def ended(_message) -> None:
            parts.bridge.finished.disconnect(ended)
            QTimer.singleShot(300, callback)

        parts.bridge.finished.connect(ended)

    def generate() -> None:
        parts.bridge.finished.connect(inpainted)
        window.generate()

    def inpainted(_message) -> None:
        parts.bridge.finished.disconnect(inpainted)  # the window's own handlers stay
        QTimer.singleShot(300, with_controlnets)

    def with_controlnets() -> None:
        """The same inpainting with an inpainting ControlNet chosen by hand (it takes the init image) and a second
        ControlNet following a drawing of the lighthouse."""
        shoot("inpainting-done")
        box = window.control_image
        box.model_box.setCurrentIndex(box.model_box.findText("control_v11p_sd15_inpaint"))
        box.model_box.activated.emit(box.model_box.currentIndex())
        second = window.control_stack.add_box()
        second.model_box.setCurrentIndex(second.model_box.findText("scribble-controlnet"))
        second.load_file(a_drawing(home / "lighthouse-drawing.png"))
        scroller = next(area for area in window.findChildren(QScrollArea) if area.isAncestorOf(second))
        scroller.ensureWidgetVisible(second)
        parts.bridge.finished.connect(controlled)
        window.generate()

    def controlled(_message) -> None:
        parts.bridge.finished.disconnect(controlled)
        QTimer.singleShot(300, finish)

    def finish() -> None:
        shoot("controlnet-inpaint-done")
        window.control_stack.set_specs(())
        window.init_image.clear()  # the next image from the prompt, taking after the picture (IP-Adapter)
        window.prompt.setPlainText("a lighthouse on the shore at dusk")
        window.ip_adapter.load_file(home / "landscape.png")
        window.size_box.addItem("192 × 192 (tiny test model)", (192, 192))
        window.size_box.setCurrentIndex(window.size_box.count() - 1)
        scroller = next(area for area in window.findChildren(QScrollArea) if area.isAncestorOf(window.ip_adapter))
        scroller.ensureWidgetVisible(window.ip_adapter)
        parts.bridge.finished.connect(reference_made)
        window.generate()

    def reference_made(_message) -> None:
        parts.bridge.finished.disconnect(reference_made)
        QTimer.singleShot(300, after_reference)

    def after_reference() -> None:
        shoot("ip-adapter-done")
        window.reference_stack.set_specs(())
        window.prompt.setPlainText("a mossy stone wall, seamless texture")
        window.set_tiling("both")  # a seamless image: the preview shows it three by three
        scroller = next(area for area in window.findChildren(QScrollArea) if area.isAncestorOf(window.tiling))
        scroller.ensureWidgetVisible(window.tiling)
        after_next_job(quit_after_tiling)
        window.generate()

    def quit_after_tiling() -> None:
        shoot("tiling-done")
        window.set_tiling("off")
        window.prompt.setPlainText("a red kite over the sea")
        dialog = window.open_plot()  # an X/Y/Z plot: steps across, the kite's colour down, a grid for each seed
        dialog.x_row.values.setText("1, 2, 4")
        dialog.y_row.set_axis(Axis.PROMPT, "red, green")
        dialog.z_row.set_axis(Axis.SEED, "7, 8")
        QTimer.singleShot(300, lambda: plot_dialog_shown(dialog))

    def plot_dialog_shown(dialog) -> None:
        shoot("plot-dialog", whole_screen=True)
        after_next_job(quit_after_plot)
        dialog.make_button.click()

    def quit_after_plot() -> None:
        shoot("plot-done")
        window.prompt.setPlainText("a lighthouse at dusk")  # Live: the image follows the prompt, saved nowhere
        window.live.button.click()
        after_next_job(quit_after_live)  # the live image's job: the image is in the preview

    def quit_after_live() -> None:
        shoot("live-done")
        window.live.button.click()  # off
        from hypersd_desktop.core.prompt_styles import PromptStyle, styles_file, write_styles
        from hypersd_desktop.ui.prompt_styles import StylesDialog

        write_styles(styles_file(window.library.paths), [  # a style list as people keep them: headings, {prompt}
            PromptStyle("---- Photography ----"), PromptStyle("Cinematic", "cinematic still of {prompt}, film grain, "
                                                              "shallow depth of field", "cartoon, drawing"),
            PromptStyle("Golden hour", "golden hour, warm light"), PromptStyle("---- Painting ----"),
            PromptStyle("Watercolour", "{prompt}, watercolour on wet paper, soft edges", "photo"),
            PromptStyle("Ink", "ink drawing of {prompt}, cross-hatching", "colour")])
        window.prompt_styles.reload()
        window.prompt_styles.choose(["Cinematic", "Golden hour"])
        dialog = StylesDialog(window.prompt_styles.book, window.prompt.toPlainText(), "", window)
        dialog.names.setCurrentRow(1)
        dialog.show()
        QTimer.singleShot(500, lambda: styles_edited(dialog))

    def styles_edited(dialog) -> None:
        shoot("styles-dialog", whole_screen=True)
        dialog.reject()
        button = window.prompt_styles.button  # the list, shown as its button shows it, without a nested event loop
        window.prompt_styles.menu.popup(button.mapToGlobal(button.rect().bottomLeft()))
        QTimer.singleShot(500, styles_listed)

    def styles_listed() -> None:
        shoot("styles-list", whole_screen=True)
        window.prompt_styles.menu.close()
        parts.bridge.shutdown()
        app.quit()

    parts.bridge.ready.connect(on_ready)
    QTimer.singleShot(600_000, app.quit)
    app.exec()


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
        selection.clearSelection()
        for position in (0, 1):
            selection.select(browser.model.index_at(position), selection.SelectionFlag.Select)
        dialog = browser.compare_selected()
        dialog.resize(1040, 700)
        dialog.move(window.x() + 120, window.y() + 50)
        dialog.view.set_divider(0.4)
        QTimer.singleShot(700, lambda: (shoot("gallery-compare", whole_screen=True), dialog.close(), shoot_export()))

    def shoot_export() -> None:
        browser = window.browser
        selection = browser.grid.selectionModel()
        selection.clearSelection()
        for position in range(6):
            selection.select(browser.model.index_at(position), selection.SelectionFlag.Select)
        browser.open_export()
        dialog = browser._export_dialog
        dialog.move(window.x() + 320, window.y() + 120)
        dialog.folder.setText(str(home / "exports" / "foxes"))
        dialog.template.setText("{model}/{date}/{seed}-{prompt:30}")
        dialog.format.setCurrentText("webp")
        dialog.update_preview()
        QTimer.singleShot(500, lambda: (shoot("export-dialog", whole_screen=True), dialog.reject(), shoot_watched()))

    def shoot_watched() -> None:
        from hypersd_desktop.ui.watched_folders import WatchedFoldersDialog

        comfy, outputs = home / "ComfyUI" / "output", home / "stable-diffusion-webui" / "outputs"
        for folder in (comfy, outputs):
            folder.mkdir(parents=True, exist_ok=True)
        usb = Path("/media/usb/renders")
        dialog = WatchedFoldersDialog([comfy, usb], (usb,), window.gallery.paths, window)
        dialog.add_folder(outputs)
        dialog.add_folder(window.gallery.paths.images)  # refused: the reason shows beside the buttons
        dialog.move(window.x() + 300, window.y() + 160)
        dialog.show()
        QTimer.singleShot(500, lambda: (shoot("watched-folders", whole_screen=True), dialog.reject(),
                                        start_download()))

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
            QTimer.singleShot(1000, search_civitai)

    def search_civitai() -> None:
        """The Civitai search against a local server speaking Civitai's API (tests/civitai_server.py)."""
        from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

        server = CivitaiServer()
        civitai = server.__enter__()
        state["civitai"] = server
        for n, (name, base, kind) in enumerate((
                ("Pixel Art Diffusion", "SD 1.5", "Checkpoint"), ("Pixel Art XL", "SDXL 1.0", "LORA"),
                ("Pixel Art Style", "SD 1.5", "LORA"), ("Pixel Portraits", "Illustrious", "LORA"),
                ("Pixel Art Sprites", "SD 1.5", "LORA"), ("Pixel Art Flux", "Flux.1 D", "LORA"))):
            civitai.pictures[f"pixel-{n}"] = pixel_picture(n)
            civitai.add(CivitaiVersion(id=100 + n, model_id=1 + n, model_name=name, name=f"v{n + 1}.0",
                                       model_type=kind, base_model=base, images=[(f"pixel-{n}", 1, "image")],
                                       trained_words=["pixel art", "pixelated"] if kind == "LORA" else [],
                                       files=[CivitaiFile(f"pixel-{n}.safetensors", bytes(2_000_000 * (n + 1)))]))
        civitai.add(CivitaiVersion(id=90, model_id=4, model_name="Pixel Portraits", name="v3.0", model_type="LORA",
                                   base_model="Pony", files=[CivitaiFile("pixel-old.safetensors", bytes(3_000_000))]))
        window.models.library.downloader.civitai = civitai.url
        dialog = window.models.search_civitai()
        dialog.move(window.x() + 40, window.y() + 100)
        dialog.query.setText("pixel")
        dialog.search()
        dialog.task.finished.connect(lambda: QTimer.singleShot(300, select_civitai))

    def select_civitai() -> None:
        dialog = window.models.search_dialog
        dialog.table.selectRow(1)
        if dialog.picture_task is not None:
            dialog.picture_task.finished.connect(lambda: QTimer.singleShot(300, shoot_civitai))
        else:
            QTimer.singleShot(300, shoot_civitai)

    def shoot_civitai() -> None:
        dialog = window.models.search_dialog
        shoot("civitai-search", whole_screen=True)
        dialog.close()
        state["civitai"].__exit__(None, None, None)
        done()

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
    elif len(sys.argv) >= 2 and sys.argv[1] == "--images-in":
        images_in(Path(sys.argv[2] if len(sys.argv) > 2 else "docs/screenshots"))
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
