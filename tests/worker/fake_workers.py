"""Programs that stand where the worker program should, each broken in one way (protocol tests).

    python fake_workers.py garbage        prints text instead of the protocol
    python fake_workers.py old-protocol   answers the handshake with protocol 99
    python fake_workers.py mid-message    is ready, then dies halfway through a message
    python fake_workers.py silent         never answers
    python fake_workers.py crash          fails before the handshake, saying why on stderr
    python fake_workers.py busy           is ready, then stops reading (as while importing torch)
    python fake_workers.py slow-start     works for 2.5 s before it answers (as importing torch from a cold disk)
"""

from __future__ import annotations

import os
import sys
import time

from hypersd_desktop.core.vocab import Device
from hypersd_desktop.worker.protocol import PROTOCOL_VERSION, JobProgress, RunJob, WorkerReady
from hypersd_desktop.worker.wire import encode, read_message


def ready(protocol: int = PROTOCOL_VERSION) -> bytes:
    return encode(WorkerReady(protocol, "0.0-test", "CPython", (), (Device.CPU,), Device.CPU))


def main(mode: str) -> None:
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer
    if mode == "garbage":
        out.write(b"Loading weights... 100%\n" * 20)
        out.flush()
        time.sleep(30)
    elif mode == "old-protocol":
        read_message(stdin)
        out.write(ready(protocol=99))
        out.flush()
        time.sleep(30)
    elif mode == "mid-message":
        read_message(stdin)
        out.write(ready())
        out.flush()
        while not isinstance(read_message(stdin), RunJob):
            pass
        frame = encode(JobProgress(1, 1, 4, 0.1, b"\x89PNG" + b"\0" * 500))
        out.write(frame[: len(frame) // 2])
        out.flush()
        os._exit(1)
    elif mode == "silent":
        time.sleep(30)
    elif mode == "busy":
        read_message(stdin)
        out.write(ready())
        out.flush()
        time.sleep(30)
    elif mode == "slow-start":
        until = time.monotonic() + 2.5
        while time.monotonic() < until:
            sum(range(10_000))  # CPU time the client sees grow
        read_message(stdin)
        out.write(ready())
        out.flush()
        time.sleep(30)
    elif mode == "crash":
        sys.exit("RuntimeError: the NVIDIA driver on this machine is too old for this torch build")


if __name__ == "__main__":
    main(sys.argv[1])
