"""The parent of the command-line runs in `cli_process`: imports the libraries the CLI loads, then forks a process
per run. Started by `cli_process` only; it speaks JSON lines on its standard input and output.

A request names the run's arguments, environment, working folder and the files for its standard streams. The
reply is the run's process id, then, when it ends, its wait status. The run is a process of its own: it takes its
streams, environment and folder, then runs `python -m hypersd_desktop` with its arguments, and ends as the interpreter
ends a program (its exit status, its threads joined, atexit handlers run, output flushed).
"""

from __future__ import annotations

import atexit
import importlib
import io
import json
import os
import runpy
import signal
import sys
import threading
import traceback

# The app's own modules that pull in the heavy libraries; the libraries stay loaded, these are forgotten again so
# that every run imports the app afresh.
PRELOADED = ("hypersd_desktop.cli.generate", "hypersd_desktop.cli.gallery", "hypersd_desktop.cli.models",
             "hypersd_desktop.engine.torch_backend", "hypersd_desktop.engine.torch_engine",
             "hypersd_desktop.engine.upscalers", "hypersd_desktop.engine.preprocess", "hypersd_desktop.worker.service")
LAZY_LIBRARIES = ("diffusers.pipelines", "diffusers.models", "diffusers.schedulers", "transformers.models.clip")


def preload() -> None:
    for name in PRELOADED:
        importlib.import_module(name)
    for name in LAZY_LIBRARIES:  # what `from diffusers import X` loads at the run's first use
        module = importlib.import_module(name)
        for attribute in getattr(module, "__all__", ()) or dir(module):
            try:
                getattr(module, attribute)
            except Exception:  # a pipeline whose optional dependency is missing: a run would fail the same way
                pass
    for name in [name for name in sys.modules if name == "hypersd_desktop" or name.startswith("hypersd_desktop.")]:
        del sys.modules[name]


def run(request: dict) -> None:
    """In the forked child: become the requested run, run `python -m hypersd_desktop` and end the process."""
    for fd, path, mode in ((0, request["stdin"], os.O_RDONLY), (1, request["stdout"], os.O_WRONLY),
                           (2, request["stderr"], os.O_WRONLY)):
        opened = os.open(path, mode)
        os.dup2(opened, fd)
        os.close(opened)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    encoding = request["encoding"]
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding)
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding)
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding,
                                                   errors="backslashreplace", line_buffering=True)
    sys.path[0] = os.getcwd()  # as `python -m` sets it
    sys.argv = ["-m", *request["argv"]]
    try:
        runpy.run_module("hypersd_desktop", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit:
        code = _exit_status(exit.code)
    except KeyboardInterrupt:  # the interpreter ends by the signal, so the parent sees it
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:  # as the interpreter reports an uncaught exception
        traceback.print_exc()
        code = 1
    _leave(code)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _leave(code: int) -> None:
    """Exit with `code` (a signal's, negative) as the interpreter does, less the C++ destructors of libraries
    loaded before the fork: they join threads this process does not have, and abort it. Threads are joined, atexit
    handlers run, streams flushed."""
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def serve() -> None:
    requests, replies = sys.stdin, sys.stdout
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run(request)  # never returns
        replies.write(json.dumps({"pid": pid}) + "\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        replies.flush()


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # not tests/: the app and its libraries only, as in `python -m`
    preload()
    sys.stdout.write(json.dumps({"ready": os.getpid()}) + "\n")
    sys.stdout.flush()
    serve()
