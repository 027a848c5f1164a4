"""Verified, resumable downloads of catalog entries from a Hugging Face hub (and of models named by their Civitai
address, models/civitai.py, whose API publishes what the hub's headers do).

huggingface_hub supplies the metadata (size, the published sha256 of large files, the commit),
the endpoint (`HF_ENDPOINT`) and the stored token; the bytes are fetched here, because its own
download restarts from byte 0 after a dropped connection and does not check the sha256.

Each file is written to `<name>.part` beside its final name with ranged requests: a dropped
connection or a cancel keeps the part, and the next attempt (in this run or after a restart)
continues from where it stopped, as long as the hub still publishes the same file. Transient
failures are retried with exponential backoff. A large file's bytes must hash to the published
sha256 before it is renamed into place, and the model is registered only when every file is.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from hypersd_desktop.core.errors import AppError, CancelledError
from hypersd_desktop.core.files import copy_file, folder_size, replace_file, why_not_written, write_all
from hypersd_desktop.core.progress import CancelToken, TransferMeter, TransferProgress
from hypersd_desktop.core.vocab import ModelKind, ModelLayout
from hypersd_desktop.core.hashes import other_tools_hashes, sha256_file
from hypersd_desktop.models.catalog import CIVITAI, CIVITAI_HOSTS, CatalogEntry, CatalogFile
from hypersd_desktop.models.registry import InstalledModel, ModelFile, Registry

CHUNK = 1024 * 1024
# A dropped connection loses the chunk being read, so reads are kept small.
READ_SIZE = 64 * 1024
MAX_PICTURE_BYTES = 8 * 1024 * 1024  # a 450-pixel preview is tens of kilobytes
SPACE_MARGIN = 64 * 1024 * 1024
RETRY_STATUSES = (429, 500, 502, 503, 504)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
T = TypeVar("T")


class DownloadError(AppError):
    """A download that cannot complete; the message says why and what to do."""


class RefusedRequestError(DownloadError):
    """A request the server found malformed (400): what it was asked for is not something it knows."""


class IntegrityError(DownloadError):
    """Bytes that do not hash to the published sha256."""


class InsufficientSpaceError(DownloadError):
    """Not enough free disk space for what is left to download."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    url: str
    size: int
    sha256: str | None  # published for LFS (large) files
    commit: str | None
    etag: str | None


class Downloader:
    """Downloads catalog entries into `models_dir` and registers them in `registry`.

    `endpoint` defaults to huggingface_hub's (`HF_ENDPOINT`); `token` to the one huggingface_hub
    stores (None lets it decide). `civitai` is where Civitai's API is asked (else `CIVITAI_ENDPOINT` from the
    environment, else civitai.com) and `civitai_token` the person's API key there (else `CIVITAI_TOKEN`).
    `retries` transient failures per file are retried, waiting `backoff` · 2^n seconds (capped at 30 s)
    through `sleep`.
    """

    def __init__(self, models_dir: Path, registry: Registry, endpoint: str | None = None, token: str | None = None,
                 retries: int = 5, backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 use_hf_cache: bool = True, timeout: float = 30.0, civitai: str | None = None,
                 civitai_token: str | None = None) -> None:
        from huggingface_hub import constants

        self.models_dir = models_dir
        self.registry = registry
        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        self.token = token
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.use_hf_cache = use_hf_cache
        self.timeout = timeout
        self.civitai = (civitai or os.environ.get("CIVITAI_ENDPOINT") or CIVITAI).rstrip("/")
        self.civitai_token = civitai_token
        self._plain_session = None

    # -- public ----------------------------------------------------------------------------

    def plan(self, entry: CatalogEntry) -> list[RemoteFile]:
        """The hub's metadata for every file of the entry (sizes, sha256, commit)."""
        return [self._metadata(entry, file) for file in entry.files]

    def download(self, entry: CatalogEntry, on_progress: Callable[[TransferProgress], None] | None = None,
                 cancel: CancelToken | None = None, remote: list[RemoteFile] | None = None) -> InstalledModel:
        """Download (or resume, or take from the Hugging Face cache) and register `entry`.

        `remote` is the entry's `plan()` when the caller already fetched it (to show the size).
        """
        cancel = cancel or CancelToken()
        remote = remote or self.plan(entry)
        files = self.fetch(entry, remote, on_progress, cancel)
        folder = self.models_dir / entry.id
        total = sum(file.size for file in remote)
        model_path = folder / entry.weights_file if entry.weights_file else folder
        sha = files[0].sha256 if entry.layout == ModelLayout.FILE else None
        lora, legacy = (other_tools_hashes(model_path, entry.kind == ModelKind.LORA, cancel)
                        if entry.layout == ModelLayout.FILE else (None, None))
        return self.registry.add(InstalledModel(
            id=entry.id, name=entry.name, kind=entry.kind, architecture=entry.architecture, layout=entry.layout,
            path=str(model_path), size=total, sha256=sha, short_hash=sha[:10] if sha else None, source="download",
            owned=True, licence=entry.licence, catalog_id=entry.id, recipe=entry.recipe,
            revision=remote[0].commit, files=tuple(files), lora_hash=lora, legacy_hash=legacy,
        ))

    def fetch(self, entry: CatalogEntry, remote: list[RemoteFile],
              on_progress: Callable[[TransferProgress], None] | None, cancel: CancelToken) -> list[ModelFile]:
        """Every file of `entry` (its `plan()`) into `<models folder>/<entry id>/`, verified: downloaded, resumed or
        taken from the Hugging Face cache. Nothing is registered."""
        folder = self.models_dir / entry.id
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a models folder on a drive that is gone
            raise DownloadError(f"{entry.name} was not downloaded: {why_not_written(error, self.models_dir)}.") from None
        total = sum(file.size for file in remote)
        done = sum(self._already_have(folder, file) for file in remote)
        self._check_space(folder, total - done)
        meter = TransferMeter(entry.id, total, done, on_progress)
        files = []
        for file in remote:
            cancel.raise_if_cancelled()
            files.append(self._fetch_file(entry, folder, file, meter, cancel))
        meter.advance("", 0, force=True)
        return files

    def partial(self, entry: CatalogEntry) -> int:
        """Bytes an interrupted download of `entry` left (finished files and `.part` files): a download
        that was paused, cancelled by closing the app, or cut off resumes from here. 0: none."""
        folder = self.models_dir / entry.id
        if not folder.is_dir() or self.registry.find(entry.id) is not None:
            return 0
        if not entry.files:  # a repository's, whose files are listed when it downloads: whatever it left
            return folder_size(folder)
        kept = 0
        for file in entry.files:
            target = folder / file.path
            part = _part(target)
            if target.is_file():
                kept += target.stat().st_size
            elif part.is_file():
                kept += part.stat().st_size
        return kept

    def discard_partial(self, entry: CatalogEntry) -> None:
        """Delete what an unfinished download of `entry` left (never an installed model's files)."""
        folder = self.models_dir / entry.id
        if folder.is_dir() and self.registry.find(entry.id) is None:
            shutil.rmtree(folder, ignore_errors=True)

    # -- metadata --------------------------------------------------------------------------

    def _metadata(self, entry: CatalogEntry, file: CatalogFile) -> RemoteFile:
        from huggingface_hub import hf_hub_url

        url = hf_hub_url(entry.repo, file.path, revision=entry.revision, endpoint=self.endpoint)
        headers = self._retried(entry, file.path, lambda: self._head(url))
        # The hub puts a large (LFS) file's sha256 and size in X-Linked-Etag / X-Linked-Size;
        # a small file's ETag is its git blob id, which is not a sha256 of the bytes.
        etag = (headers.get("X-Linked-Etag") or headers.get("ETag") or "").strip('"').removeprefix("W/").strip('"')
        size_text = headers.get("X-Linked-Size") or headers.get("Content-Length")
        try:
            size = int(size_text) if size_text is not None else file.size
        except ValueError:
            raise DownloadError(f"The hub sent an unreadable size ({size_text[:40]!r}) for {entry.repo}/{file.path}; "
                                "it may be having trouble. Try again later.") from None
        published = etag.lower() if _SHA256.match(etag.lower()) else None
        if file.sha256 is not None and published is not None and published != file.sha256:
            raise IntegrityError(
                f"The hub now publishes another file as {entry.repo}/{file.path} (sha256 {published[:12]}…) than the "
                f"one this app knows ({file.sha256[:12]}…); nothing was downloaded. Update HyperSD Desktop, or "
                "import the file yourself if you trust it.")
        if file.sha256 is not None and size != file.size:
            raise IntegrityError(f"The hub sends {size:,} bytes for {entry.repo}/{file.path}; the pinned file has "
                                 f"{file.size:,}. Nothing was downloaded; try again later.")
        if file.sha256 is None and published is None and file.path.endswith(".safetensors"):
            # Weights are never installed unchecked: the hub publishes every large file's sha256, so
            # its absence means a proxy or mirror in between that strips it.
            raise IntegrityError(
                f"The hub published no sha256 for {entry.repo}/{file.path}, so the download could not be verified; "
                "nothing was downloaded. If you use a mirror or proxy (HF_ENDPOINT), check that it passes the "
                "X-Linked-Etag header, or download the file yourself and import it.")
        return RemoteFile(
            path=file.path, url=url, size=size, sha256=file.sha256 or published,
            commit=headers.get("X-Repo-Commit"), etag=etag or None,
        )

    def repo_files(self, entry: CatalogEntry) -> list[str]:
        """The names of every file in `entry`'s repository at its revision (the hub's model-info answer)."""
        import urllib.parse

        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = f"{self.endpoint}/api/models/{entry.repo}/revision/{urllib.parse.quote(entry.revision, safe='')}"

        def listing():
            response = get_session().get(url, headers=build_hf_headers(token=self.token), timeout=self.timeout)
            hf_raise_for_status(response)
            return response

        response = self._retried(entry, "", listing)
        try:
            siblings = response.json().get("siblings", [])
            return [str(item["rfilename"]) for item in siblings if isinstance(item, dict) and "rfilename" in item]
        except (ValueError, AttributeError, TypeError):
            raise DownloadError(f"The hub's list of the files in {entry.repo} could not be read; it may be having "
                                "trouble. Try again later.") from None

    def civitai_answer(self, entry: CatalogEntry, url: str) -> dict:
        """What Civitai's API answers at `url` about `entry` (a version, or a model with its versions)."""
        def asked():
            response = self._session(entry).get(url, headers=self._headers(entry, url), timeout=self.timeout)
            response.raise_for_status()
            return response

        response = self._retried(entry, "", asked)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise DownloadError(f"Civitai's description of {entry.name} could not be read; it may be having trouble. "
                                "Try again later.")
        return answer

    def _session(self, entry: CatalogEntry):
        """huggingface_hub's session for the hub (its proxies, its offline switch); a plain one for Civitai."""
        if not entry.on_civitai:
            from huggingface_hub.utils import get_session

            return get_session()
        return self._plain()

    def _plain(self):
        if self._plain_session is None:
            import requests

            self._plain_session = requests.Session()
        return self._plain_session

    def picture(self, url: str, limit: int = MAX_PICTURE_BYTES) -> bytes:
        """A model's preview picture on Civitai's image server (no key sent: it asks for none); `DownloadError`
        where it cannot be had or is not a picture of at most `limit` bytes."""
        from hypersd_desktop import __version__

        try:
            with self._plain().get(url, headers={"User-Agent": f"HyperSD-Desktop/{__version__}"}, timeout=self.timeout,
                                   stream=True) as response:
                response.raise_for_status()
                if not response.headers.get("Content-Type", "").lower().startswith("image/"):
                    raise DownloadError("Civitai sent something other than a picture for the preview.")
                data = b"".join(itertools.islice(response.iter_content(READ_SIZE), limit // READ_SIZE + 1))
        except DownloadError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure of the network or the server: no preview
            raise DownloadError(f"The preview could not be fetched ({type(error).__name__}).") from None
        if len(data) > limit:
            raise DownloadError("The preview is larger than a preview should be; it was not shown.")
        return data

    @property
    def civitai_key(self) -> str | None:
        """The person's Civitai API key: the one given (Settings), else `CIVITAI_TOKEN`'s."""
        return self.civitai_token or os.environ.get("CIVITAI_TOKEN") or None

    def _headers(self, entry: CatalogEntry, url: str) -> dict[str, str]:
        """The hub's headers (its token); for Civitai the person's API key, sent to Civitai only (its download links
        redirect to storage elsewhere, which gets no key: requests drops it on a redirect to another host)."""
        if not entry.on_civitai:
            from huggingface_hub.utils import build_hf_headers

            return build_hf_headers(token=self.token)
        from hypersd_desktop import __version__

        headers = {"User-Agent": f"HyperSD-Desktop/{__version__}"}
        address = urllib.parse.urlsplit(url)
        token = self.civitai_key
        if token and (address.netloc.lower() in CIVITAI_HOSTS or url.startswith(self.civitai + "/")):
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _retried(self, entry: CatalogEntry, path: str, request: Callable[[], T]) -> T:
        """`request()`, tried again after a transient failure (a dropped connection, a 5xx, a 429), waiting longer
        each time; a failure for good is explained (`_explain`) as one about `path` of `entry` ("": the whole
        repository)."""
        attempt = 0
        while True:
            try:
                return request()
            except Exception as error:  # noqa: BLE001 - classified below
                status = _status_of(error)
                if not (_is_transient(error, status) and attempt < self.retries):
                    raise self._explain(entry, path, error, status, attempt + 1) from None
                self._wait(attempt)
                attempt += 1

    def _head(self, url: str):
        """The metadata headers of a resolve URL, following the hub's relative (renamed-repo) redirects."""
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        headers = build_hf_headers(token=self.token)
        headers["Accept-Encoding"] = "identity"
        for _ in range(5):
            response = get_session().head(url, headers=headers, allow_redirects=False, timeout=self.timeout)
            location = response.headers.get("Location", "")
            if 300 <= response.status_code < 400 and location.startswith("/"):
                url = self.endpoint + location
                continue
            hf_raise_for_status(response)
            return response.headers
        raise DownloadError(f"Too many redirects for {url}.")

    def _explain(self, entry: CatalogEntry, path: str, error: Exception, status: int | None, tries: int) -> DownloadError:
        if entry.on_civitai:
            return self._explain_civitai(entry, f"{entry.name} ({path})" if path else entry.name, error, status, tries)
        where = f"{entry.repo}/{path}" if path else entry.repo
        if status in (401, 403):
            return DownloadError(
                f"The hub refused {where} ({status}): the repository is gated or needs a login. Accept its licence on "
                "the model page, then log in with `huggingface-cli login` (or set HF_TOKEN) and try again."
            )
        if status == 404:
            hint = "check the address" if entry.address else "the catalog entry may be out of date"
            return DownloadError(f"{where} was not found on the hub (404); {hint}.")
        if status is not None and status >= 500:
            return DownloadError(
                f"The hub failed to serve {where} ({status}) {tries} times; it is having trouble. Try again later; "
                "what was downloaded so far is kept."
            )
        if status is not None:
            return DownloadError(f"The hub answered {status} for {where}.")
        if type(error).__name__ == "OfflineModeIsEnabled":
            return DownloadError("Downloads are off because HF_HUB_OFFLINE is set; unset it to download models.")
        return DownloadError(
            f"Could not reach the hub for {where} after {tries} tries ({type(error).__name__}). Check the network "
            "connection and try again; what was downloaded so far is kept."
        )

    def _explain_civitai(self, entry: CatalogEntry, where: str, error: Exception, status: int | None,
                         tries: int) -> DownloadError:
        if status in (401, 403):
            if self.civitai_key:
                return DownloadError(
                    f"Civitai refused {where} with your API key ({status}): the key may be mistyped or deleted (check "
                    "Settings → Civitai API key), or the model is in early access or sold (see its page).")
            return DownloadError(
                f"Civitai refused {where} ({status}): it asks for your API key to download. Create one on civitai.com "
                "(Account settings → API Keys), paste it in Settings → Civitai API key (or set CIVITAI_TOKEN), then "
                "try again.")
        if status == 404 and entry.revision.startswith("hash:"):  # a model an image names by its hash
            return DownloadError(f"Civitai has no file with the hash {entry.revision.removeprefix('hash:')}: the model "
                                 "is not shared there, or under another file. Look for it by its name.")
        if status == 404:
            return DownloadError(f"{where} was not found on Civitai (404); check the address.")
        if status is not None and status >= 500:
            return DownloadError(f"Civitai failed to serve {where} ({status}) {tries} times; it is having trouble. "
                                 "Try again later; what was downloaded so far is kept.")
        if status is not None:
            return (RefusedRequestError if status == 400 else DownloadError)(f"Civitai answered {status} for {where}.")
        return DownloadError(f"Could not reach Civitai for {where} after {tries} tries ({type(error).__name__}). Check "
                             "the network connection and try again; what was downloaded so far is kept.")

    # -- files -----------------------------------------------------------------------------

    def _already_have(self, folder: Path, file: RemoteFile) -> int:
        target = folder / file.path
        if target.exists():
            return file.size
        part = _part(target)
        if part.exists() and _part_state(part) == _identity(file):
            return min(part.stat().st_size, file.size)
        return 0

    def _check_space(self, folder: Path, needed: int) -> None:
        free = shutil.disk_usage(folder).free
        if needed + SPACE_MARGIN > free:
            raise InsufficientSpaceError(
                f"Not enough disk space: {needed / 1e9:.2f} GB more are needed in {folder} but only "
                f"{free / 1e9:.2f} GB are free. Free some space or move the models folder in Settings."
            )

    def _fetch_file(self, entry: CatalogEntry, folder: Path, file: RemoteFile, meter: TransferMeter,
                    cancel: CancelToken) -> ModelFile:
        target = folder / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            return ModelFile(file.path, target.stat().st_size, file.sha256)
        if self.use_hf_cache and not entry.on_civitai and self._take_from_hf_cache(entry, file, target, meter, cancel):
            return ModelFile(file.path, file.size, file.sha256)
        part = _part(target)
        if not part.exists() or _part_state(part) != _identity(file):
            part.unlink(missing_ok=True)
            _state_file(part).write_text(json.dumps(_identity(file)), encoding="utf-8")
        part.touch()
        digest = hashlib.sha256()
        with part.open("rb") as handle:  # hash what an earlier attempt left
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        failures = 0
        while part.stat().st_size < file.size:
            cancel.raise_if_cancelled()
            before = part.stat().st_size
            try:
                self._transfer(entry, file, part, digest, meter, cancel)
                error, status = None, None
            except (CancelledError, DownloadError):
                raise
            except Exception as caught:  # noqa: BLE001 - network errors from requests/urllib3
                error, status = caught, _status_of(caught)
                if not _is_transient(caught, status):
                    raise self._explain(entry, file.path, caught, status, failures + 1) from None
            if part.stat().st_size > before:
                failures = 0  # progress was made (perhaps before a drop): resume at once
                continue
            if failures >= self.retries:
                raise self._explain(entry, file.path, error or ConnectionError("no data"), status, failures + 1)
            self._wait(failures)
            failures += 1
        if part.stat().st_size != file.size:
            raise IntegrityError(f"{file.path} came out {part.stat().st_size} bytes instead of {file.size}.")
        actual = digest.hexdigest()
        if file.sha256 is not None and actual != file.sha256:
            part.unlink(missing_ok=True)
            _state_file(part).unlink(missing_ok=True)
            raise IntegrityError(
                f"{entry.repo}/{file.path} does not match its published sha256 (got {actual[:12]}…, expected "
                f"{file.sha256[:12]}…); the bad file was deleted and nothing was installed. Try the download again."
            )
        replace_file(part, target)  # a virus scanner reading a new file holds it a moment on Windows
        _state_file(part).unlink(missing_ok=True)
        return ModelFile(file.path, file.size, actual)

    def _transfer(self, entry: CatalogEntry, file: RemoteFile, part: Path, digest, meter: TransferMeter,
                  cancel: CancelToken) -> None:
        """Append the rest of the file to `part`, from its current size, with one ranged GET."""
        start = part.stat().st_size
        headers = self._headers(entry, file.url)
        headers["Accept-Encoding"] = "identity"
        if start:
            headers["Range"] = f"bytes={start}-"
        with self._session(entry).get(file.url, headers=headers, stream=True, timeout=self.timeout) as response:
            if response.status_code == 416 and start == file.size:
                return
            response.raise_for_status()
            if entry.on_civitai and response.headers.get("Content-Type", "").startswith(("text/", "application/json")):
                raise DownloadError(  # its sign-in page, where a file was asked for
                    f"Civitai sent a page instead of {file.path}: it may ask you to sign in (your API key, in Settings "
                    "→ Civitai API key), or the model is in early access (see its page). Nothing was installed.")
            if start and response.status_code != 206:
                # The server ignored the range: start this file over.
                part.write_bytes(b"")
                digest.__init__()  # type: ignore[misc]
                meter.advance(file.path, -start)
            with part.open("ab", buffering=0) as handle:  # unbuffered: a write that fails fails here, not on close
                for chunk in response.iter_content(READ_SIZE):
                    if cancel.cancelled:
                        handle.flush()
                        raise CancelledError("download cancelled; it resumes from here next time")
                    try:
                        write_all(handle, chunk)
                    except OSError as error:  # not the network's: the disk's, which trying again will not mend
                        raise DownloadError(f"{file.path} stopped downloading: {why_not_written(error, part.parent)}"
                                            "; what was downloaded so far is kept.") from None
                    digest.update(chunk)
                    meter.advance(file.path, len(chunk))

    def _take_from_hf_cache(self, entry: CatalogEntry, file: RemoteFile, target: Path, meter: TransferMeter,
                            cancel: CancelToken) -> bool:
        """Link the file from the user's Hugging Face cache when it is there and verifies, or copy it (another
        drive) through a temporary name, so that a full disk or a cancel leaves no part under the real name."""
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(entry.repo, file.path, revision=file.commit or entry.revision)
        if not isinstance(cached, str):
            return False
        source = Path(cached).resolve()
        if source.stat().st_size != file.size:
            return False
        if file.sha256 is not None and sha256_file(source) != file.sha256:
            return False
        try:
            os.link(source, target)
        except OSError:
            copying = target.with_name(target.name + ".copying")
            try:
                copy_file(Path(cached), copying, meter.counter(file.path, cancel))  # named as the file, not its blob
                replace_file(copying, target)
            except BaseException:
                copying.unlink(missing_ok=True)
                raise
        else:
            meter.advance(file.path, file.size)
        return True

    def _wait(self, attempt: int) -> None:
        self.sleep(min(30.0, self.backoff * 2**attempt))


def _part(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _state_file(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _identity(file: RemoteFile) -> dict:
    return {"url": file.url, "size": file.size, "sha256": file.sha256, "etag": file.etag}


def _part_state(part: Path) -> dict | None:
    try:
        return json.loads(_state_file(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _status_of(error: Exception) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _is_transient(error: Exception, status: int | None) -> bool:
    if status is not None:
        return status in RETRY_STATUSES
    import requests

    return isinstance(error, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError))
