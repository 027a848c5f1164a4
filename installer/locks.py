"""Regenerate the compute runtime's lock files, resources/runtime/<variant>-<platform>.txt.

    python installer/locks.py [--only VARIANT-PLATFORM ...] [--find-links DIR ...]

A runtime is what the worker needs to generate (torch, diffusers and the rest; no Qt), at the
versions pyproject.toml pins, with the transitive versions of requirements/constraints.txt, for
one variant (cpu, cuda, mps, directml) on one platform, resolved by `uv pip compile` with a hash for every
file. Each lock starts with a header the app reads: the Python version, the extra index torch
comes from, what the machine needs (a CUDA driver version) and the download size of every
package (from PyPI's JSON API, or a local copy of the torch index's wheel named with
--find-links). The app installs
a runtime from these files only (hypersd_desktop/runtime/): nothing is resolved on a user's
machine.

A target whose index cannot be reached from here is reported and its old lock kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "runtime"
PYTHON = "3.11"  # the runtime's interpreter: the version the constraints were tested with
PYPI = "https://pypi.org/simple"
TORCH_INDEX = "https://download.pytorch.org/whl"
# What the worker imports (and nothing of the GUI): the names of pyproject.toml's dependencies.
# Every variant carries the ONNX Runtime backend too (optimum and onnx export with torch on the CPU); which
# ONNX Runtime build is the target's `onnxruntime`.
RUNTIME_PACKAGES = ("torch", "diffusers", "transformers", "tokenizers", "huggingface_hub", "accelerate", "peft",
                    "safetensors", "numpy", "pillow", "psutil", "platformdirs", "optimum", "optimum_onnx", "onnx")


@dataclass(frozen=True)
class Target:
    variant: str
    platform: str  # the app's name for it: linux-x86_64, windows-x86_64, macos-arm64
    uv_platform: str
    wheel_tags: tuple[str, ...]  # substrings of a compatible wheel's platform tag
    torch: str = ""  # a local version label, e.g. "+cpu", from TORCH_INDEX/<label>
    needs: str = ""  # what the machine must have, read by the app's hardware check
    env: dict = field(default_factory=dict)
    onnxruntime: str = "onnxruntime"  # or onnxruntime-directml (DirectML and the CPU, Windows only)

    @property
    def name(self) -> str:
        return f"{self.variant}-{self.platform}"

    @property
    def index(self) -> str:
        return f"{TORCH_INDEX}/{self.torch.lstrip('+')}" if self.torch else ""


TARGETS = (
    # PyPI's Linux torch is the CUDA 13.0 build: its driver must be 580 or later.
    Target("cuda", "linux-x86_64", "x86_64-manylinux_2_28", ("manylinux", "linux_x86_64"), needs="cuda-driver>=13.0"),
    Target("cpu", "linux-x86_64", "x86_64-manylinux_2_28", ("manylinux", "linux_x86_64"), torch="+cpu"),
    Target("cuda", "windows-x86_64", "x86_64-pc-windows-msvc", ("win_amd64",), torch="+cu130", needs="cuda-driver>=13.0"),
    Target("cpu", "windows-x86_64", "x86_64-pc-windows-msvc", ("win_amd64",)),
    # AMD and Intel GPUs on Windows: ONNX Runtime's DirectML build, and PyPI's Windows torch (the CPU build)
    # for exporting models to ONNX; no CUDA.
    Target("directml", "windows-x86_64", "x86_64-pc-windows-msvc", ("win_amd64",), onnxruntime="onnxruntime-directml"),
    # torch has no macOS wheels for Intel Macs; Apple silicon's build runs on MPS and the CPU.
    Target("mps", "macos-arm64", "aarch64-apple-darwin", ("arm64", "universal2"), env={"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
)


def runtime_requirements(onnxruntime: str = "onnxruntime") -> list[str]:
    """pyproject.toml's pins of the runtime's packages, and of `onnxruntime` without its platform marker."""
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    by_name = {re.split(r"[=<>;\s\[]", pin, maxsplit=1)[0].lower().replace("-", "_"): pin for pin in pins}
    ort = by_name[onnxruntime.replace("-", "_")].split(";")[0].strip()
    return [*(by_name[name] for name in RUNTIME_PACKAGES), ort]


def uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def compile_lock(target: Target, find_links: list[Path]) -> str:
    """uv's lock text for `target`, or raises CalledProcessError with uv's reason."""
    requirements = [req if not (req.startswith("torch==") and target.torch) else req.split(";")[0] + target.torch
                    for req in runtime_requirements(target.onnxruntime)]
    source = OUT / f".{target.name}.in"
    source.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    command = [uv(), "pip", "compile", str(source), "-c", str(ROOT / "requirements" / "constraints.txt"),
               "--generate-hashes", "--no-header", "--no-annotate", "--quiet", "--python-version", PYTHON,
               "--python-platform", target.uv_platform, "--index-url", PYPI]
    if target.torch and find_links:  # a local copy of the torch index's wheels stands in for it
        command += [arg for folder in find_links for arg in ("--find-links", str(folder))]
    elif target.torch:
        command += ["--extra-index-url", target.index, "--index-strategy", "unsafe-best-match"]
    try:
        done = subprocess.run(command, check=True, capture_output=True, encoding="utf-8",
                              env={**os.environ, **target.env})
    finally:
        source.unlink()
    return done.stdout


def pinned(lock: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, sha256 hashes) from a lock's requirement lines."""
    found: dict[str, tuple[str, set[str]]] = {}
    for block in re.split(r"\n(?=\S)", lock):
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if match:
            found[match[1].lower()] = (match[2], set(re.findall(r"sha256:([0-9a-f]{64})", block)))
    return found


def index_files(name: str) -> list[dict]:
    request = urllib.request.Request(f"{PYPI}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["files"]


def local_files(find_links: list[Path]) -> dict[str, int]:
    """sha256 -> size of the wheels in the find-links folders."""
    sizes = {}
    for folder in find_links:
        for wheel in folder.glob("*.whl"):
            sizes[hashlib.sha256(wheel.read_bytes()).hexdigest()] = wheel.stat().st_size
    return sizes


def download_bytes(target: Target, name: str, hashes: set[str], local: dict[str, int]) -> int:
    """The size of the file uv will fetch for `name` on `target`: the largest compatible wheel among the
    locked hashes (an sdist only when no wheel fits)."""
    for sha in hashes:
        if sha in local:
            return local[sha]
    files = [f for f in index_files(name) if f["hashes"].get("sha256") in hashes]
    python_tag = "cp" + PYTHON.replace(".", "")
    wheels = [f for f in files if f["filename"].endswith(".whl")]
    fitting = [f for f in wheels if (f["filename"].endswith("-any.whl") or any(t in f["filename"] for t in target.wheel_tags))
               and (python_tag in f["filename"] or "-py3" in f["filename"] or "abi3" in f["filename"]
                    or "-py2.py3" in f["filename"])]
    chosen = fitting or [f for f in files if not f["filename"].endswith(".whl")]
    if not chosen:
        raise LookupError(f"no file of {name} fits {target.name}")
    return max(f["size"] for f in chosen)


def write_lock(target: Target, lock: str, find_links: list[Path]) -> Path:
    local = local_files(find_links)
    sizes = {name: download_bytes(target, name, hashes, local) for name, (_, hashes) in pinned(lock).items()}
    header = [
        f"# The HyperSD Desktop compute runtime: {target.variant} on {target.platform}, CPython {PYTHON}.",
        "# Generated by `python installer/locks.py` from pyproject.toml and requirements/constraints.txt; do not edit.",
        f"# python: {PYTHON}",
    ]
    if target.index:
        header.append(f"# index: {target.index}")
    if target.needs:
        header.append(f"# needs: {target.needs}")
    header += [f"# download-bytes: {name} {size}" for name, size in sorted(sizes.items())]
    path = OUT / f"{target.name}.txt"
    path.write_text("\n".join(header) + "\n" + lock, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="targets to regenerate, e.g. cpu-linux-x86_64")
    parser.add_argument("--find-links", type=Path, action="append", default=[],
                        help="a folder holding the torch index's wheels (e.g. torch-2.13.0+cpu), used instead of "
                             "that index where it cannot be reached; the other packages still come from PyPI")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    for target in TARGETS:
        if args.only is not None and target.name not in args.only:
            continue
        try:
            lock = compile_lock(target, args.find_links)
            path = write_lock(target, lock, args.find_links)
        except (subprocess.CalledProcessError, OSError, LookupError) as error:
            reason = getattr(error, "stderr", "") or str(error)
            print(f"{target.name}: not regenerated ({reason.strip().splitlines()[-1] if reason.strip() else error})")
            failed.append(target.name)
            continue
        print(f"{target.name}: {path.relative_to(ROOT)} ({len(pinned(lock))} packages)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
