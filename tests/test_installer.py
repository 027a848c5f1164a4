"""The packaged app (installer/): built, then run with no Python environment of the project.

Slow (a PyInstaller build takes minutes): run with `python3 dev.py test -m slow tests/test_installer.py`;
.ci/run runs it after the suite.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop import __version__

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ROOT / "installer" / "build.py"), "all", "--out", str(out)], check=True)
    return out


def bare_env(home: Path) -> dict[str, str]:
    """What a desktop session gives a program: no virtual environment, no PYTHONPATH."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "HYPERSD_HOME": str(home / "hypersd"),
            "QT_QPA_PLATFORM": "offscreen", "LANG": "C.UTF-8"}


def run(program: Path, *args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(program), *args], env=bare_env(home), capture_output=True, text=True, timeout=120,
                          cwd=home)


def test_the_frozen_app_runs_the_command_line_without_python(built, tmp_path):
    program = built / "hypersd-desktop" / "hypersd-desktop"
    assert run(program, "--version", home=tmp_path).stdout.strip() == f"hypersd-desktop {__version__}"
    catalog = json.loads(run(program, "models", "catalog", "--json", home=tmp_path).stdout)
    assert {"sd15", "sdxl", "hyper-sd15-1step-lora"} <= {entry["id"] for entry in catalog}
    images = tmp_path / "from-a1111"
    images.mkdir()
    info = PngInfo()
    info.add_text("parameters", "a lighthouse at dusk\nSteps: 4, Sampler: Euler, CFG scale: 1, Seed: 9, Size: 64x64")
    Image.new("RGB", (64, 64), (20, 40, 90)).save(images / "a.png", pnginfo=info)
    shutil.copy(ROOT / "tests" / "gallery" / "corpus" / "sd-metadata" / "jpg" / "swarmui.jpg", images)
    imported = run(program, "gallery", "import", str(images), home=tmp_path)
    assert imported.returncode == 0 and "added 2" in imported.stdout, imported.stderr
    exported = run(program, "gallery", "export", "--query", "lighthouse", "--to", str(tmp_path / "out"),
                   "--format", "webp", home=tmp_path)
    assert exported.returncode == 0 and "exported 1 images" in exported.stdout, exported.stderr
    assert len(list((tmp_path / "out").rglob("*.webp"))) == 1


def test_the_frozen_window_starts_and_keeps_running(built, tmp_path):
    program = built / "hypersd-desktop" / "hypersd-desktop"
    process = subprocess.Popen([str(program)], env=bare_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path)
    time.sleep(8)
    alive = process.poll() is None
    process.terminate()
    _out, err = process.communicate(timeout=30)
    assert alive, err
    assert "Traceback" not in err
    log = (tmp_path / "hypersd" / "data" / "app.log").read_text()
    assert "Traceback" not in log


def test_the_deb_installs_a_command_a_menu_entry_and_an_icon(built, tmp_path):
    deb = built / f"hypersd-desktop_{__version__}_amd64.deb"
    fields = subprocess.run(["dpkg-deb", "--field", str(deb), "Package", "Version", "Depends"], capture_output=True,
                            text=True, check=True).stdout
    assert "Package: hypersd-desktop" in fields and f"Version: {__version__}" in fields
    assert "libxcb-cursor0" in fields  # what Qt's xcb plugin needs, installed by apt with the package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")], check=True)
    root = tmp_path / "root"
    assert (root / "usr" / "bin" / "hypersd-desktop").readlink() == Path("/opt/hypersd-desktop/hypersd-desktop")
    desktop = (root / "usr" / "share" / "applications" / "hypersd-desktop.desktop").read_text()
    assert "Exec=hypersd-desktop %F" in desktop and "Categories=Graphics;" in desktop
    assert Image.open(root / "usr" / "share" / "icons" / "hicolor" / "256x256" / "apps" / "hypersd-desktop.png").size == (256, 256)
    program = root / "opt" / "hypersd-desktop" / "hypersd-desktop"
    assert run(program, "--version", home=tmp_path).returncode == 0  # stripped binaries still run
    if shutil.which("lintian"):
        report = subprocess.run(["lintian", str(deb)], capture_output=True, text=True)
        assert [line for line in report.stdout.splitlines() if line[:2] in ("E:", "W:")] == []


@pytest.mark.skipif(shutil.which("makensis") is None, reason="NSIS is not installed (apt-get install nsis)")
def test_the_windows_installer_script_compiles_against_the_folder(built):
    """A stand-in: the Linux folder as payload checks the script; the release workflow builds the real
    installer on Windows."""
    subprocess.run([sys.executable, str(ROOT / "installer" / "build.py"), "nsis", "--quick", "--reuse", "--out", str(built)],
                   check=True)
    installer = built / f"HyperSD-Desktop-Setup-{__version__}.exe"
    assert installer.read_bytes()[:2] == b"MZ" and installer.stat().st_size > 20 * 2**20


def test_the_tarball_holds_the_folder_a_desktop_file_and_the_icon(built):
    tarball = built / f"HyperSD-Desktop-{__version__}-linux-x86_64.tar.gz"
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    top = f"HyperSD-Desktop-{__version__}"
    assert {f"{top}/hypersd-desktop/hypersd-desktop", f"{top}/hypersd-desktop.desktop", f"{top}/hypersd-desktop.png"} <= names
