"""The shipped runtime locks: parsed by the app, true to the project's pins, hashed, sized."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hypersd_desktop.runtime.locks import BATCH_BYTES, Lock, available_variants, load_lock, locks_dir

ROOT = Path(__file__).resolve().parents[2]
LOCKS = sorted(locks_dir().glob("*.txt"))
RUNTIME = ("torch", "diffusers", "transformers", "tokenizers", "huggingface-hub", "accelerate", "peft", "safetensors",
           "numpy", "pillow", "psutil", "platformdirs", "optimum", "optimum-onnx", "onnx")


def pins(path: Path) -> dict[str, str]:
    pairs = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", path.read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pairs}


def test_a_lock_ships_for_every_desktop_platform():
    names = {path.stem for path in LOCKS}
    assert {"cpu-linux-x86_64", "cuda-linux-x86_64", "cpu-windows-x86_64", "directml-windows-x86_64",
            "mps-macos-arm64"} <= names


@pytest.mark.parametrize("path", LOCKS, ids=lambda path: path.stem)
def test_every_lock_pins_the_projects_versions_with_hashes_and_sizes(path):
    variant, platform_name = path.stem.split("-", 1)
    lock = load_lock(variant, platform_name)
    assert lock.python == "3.11"
    packages = {package.name.replace("_", "-"): package for package in lock.packages}
    assert set(RUNTIME) <= set(packages), "a package the worker imports is missing"
    onnxruntime = "onnxruntime-directml" if variant == "directml" else "onnxruntime"
    assert {name for name in packages if name.startswith("onnxruntime")} == {onnxruntime}, "one ONNX Runtime build"
    assert not {"pyside6", "pyside6-essentials", "shiboken6", "pyinstaller"} & set(packages), "no GUI in a runtime"
    project = {re.split(r"[=;]", pin)[0].lower().replace("_", "-"): pin.split("==")[1].split(";")[0].strip()
               for pin in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    tested = pins(ROOT / "requirements" / "constraints.txt")
    for name, package in packages.items():
        base = package.version.split("+")[0]
        if name in project:
            assert base == project[name], f"{name}: {package.version} in the lock, {project[name]} in pyproject.toml"
        elif name in tested:
            assert base == tested[name], f"{name}: {package.version} in the lock, {tested[name]} tested"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", package.requirement), f"{name} has no hash"
        assert package.download_bytes > 0, f"{name} has no size"
    assert lock.download_bytes > 100 * 2**20  # torch alone is over that


def test_the_cuda_locks_say_which_driver_they_need_and_the_linux_cpu_lock_where_torch_comes_from():
    assert load_lock("cuda", "linux-x86_64").needs == "cuda-driver>=13.0"
    cpu = load_lock("cpu", "linux-x86_64")
    assert cpu.index and cpu.index.endswith("/whl/cpu")
    assert next(p for p in cpu.packages if p.name == "torch").version.endswith("+cpu")


def test_the_directml_lock_carries_onnx_runtimes_directml_build_and_no_cuda():
    lock = load_lock("directml", "windows-x86_64")
    names = {package.name.lower() for package in lock.packages}
    assert "onnxruntime-directml" in names and not any(name.startswith("nvidia") for name in names)
    assert "+cu" not in next(p for p in lock.packages if p.name == "torch").version and not lock.needs


def test_install_steps_cover_every_package_once_largest_first():
    lock = load_lock("cuda", "linux-x86_64")
    steps = lock.batches()
    flat = [package.name for step in steps for package in step]
    assert sorted(flat) == sorted(package.name for package in lock.packages)
    singles = [step[0] for step in steps if len(step) == 1 and step[0].download_bytes >= BATCH_BYTES]
    assert singles[0] == max(lock.packages, key=lambda p: p.download_bytes)
    assert "torch" in {p.name for p in singles}
    assert [p.download_bytes for p in singles] == sorted((p.download_bytes for p in singles), reverse=True)
    assert all(p.download_bytes < BATCH_BYTES for p in steps[-1])


def test_a_lock_without_packages_or_python_is_refused():
    with pytest.raises(ValueError):
        Lock.parse("# python: 3.11\n", "cpu", "linux-x86_64")
    with pytest.raises(ValueError):
        Lock.parse("numpy==2.4.6 --hash=sha256:" + "0" * 64 + "\n", "cpu", "linux-x86_64")


def test_variants_offered_follow_the_files():
    assert available_variants("linux-x86_64") == ["cuda", "cpu"]
    assert available_variants("macos-arm64") == ["mps"]
    assert available_variants("haiku-m68k") == []


# What runs only in the app, never in the worker: modules of the app's side, and functions the window and the command
# line call (Canny edges and outpainting's fill are made there; HEIC and JPEG XL open where pi-heif and pylibjxl are
# installed, and are kept as PNG for the worker).
APP_SIDE = {"worker/bridge.py", "models/downloads.py", "runtime/install.py", "core/jpegxl.py"}
APP_SIDE_FUNCTIONS = {("engine/preprocess.py", "canny"), ("engine/preprocess.py", "outpainted"),
                      ("core/images.py", "_heif_opener")}
IMPORT_NAMES = {"pillow": "PIL", "optimum_onnx": "optimum"}  # a package's name, as its modules are imported


def test_what_the_worker_runs_imports_only_what_a_runtime_installs():
    """The runtime holds the packages `installer/locks.py` names and the app's wheel, nothing else: an import of
    another package (OpenCV, which the app has) in the code the worker runs fails only in a packaged install."""
    import ast
    import sys

    from installer.locks import RUNTIME_PACKAGES

    allowed = {IMPORT_NAMES.get(name, name) for name in RUNTIME_PACKAGES} | {"onnxruntime", "hypersd_desktop"}
    found = []
    package = ROOT / "hypersd_desktop"
    for folder in ("core", "engine", "gallery", "models", "worker", "runtime"):
        for path in sorted((package / folder).rglob("*.py")):
            where = path.relative_to(package).as_posix()
            if where in APP_SIDE:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            functions = {inner: node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                         for inner in ast.walk(node)}  # the innermost function last: ast.walk goes outside in
            for node in ast.walk(tree):
                app_side = (where, functions.get(node)) in APP_SIDE_FUNCTIONS
                if app_side or not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if node.level == 0 else [])
                found += [f"{where}:{node.lineno} {name}" for name in names
                          if name.split(".")[0] not in allowed | set(sys.stdlib_module_names)]
    assert not found, sorted(set(found))
