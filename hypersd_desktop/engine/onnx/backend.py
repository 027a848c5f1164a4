"""The ONNX Runtime backend's entry in the registry: a probe from the installed distribution's name
(no ONNX Runtime import), and the opener."""

from __future__ import annotations

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.vocab import Device, DType, Mode
from hypersd_desktop.engine.backend import Backend, BackendInfo, Engine
from hypersd_desktop.engine.onnx.providers import installed
from hypersd_desktop.engine.types import GenerationRequest


def probe() -> BackendInfo:
    providers, version = installed()
    if not providers:
        return BackendInfo("onnx", (), reason="ONNX Runtime is not installed in this Python environment")
    return BackendInfo("onnx", tuple(provider.device for provider in providers),
                       (Mode.TEXT_TO_IMAGE, Mode.IMAGE_TO_IMAGE, Mode.INPAINT), (DType.FP32, DType.FP16), version=version)


def declines(request: GenerationRequest) -> str | None:
    """Why the backend cannot run `request` ("auto" then takes another): plain generation without a Hyper-SD
    recipe uses the base model's own scheduler, which only the torch backend has; clip skip needs the text
    encoder's inner layers, which the export does not give; embeddings would need tokens the export lacks; its
    schedulers predict the noise, so v-prediction models go to torch; a seamless image needs an export of its own
    (its convolutions wrapping around), worth it on a GPU (DirectML) but not where PyTorch runs it on the CPU."""
    from hypersd_desktop.engine.inspect import base_architecture, base_prediction
    from hypersd_desktop.engine.onnx.schedulers import SCHEDULERS
    from hypersd_desktop.engine.planning import plan

    try:
        settings_plan = plan(request, base_architecture(request.base_model))
    except AppError:
        return None  # the request is wrong for every backend: the engine says why
    if settings_plan.scheduler not in SCHEDULERS:
        return f"no {settings_plan.scheduler} scheduler (it runs the Hyper-SD schedulers only)"
    if settings_plan.clip_skip > 1:
        return "no clip skip (it reads the text encoder's last layer only)"
    if request.embeddings:
        return "no textual-inversion embeddings"
    if request.tiling != "off" and not _on_a_gpu(request):
        return "seamless images on the CPU are PyTorch's (an export of their own would take minutes)"
    if base_prediction(request.base_model)[0] is not None:
        return "no v-prediction models (its schedulers predict the noise)"
    return None


def _on_a_gpu(request: GenerationRequest) -> bool:
    """Whether the backend would run `request` on a GPU (DirectML, CUDA)."""
    devices = [device for device in probe().devices if request.device in (Device.AUTO, device)]
    return bool(devices) and devices[0].is_gpu


def open_engine(inputs=None) -> Engine:
    from hypersd_desktop.engine.onnx.engine import OnnxEngine

    return OnnxEngine(inputs=inputs)


# Below torch on GPUs (torch's CUDA and MPS come first; DirectML is ONNX Runtime's alone). On the CPU ONNX
# Runtime is the faster (bench/backends.py: SD1.5 512², 1.04-1.32× torch fp32 per image over two runs), so
# "auto" takes it there.
BACKEND = Backend("onnx", probe, open_engine, priority=5, cpu_priority=2, declines=declines)
