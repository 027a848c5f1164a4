"""ONNX Runtime's execution providers behind one small interface, so Windows ML can replace DirectML later.

A `Provider` names the device it runs, the ORT provider, and how its sessions are set up:

- DirectML wants sequential execution, memory patterns off, and fixed shapes (free-dimension
  overrides) for speed; one `Run` per session at a time is the engine's to keep.
- The CPU gets every graph optimisation and one intra-op thread per physical core (OMP_NUM_THREADS where it
  is set, as torch reads it), with memory patterns off: a pattern recorded on the first run is allocated as a
  second block on the next (the tiny test model at 192²: 6.35 GiB resident after the first image, 12.35 GiB
  after the second, which took 12.9 s against 3.3 s), and runs without it were as fast (`bench/backends.py`).
- CUDA takes the defaults, with the arena grown only as needed.

`installed()` says which providers this environment has from the installed distribution's name
(onnxruntime, onnxruntime-directml, onnxruntime-gpu), without importing ONNX Runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import Device

# Which providers each ONNX Runtime distribution carries (the CPU provider is in all of them).
DISTRIBUTIONS = {
    "onnxruntime-directml": ("directml", "cpu"),
    "onnxruntime-gpu": ("cuda", "cpu"),
    "onnxruntime": ("cpu",),
}


def cpu_threads() -> int:
    """The threads a CPU session computes with: OMP_NUM_THREADS where it is set (as torch reads it, so one setting
    limits both backends, beside other work or other processes), else one a physical core."""
    import psutil

    try:
        asked = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        asked = 0
    return asked if asked >= 1 else psutil.cpu_count(logical=False) or 1


@dataclass(frozen=True)
class Provider:
    name: str  # the app's: directml, cuda, cpu
    ort_name: str
    device: Device
    sequential: bool = False
    memory_pattern: bool = True
    fixed_shapes: bool = False
    options: dict = field(default_factory=dict)
    optimisation: str = "all"  # ORT's graph optimisation level: basic, extended or all

    def session_options(self, free_dimensions: dict[str, int] | None = None):
        """ORT session options for this provider; `free_dimensions` fixes named dynamic axes
        (batch_size, height, width...) where the provider runs faster with fixed shapes."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel,
                                                   f"ORT_ENABLE_{self.optimisation.upper()}")
        options.enable_mem_pattern = self.memory_pattern
        if self.sequential:
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        if self.device == Device.CPU:
            options.intra_op_num_threads = cpu_threads()
        if self.fixed_shapes:
            for name, value in (free_dimensions or {}).items():
                options.add_free_dimension_override_by_name(name, value)
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
        return options

    def session(self, model: Path, free_dimensions: dict[str, int] | None = None):
        import onnxruntime

        if self.ort_name not in onnxruntime.get_available_providers():
            raise InputError(f"ONNX Runtime here has no {self.ort_name}; install the runtime variant that carries it.")
        session = onnxruntime.InferenceSession(str(model), self.session_options(free_dimensions),
                                               providers=[(self.ort_name, self.options)])
        if self.ort_name not in session.get_providers():
            # ORT falls back to the CPU when a GPU provider's libraries fail to load; an fp16 graph on the CPU
            # would run, many times slower, with nothing said.
            raise InputError(f"ONNX Runtime could not start {self.ort_name} (its GPU libraries did not load: CUDA 13 "
                             "and cuDNN 9 for CUDA, a DirectX 12 GPU for DirectML). Choose another device in Settings.")
        return session


DIRECTML = Provider("directml", "DmlExecutionProvider", Device.DIRECTML, sequential=True, memory_pattern=False, fixed_shapes=True, options={"device_id": 0})
CUDA = Provider("cuda", "CUDAExecutionProvider", Device.CUDA, options={"arena_extend_strategy": "kSameAsRequested"})
CPU = Provider("cpu", "CPUExecutionProvider", Device.CPU, memory_pattern=False)
PROVIDERS = {provider.name: provider for provider in (DIRECTML, CUDA, CPU)}


def installed() -> tuple[list[Provider], str]:
    """The providers of the ONNX Runtime installed here, best first, and its version ("" when none)."""
    for distribution, names in DISTRIBUTIONS.items():
        try:
            found = version(distribution)
        except PackageNotFoundError:
            continue
        return [PROVIDERS[name] for name in names], found
    return [], ""


def runnable() -> list[Provider]:
    """The providers ONNX Runtime can run here now, best first (imports ONNX Runtime)."""
    import onnxruntime

    available = set(onnxruntime.get_available_providers())
    return [provider for provider in installed()[0] if provider.ort_name in available]


def choose_provider(device: Device | str) -> Provider:
    """The provider for `device`: the named one, or for "auto" the best one ONNX Runtime runs here.

    Raises `InputError` saying what to install when ONNX Runtime or the provider is missing.
    """
    device = Device(device)
    providers, found = installed()
    if not found:
        raise InputError("ONNX Runtime is not installed in the compute runtime; install the directml or cpu runtime "
                         "(File → Compute runtime…), or choose the torch backend in Settings.")
    usable = runnable()
    if device == Device.AUTO:
        return usable[0] if usable else CPU
    for provider in usable:
        if provider.device == device:
            return provider
    names = ", ".join(p.device.value for p in usable) or "none"
    raise InputError(f"ONNX Runtime here cannot run on {device.value.upper()} (it runs on: {names}). Choose another "
                     "device in Settings, or install the runtime variant for this GPU.")
