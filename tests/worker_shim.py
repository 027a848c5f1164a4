"""`python tests/worker_shim.py SOCKET MODULE`: runs `python -m MODULE` forked from the zygote listening on SOCKET
(tests/cli_zygote.py), which has imported torch and diffusers already, in place of a fresh interpreter.

The run gets this process's standard streams, environment and working folder; this process waits for it and ends
with its exit status, passes SIGTERM, SIGINT and SIGHUP on to it, and takes it along when killed: the run watches
a pipe only this process writes to. Imports the standard library only, so it starts in milliseconds.
"""

from __future__ import annotations

import json
import locale
import os
import signal
import socket
import sys


def main(address: str, module: str) -> int:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(address)
    alive_read, alive_write = os.pipe()  # alive_write stays open here until this process ends
    request = {"module": module, "argv": [], "env": dict(os.environ), "cwd": os.getcwd(),
               "encoding": locale.getpreferredencoding(False)}
    socket.send_fds(connection, [json.dumps(request).encode() + b"\n"], [0, 1, 2, alive_read])
    os.close(alive_read)
    replies = connection.makefile("rb")
    started = replies.readline()
    if not started:
        print("tests/cli_zygote.py did not start the run", file=sys.stderr)
        return 1
    pid = json.loads(started)["pid"]
    for passed_on in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(passed_on, lambda number, frame: os.kill(pid, number))
    ended = replies.readline()
    if not ended:
        return 1
    code = json.loads(ended)["returncode"]
    if code < 0:  # ended by a signal: end by it too
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
