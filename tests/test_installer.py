"""The packaged app (installer/): built, then run with no Python environment of the project.

Slow (a PyInstaller build takes minutes): run with `python3 dev.py test -m slow tests/test_installer.py`;
.ci/run runs it after the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop import __version__
from wheelhouse import complete, wheelhouse_dir

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
    Image.new("RGB", (64, 64), (20, 40, 90)).save(tmp_path / "opened.png")
    second = run(program, "opened.png", home=tmp_path)  # Open With while the window is open: handed to it
    time.sleep(1)
    process.terminate()
    _out, err = process.communicate(timeout=30)
    assert alive, err
    assert "Traceback" not in err
    assert second.returncode == 0 and "already open" in second.stderr, second.stderr
    log = (tmp_path / "hypersd" / "data" / "app.log").read_text()
    assert "Traceback" not in log
    assert "a later start asked this window to come to the front with 1 file(s)" in log


def test_the_deb_installs_a_command_a_menu_entry_and_an_icon(built, tmp_path, tiny_sd15):
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
    assert "MimeType=image/png;image/jpeg;image/webp;" in desktop  # Open With offers it; the files open in it
    assert Image.open(root / "usr" / "share" / "icons" / "hicolor" / "256x256" / "apps" / "hypersd-desktop.png").size == (256, 256)
    program = root / "opt" / "hypersd-desktop" / "hypersd-desktop"
    assert run(program, "--version", home=tmp_path).returncode == 0  # stripped binaries still run
    # numpy's vendored OpenBLAS, which `strip` broke, and libheif load: an iPhone's HEIC init image is read
    # and kept as PNG (with numpy) before the program says that generating needs the compute runtime.
    checked = run(program, "generate", "--model", str(tiny_sd15), "--prompt", "x", "--init-image",
                  str(ROOT / "tests" / "photos" / "arrow.heic"), home=tmp_path)
    assert "runtime install" in checked.stderr and "Failed to execute" not in checked.stderr, checked.stderr
    assert [path.suffix for path in (tmp_path / "hypersd" / "data" / "inputs").iterdir()] == [".png"]
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


def install_older_app(runtime: Path, work: Path) -> None:
    """Put a wheel of this app as version 0.0.9 into `runtime`, as a runtime made before an update holds."""
    shutil.copytree(ROOT / "hypersd_desktop", work / "hypersd_desktop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "resources", work / "resources")
    shutil.copy(ROOT / "README.md", work)
    init = work / "hypersd_desktop" / "__init__.py"
    init.write_text(init.read_text().replace(f'"{__version__}"', '"0.0.9"'))
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text().replace(f'version = "{__version__}"',
                                                                                       'version = "0.0.9"'))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(work / "dist"), str(work)], check=True, capture_output=True)
    from uv import find_uv_bin

    subprocess.run([find_uv_bin(), "pip", "install", "--offline", "--no-deps", "--python", str(runtime / "bin" / "python"),
                    str(next((work / "dist").glob("*.whl")))], check=True, capture_output=True)


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """The cpu runtime's wheels, fetched by the set-up step `python3 dev.py wheelhouse` (.ci/run runs it)."""
    folder = wheelhouse_dir("cpu")
    if folder is None or not complete(folder):
        if os.environ.get("CI"):
            pytest.fail("build/wheelhouse/ is missing: .ci/run must run `python3 dev.py wheelhouse` first")
        pytest.skip("run `python3 dev.py wheelhouse` first (downloads the cpu runtime's wheels)")
    return folder


def test_the_frozen_app_installs_the_cpu_runtime_then_generates_in_it(built, wheelhouse, tiny_sd15, tmp_path):
    """The compute runtime from the real `cpu` lock, with this machine's Python and no index: cancelled
    mid-way (Ctrl+C), installed again (it resumes), checked by the worker's handshake; then the packaged
    app, which has no torch, generates an image through the worker in that runtime into the gallery.
    Last, a runtime holding an older app is found outdated and updated."""
    program = built / "hypersd-desktop" / "hypersd-desktop"
    base_python = str(Path(sys._base_executable).resolve())
    install = [str(program), "runtime", "install", "cpu", "--python", base_python, "--find-links", str(wheelhouse),
               "--offline"]
    process = subprocess.Popen(install, env=bare_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path)
    steps = []
    for line in process.stderr:
        steps.append(line)
        if line.startswith("[") and "torch" in line:
            time.sleep(1.0)  # uv is unpacking torch now
            process.send_signal(signal.SIGINT)
            break
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(steps) + err
    assert "installing again resumes" in err
    data = tmp_path / "hypersd" / "data"
    assert (data / "runtime.partial").is_dir() and not (data / "runtime").exists()

    started = time.perf_counter()
    again = subprocess.run(install, env=bare_env(tmp_path), capture_output=True, text=True, timeout=900, cwd=tmp_path)
    seconds = time.perf_counter() - started
    assert again.returncode == 0, again.stderr
    assert "the cpu runtime is ready" in again.stdout and "checking the worker" in again.stderr
    state = json.loads(run(program, "runtime", "status", "--json", home=tmp_path).stdout)
    assert state["state"] == "ready" and state["manifest"]["app_version"] == __version__
    print(f"\ncpu runtime: installed in {seconds:.1f} s (resumed) from {wheelhouse.name}, "
          f"{state['manifest']['installed_bytes'] / 2**20:.0f} MiB, {state['manifest']['python']}")

    generated = subprocess.run([str(program), "generate", "--model", str(tiny_sd15), "--prompt", "a red cube on a table",
                                "--steps", "1", "--width", "64", "--height", "64", "--seed", "7", "--json"],
                               env=bare_env(tmp_path), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    image = json.loads(generated.stdout.splitlines()[-1])
    assert Path(image["path"]).is_file() and image["seed"] == 7 and Image.open(image["path"]).size == (64, 64)
    listed = json.loads(run(program, "gallery", "search", "red cube", "--json", home=tmp_path).stdout)
    assert [item["path"] for item in listed] == [image["path"]]

    # The app was updated, the runtime still holds the older app: found, and brought in line.
    install_older_app(data / "runtime", tmp_path / "old-app")
    outdated = run(program, "runtime", "status", home=tmp_path)
    assert outdated.returncode == 1 and "0.0.9" in outdated.stdout and "needs an update" in outdated.stdout
    updated = subprocess.run([str(program), "runtime", "update", "--python", base_python, "--find-links", str(wheelhouse),
                              "--offline"], env=bare_env(tmp_path), capture_output=True, text=True, timeout=300,
                             cwd=tmp_path)
    assert updated.returncode == 0, updated.stderr
    assert json.loads(run(program, "runtime", "status", "--json", home=tmp_path).stdout)["state"] == "ready"


def test_an_offline_build_embeds_the_cpu_runtime_and_updates_it_by_itself(built, wheelhouse, tiny_sd15, tmp_path):
    """`--embed-runtime cpu`: the runtime's wheels ship in the app, the install needs no index; after an app
    update, `generate` brings the runtime in line from them before it generates."""
    subprocess.run([sys.executable, str(ROOT / "installer" / "build.py"), "folder", "--reuse", "--out", str(built),
                    "--embed-runtime", "cpu", "--find-links", str(wheelhouse)], check=True)
    folder = built / "hypersd-desktop"
    try:
        assert (folder / "runtime" / "wheels" / "VARIANT").read_text() == "cpu"
        program = folder / "hypersd-desktop"
        base_python = str(Path(sys._base_executable).resolve())
        done = subprocess.run([str(program), "runtime", "install", "cpu", "--python", base_python], env=bare_env(tmp_path),
                              capture_output=True, text=True, timeout=900, cwd=tmp_path)
        assert done.returncode == 0 and "the cpu runtime is ready" in done.stdout, done.stderr
        install_older_app(tmp_path / "hypersd" / "data" / "runtime", tmp_path / "old-app")
        generated = subprocess.run([str(program), "generate", "--model", str(tiny_sd15), "--prompt", "a blue sphere",
                                    "--steps", "1", "--width", "64", "--height", "64", "--json"],
                                   env=bare_env(tmp_path), capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert generated.returncode == 0, generated.stderr
        assert "needs an update" in generated.stderr and "Updating it first" in generated.stderr
        assert Path(json.loads(generated.stdout.splitlines()[-1])["path"]).is_file()
        assert json.loads(run(program, "runtime", "status", "--json", home=tmp_path).stdout)["state"] == "ready"
    finally:
        shutil.rmtree(folder / "runtime" / "wheels", ignore_errors=True)
