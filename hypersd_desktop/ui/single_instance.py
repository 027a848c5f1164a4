"""One window per data folder. A second start (a double-click while the first is still loading, an image
opened with the app from a file manager) hands its files to the window already open, which comes to the
front, instead of opening a second window whose worker would load the model into the GPU's memory again
and whose gallery and settings would race the first's.

The first start holds a lock file in the data folder (a process that died leaves it stale, and the next
start takes it) and listens on a local socket (a named pipe on Windows) named after that folder; a later
start finds the lock held and writes its files there as one line of JSON.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger("hypersd")

LOCK_NAME = "window.lock"
# What a Wayland launcher gives the program it starts so that its window may take the focus; Qt's Wayland plugin
# reads it when a window asks to be activated.
ACTIVATION_TOKEN_ENV = "XDG_ACTIVATION_TOKEN"
_MOST_MESSAGE_BYTES = 1 << 20


def server_name(data_folder: Path) -> str:
    """The local socket of the window using `data_folder`: one per folder and user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): the folder alone tells windows apart
        user = ""
    digest = hashlib.sha256(f"{user}\0{data_folder.resolve()}".encode()).hexdigest()[:20]
    return f"hypersd-desktop-{digest}"


class SingleInstance(QObject):
    """`claim()` makes this process the one with the window, or says another has it; `forward()` hands files to
    that one. `files_received` carries what a later start forwarded (an empty list: just come to the front) and the
    Wayland activation token its launcher gave it ("" without one), which lets the window take the focus there."""

    files_received = Signal(list, str)

    def __init__(self, data_folder: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        data_folder.mkdir(parents=True, exist_ok=True)
        self.name = server_name(data_folder)
        self._lock = QLockFile(str(data_folder / LOCK_NAME))
        self._lock.setStaleLockTime(0)  # held for as long as the window is open: stale only when its process is gone
        self._server: QLocalServer | None = None

    def claim(self) -> bool:
        """True if this process now owns the window (listening for later starts); False if another does."""
        if not self._lock.tryLock(0):
            if self._lock.error() == QLockFile.LockError.LockFailedError:
                return False
            log.warning("the window's lock file cannot be written (%s); later starts open windows of their own",
                        self._lock.error().name)
            return True
        QLocalServer.removeServer(self.name)  # a socket file left by a process that died holding the lock
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            log.warning("later starts cannot reach this window (%s); they will open windows of their own",
                        server.errorString())
            return True
        server.newConnection.connect(self._accept)
        self._server = server
        return True

    def release(self) -> None:
        """Stop listening and free the lock (the window is closing): the next start opens a window of its own."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._lock.unlock()

    def forward(self, files: list[str], wait_s: float = 15.0) -> bool:
        """Hand `files` to the process that owns the window; False if it did not answer within `wait_s` (it may
        be starting: the lock comes before the socket)."""
        token = os.environ.get(ACTIVATION_TOKEN_ENV, "")
        message = (json.dumps({"files": files, "activation_token": token}) + "\n").encode()
        deadline = time.monotonic() + wait_s
        while True:
            socket = QLocalSocket()
            socket.connectToServer(self.name)
            if socket.waitForConnected(1000):
                socket.write(message)
                sent = socket.waitForBytesWritten(3000)
                socket.disconnectFromServer()
                if socket.state() != QLocalSocket.LocalSocketState.UnconnectedState:
                    socket.waitForDisconnected(1000)
                if sent:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def _accept(self) -> None:
        while self._server is not None and self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()  # the server's child: freed with it (a few, ever)
            received = bytearray()

            def read(socket=socket, received=received) -> None:
                received.extend(bytes(socket.readAll().data()))
                if len(received) > _MOST_MESSAGE_BYTES:
                    socket.abort()
                elif received.endswith(b"\n"):
                    self._deliver(bytes(received))
                    received.clear()

            socket.readyRead.connect(read)
            if socket.bytesAvailable():
                read()

    def _deliver(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            files, token = message["files"], message.get("activation_token") or ""
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("a later start sent what this window cannot read: %r", data[:200])
            return
        if isinstance(files, list) and all(isinstance(f, str) for f in files) and isinstance(token, str):
            log.info("a later start asked this window to come to the front with %d file(s)", len(files))
            self.files_received.emit(files, token)
