"""sha256 of weights files, computed once and remembered by path, size and modification time.

The AUTOMATIC1111 short hash (the first 10 hex digits of the sha256, "AutoV2" on Civitai) is
what image metadata carries so other tools recognise the model and LoRAs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from hypersd_desktop.core.files import write_atomic
from hypersd_desktop.core.progress import CancelToken, TransferMeter

CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path, meter: TransferMeter | None = None, cancel: CancelToken | None = None) -> str:
    """The sha256 of a file, reporting bytes read to `meter` and stopping on `cancel`."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            if cancel is not None:
                cancel.raise_if_cancelled()
            digest.update(chunk)
            if meter is not None:
                meter.advance(path.name, len(chunk))
    return digest.hexdigest()


class HashCache:
    """A JSON file mapping absolute path to (size, mtime, sha256).

    `known` answers for files whose sha256 is already recorded elsewhere (the model registry hashed
    every imported or downloaded file once), so generating with them never hashes gigabytes again.
    """

    def __init__(self, file: Path, known: Callable[[Path], str | None] | None = None) -> None:
        self.file = file
        self.known = known
        try:
            self._entries: dict[str, list] = json.loads(file.read_text())
        except (OSError, ValueError):
            self._entries = {}

    def sha256(self, path: Path) -> str:
        path = path.resolve()
        stat = path.stat()
        entry = self._entries.get(str(path))
        if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
            return entry[2]
        digest = (self.known(path) if self.known else None) or sha256_file(path)
        self._entries[str(path)] = [stat.st_size, stat.st_mtime_ns, digest]
        self._save()
        return digest

    def short_hash(self, path: Path) -> str | None:
        """A1111's 10-digit hash of a weights file; None for a folder (diffusers models have no single hash)."""
        if not path.is_file():
            return None
        return self.sha256(path)[:10]

    def _save(self) -> None:
        write_atomic(self.file, json.dumps(self._entries))
