"""Small real wheels, a lock over them and an app wheel: what the runtime installer's fast tests install."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from hypersd_desktop import __version__
from hypersd_desktop.runtime import install
from hypersd_desktop.runtime.locks import Lock


def make_wheel(folder: Path, name: str, version: str, payload: int = 0) -> Path:
    """A real wheel: one module (printing its version), metadata and a RECORD with hashes."""
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{module}/data.bin": bytes(range(256)) * (payload // 256),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for path, data in files.items()) + f"{info}/RECORD,,\n"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name_in, data in files.items():
            wheel.writestr(name_in, data)
        wheel.writestr(f"{info}/RECORD", record)
    return path


def lock_for(wheels: dict[str, tuple[Path, int]], python: str = "3.11") -> Lock:
    """A lock over `wheels` (name -> (file, the download size to claim for progress))."""
    lines = [f"# python: {python}"] + [f"# download-bytes: {name} {size}" for name, (_, size) in wheels.items()]
    for name, (wheel, _) in wheels.items():
        version = wheel.name.split("-")[1]
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}")
    return Lock.parse("\n".join(lines) + "\n", "cpu", "test-platform")


def make_kit(tmp_path: Path, monkeypatch) -> dict:
    """Three packages (one large enough for its own step), their lock, and an app wheel of this version."""
    wheels = tmp_path / "wheels"
    lock = lock_for({"big-part": (make_wheel(wheels, "big-part", "1.0", 4096), 300 * 2**20),
                     "small-a": (make_wheel(wheels, "small-a", "2.0"), 2**20),
                     "small-b": (make_wheel(wheels, "small-b", "3.0"), 2**20)})
    locks = {"cpu": lock}
    monkeypatch.setattr(install, "load_lock", lambda variant, platform_name=None: locks.get(variant))
    app = make_wheel(tmp_path / "app", "hypersd-desktop", __version__)
    return {"wheels": wheels, "lock": lock, "locks": locks, "app": app}
