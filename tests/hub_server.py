"""A local HTTP server speaking the parts of the Hugging Face hub protocol that downloads use.

`HEAD /{repo}/resolve/{revision}/{path}` answers with `X-Repo-Commit`, `ETag`, and for large
(LFS) files `X-Linked-Etag` (the sha256) and `X-Linked-Size`; `GET` serves the bytes and honours
`Range`. `GET /api/models/{repo}/revision/{revision}` lists a repository's files (`siblings`), as the
hub's model-info answer does. Faults can be queued per file: an HTTP status for the next requests, a connection
dropped after a number of bytes, or content that does not match the published sha256.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<path>.+)$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<revision>[^/]+)$")


@dataclass
class HostedFile:
    data: bytes
    lfs: bool = True
    served: bytes | None = None  # bytes actually sent, when different from what is published
    size_header: str | None = None  # an X-Linked-Size/Content-Length to send instead of the real one

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_id(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass
class FakeHub:
    files: dict[tuple[str, str], HostedFile] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # path -> next statuses
    drops: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # path -> drop after N bytes
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    pause_per_64k: float = 0.0  # slows GETs down, to act on a transfer while it runs
    required_token: str | None = None  # a gated repository: 401 without "Authorization: Bearer <token>"
    url: str = ""

    def add(self, repo: str, path: str, data: bytes, lfs: bool = True) -> HostedFile:
        hosted = HostedFile(data, lfs)
        self.files[(repo, path)] = hosted
        return hosted

    def gets(self, path: str) -> list[str | None]:
        return [rng for method, p, rng in self.requests if method == "GET" and p == path]


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def _resolve(self):
            match = _RESOLVE.match(self.path.split("?")[0])
            if not match:
                return None, None
            key = (match["repo"], match["path"])
            return match["path"], hub.files.get(key)

        def _status_fault(self, path: str) -> bool:
            if hub.required_token and self.headers.get("Authorization") != f"Bearer {hub.required_token}":
                hub.statuses[path].insert(0, 401)
            queue = hub.statuses.get(path)
            if queue:
                status = queue.pop(0)
                body = b'{"error": "injected"}'
                self.send_response(status)
                if status == 401:
                    self.send_header("X-Error-Code", "GatedRepo")
                    self.send_header("X-Error-Message", "Access to this repository is restricted.")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return True
            return False

        def _not_found(self):
            body = b'{"error": "Entry not found"}'
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _metadata_headers(self, hosted: HostedFile):
            self.send_header("X-Repo-Commit", COMMIT)
            if hosted.lfs:
                self.send_header("X-Linked-Etag", f'"{hosted.sha256}"')
                self.send_header("X-Linked-Size", hosted.size_header or str(len(hosted.data)))
                self.send_header("ETag", f'"{hosted.sha256}"')
            else:
                self.send_header("ETag", f'"{hosted.git_id}"')

        def do_HEAD(self):
            path, hosted = self._resolve()
            hub.requests.append(("HEAD", path, None))
            if path is not None and self._status_fault(path):
                return
            if hosted is None:
                return self._not_found()
            self.send_response(200)
            self._metadata_headers(hosted)
            self.send_header("Content-Length", str(len(hosted.data)))
            self.end_headers()

        def _repo_info(self, repo: str) -> None:
            import json

            hub.requests.append(("GET", f"api:{repo}", None))
            if self._status_fault(f"api:{repo}"):  # faults for the listing are queued under "api:<repo>"
                return
            names = [path for hosted_repo, path in hub.files if hosted_repo == repo]
            if not names:
                body = b'{"error": "Repository not found"}'
                self.send_response(404)
                self.send_header("X-Error-Code", "RepoNotFound")
            else:
                body = json.dumps({"id": repo, "sha": COMMIT, "siblings": [{"rfilename": n} for n in names]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            info = _INFO.match(self.path.split("?")[0])
            if info:
                return self._repo_info(info["repo"])
            path, hosted = self._resolve()
            range_header = self.headers.get("Range")
            hub.requests.append(("GET", path, range_header))
            if path is not None and self._status_fault(path):
                return
            if hosted is None:
                return self._not_found()
            data = hosted.served if hosted.served is not None else hosted.data
            start = 0
            if range_header:
                start = int(re.match(r"bytes=(\d+)-", range_header).group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            body = data[start:]
            self.send_response(206 if range_header else 200)
            self._metadata_headers(hosted)
            if range_header:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            drops = hub.drops.get(path)
            if drops:
                cut = drops.pop(0)
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            for offset in range(0, len(body), 64 * 1024):
                self.wfile.write(body[offset : offset + 64 * 1024])
                if hub.pause_per_64k:
                    time.sleep(hub.pause_per_64k)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hangs up mid-file is expected here
        pass


class HubServer:
    """Runs a `FakeHub` on 127.0.0.1 in a background thread (a context manager)."""

    def __init__(self, hub: FakeHub | None = None) -> None:
        self.hub = hub or FakeHub()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self.hub))
        self.hub.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self.hub

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_forever(port: int, repo_files: dict[tuple[str, str], bytes]) -> None:
    """Serve files until killed (for trying the CLI by hand against a local hub)."""
    hub = FakeHub()
    for (repo, path), data in repo_files.items():
        hub.add(repo, path, data, lfs=len(data) > 1024)
    _QuietServer(("127.0.0.1", port), _handler(hub)).serve_forever()
