"""What this machine can run generation on, found without torch (which is not installed yet).

- NVIDIA: the driver's CUDA version from the driver library itself (`cuDriverGetVersion` in
  libcuda / nvcuda.dll), the GPUs' names and memory from `nvidia-smi`.
- Apple silicon: an arm64 Mac (also when this process runs under Rosetta).
- Windows: the display adapters from CIM (PowerShell); any that is not Microsoft's basic
  display driver is a DirectX 12 candidate.
- The CPU: its name, cores and vector extensions (AVX2, AVX-512), and the memory.

`recommend` turns this into the runtime variant to install, with the reason in words.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import psutil

log = logging.getLogger("hypersd.runtime")
PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_bytes: int = 0
    vendor: str = ""


@dataclass(frozen=True)
class Hardware:
    system: str  # linux, windows, macos
    machine: str  # x86_64, arm64, aarch64
    cpu: str
    cores: int
    memory_bytes: int
    cpu_features: frozenset[str] = frozenset()
    nvidia: tuple[Gpu, ...] = ()
    cuda_driver: tuple[int, int] | None = None  # the newest CUDA version the driver supports
    apple_silicon: bool = False
    other_gpus: tuple[Gpu, ...] = ()  # DirectX 12 candidates on Windows

    def describe(self) -> list[str]:
        lines = [f"{gpu.name}" + (f", {gpu.memory_bytes / 2**30:.0f} GiB" if gpu.memory_bytes else "")
                 + (f" (driver supports CUDA {self.cuda_driver[0]}.{self.cuda_driver[1]})" if self.cuda_driver else "")
                 for gpu in self.nvidia]
        if self.nvidia == () and self.cuda_driver:
            lines.append(f"an NVIDIA driver for CUDA {self.cuda_driver[0]}.{self.cuda_driver[1]}")
        if self.apple_silicon:
            lines.append("Apple silicon GPU (Metal)")
        lines += [gpu.name for gpu in self.other_gpus]
        features = ", ".join(sorted(self.cpu_features & {"avx2", "avx512f", "neon"})) or "no AVX2"
        lines.append(f"{self.cpu or 'CPU'}: {self.cores} cores, {features}; {self.memory_bytes / 2**30:.0f} GiB memory")
        return lines


@dataclass(frozen=True)
class Recommendation:
    variant: str
    reason: str
    notes: tuple[str, ...] = field(default=())


def parse_version(needs: str | None) -> tuple[int, int] | None:
    match = re.search(r"cuda-driver>=(\d+)\.(\d+)", needs or "")
    return (int(match[1]), int(match[2])) if match else None


def recommend(hardware: Hardware, available: dict[str, str | None]) -> Recommendation:
    """The variant to install: `available` maps the variants that have a lock for this platform to
    what each needs (`cuda-driver>=13.0`)."""
    notes = []
    if hardware.nvidia or hardware.cuda_driver:
        if "cuda" not in available:
            notes.append("No CUDA runtime is offered for this platform in this build.")
        else:
            wanted = parse_version(available["cuda"])
            if hardware.cuda_driver is None or (wanted and hardware.cuda_driver < wanted):
                have = f"CUDA {hardware.cuda_driver[0]}.{hardware.cuda_driver[1]}" if hardware.cuda_driver else "no CUDA"
                notes.append(f"The NVIDIA driver supports {have}; the CUDA runtime needs CUDA {wanted[0]}.{wanted[1]} "
                             "(driver 580 or later). Update the driver from nvidia.com, then choose cuda here.")
            else:
                return Recommendation("cuda", f"{hardware.nvidia[0].name if hardware.nvidia else 'An NVIDIA GPU'} "
                                              "runs generation with CUDA.", tuple(notes))
    if hardware.apple_silicon and "mps" in available:
        return Recommendation("mps", "Apple silicon runs generation on its GPU with Metal (MPS).", tuple(notes))
    if hardware.other_gpus and "directml" in available:
        return Recommendation("directml", f"{hardware.other_gpus[0].name} runs generation with DirectML.", tuple(notes))
    if hardware.other_gpus:
        notes.append(f"{hardware.other_gpus[0].name} has no runtime here (DirectML, for AMD and Intel GPUs, is "
                     "Windows-only); generation runs on the CPU.")
    if "cpu" not in available:
        return Recommendation("", "No compute runtime is offered for this platform.", tuple(notes))
    return Recommendation("cpu", "No supported GPU was found: generation runs on the CPU (seconds per image).",
                          tuple(notes))


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=PROBE_TIMEOUT_S,
                              creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, subprocess.SubprocessError) as error:
        log.info("%s: %s", command[0], error)
        return ""
    return done.stdout if done.returncode == 0 else ""


def cuda_driver_version() -> tuple[int, int] | None:
    """From the driver library, as CUDA itself asks it; None without an NVIDIA driver."""
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            library = ctypes.WinDLL(name) if sys.platform == "win32" else ctypes.CDLL(name)  # type: ignore[attr-defined]
        except OSError:
            continue
        version = ctypes.c_int(0)
        if library.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value:
            return version.value // 1000, (version.value % 1000) // 10
    return None


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """`nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` (MiB)."""
    gpus = []
    for line in text.splitlines():
        name, _, memory = line.rpartition(",")
        if name.strip():
            gpus.append(Gpu(name.strip(), int(memory.strip()) * 2**20 if memory.strip().isdigit() else 0, "NVIDIA"))
    return tuple(gpus)


def parse_cuda_version(nvidia_smi_text: str) -> tuple[int, int] | None:
    """The "CUDA Version: 13.0" of nvidia-smi's table, where the driver library cannot be opened."""
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", nvidia_smi_text)
    return (int(match[1]), int(match[2])) if match else None


def parse_windows_adapters(text: str) -> tuple[Gpu, ...]:
    """PowerShell's `Get-CimInstance Win32_VideoController | Select Name,AdapterRAM,AdapterCompatibility |
    ConvertTo-Json`: one object or a list. NVIDIA adapters and Microsoft's basic display driver are left out."""
    try:
        data = json.loads(text or "[]")
    except ValueError:
        return ()
    gpus = []
    for item in data if isinstance(data, list) else [data]:
        name = str(item.get("Name") or "")
        vendor = str(item.get("AdapterCompatibility") or "")
        if not name or "NVIDIA" in name.upper() or "Microsoft" in vendor or "Basic" in name:
            continue
        memory = item.get("AdapterRAM") or 0
        gpus.append(Gpu(name, int(memory) if isinstance(memory, (int, float)) else 0, vendor))
    return tuple(gpus)


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """Linux /proc/cpuinfo: the model name and the flags (x86) or features (Arm)."""
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.MULTILINE)
    features = set(flags[1].split()) if flags else set()
    if "asimd" in features:
        features.add("neon")
    return (name[1].strip() if name else ""), frozenset(features)


def cpu_details(system: str) -> tuple[str, frozenset[str]]:
    if system == "linux":
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
                return parse_cpuinfo(file.read())
        except OSError:
            return platform.processor(), frozenset()
    if system == "macos":
        name = _run(["sysctl", "-n", "machdep.cpu.brand_string"]).strip()
        features = _run(["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"]).lower().split()
        arm = _run(["sysctl", "-n", "hw.optional.arm64"]).strip() == "1"
        return name, frozenset(features) | ({"neon"} if arm else set())
    if system == "windows":
        kernel = ctypes.windll.kernel32  # type: ignore[attr-defined]
        features = {flag for flag, number in (("avx", 39), ("avx2", 40), ("avx512f", 41))
                    if kernel.IsProcessorFeaturePresent(number)}
        return platform.processor(), frozenset(features)
    return platform.processor(), frozenset()


def detect() -> Hardware:
    """This machine's hardware; every probe that fails leaves its part empty."""
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower().replace("amd64", "x86_64")
    cpu, features = cpu_details(system)
    nvidia: tuple[Gpu, ...] = ()
    cuda = None
    if system != "macos":
        cuda = cuda_driver_version()
        smi = shutil.which("nvidia-smi") or (r"C:\Windows\System32\nvidia-smi.exe" if system == "windows" else None)
        if smi and os.path.exists(smi):
            nvidia = parse_nvidia_smi(_run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]))
            cuda = cuda or parse_cuda_version(_run([smi]))
    apple = system == "macos" and (machine == "arm64" or _run(["sysctl", "-n", "hw.optional.arm64"]).strip() == "1")
    others: tuple[Gpu, ...] = ()
    if system == "windows":
        others = parse_windows_adapters(_run([
            "powershell", "-NoProfile", "-Command",
            "Get-CimInstance Win32_VideoController | Select-Object Name,AdapterRAM,AdapterCompatibility | ConvertTo-Json"]))
    return Hardware(system, machine, cpu, os.cpu_count() or 1, psutil.virtual_memory().total, features, nvidia, cuda,
                    apple, others)
