"""The runtime installer with uv, offline, on small wheels made here: steps, progress, cancel and resume,
hash checks, a failed check keeping the working runtime, updates, removal, and the offline message.

The real `cpu` runtime (torch and all) is installed from its lock by the slow test in tests/test_installer.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hypersd_desktop import __version__
from hypersd_desktop.core.errors import AppError, CancelledError, InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.runtime import install
from hypersd_desktop.runtime.install import Manifest, RuntimeInstaller, Sources, environment_python, runtime_dir, status
from runtime_kit import lock_for, make_wheel


def installer(kit, token=None, report=None, verify=None, app_wheel=None) -> RuntimeInstaller:
    sources = Sources(python=sys.executable, find_links=(kit["wheels"],), offline=True, app_wheel=app_wheel or kit["app"])
    return RuntimeInstaller(AppPaths.default(), sources, on_progress=report, token=token,
                            verify=verify or imports_everything)


def imports_everything(python: Path) -> str:
    done = subprocess.run([str(python), "-I", "-c", "import big_part, small_a, small_b, hypersd_desktop, platform; "
                                                      "print('CPython', platform.python_version())"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_an_install_reports_its_steps_in_bytes_and_ends_with_a_working_runtime(kit):
    seen = []
    manifest = installer(kit, report=seen.append).install("cpu")
    paths = AppPaths.default()
    assert manifest.variant == "cpu" and manifest.app_version == __version__ and manifest.python.startswith("CPython 3.11")
    assert Manifest.read(runtime_dir(paths)) == manifest
    assert not (paths.data / "runtime.partial").exists()
    done = [progress.done for progress in seen]
    assert done == sorted(done) and seen[-1].done == seen[-1].total == kit["lock"].download_bytes
    items = [progress.item for progress in seen]
    assert items.index("big-part 1.0") < items.index("small-a 2.0, small-b 3.0") < items.index("checking the worker")
    current = status(paths)
    assert current.state == "ready" and current.python == environment_python(runtime_dir(paths))
    assert install.runtime_worker_command(paths)[:3] == [str(current.python), "-I", "-m"]


def test_a_cancel_keeps_what_was_installed_and_installing_again_resumes(kit):
    token = CancelToken()

    def cancel_on_second_step(progress):
        if progress.item.startswith("small-a"):
            token.cancel()

    with pytest.raises(CancelledError, match="installing again resumes"):
        installer(kit, token=token, report=cancel_on_second_step).install("cpu")
    paths = AppPaths.default()
    partial = paths.data / "runtime.partial"
    assert status(paths).state == "none" and not runtime_dir(paths).exists()
    kept = subprocess.run([str(environment_python(partial)), "-I", "-c", "import big_part"], capture_output=True)
    assert kept.returncode == 0, "the finished step was kept"
    seen = []
    installer(kit, report=seen.append).install("cpu")
    assert status(paths).state == "ready" and not partial.exists()


def test_a_cancel_while_uv_runs_stops_it(kit):
    token = CancelToken()
    with pytest.raises(CancelledError):
        installer(kit, token=token, report=lambda progress: token.cancel()).install("cpu")  # at the first report
    assert status(AppPaths.default()).state == "none"
    assert installer(kit).install("cpu").variant == "cpu"


def test_a_file_that_does_not_match_the_lock_is_not_installed(kit, tmp_path):
    make_wheel(kit["wheels"], "small-a", "2.0", payload=512)  # the same name, other bytes
    with pytest.raises(AppError, match="does not match the hash"):
        installer(kit).install("cpu")
    assert status(AppPaths.default()).state == "none"


def test_a_runtime_that_fails_its_check_never_replaces_the_working_one(kit):
    first = installer(kit).install("cpu")

    def broken(python):
        raise AppError("The runtime's worker could not start: ImportError")

    with pytest.raises(AppError, match="could not start"):
        installer(kit, verify=broken).install("cpu", repair=True)
    paths = AppPaths.default()
    assert Manifest.read(runtime_dir(paths)) == first and status(paths).state == "ready"


def test_a_runtime_holding_an_older_app_is_outdated_and_an_update_brings_it_in_line(kit, tmp_path):
    old = make_wheel(tmp_path / "old", "hypersd-desktop", "0.0.9")
    installer(kit, app_wheel=old).install("cpu")
    paths = AppPaths.default()
    current = status(paths)
    assert current.state == "outdated" and "0.0.9" in current.message and install.runtime_worker_command(paths) is None
    manifest = installer(kit).update()
    assert manifest.app_version == __version__ and install.installed_app_version(runtime_dir(paths)) == __version__
    assert status(paths).state == "ready"


def test_another_lock_makes_the_runtime_outdated(kit, tmp_path):
    installer(kit).install("cpu")
    newer = lock_for({"big-part": (make_wheel(kit["wheels"], "big-part", "1.1", 4096), 300 * 2**20),
                      "small-a": (kit["wheels"] / "small_a-2.0-py3-none-any.whl", 2**20),
                      "small-b": (kit["wheels"] / "small_b-3.0-py3-none-any.whl", 2**20)})
    kit["locks"]["cpu"] = newer
    assert status(AppPaths.default()).state == "outdated"
    installer(kit).update()
    check = subprocess.run([str(status(AppPaths.default()).python), "-I", "-c", "import big_part; print(big_part.VERSION)"],
                           capture_output=True, text=True)
    assert check.stdout.strip() == "1.1"


def test_remove_frees_the_runtime_and_any_half_made_one(kit):
    installer(kit).install("cpu")
    paths = AppPaths.default()
    (paths.data / "runtime.partial").mkdir()
    assert RuntimeInstaller.remove(paths) > 0
    assert status(paths).state == "none" and not (paths.data / "runtime.partial").exists()


def test_an_interpreter_of_another_version_is_refused_with_what_to_do(kit):
    kit["locks"]["cpu"] = lock_for({"small-a": (kit["wheels"] / "small_a-2.0-py3-none-any.whl", 2**20)}, python="3.10")
    with pytest.raises(InputError, match="needs Python 3.10"):
        installer(kit).install("cpu")


def test_an_unreachable_index_says_to_check_the_connection(kit):
    sources = Sources(python=sys.executable, app_wheel=kit["app"],
                      extra=("--index-url", "http://127.0.0.1:9/simple"))  # nothing listens on the discard port
    with pytest.raises(AppError, match="server cannot be reached. Check the internet connection"):
        RuntimeInstaller(AppPaths.default(), sources, verify=imports_everything).install("cpu")


def test_a_variant_with_no_lock_here_is_refused(kit):
    with pytest.raises(InputError, match="no cuda runtime"):
        installer(kit).install("cuda")
