"""The parent of the command-line runs in `cli_process` and of the worker programs the window tests start: imports
the libraries the app loads, then forks a process per run. Started by `cli_process` only.

A command-line run is asked for on the zygote's standard input, a JSON line naming the run's arguments,
environment, working folder and the files for its standard streams; the reply, on its standard output, is the
run's process id, then, when it ends, its wait status. A worker program is asked for by `worker_shim` on the Unix
socket named by the zygote's argument, with the shim's own standard streams passed along (SCM_RIGHTS); the
replies go back on that connection. A run is a process of its own: it takes its streams, environment and folder,
then runs `python -m MODULE` with its arguments, and ends as the interpreter ends a program (its exit status, its
threads joined, atexit handlers run, output flushed).
"""

from __future__ import annotations

import atexit
import importlib
import io
import json
import os
import runpy
import select
import signal
import socket
import sys
import threading
import traceback

# The app's own modules that pull in the heavy libraries; the libraries stay loaded, these are forgotten again so
# that every run imports the app afresh.
PRELOADED = ("hypersd_desktop.cli.generate", "hypersd_desktop.cli.gallery", "hypersd_desktop.cli.models",
             "hypersd_desktop.engine.torch_backend", "hypersd_desktop.engine.torch_engine",
             "hypersd_desktop.engine.upscalers", "hypersd_desktop.engine.preprocess", "hypersd_desktop.worker.service")
REAP_INTERVAL_S = 0.02  # how often ended runs are looked for
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


def run(request: dict, streams: tuple[int, int, int] | None = None) -> None:
    """In the forked child: become the requested run, run `python -m MODULE` and end the process. Its standard
    streams are the files the request names, or `streams` (descriptors passed along with it)."""
    if streams is None:
        streams = tuple(os.open(request[name], mode) for name, mode in (
            ("stdin", os.O_RDONLY), ("stdout", os.O_WRONLY), ("stderr", os.O_WRONLY)))
    for fd, opened in enumerate(streams):
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
    # as `python -m` sets it: the working folder, then PYTHONPATH's folders, then the interpreter's own
    python_path = [entry for entry in request["env"].get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:] = [os.getcwd(), *python_path, *INTERPRETER_PATH]
    module = request.get("module", "hypersd_desktop")
    sys.argv = ["-m", *request["argv"]]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
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


def serve(listener: socket.socket) -> None:
    """Fork the runs asked for on standard input and on `listener` until standard input ends."""
    requests, replies = sys.stdin.buffer, sys.stdout
    unread, running = b"", None  # the command-line run whose end is to be told
    while True:
        ready, _, _ = select.select([requests, listener], [], [], REAP_INTERVAL_S)
        if listener in ready:
            _attach(listener)
        if requests in ready:
            data = os.read(requests.fileno(), 65536)
            if not data:
                return
            unread += data
            while b"\n" in unread:
                line, unread = unread.split(b"\n", 1)
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    run(json.loads(line))  # never returns
                running = pid
                replies.write(json.dumps({"pid": pid}) + "\n")
                replies.flush()
        while True:  # reap every ended child: command-line runs, and the attached runs' keepers
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == running:
                running = None
                replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
                replies.flush()


def _attach(listener: socket.socket) -> None:
    """Take a connection from `worker_shim`: a keeper process forks the run with the shim's streams, tells the shim
    the run's process id and then its exit status; the run ends itself when the shim ends first (killed)."""
    connection, _ = listener.accept()
    if os.fork() != 0:
        connection.close()
        return
    listener.close()
    status = 1
    try:
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 5)
        while not message.endswith(b"\n"):
            more = connection.recv(1 << 20)
            if not more:
                raise EOFError("worker_shim hung up")
            message += more
        request = json.loads(message)
        stdin, stdout, stderr, shim_alive = fds
        pid = os.fork()
        if pid == 0:
            connection.close()
            threading.Thread(target=_end_with_shim, args=(shim_alive,), daemon=True).start()
            run(request, (stdin, stdout, stderr))  # never returns
        for fd in fds:
            os.close(fd)
        connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _, ended = os.waitpid(pid, 0)
        connection.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(ended)}).encode() + b"\n")
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(status)


def _end_with_shim(shim_alive: int) -> None:
    """The shim holds the writing end of this pipe: it ends (closed) when the shim does, and so does the run."""
    while os.read(shim_alive, 1):
        pass
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # not tests/: the app and its libraries only, as in `python -m`
    INTERPRETER_PATH = [entry for entry in sys.path[1:]  # without this process's PYTHONPATH: a run has its own
                        if entry not in os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    preload()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sys.argv[1])
    server.listen(16)
    sys.stdout.write(json.dumps({"ready": os.getpid()}) + "\n")
    sys.stdout.flush()
    serve(server)
