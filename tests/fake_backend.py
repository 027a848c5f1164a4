"""A small backend for the seam tests: it draws a flat colour from the seed and imports no torch.
Given images, it returns what a ControlNet would see (the first control image, preprocessed as the
torch engine does) or else the init image, so the tests of the Draw tab and the protocol can see
which image reached the engine.

Loaded into a worker process through HYPERSD_BACKENDS=fake_backend:BACKEND (with this folder on
PYTHONPATH). Each result's warnings say whether torch was imported in the process that ran it. A
prompt "notice: TEXT" (or "notice done: TEXT") makes the engine post TEXT as a busy (or finished)
notice, as a background compile does.
"""

from __future__ import annotations

import sys
import time

from PIL import Image

from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.core.vocab import Architecture, Device, DType, Mode, Scheduler
from hypersd_desktop.engine import notices
from hypersd_desktop.engine.backend import Backend, BackendInfo
from hypersd_desktop.engine.inputs import open_inputs
from hypersd_desktop.engine.types import GenerationResult, Progress, ResolvedSettings

TORCH_NOTE = "torch imported in the worker: "


class FakeEngine:
    def __init__(self, inputs=None) -> None:
        self.inputs = inputs
        self.prepared = []

    def prepare(self, request) -> None:
        self.prepared.append(request)

    def generate(self, request, on_progress=None, cancel=None):
        cancel = cancel or CancelToken()
        started = time.perf_counter()
        for prefix, busy in (("notice done:", False), ("notice:", True)):
            if request.prompt.startswith(prefix):
                notices.post(request.prompt.removeprefix(prefix).strip(), busy)
                break
        steps = request.steps or 2
        for step in range(1, steps + 1):
            cancel.raise_if_cancelled()
            if on_progress is not None:
                on_progress(Progress(step, steps, 0, request.batch_size, None, time.perf_counter() - started))
        sources = open_inputs(request, self.inputs, request.width or 64, request.height or 64)
        width, height = sources.width, sources.height
        given = sources.controls[0] if sources.controls else sources.init
        settings = ResolvedSettings(
            recipe=request.recipe, architecture=Architecture.SD15,
            scheduler=request.scheduler if request.scheduler != Scheduler.AUTO else Scheduler.TCD, steps=steps,
            guidance=request.guidance or 0.0, eta=request.eta, timesteps=request.timesteps, width=width, height=height,
            device=Device.CPU, dtype=DType.FP32, backend="fake",
        )
        elapsed = time.perf_counter() - started
        timings = {"load_s": 0.0, "denoise_s": elapsed, "decode_s": 0.0, "total_s": elapsed, "per_image_s": elapsed}
        warning = TORCH_NOTE + str("torch" in sys.modules)
        return [
            GenerationResult(given.resize((width, height)) if given is not None else
                             Image.new("RGB", (width, height), ((request.seed + k) % 256, 80, 160)), request.seed + k, k,
                             request, settings, (warning,), timings)
            for k in range(request.batch_size)
        ]

    def unload(self) -> None:
        pass

    def memory_in_use(self, device) -> int | None:
        return None


def probe() -> BackendInfo:
    return BackendInfo("fake", (Device.CPU,), tuple(Mode), (DType.FP32,), controlnet=True, version="1")


BACKEND = Backend("fake", probe, FakeEngine, priority=-1)
