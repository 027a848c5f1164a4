"""What the build puts beside the frozen program (runtime/: uv, the app's wheel, a Python, embedded wheels),
and how the packaged app finds each of them."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

from hypersd_desktop import __version__
from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.runtime import install
from hypersd_desktop.runtime.install import Sources

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "installer"))


def python_dist(path: Path) -> Path:
    """An archive laid out as python-build-standalone's install_only ones: one folder, python/."""
    with tarfile.open(path, "w:gz") as archive:
        data = b"#!/bin/sh\necho 3.11\n"
        info = tarfile.TarInfo("python/bin/python3")
        info.size, info.mode = len(data), 0o755
        archive.addfile(info, io.BytesIO(data))
    return path


def test_the_build_ships_uv_the_app_wheel_and_a_given_python_and_the_frozen_app_finds_them(tmp_path, monkeypatch):
    import build

    folder = tmp_path / "hypersd-desktop"
    folder.mkdir()
    runtime = build.add_runtime_parts(folder, python_dist(tmp_path / "cpython-3.11-install_only.tar.gz"))
    assert (runtime / "uv").stat().st_size > 1_000_000 and (runtime / "uv").stat().st_mode & 0o111
    wheel = runtime / f"hypersd_desktop-{__version__}-py3-none-any.whl"
    assert wheel.is_file() and (runtime / "python" / "bin" / "python3").is_file()

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(folder / "hypersd-desktop"))
    sources = Sources().resolved(AppPaths.default())
    assert sources.uv == str(runtime / "uv") and sources.app_wheel == wheel
    assert sources.python == str(runtime / "python" / "bin" / "python3")
    assert sources.embedded is None and not sources.embeds("cpu")

    (runtime / "wheels").mkdir()
    (runtime / "wheels" / "VARIANT").write_text("cpu")
    sources = Sources().resolved(AppPaths.default())
    assert sources.embeds("cpu") and not sources.embeds("cuda")


def test_a_packaged_app_missing_its_wheel_says_to_reinstall(tmp_path, monkeypatch):
    (tmp_path / "runtime").mkdir()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "hypersd-desktop"))
    with pytest.raises(AppError, match="Reinstall HyperSD Desktop"):
        install.find_app_wheel(AppPaths.default())
