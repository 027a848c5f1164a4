"""The runtime lock files the app ships (resources/runtime/, made by installer/locks.py).

A lock is a pip requirements file with a hash for every file, headed by comment lines the app
reads: `python: 3.11`, `index: URL` (the extra index torch comes from), `needs: cuda-driver>=13.0`
and one `download-bytes: NAME SIZE` a package.
"""

from __future__ import annotations

import hashlib
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.resources import resources_dir

VARIANTS = ("cuda", "mps", "directml", "cpu")
VARIANT_TITLES = {
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple silicon GPU (Metal)",
    "directml": "DirectX 12 GPU (DirectML, AMD and Intel)",
    "cpu": "CPU only",
}
BATCH_BYTES = 32 * 2**20  # packages smaller than this are installed together


def this_platform() -> str:
    """The lock files' platform name for this machine: linux-x86_64, windows-x86_64, macos-arm64."""
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "aarch64": "arm64" if system == "macos" else "aarch64"}.get(machine, machine)
    return f"{system}-{machine}"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    requirement: str  # its lines in the lock, with the hashes
    download_bytes: int


@dataclass(frozen=True)
class Lock:
    variant: str
    platform: str
    python: str
    index: str | None
    needs: str | None
    packages: tuple[Package, ...]
    sha256: str  # of the whole file: a runtime made from another lock is out of date

    @property
    def name(self) -> str:
        return f"{self.variant}-{self.platform}"

    @property
    def download_bytes(self) -> int:
        return sum(package.download_bytes for package in self.packages)

    def batches(self) -> list[tuple[Package, ...]]:
        """The packages in install steps, largest first: each large package alone (its progress is
        seen and a cancel keeps what finished), the small ones together."""
        ordered = sorted(self.packages, key=lambda p: -p.download_bytes)
        large = [(package,) for package in ordered if package.download_bytes >= BATCH_BYTES]
        small = tuple(package for package in ordered if package.download_bytes < BATCH_BYTES)
        return large + ([small] if small else [])

    @classmethod
    def parse(cls, text: str, variant: str, platform_name: str) -> Lock:
        header: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for line in text.splitlines():
            match = re.match(r"#\s*([a-z-]+):\s*(.+)", line)
            if not match:
                continue
            key, value = match[1], match[2].strip()
            if key == "download-bytes":
                name, size = value.split()
                sizes[name.lower()] = int(size)
            else:
                header[key] = value
        packages = []
        for block in re.split(r"\n(?=[A-Za-z0-9])", "\n" + text):
            match = re.match(r"\s*([A-Za-z0-9_.\-]+)==(\S+)", block)
            if match:
                requirement = "\n".join(line for line in block.strip().splitlines() if not line.lstrip().startswith("#"))
                name = match[1].lower()
                packages.append(Package(name, match[2], requirement, sizes.get(name, 0)))
        if not packages or "python" not in header:
            raise ValueError(f"the runtime lock {variant}-{platform_name} has no packages or no python line")
        return cls(variant, platform_name, header["python"], header.get("index"), header.get("needs"),
                   tuple(packages), hashlib.sha256(text.encode()).hexdigest())


def locks_dir() -> Path:
    return resources_dir() / "runtime"


def load_lock(variant: str, platform_name: str | None = None) -> Lock | None:
    """The lock of `variant` for this (or the named) platform; None where none ships."""
    platform_name = platform_name or this_platform()
    path = locks_dir() / f"{variant}-{platform_name}.txt"
    if not path.is_file():
        return None
    return Lock.parse(path.read_text(encoding="utf-8"), variant, platform_name)


def available_variants(platform_name: str | None = None) -> list[str]:
    return [variant for variant in VARIANTS if load_lock(variant, platform_name) is not None]
