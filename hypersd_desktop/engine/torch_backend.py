"""The torch backend's entry in the registry: a probe that does not import torch, and the opener.

The probe reads what the installed torch build supports from its `version.py` text (a CUDA
build names its CUDA version there) and whether the machine has what that needs (an NVIDIA
driver; Apple silicon for MPS). Importing torch takes seconds and hundreds of megabytes; the
GUI's handshake with the worker must not wait for it. The engine's own device check
(`devices.choose_device`) still asks torch itself when a job runs.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import platform
import re
import sys
from pathlib import Path

from hypersd_desktop.core.vocab import Device, DType, Mode
from hypersd_desktop.engine.backend import Backend, BackendInfo, Engine


def _torch_build() -> tuple[str, str | None] | None:
    """(version, CUDA version or None) of the installed torch, or None when torch is missing."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version_file.read_text(encoding="utf-8")
    except OSError:
        return "unknown", None
    version = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)", text, re.M)
    cuda = re.search(r"^cuda\s*(?::[^=]+)?=\s*['\"]([^'\"]+)", text, re.M)
    return (version[1] if version else "unknown"), (cuda[1] if cuda else None)


def nvidia_driver_present() -> bool:
    """Whether the NVIDIA driver's CUDA library is installed (no GPU library is loaded to tell)."""
    if sys.platform.startswith("linux"):
        return Path("/proc/driver/nvidia/version").exists() or ctypes.util.find_library("cuda") is not None
    if sys.platform == "win32":
        return (Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32" / "nvcuda.dll").exists()
    return False


def probe() -> BackendInfo:
    build = _torch_build()
    if build is None:
        return BackendInfo("torch", (), reason="torch is not installed in this Python environment")
    version, cuda = build
    devices = []
    if cuda is not None and nvidia_driver_present():
        devices.append(Device.CUDA)
    if sys.platform == "darwin" and platform.machine() == "arm64":
        devices.append(Device.MPS)
    devices.append(Device.CPU)
    return BackendInfo("torch", tuple(devices), tuple(Mode), (DType.FP32, DType.FP16, DType.BF16),
                       controlnet=True, ip_adapter=True, version=version)


def open_engine(inputs=None) -> Engine:
    from hypersd_desktop.engine.torch_engine import TorchEngine

    return TorchEngine(inputs=inputs)


BACKEND = Backend("torch", probe, open_engine, priority=10, cpu_priority=1)
