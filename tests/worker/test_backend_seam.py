"""The backend seam is real: a small fake backend, registered by name, runs through the registry,
the worker program and the window, and neither process imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.vocab import Device
from hypersd_desktop.engine import backend
from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.gallery.store import GalleryStore
from hypersd_desktop.worker.client import WorkerClient
from hypersd_desktop.worker.protocol import ImageReady, JobFinished, WorkerReady
from event_log import Events

TESTS = Path(__file__).resolve().parents[1]
REQUEST = GenerationRequest(prompt="a red kite", base_model="/models/sd15", steps=3, seed=41, width=64, height=72,
                            backend="fake")


def test_the_registry_chooses_by_backend_and_device(fake_backend):
    assert [info.name for info in backend.probe_all()] == ["torch", "onnx", "fake"]  # best first
    assert backend.choose("fake", "cpu").name == "fake"
    assert backend.choose("auto", "auto").name == "onnx"  # the faster CPU backend (bench/backends.py)
    with pytest.raises(InputError, match=r"No backend here runs text-to-image on the CUDA device \(fake: runs on cpu\)"):
        backend.choose("fake", "cuda")
    with pytest.raises(InputError, match="Unknown backend 'tensorrt'; available: torch, onnx, fake"):
        backend.choose("tensorrt", "auto")


def test_auto_prefers_a_gpu_then_the_faster_cpu_backend(monkeypatch):
    """torch CUDA or MPS first, then DirectML, then the CPU of the backend with the higher cpu_priority."""
    def fake(name, devices, priority, cpu_priority):
        info = backend.BackendInfo(name, tuple(Device(d) for d in devices))
        return backend.Backend(name, lambda: info, lambda: None, priority, cpu_priority)

    def registered(*entries):
        monkeypatch.setattr(backend, "_registered", {entry.name: entry for entry in entries})
        monkeypatch.setattr(backend, "_specs", {key: key for key in backend.BUILTIN_BACKENDS})

    registered(fake("torch", ["cuda", "cpu"], 10, 1), fake("onnx", ["directml", "cpu"], 5, 2))
    assert [(b.name, d) for b, d in [backend.resolve("auto", "auto")]] == [("torch", Device.CUDA)]
    registered(fake("torch", ["cpu"], 10, 1), fake("onnx", ["directml", "cpu"], 5, 2))
    assert backend.resolve("auto", "auto")[0].name == "onnx" and backend.resolve("auto", "auto")[1] == Device.DIRECTML
    assert backend.resolve("auto", "cpu")[0].name == "onnx"  # the faster CPU backend
    registered(fake("torch", ["cpu"], 10, 3), fake("onnx", ["cpu"], 5, 2))
    assert backend.resolve("auto", "auto") == (backend._registered["torch"], Device.CPU)
    assert backend.resolve("onnx", "auto") == (backend._registered["onnx"], Device.CPU)


def test_image_modes_and_controlnets_go_to_the_backend_that_runs_them():
    """The built-in probes: torch runs every mode with ControlNets; ONNX Runtime every mode without, so on the
    CPU "auto" takes ONNX Runtime (the faster there) for image to image and torch for ControlNets, and a request
    for ONNX with a ControlNet is refused before any work."""
    from hypersd_desktop.engine import ControlSpec

    digest = "ab" * 32
    img2img = REQUEST.replace(backend="auto", init_image=digest)
    controlled = REQUEST.replace(backend="auto", controls=(ControlSpec("/models/canny", digest),))
    assert backend.resolve("auto", "cpu", img2img.mode, img2img)[0].name == "onnx"
    assert backend.resolve("auto", "cpu", controlled.mode, controlled)[0].name == "torch"
    assert backend.resolve("onnx", "cpu", img2img.mode, img2img)[0].name == "onnx"
    with pytest.raises(InputError, match="runs text-to-image with a ControlNet .*onnx: no ControlNet"):
        backend.resolve("onnx", "cpu", controlled.mode, controlled)


def test_a_backend_that_cannot_be_loaded_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(backend.BACKENDS_ENV, "no_such_module:BACKEND")
    with pytest.raises(InputError, match="The backend no_such_module:BACKEND named in HYPERSD_BACKENDS cannot be loaded"):
        backend.probe_all()
    backend._specs.clear()


def test_the_fake_backend_runs_through_the_worker_program(fake_backend, app_home):
    events = Events()
    client = WorkerClient(events, home=str(app_home))
    client.engine_choice = ("fake", "auto")  # as a window set to the fake backend would say
    client.start()
    ready = events.wait_for(WorkerReady)
    assert {info.name for info in ready.backends} == {"torch", "onnx", "fake"}
    assert ready.default_backend == "fake"
    client.submit(REQUEST)
    image = events.wait_for(ImageReady)
    finished = events.wait_for(JobFinished)
    client.shutdown()
    assert finished.warnings == ("torch imported in the worker: False",)
    picture = Image.open(Path(image.path))
    assert picture.size == (64, 72) and picture.getpixel((0, 0)) == (41, 80, 160)
    assert image.png == Path(image.path).read_bytes()
    store = GalleryStore(AppPaths.default().data / "gallery.sqlite3")
    record = store.get(image.image_id)
    store.close()
    assert (record.prompt, record.seed, record.steps, record.width, record.height) == ("a red kite", 41, 3, 64, 72)


WINDOW_SCRIPT = textwrap.dedent("""
    import json, sys
    from hypersd_desktop.core.settings import load_settings, save_settings
    save_settings(load_settings().replace(backend="fake"))
    from PySide6.QtCore import QEventLoop, QTimer
    from hypersd_desktop.app import build_app

    parts = build_app(["seam"])
    window = parts.window
    window.show()

    def wait(signal, seconds=120):
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(seconds * 1000, loop.quit)
        loop.exec()

    if parts.bridge.client.ready is None:
        wait(parts.bridge.ready)
    window.size_box.addItem("64 x 64", (64, 64))
    window.size_box.setCurrentIndex(window.size_box.count() - 1)
    window.prompt.setPlainText("a kite over the sea")
    window.generate()
    wait(parts.bridge.finished)
    print(json.dumps({"torch": "torch" in sys.modules, "results": window.results.count(),
                      "warnings": window.warnings.text(), "timing": window.timing.text(),
                      "errors": window.errors.text()}))
    parts.bridge.shutdown()
""")


def test_the_window_generates_with_the_fake_backend_and_no_process_imports_torch(fake_backend, installed, tmp_path):
    script = tmp_path / "window.py"
    script.write_text(WINDOW_SCRIPT)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["torch"] is False, seen  # the window's process
    assert "torch imported in the worker: False" in seen["warnings"], seen  # the worker's
    assert seen["results"] == 1 and seen["timing"].startswith("Done in")
