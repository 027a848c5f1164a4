"""The command line as a user runs it, `python -m hypersd_desktop …` in a process of its own, without paying for
torch's import in every run.

`run_cli(*args)` returns what `subprocess.run([sys.executable, "-m", "hypersd_desktop", *args],
capture_output=True, text=True)` returns. Where it can, the run is forked from a process that has imported the
heavy libraries once (tests/cli_zygote.py; the app's own modules are imported afresh by every run): it still has
its own arguments, environment, working folder, standard streams and exit status. A run whose environment differs
from the suite's in more than the variables read per run (`PER_RUN`: the app's home, PYTHONPATH …) — in one a
library reads when imported —, a system other than Linux, or HYPERSD_TEST_FRESH_CLI=1 gets a fresh interpreter
instead.

`worker_command()` is the same for the worker program the window tests start (`python -m hypersd_desktop.worker`):
a command that runs it forked from that process (tests/worker_shim.py), or None where a fresh interpreter is due.
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ZYGOTE = Path(__file__).with_name("cli_zygote.py")
SHIM = Path(__file__).with_name("worker_shim.py")
# Read by the app when it runs, not by a library when imported: these may differ from run to run. (PYTHONPATH is
# read by the interpreter at its start: a run puts its folders on its path as the interpreter would.) Runs with
# another backend (HYPERSD_BACKENDS: the fake one, which reports whether torch is imported) start afresh. Three are
# set in this process by libraries as they are imported, and read by them only when used: PySide6's (never imported
# by a run), torch inductor's cache folder (read when it compiles), and OpenCV's library folder put before
# LD_LIBRARY_PATH for the programs this process starts (the zygote has its libraries loaded already).
PER_RUN = frozenset({"HYPERSD_HOME", "PYTEST_CURRENT_TEST", "PYTHONPATH", "PYSIDE6_OPTION_PYTHON_ENUM",
                     "TORCHINDUCTOR_CACHE_DIR", "LD_LIBRARY_PATH"})
# The environment the suite runs in, before any test changes it: the zygote starts with it, whichever test is first.
BASE_ENV = dict(os.environ)
STARTUP_TIMEOUT_S = 300
# Linux only: macOS has fork, but a process forked after its system frameworks have started (torch loads them) may
# crash in them; Windows has none.
FORKS = sys.platform.startswith("linux")


def run_cli(*args, input: str | None = None, cwd=None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    argv = [str(arg) for arg in args]
    env = dict(os.environ if env is None else env)
    zygote = _zygote(env)
    if zygote is None:
        return subprocess.run([sys.executable, "-m", "hypersd_desktop", *argv], input=input, capture_output=True,
                              text=True, cwd=cwd, env=env, timeout=timeout)
    return zygote.run(argv, input, Path(cwd or os.getcwd()), env, timeout)


def _imported_with(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in PER_RUN}


class _Zygote:
    def __init__(self, env: dict[str, str]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="zygote-"))
        self.address = str(self.folder / "socket")  # short: a socket's path has a limit of about 100 bytes
        self.process = subprocess.Popen([sys.executable, str(ZYGOTE), self.address], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, bufsize=0, env=env)
        self.unread = b""
        self.lock = threading.Lock()
        ready = self._reply(STARTUP_TIMEOUT_S)
        if ready is None or "ready" not in ready:
            self.close()
            raise RuntimeError("tests/cli_zygote.py did not start")

    def _reply(self, timeout: float) -> dict | None:
        """The next line the zygote writes, or None after `timeout` seconds or at its end. Read here, unbuffered:
        two replies that come together must not wait in a buffer `select` cannot see."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.unread:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.process.stdout], [], [], left)[0]:
                return None
            data = os.read(self.process.stdout.fileno(), 65536)
            if not data:
                return None
            self.unread += data
        line, self.unread = self.unread.split(b"\n", 1)
        return json.loads(line)

    def run(self, argv: list[str], input: str | None, cwd: Path, env: dict[str, str],
            timeout: float) -> subprocess.CompletedProcess:
        folder = Path(tempfile.mkdtemp(prefix="cli-run-"))
        try:
            streams = {name: folder / name for name in ("stdin", "stdout", "stderr")}
            for path in streams.values():
                path.write_bytes(b"")
            if input is not None:
                streams["stdin"].write_bytes(input.encode(_ENCODING))
            request = {"argv": argv, "env": env, "cwd": str(cwd), "encoding": _ENCODING,
                       **{name: str(path) for name, path in streams.items()}}
            with self.lock:
                self.process.stdin.write(json.dumps(request).encode() + b"\n")
                started = self._reply(30)
                if started is None:
                    raise RuntimeError("tests/cli_zygote.py ended")
                pid = started["pid"]
                ended = self._reply(timeout)
                if ended is None:
                    os.kill(pid, signal.SIGKILL)
                    self._reply(30)
                    raise subprocess.TimeoutExpired(["hypersd_desktop", *argv], timeout)
            stdout, stderr = (_text(streams[name].read_bytes()) for name in ("stdout", "stderr"))
            return subprocess.CompletedProcess([sys.executable, "-m", "hypersd_desktop", *argv],
                                               ended["returncode"], stdout, stderr)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


_ENCODING = locale.getpreferredencoding(False)  # what `text=True` decodes with, and a child's streams' encoding
_started: list[_Zygote] = []
_lock = threading.Lock()


def worker_command() -> list[str] | None:
    """The command that starts the worker program, forked from the zygote, under this process's environment."""
    zygote = _zygote(dict(os.environ))
    return None if zygote is None else [sys.executable, str(SHIM), zygote.address, "hypersd_desktop.worker"]


def _zygote(env: dict[str, str]) -> _Zygote | None:
    if not FORKS or os.environ.get("HYPERSD_TEST_FRESH_CLI") == "1":
        return None
    with _lock:
        if not _started:
            _started.append(_Zygote(BASE_ENV))
            atexit.register(_started[0].close)
        zygote = _started[0]
    return zygote if not differences(env) and zygote.process.poll() is None else None


def differences(env: dict[str, str]) -> set[str]:
    """The variables, other than the per-run ones, in which `env` differs from the one the zygote started with."""
    imported_with, asked = _imported_with(BASE_ENV), _imported_with(env)
    return {key for key in imported_with.keys() | asked.keys() if imported_with.get(key) != asked.get(key)}


def _text(data: bytes) -> str:
    """As `subprocess.run(text=True)` decodes a stream."""
    return data.decode(_ENCODING).replace("\r\n", "\n").replace("\r", "\n")
