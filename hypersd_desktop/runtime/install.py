"""Install, update, repair and remove the compute runtime: the Python environment the worker runs in.

The packaged app has no torch. Its runtime is a virtual environment in the app's data folder
(`<data>/runtime`), made by `uv` from one of the shipped lock files (every file pinned by hash)
plus the app's own wheel, so the worker there is the same version as the window:

1. An interpreter of the lock's Python version: one given (`--python`), the one shipped beside
   the packaged app (`runtime/python`, a python-build-standalone build), or one uv downloads
   into the data folder.
2. A relocatable venv in `<data>/runtime.partial`, then the lock's packages in steps, largest
   first, each step reported in bytes; a cancel or a failure keeps the steps done and uv's
   download cache, so installing again resumes.
3. The app's wheel, then the check: the worker is started in the new environment and must
   complete the handshake with this app's version.
4. Only then `runtime.partial` becomes `runtime` (a runtime already there is replaced only now,
   so a failed switch leaves the working one).

A runtime made for another app version or another lock is `outdated`; `update` brings it in
line in place. Nothing here imports torch or Qt.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hypersd_desktop import __version__
from hypersd_desktop.core.errors import AppError, CancelledError, InputError
from hypersd_desktop.core.files import folder_size
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken, TransferProgress
from hypersd_desktop.runtime.locks import Lock, load_lock, this_platform
from hypersd_desktop.worker.client import WorkerClient, WorkerUnavailable
from hypersd_desktop.worker.protocol import WorkerReady

log = logging.getLogger("hypersd.runtime")
MANIFEST = "hypersd-runtime.json"
PARTIAL_MARK = "hypersd-partial.json"
APP_PACKAGE = "hypersd-desktop"
NETWORK_WORDS = ("dns error", "failed to lookup address", "connection refused", "error sending request",
                 "network is unreachable", "operation timed out", "tcp connect error", "could not connect",
                 "name or service not known", "temporary failure in name resolution", "no such host")
DISK_FACTOR = 3  # wheels in uv's cache, unpacked into the environment, with room to spare


@dataclass(frozen=True)
class Manifest:
    """What `<data>/runtime` holds, written once it passed the handshake."""

    variant: str
    platform: str
    lock_sha256: str
    app_version: str
    python: str  # the worker's "CPython 3.11.2"
    installed_bytes: int
    installed_at: float

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        try:
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            return cls(**{key: data[key] for key in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")


@dataclass(frozen=True)
class RuntimeStatus:
    """`state`: none, ready, outdated (another app version or lock: `update`), or broken."""

    state: str
    message: str
    manifest: Manifest | None = None
    python: Path | None = None


@dataclass(frozen=True)
class Sources:
    """Where an install takes its parts from. Empty fields are found (`Sources.default()`)."""

    uv: str = ""
    python: str = ""  # an interpreter of the lock's version; empty: shipped, or downloaded by uv
    find_links: tuple[Path, ...] = ()  # folders of wheels (an embedded runtime, a test's wheelhouse)
    offline: bool = False  # only those folders: no index is contacted
    app_wheel: Path | None = None
    embedded: Path | None = None  # the wheels of one variant shipped with an offline build (its VARIANT file)
    extra: tuple[str, ...] = field(default=())  # more uv options

    def resolved(self, paths: AppPaths) -> Sources:
        shipped = shipped_dir()
        wheels = shipped / "wheels" if shipped else None
        return Sources(
            uv=self.uv or find_uv(),
            python=self.python or str(shipped_python() or ""),
            find_links=self.find_links,
            offline=self.offline,
            app_wheel=self.app_wheel or find_app_wheel(paths),
            embedded=self.embedded or (wheels if wheels and (wheels / "VARIANT").is_file() else None),
            extra=self.extra,
        )

    def embeds(self, variant: str) -> bool:
        return self.embedded is not None and (self.embedded / "VARIANT").read_text(encoding="utf-8").strip() == variant


def shipped_dir() -> Path | None:
    """`runtime/` beside the packaged app's program (uv, the app's wheel, maybe Python and wheels)."""
    if not getattr(sys, "frozen", False):
        return None
    program = Path(sys.executable).resolve().parent
    for folder in (program / "runtime", program.parent / "Resources" / "runtime"):  # the macOS .app: Contents/
        if folder.is_dir():
            return folder
    return None


def shipped_python() -> Path | None:
    shipped = shipped_dir()
    if shipped is None:
        return None
    for candidate in (shipped / "python" / "python.exe", shipped / "python" / "bin" / "python3"):
        if candidate.is_file():
            return candidate
    return None


def find_uv() -> str:
    shipped = shipped_dir()
    name = "uv.exe" if os.name == "nt" else "uv"
    if shipped and (shipped / name).is_file():
        return str(shipped / name)
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise AppError("uv, which installs the compute runtime, is missing from this installation. Reinstall HyperSD Desktop.")


def find_app_wheel(paths: AppPaths) -> Path:
    """The wheel of this very app version: shipped with the packaged app, or built from the source checkout."""
    shipped = shipped_dir()
    if shipped:
        for wheel in shipped.glob(f"hypersd_desktop-{__version__}-*.whl"):
            return wheel
        raise AppError(f"The packaged app's own wheel is missing from {shipped}. Reinstall HyperSD Desktop.")
    source = Path(__file__).resolve().parents[2]
    if not (source / "pyproject.toml").is_file():
        raise AppError("No wheel of HyperSD Desktop to install into the runtime: run from a source checkout or "
                       "the packaged app, or name one with --app-wheel.")
    return build_wheel(source, paths.cache / "runtime-wheel")


WHEEL_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "hypersd_desktop", "resources")  # what the wheel is made of


def build_wheel(source: Path, out: Path) -> Path:
    """The app's wheel from a source checkout, into `out`. It is built from a copy of what it packages: builds
    running at once never share setuptools' build/ folder, and nothing left in that folder gets into the wheel."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="hypersd-wheel-") as work:
        for name in WHEEL_SOURCES:
            if (source / name).is_dir():
                shutil.copytree(source / name, Path(work) / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source / name, Path(work) / name)
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                               "-w", str(out), work], capture_output=True, text=True, errors="replace")
    wheels = list(out.glob("hypersd_desktop-*.whl"))
    if done.returncode != 0 or not wheels:
        raise AppError(f"Could not build the app's wheel for the runtime: {done.stderr.strip()[-400:]}")
    return wheels[0]


def runtime_dir(paths: AppPaths) -> Path:
    return paths.data / "runtime"


def environment_python(folder: Path) -> Path:
    return folder / "Scripts" / "python.exe" if os.name == "nt" else folder / "bin" / "python"


def status(paths: AppPaths) -> RuntimeStatus:
    folder = runtime_dir(paths)
    manifest = Manifest.read(folder)
    python = environment_python(folder)
    if manifest is None:
        if folder.exists():
            return RuntimeStatus("broken", "The compute runtime is incomplete. Repair it in Settings → Compute runtime.")
        return RuntimeStatus("none", "No compute runtime is installed.")
    if not python.exists():
        return RuntimeStatus("broken", "The compute runtime's Python is missing. Repair it in Settings → Compute runtime.",
                             manifest)
    lock = load_lock(manifest.variant, manifest.platform)
    app_version = installed_app_version(folder)
    if app_version != __version__ or lock is None or lock.sha256 != manifest.lock_sha256:
        why = (f"it holds HyperSD Desktop {app_version or '(missing)'}, and this is {__version__}"
               if app_version != __version__ else "this version pins other packages")
        return RuntimeStatus("outdated", f"The {manifest.variant} runtime needs an update: {why}.", manifest, python)
    return RuntimeStatus("ready", f"The {manifest.variant} runtime is installed ({manifest.python}, "
                                  f"{manifest.installed_bytes / 2**30:.1f} GiB).", manifest, python)


def installed_app_version(folder: Path) -> str | None:
    """The version of the app's package installed in a runtime, from its metadata folder's name."""
    for site in (folder / "Lib" / "site-packages", *folder.glob("lib/python3*/site-packages")):
        for info in site.glob("hypersd_desktop-*.dist-info"):
            return info.name[len("hypersd_desktop-"):-len(".dist-info")]
    return None


def runtime_worker_command(paths: AppPaths) -> list[str] | None:
    """The worker command in the installed runtime, when it is ready; None otherwise."""
    current = status(paths)
    return isolated_worker_command(current.python) if current.state == "ready" else None


def isolated_worker_command(python: Path) -> list[str]:
    """The worker under a runtime's Python with `-I`: only the runtime's packages, never a `hypersd_desktop`
    folder in the current directory, a PYTHONPATH or the user's site-packages."""
    return [str(python), "-I", "-m", "hypersd_desktop.worker"]


def handshake(python: Path, home: str | None = None, timeout: float = 120.0) -> WorkerReady:
    """Start the worker under `python` and complete the handshake; raises AppError with the reason otherwise."""
    answered = threading.Event()
    answer: list[object] = []

    def on_event(event: object) -> None:
        if isinstance(event, (WorkerReady, WorkerUnavailable)) and not answered.is_set():
            answer.append(event)
            answered.set()

    client = WorkerClient(on_event, home=home, command=isolated_worker_command(python), handshake_timeout=timeout)
    client.start()
    try:
        if not answered.wait(timeout + 5):
            raise AppError("The runtime's worker did not answer.")
    finally:
        client.shutdown(timeout=10)
    if isinstance(answer[0], WorkerUnavailable):
        raise AppError(f"The runtime's worker could not start: {answer[0].message}")
    ready = answer[0]
    if ready.version != __version__:
        raise AppError(f"The runtime's worker is HyperSD Desktop {ready.version}, not {__version__}.")
    return ready


Report = Callable[[TransferProgress], None]
STOPPED = "the runtime install stopped; what was downloaded is kept, and installing again resumes"


class RuntimeInstaller:
    """One install, update or repair; `token` cancels it between and within its steps."""

    def __init__(self, paths: AppPaths, sources: Sources = Sources(), on_progress: Report | None = None,
                 token: CancelToken | None = None, verify: Callable[[Path], str] | None = None) -> None:
        """`verify(python)` checks an environment and returns its Python's description (default: the
        worker's handshake)."""
        self.paths = paths.ensure()
        self.sources = sources.resolved(paths)
        self.report = on_progress or (lambda progress: None)
        self.token = token or CancelToken()
        self.verify = verify or (lambda python: handshake(python, home=os.environ.get("HYPERSD_HOME")).python)
        self.log_path = paths.data / "runtime-install.log"
        self.cache = paths.cache / "uv"

    def _stop_if_cancelled(self) -> None:
        if self.token.cancelled:
            raise CancelledError(STOPPED)

    # -- the three actions ---------------------------------------------------------------

    def install(self, variant: str, repair: bool = False) -> Manifest:
        """Install `variant` (replacing the runtime there, only once the new one works); `repair`
        reinstalls every package of the lock."""
        lock = self._lock(variant)
        partial = self.paths.data / "runtime.partial"
        mark = {"variant": lock.variant, "platform": lock.platform, "lock_sha256": lock.sha256}
        if partial.exists() and self._read_mark(partial) != mark:
            shutil.rmtree(partial)  # another variant's leftovers: nothing to resume
        self._check_disk(lock)
        if not environment_python(partial).exists():
            self._make_environment(partial, lock)
            (partial / PARTIAL_MARK).write_text(json.dumps(mark), encoding="utf-8")
        manifest = self._fill(partial, lock, repair)
        (partial / PARTIAL_MARK).unlink(missing_ok=True)
        self._swap(partial)
        shutil.rmtree(self.cache, ignore_errors=True)  # the downloads are in the environment now
        return manifest

    def update(self) -> Manifest:
        """Bring an outdated runtime in line with this app (its wheel and its lock), in place."""
        current = status(self.paths)
        if current.manifest is None:
            raise InputError("No compute runtime is installed to update; install one instead.")
        lock = self._lock(current.manifest.variant)
        manifest = self._fill(runtime_dir(self.paths), lock, repair=False)
        shutil.rmtree(self.cache, ignore_errors=True)
        return manifest

    @staticmethod
    def remove(paths: AppPaths) -> int:
        """Delete the runtime and any half-made one; returns the bytes freed."""
        freed = 0
        for folder in (runtime_dir(paths), paths.data / "runtime.partial", paths.data / "runtime.old", paths.cache / "uv"):
            if folder.exists():
                freed += folder_size(folder)
                shutil.rmtree(folder)
        return freed

    # -- the steps -------------------------------------------------------------------------

    def _lock(self, variant: str) -> Lock:
        lock = load_lock(variant)
        if lock is None:
            raise InputError(f"There is no {variant} runtime for {this_platform()} in this version of HyperSD Desktop.")
        return lock

    @staticmethod
    def _read_mark(folder: Path) -> dict | None:
        try:
            return json.loads((folder / PARTIAL_MARK).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _check_disk(self, lock: Lock) -> None:
        needed = lock.download_bytes * DISK_FACTOR
        free = shutil.disk_usage(self.paths.data).free
        if free < needed:
            raise InputError(f"The {lock.variant} runtime needs about {needed / 2**30:.1f} GiB free in {self.paths.data}; "
                             f"{free / 2**30:.1f} GiB is free. Free some space, then install again.")

    def _make_environment(self, folder: Path, lock: Lock) -> None:
        # Without an interpreter given, a version: uv finds one, or downloads a python-build-standalone
        # CPython into the data folder (the packaged app always takes that one, never a system Python).
        python = self.sources.python or lock.python
        managed = [] if self.sources.python or not getattr(sys, "frozen", False) else ["--managed-python"]
        self.report(TransferProgress(f"{lock.variant} runtime", f"Python {lock.python}", 0, lock.download_bytes))
        self._uv(["venv", "--relocatable", "--allow-existing", "--python", python, *managed, str(folder)],
                 f"Python {lock.python}")
        found = self._uv_output([str(environment_python(folder)), "-c",
                                 "import sys; print('%d.%d' % sys.version_info[:2])"]).strip()
        if found != lock.python:
            shutil.rmtree(folder)
            raise InputError(f"The runtime needs Python {lock.python}; {python} is Python {found}. "
                             f"Leave the interpreter empty to let the app fetch Python {lock.python}.")

    def _fill(self, folder: Path, lock: Lock, repair: bool) -> Manifest:
        python = environment_python(folder)
        label = f"{lock.variant} runtime"
        done = 0
        for batch in lock.batches():
            self._stop_if_cancelled()
            names = ", ".join(f"{p.name} {p.version}" for p in batch[:3]) + (f" and {len(batch) - 3} more" if len(batch) > 3 else "")
            self.report(TransferProgress(label, names, done, lock.download_bytes))
            with tempfile.TemporaryDirectory() as scratch:
                requirements = Path(scratch) / "step.txt"
                requirements.write_text("\n".join(p.requirement for p in batch) + "\n", encoding="utf-8")
                self._uv(["pip", "install", "--python", str(python), "--require-hashes", "--no-deps",
                          *(["--reinstall"] if repair else []), *self._index_options(lock), "-r", str(requirements)], names)
            done += sum(p.download_bytes for p in batch)
        self.report(TransferProgress(label, "HyperSD Desktop", done, lock.download_bytes))
        self._uv(["pip", "install", "--python", str(python), "--no-deps", "--reinstall-package", APP_PACKAGE,
                  "--offline", str(self.sources.app_wheel)], "HyperSD Desktop")
        self._stop_if_cancelled()
        self.report(TransferProgress(label, "checking the worker", done, lock.download_bytes))
        described = self.verify(python)
        manifest = Manifest(lock.variant, lock.platform, lock.sha256, __version__, described, folder_size(folder), time.time())
        manifest.write(folder)
        self.report(TransferProgress(label, "done", lock.download_bytes, lock.download_bytes))
        return manifest

    def _index_options(self, lock: Lock) -> list[str]:
        folders = self.sources.find_links or ((self.sources.embedded,) if self.sources.embeds(lock.variant) else ())
        options = [arg for folder in folders for arg in ("--find-links", str(folder))]
        if self.sources.offline or (not self.sources.find_links and self.sources.embeds(lock.variant)):
            return [*options, "--no-index", "--offline"]
        if lock.index:
            options += ["--extra-index-url", lock.index, "--index-strategy", "unsafe-best-match"]
        return options

    def _swap(self, partial: Path) -> None:
        final, old = runtime_dir(self.paths), self.paths.data / "runtime.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        partial.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    # -- running uv ----------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("UV_", "PIP_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"))}
        env.update(UV_CACHE_DIR=str(self.cache), UV_PYTHON_INSTALL_DIR=str(self.paths.data / "python"),
                   UV_NO_PROGRESS="1", UV_NO_CONFIG="1")
        return env

    def _uv_output(self, command: list[str]) -> str:
        return subprocess.run(command, capture_output=True, text=True, errors="replace", env=self._environment(),
                              timeout=60, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0)).stdout

    def _uv(self, arguments: list[str], item: str) -> None:
        """Run uv; a cancel ends it at once. Its output goes to runtime-install.log."""
        command = [self.sources.uv, *arguments, *self.sources.extra]
        with open(self.log_path, "a", encoding="utf-8", errors="replace") as log_file:
            log_file.write(f"\n$ {' '.join(command)}\n")
            log_file.flush()
            start = log_file.tell()
            process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=self._environment(),
                                       creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
            try:
                while process.poll() is None:
                    self._stop_if_cancelled()
                    time.sleep(0.05)
            except BaseException:  # a cancel, or Ctrl+C in the command line: uv stops too
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                raise
        if process.returncode != 0:
            with open(self.log_path, encoding="utf-8", errors="replace") as log_file:
                log_file.seek(start)
                raise self._explain(log_file.read(), item)

    def _explain(self, output: str, item: str) -> AppError:
        lowered = output.lower()
        if any(word in lowered for word in NETWORK_WORDS):
            return AppError(f"Could not download {item}: its server cannot be reached. Check the internet connection, "
                            "then install again; what was downloaded so far is kept. (For a machine with no internet, "
                            "the offline installer carries the runtime.)")
        if "hash mismatch" in lowered or "hashes do not match" in lowered:
            return AppError(f"A download of {item} does not match the hash in the lock file, so it was not installed. "
                            "Install again; if it happens again, the file on the index has changed.")
        if "no space left" in lowered:
            return AppError(f"The disk is full: {item} could not be installed. Free some space, then install again.")
        lines = [line for line in output.strip().splitlines() if line.strip()]
        reason = re.sub(r"\s+", " ", " ".join(lines[-3:]))[-500:] if lines else "uv ended without a message"
        return AppError(f"Installing {item} failed: {reason}. The whole output is in {self.log_path}.")
