"""sha256 of weights files, computed once and remembered by path, size and modification time.

Image metadata names weights files by hash, so other tools recognise them. AUTOMATIC1111 (and
Forge, and Civitai reading their images) writes three kinds:
- `Model hash`: the first 10 hex digits of the file's sha256 ("AutoV2" on Civitai); `TI hashes`
  and the Civitai extension's `Hashes` take the first 12 or 10 digits of the same sha256;
- `Lora hashes`: the first 12 digits of the sha256 of a safetensors file's tensor data, the
  bytes after its header (kohya's and sd-webui-additional-networks' hash, "AutoV3"). A file
  whose metadata carries kohya's `sshs_model_hash` is named by that, as A1111 does;
- before late 2022, `Model hash` was 8 digits of the sha256 of the 64 KiB at 1 MiB into the file
  ("AutoV1"), which old images still carry.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

from hypersd_desktop.core.files import write_atomic
from hypersd_desktop.core.progress import CancelToken, TransferMeter

CHUNK = 4 * 1024 * 1024
LEGACY_OFFSET, LEGACY_LENGTH = 0x100000, 0x10000  # AutoV1's window into the file
LORA_HASH_DIGITS = 12  # A1111 writes LoRA and embedding hashes this long


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


def lora_hash(path: Path, cancel: CancelToken | None = None) -> str:
    """A1111's hash of a LoRA file (64 hex digits; images carry the first 12): kohya's `sshs_model_hash` from its
    metadata when it has one, else the sha256 of the bytes after the safetensors header (of the whole file when it
    has no safetensors header, as A1111 hashes other formats)."""
    with path.open("rb") as handle:
        start = handle.read(8)
        header_length = int.from_bytes(start, "little") if len(start) == 8 else 0
        data_start = 8 + header_length if 8 + header_length <= path.stat().st_size else 0
        if data_start:
            written = _kohya_hash(handle.read(header_length))
            if written is not None:
                return written
        digest = hashlib.sha256()
        handle.seek(data_start)
        while chunk := handle.read(CHUNK):
            if cancel is not None:
                cancel.raise_if_cancelled()
            digest.update(chunk)
    return digest.hexdigest()


def _kohya_hash(header: bytes) -> str | None:
    try:
        metadata = json.loads(header).get("__metadata__")
    except (ValueError, AttributeError, RecursionError):
        return None
    written = metadata.get("sshs_model_hash") if isinstance(metadata, dict) else None
    if isinstance(written, str) and re.fullmatch(r"[0-9a-fA-F]{64}", written.strip()):
        return written.strip().lower()
    return None


def legacy_model_hash(path: Path) -> str | None:
    """A1111's old model hash ("AutoV1"): 8 hex digits of the sha256 of the 64 KiB at 1 MiB. None for a file of 1 MiB
    or less, where it would hash nothing (every such file would share one hash)."""
    with path.open("rb") as handle:
        handle.seek(LEGACY_OFFSET)
        window = handle.read(LEGACY_LENGTH)
    return hashlib.sha256(window).hexdigest()[:8] if window else None


def other_tools_hashes(path: Path, is_lora: bool, cancel: CancelToken | None = None) -> tuple[str, str]:
    """A weights file's LoRA hash (for a LoRA) and legacy hash, "" for either it does not have: what the model
    registry records beside the sha256 so images from other tools find the file."""
    return (lora_hash(path, cancel) if is_lora else ""), (legacy_model_hash(path) or "")


class HashCache:
    """A JSON file mapping absolute path to (size, mtime, sha256), and "lora <path>" to the same with the LoRA hash.

    `known` and `known_lora` answer for files whose hashes are already recorded elsewhere (the model
    registry hashed every imported or downloaded file once), so generating with them never hashes
    gigabytes again.
    """

    def __init__(self, file: Path, known: Callable[[Path], str | None] | None = None,
                 known_lora: Callable[[Path], str | None] | None = None) -> None:
        self.file = file
        self.known = known
        self.known_lora = known_lora
        try:
            self._entries: dict[str, list] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._entries = {}

    def sha256(self, path: Path) -> str:
        return self._cached("", path, self.known, sha256_file)

    def short_hash(self, path: Path) -> str | None:
        """A1111's 10-digit hash of a weights file; None for a folder (diffusers models have no single hash)."""
        if not path.is_file():
            return None
        return self.sha256(path)[:10]

    def lora_short_hash(self, path: Path) -> str | None:
        """The 12 digits of a LoRA file's hash that A1111 writes in `Lora hashes` (see `lora_hash`); None for a folder."""
        if not path.is_file():
            return None
        return self._cached("lora ", path, self.known_lora, lora_hash)[:LORA_HASH_DIGITS]

    def _cached(self, prefix: str, path: Path, known: Callable[[Path], str | None] | None,
                compute: Callable[[Path], str]) -> str:
        path = path.resolve()
        stat = path.stat()
        key = prefix + str(path)
        entry = self._entries.get(key)
        if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
            return entry[2]
        digest = (known(path) if known else None) or compute(path)
        self._entries[key] = [stat.st_size, stat.st_mtime_ns, digest]
        self._save()
        return digest

    def _save(self) -> None:
        write_atomic(self.file, json.dumps(self._entries))
