"""The wheel carries everything the app needs: installed non-editable into a fresh environment and
run from outside the checkout, it finds its catalog and configs and generates an image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from hypersd_desktop.runtime.install import build_wheel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """A fresh environment with the project's wheel installed (its dependencies come from this one)."""
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    wheel = build_wheel(ROOT, work / "dist")  # as the runtime install and the packaged build make it
    fresh = work / "env"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # The dependencies (torch, diffusers, PySide6 …) from this environment, as a plain path: its .pth
    # files, among them the editable install's finder for the checkout, are not run from there.
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, work


def run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_the_installed_wheel_is_used_and_lists_the_catalog(installed_wheel, app_home):
    python, work = installed_wheel
    where = run(python, work, "-c", "import hypersd_desktop.core.resources as r; print(r.__file__); print(r.resources_dir())")
    module, resources = where.stdout.split()
    assert Path(module).is_relative_to(work / "env") and Path(resources).is_relative_to(work / "env"), where.stdout
    assert not Path(module).is_relative_to(ROOT)
    catalog = run(python, work, "-m", "hypersd_desktop", "models", "catalog", "--json")
    assert catalog.returncode == 0, catalog.stderr
    entries = json.loads(catalog.stdout)
    assert {"sd15", "sdxl", "hyper-sd15-1step-lora"} <= {entry["id"] for entry in entries}


def test_the_installed_wheel_generates_with_a_tiny_model(installed_wheel, app_home, tiny_sd15, hyper_lora):
    python, work = installed_wheel
    command = Path(python).with_name("hypersd-desktop.exe" if os.name == "nt" else "hypersd-desktop")
    generated = subprocess.run(
        [str(command), "generate", "--model", str(tiny_sd15), "--lora", str(hyper_lora("Hyper-SD15-1step-lora")),
         "--prompt", "a lighthouse", "--steps", "1", "--width", "64", "--height", "64", "--seed", "3", "--json",
         "--out", str(work / "out")], capture_output=True, text=True, cwd=work, timeout=600)
    assert generated.returncode == 0, generated.stderr
    result = json.loads(generated.stdout)
    assert Path(result["path"]).is_file() and result["scheduler"] == "tcd" and result["seed"] == 3
