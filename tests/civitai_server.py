"""A local HTTP server speaking the parts of Civitai's public API and downloads that the app uses.

`GET /api/v1/model-versions/{id}`, `GET /api/v1/model-versions/by-hash/{hash}` (a file's AutoV2 or SHA256),
`GET /api/v1/models/{id}` and the search, `GET /api/v1/models?query=…&types=…&baseModels=…&nsfw=…&cursor=…`, answer
as Civitai's do (a version: its model's name
and type, its base model, its files with `sizeKB`, `hashes.SHA256` (uppercase), `metadata` and `downloadUrl`; a
model: its versions, newest first). `GET /api/download/models/{version}` wants `Authorization: Bearer <key>` (401
and a JSON error without it, or Civitai's sign-in page when `sign_in_page` is set) and redirects (307) to a second
server standing for the storage Civitai signs links to, which serves the bytes with `Range` and, as signed storage
links do, refuses a request that carries an Authorization header of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from hub_server import _QuietServer

_VERSION = re.compile(r"^/api/v1/model-versions/(\d+)$")
_MODEL = re.compile(r"^/api/v1/models/(\d+)$")
_SEARCH = "/api/v1/models"
_DOWNLOAD = re.compile(r"^/api/download/models/(\d+)$")
_BY_HASH = re.compile(r"^/api/v1/model-versions/by-hash/([0-9A-Fa-f]+)$")
_PICTURE = re.compile(r"^/xG1nkqKTMzGDvpLrqFT7WA/([\w-]+)/width=\d+/[\w.-]+$")  # Civitai's image server's addresses


@dataclass
class CivitaiFile:
    name: str
    data: bytes
    kind: str = "Model"  # Civitai's file type: Model, Pruned Model, VAE, Training Data
    format: str = "SafeTensor"
    size: str = "pruned"
    fp: str = "fp16"
    primary: bool = True

    def described(self, api: str, version: int) -> dict:
        return {"id": abs(hash(self.name)) % 10**6, "name": self.name, "type": self.kind,
                "sizeKB": len(self.data) / 1024,
                "metadata": {"format": self.format, "size": self.size, "fp": self.fp},
                "hashes": {"AutoV2": hashlib.sha256(self.data).hexdigest()[:10].upper(),
                           "SHA256": hashlib.sha256(self.data).hexdigest().upper()},
                "downloadUrl": f"{api}/api/download/models/{version}?type={self.kind.replace(' ', '%20')}&format="
                               f"{self.format}&size={self.size}&fp={self.fp}",
                "primary": self.primary}


@dataclass
class CivitaiVersion:
    id: int
    model_id: int
    model_name: str
    name: str
    model_type: str = "LORA"
    base_model: str = "SD 1.5"
    files: list[CivitaiFile] = field(default_factory=list)
    mature: bool = False
    trained_words: list = field(default_factory=list)
    images: list[tuple[str, int, str]] = field(default_factory=list)  # a picture's name, nsfwLevel and type

    def described(self, api: str, with_model: bool = True) -> dict:
        answer = {"id": self.id, "modelId": self.model_id, "name": self.name, "baseModel": self.base_model,
                  "trainedWords": self.trained_words, "files": [file.described(api, self.id) for file in self.files],
                  "images": [{"url": f"{api}/xG1nkqKTMzGDvpLrqFT7WA/{name}/width=1024/{name}.png",
                              "nsfwLevel": level, "type": kind, "width": 1024, "height": 1024}
                             for name, level, kind in self.images],
                  "downloadUrl": f"{api}/api/download/models/{self.id}"}
        if with_model:
            answer["model"] = {"name": self.model_name, "type": self.model_type, "nsfw": False}
        return answer


@dataclass
class FakeCivitai:
    versions: dict[int, CivitaiVersion] = field(default_factory=dict)
    key: str = "secret-key"
    sign_in_page: bool = False  # a download without a key gets the sign-in page (200, HTML), not a 401
    drops: list[int] = field(default_factory=list)  # the storage drops the next connections after N bytes
    requests: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)  # server, path, Range, auth
    search_requests: list[str] = field(default_factory=list)
    unknown_bases: set[str] = field(default_factory=set)  # base models its search refuses to filter by (400)
    pictures: dict[str, bytes] = field(default_factory=dict)  # its image server's, by name
    url: str = ""
    storage: str = ""

    def add(self, version: CivitaiVersion) -> CivitaiVersion:
        self.versions[version.id] = version
        return version

    def file(self, name: str) -> CivitaiFile:
        return next(f for version in self.versions.values() for f in version.files if f.name == name)


def _handler(civitai: FakeCivitai, storage: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            address = urllib.parse.urlsplit(self.path)
            civitai.requests.append(("storage" if storage else "api", address.path, self.headers.get("Range"),
                                     self.headers.get("Authorization")))
            if storage:
                return self._stored(address)
            if match := _VERSION.match(address.path):
                version = civitai.versions.get(int(match[1]))
                if version is None:
                    return self._send(404, b'{"error":"No model version with id ' + match[1].encode() + b'"}')
                return self._send(200, json.dumps(version.described(civitai.url)).encode())
            if match := _BY_HASH.match(address.path):  # a version by its file's AutoV2 or SHA256, in any case
                wanted = match[1].upper()
                version = next((v for v in civitai.versions.values() for f in v.files if wanted in (
                    hashlib.sha256(f.data).hexdigest()[:10].upper(), hashlib.sha256(f.data).hexdigest().upper())), None)
                if version is None:
                    return self._send(404, b'{"error":"Model not found"}')
                return self._send(200, json.dumps(version.described(civitai.url)).encode())
            if address.path == _SEARCH:
                civitai.search_requests.append(self.path)
                return self._search(urllib.parse.parse_qs(address.query))
            if match := _MODEL.match(address.path):
                versions = sorted((v for v in civitai.versions.values() if v.model_id == int(match[1])),
                                  key=lambda v: -v.id)
                if not versions:
                    return self._send(404, b'{"error":"No model with id ' + match[1].encode() + b'"}')
                answer = {"id": versions[0].model_id, "name": versions[0].model_name, "type": versions[0].model_type,
                          "modelVersions": [v.described(civitai.url, with_model=False) for v in versions]}
                return self._send(200, json.dumps(answer).encode())
            if match := _DOWNLOAD.match(address.path):
                return self._download(int(match[1]), urllib.parse.parse_qs(address.query))
            if (match := _PICTURE.match(address.path)) and match[1] in civitai.pictures:
                return self._send(200, civitai.pictures[match[1]], "image/png")
            self._send(404, b"<html>Page not found</html>", "text/html")

        def _search(self, query: dict) -> None:
            """Models whose name holds the query's words, of the types and base models asked for, a page at a time
            (the cursor: where the next page starts)."""
            words = query.get("query", [""])[0].lower().split()
            if set(query.get("baseModels", ())) & civitai.unknown_bases:  # its enum's validation
                return self._send(400, b'{"error":"Invalid enum value"}')
            types, bases = set(query.get("types", ())), set(query.get("baseModels", ()))
            by_model: dict[int, list[CivitaiVersion]] = {}
            for version in sorted(civitai.versions.values(), key=lambda v: -v.id):
                by_model.setdefault(version.model_id, []).append(version)
            found = [versions for versions in by_model.values()
                     if all(word in versions[0].model_name.lower() for word in words)
                     and (not types or versions[0].model_type in types)
                     and (not bases or any(v.base_model in bases for v in versions))
                     and (query.get("nsfw") != ["false"] or not versions[0].mature)]
            if query.get("sort") == ["Most Downloaded"]:  # downloadCount below: 1000 a version
                found.sort(key=lambda versions: -len(versions))
            start, limit = int(query.get("cursor", ["0"])[0]), int(query.get("limit", ["100"])[0])
            page = found[start:start + limit]
            answer = {"items": [{"id": versions[0].model_id, "name": versions[0].model_name,
                                 "type": versions[0].model_type, "nsfw": versions[0].mature,
                                 "creator": {"username": "someone"}, "stats": {"downloadCount": 1000 * len(versions)},
                                 "modelVersions": [v.described(civitai.url, with_model=False) for v in versions]}
                                for versions in page],
                      "metadata": {"nextCursor": str(start + limit) if start + limit < len(found) else None}}
            self._send(200, json.dumps(answer).encode())

        def _download(self, version_id: int, query: dict) -> None:
            version = civitai.versions.get(version_id)
            if version is None:
                return self._send(404, b'{"error":"Not found"}')
            if self.headers.get("Authorization") != f"Bearer {civitai.key}":
                if civitai.sign_in_page:
                    return self._send(200, b"<!DOCTYPE html><html><title>Sign in | Civitai</title></html>",
                                      "text/html; charset=utf-8")
                return self._send(401, b'{"error":"Unauthorized","message":"The creator of this asset requires you '
                                       b'to be logged in to download it"}')
            wanted = {key: values[0] for key, values in query.items()}
            file = next((f for f in version.files if all(
                str(getattr(f, {"type": "kind"}.get(key, key), value)).lower() == value.lower()
                for key, value in wanted.items())), version.files[0])
            signed = f"{civitai.storage}/files/{urllib.parse.quote(file.name)}?X-Signature=abc123&expires=3600"
            self._send(307, b"", "text/plain", Location=signed)

        def _stored(self, address) -> None:
            if self.headers.get("Authorization"):  # as S3-style signed links: one way of signing a request only
                return self._send(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism "
                                       b"allowed</Message></Error>", "application/xml")
            name = urllib.parse.unquote(address.path.removeprefix("/files/"))
            data = civitai.file(name).data
            start = 0
            if rng := self.headers.get("Range"):
                start = int(re.match(r"bytes=(\d+)-", rng)[1])
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", f'attachment; filename="{name}"')
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if civitai.drops:
                self.wfile.write(body[:civitai.drops.pop(0)])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


class CivitaiServer:
    """Runs a `FakeCivitai` (its API and its storage, on two ports of 127.0.0.1) in background threads."""

    def __init__(self, civitai: FakeCivitai | None = None) -> None:
        self.civitai = civitai or FakeCivitai()
        self._servers = [_QuietServer(("127.0.0.1", 0), _handler(self.civitai, storage)) for storage in (False, True)]
        self.civitai.url, self.civitai.storage = (f"http://127.0.0.1:{s.server_address[1]}" for s in self._servers)

    def __enter__(self) -> FakeCivitai:
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self.civitai

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
