"""Engines behind one protocol, and the registry of backends they come from.

A backend is a name, a cheap probe and an opener. The probe says what the backend can do on
this machine (devices, modes, dtypes) without importing its inference library, so the GUI,
the CLI and the worker's handshake can ask it in milliseconds; only `open()` imports torch or
ONNX Runtime. The worker, the CLI and batch jobs get their engines from here and never name
an engine class.

Built-in backends are listed by module path below; `HYPERSD_BACKENDS` adds others
(`module:attribute`, comma-separated; the attribute is a `Backend`) — how a development
backend or a test's fake one gets into a worker process.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.core.vocab import Device, DType, Mode
from hypersd_desktop.engine.types import AUTO_BACKEND, GenerationRequest, GenerationResult, Progress

BACKENDS_ENV = "HYPERSD_BACKENDS"
BUILTIN_BACKENDS = {
    "torch": "hypersd_desktop.engine.torch_backend:BACKEND",
    "onnx": "hypersd_desktop.engine.onnx.backend:BACKEND",
}


class Engine(Protocol):
    """What every backend's engine does. One engine runs one request at a time."""

    def prepare(self, request: GenerationRequest) -> None:
        """Load what `request` needs (base model, LoRAs) ahead of generating it."""

    def generate(self, request: GenerationRequest, on_progress: Callable[[Progress], None] | None = None,
                 cancel: CancelToken | None = None) -> list[GenerationResult]:
        """Run `request`: one result per image of its batch.

        `on_progress` is called after every denoising step; `cancel` stops the run at the next
        step with `CancelledError`. Running out of memory raises `OutOfMemoryError`.
        """

    def unload(self) -> None:
        """Free the loaded models (after an out-of-memory error, or when asked to)."""

    def memory_in_use(self, device: Device) -> int | None:
        """Bytes the engine holds on `device` now, or None when unknown."""


@runtime_checkable
class BatchingEngine(Protocol):
    """An engine that runs several one-image requests as one batch (one pass of the model for all)."""

    def generate_batch(self, requests: list[GenerationRequest], on_progress: Callable[[Progress], None] | None = None,
                       cancel: CancelToken | None = None) -> list[GenerationResult]:
        """Run `requests`, which share one `batch_key`, together: one result per request, in order; the same images
        (within a rounding step) as one by one."""


def batch_key(request: GenerationRequest) -> str | None:
    """Requests with equal keys can run as one batch: one-image text-to-image requests that differ only in prompt
    and seed (and variation seed). None for a request that runs alone (image inputs, or a batch of its own)."""
    if request.batch_size != 1 or request.mode != Mode.TEXT_TO_IMAGE or request.controls or request.ip_adapters:
        return None
    return request.replace(prompt="", seed=0, variation_seed=None if request.variation_seed is None else 0).to_json()


@dataclass(frozen=True)
class BackendInfo:
    """What a backend can do here. `devices` are the usable ones, best first; an unavailable
    backend has none and says why in `reason`."""

    name: str
    devices: tuple[Device, ...]
    modes: tuple[Mode, ...] = (Mode.TEXT_TO_IMAGE,)
    dtypes: tuple[DType, ...] = (DType.FP32,)
    controlnet: bool = False  # runs ControlNets with its modes
    ip_adapter: bool = False  # runs IP-Adapters with its modes
    version: str = ""
    reason: str = ""

    @property
    def available(self) -> bool:
        return bool(self.devices)


@dataclass(frozen=True)
class Backend:
    """A backend: `probe()` is cheap and imports no inference library; `open(inputs)` makes an engine that
    reads the input images requests name from `inputs` (an `InputImages`, or None where no request has any).

    "auto" prefers a GPU to the CPU; among backends that run a GPU it prefers the highest
    `priority`, and on the CPU the highest `cpu_priority` (the faster one, measured in `bench/`).
    """

    name: str
    probe: Callable[[], BackendInfo]
    open: Callable[[InputImages | None], Engine]
    priority: int = 0
    cpu_priority: int = 0
    # Why this backend cannot run a request (None when it can): "auto" then passes it over. Cheap and torch-free.
    declines: Callable[[GenerationRequest], str | None] | None = None


_registered: dict[str, Backend] = {}
_specs: dict[str, str] = {}


def register(backend: Backend) -> None:
    """Add (or replace) a backend in this process."""
    _registered[backend.name] = backend


def _load_specs() -> dict[str, str]:
    specs = dict(BUILTIN_BACKENDS)
    for spec in filter(None, (part.strip() for part in os.environ.get(BACKENDS_ENV, "").split(","))):
        specs[f"env:{spec}"] = spec
    return specs


def backends() -> list[Backend]:
    """Every backend known in this process (built-in, registered, and named in HYPERSD_BACKENDS)."""
    for key, spec in _load_specs().items():
        if key in _specs:
            continue
        module, _, attribute = spec.partition(":")
        try:
            backend = getattr(importlib.import_module(module), attribute or "BACKEND")
        except (ImportError, AttributeError) as error:
            raise InputError(f"The backend {spec} named in {BACKENDS_ENV} cannot be loaded: {error}.") from None
        _specs[key] = backend.name
        _registered.setdefault(backend.name, backend)
    return sorted(_registered.values(), key=lambda backend: -backend.priority)


def probe_all() -> list[BackendInfo]:
    """The capabilities of every backend, best first (cheap: no inference library is imported)."""
    return [backend.probe() for backend in backends()]


def choose(backend_name: str, device: Device | str, mode: Mode = Mode.TEXT_TO_IMAGE,
           request: GenerationRequest | None = None) -> Backend:
    """The backend that runs a request: the named one, or for "auto" the best one that has
    `device` and runs `mode` (see `resolve`)."""
    return resolve(backend_name, device, mode, request)[0]


def for_request(request: GenerationRequest) -> Backend:
    return choose(request.backend, request.device, request.mode, request)


def resolve(backend_name: str, device: Device | str, mode: Mode = Mode.TEXT_TO_IMAGE,
            request: GenerationRequest | None = None) -> tuple[Backend, Device]:
    """The backend and the device that run a request.

    For "auto" a GPU wins over the CPU: a backend's GPU by `priority` (torch's CUDA or MPS, then
    ONNX Runtime's DirectML or CUDA), else the CPU of the backend with the highest `cpu_priority`;
    a backend that declines `request` is passed over. Raises `InputError` naming what is available
    when nothing fits.
    """
    known = {backend.name: backend for backend in backends()}
    device = Device(device)
    if backend_name != AUTO_BACKEND:
        if backend_name not in known:
            raise InputError(f"Unknown backend {backend_name!r}; available: {', '.join(known) or 'none'}.")
        candidates = [known[backend_name]]
    else:
        candidates = list(known.values())
    reasons = []
    fits: list[tuple[tuple[int, int], Backend, Device]] = []
    for backend in candidates:
        info = backend.probe()
        if mode not in info.modes:
            reasons.append(f"{info.name}: no {mode.label}")
            continue
        if request is not None and request.controls and not info.controlnet:
            reasons.append(f"{info.name}: no ControlNet")
            continue
        if request is not None and request.ip_adapters and not info.ip_adapter:
            reasons.append(f"{info.name}: no IP-Adapter")
            continue
        declined = backend.declines(request) if request is not None and backend.declines and len(candidates) > 1 else None
        if declined:
            reasons.append(f"{info.name}: {declined}")
            continue
        usable = info.devices if device == Device.AUTO else [d for d in info.devices if d == device]
        if not usable:
            reasons.append(f"{info.name}: {info.reason or 'runs on ' + ', '.join(info.devices)}")
            continue
        best = usable[0]
        rank = (1, backend.priority) if best.is_gpu else (0, backend.cpu_priority)
        fits.append((rank, backend, best))
    if fits:
        _, backend, chosen = max(fits, key=lambda fit: fit[0])
        return backend, chosen
    wanted = "any device" if device == Device.AUTO else f"the {device.value.upper()} device"
    what = mode.label + (" with a ControlNet" if request is not None and request.controls else "") + (
        " with an IP-Adapter" if request is not None and request.ip_adapters else "")
    raise InputError(f"No backend here runs {what} on {wanted} ({'; '.join(reasons)}). "
                     "Choose another device or backend in Settings.")
