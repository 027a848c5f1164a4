"""Writing files so that a crash, a kill or a full disk never leaves half a file under the real name."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from hypersd_desktop.core.errors import AppError, InputError

COPY_CHUNK = 8 * 1024 * 1024  # a cancel or the progress bar waits at most one chunk


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file (mkstemp gives 0600)
PARTIAL = ".partial-"  # temporary files are named .partial-<writer's pid>-<random><suffix>


# Windows refuses to rename over a file, or to move one, while another program has it open without sharing its
# deletion: a virus scanner reading a file just written, the search indexer, a cloud drive's sync client, each for
# a moment. Python's os.replace then fails ("Access is denied", "being used by another process"); it is tried again.
LOCK_RETRY = os.name == "nt"
LOCK_RETRY_S = 3.0
_LOCKED_WINERRORS = (5, 32, 33)  # access denied, sharing violation, lock violation


def replace_file(source: str | Path, target: str | Path) -> None:
    """`os.replace(source, target)`, tried again for up to `LOCK_RETRY_S` where Windows says another program holds one
    of them for the moment (`LOCK_RETRY`); the last error is raised."""
    waited, pause = 0.0, 0.02
    while True:
        try:
            os.replace(source, target)
            return
        except PermissionError as error:
            locked = getattr(error, "winerror", None) in _LOCKED_WINERRORS or error.errno in (errno.EACCES, None)
            if not LOCK_RETRY or not locked or waited >= LOCK_RETRY_S:
                raise
        time.sleep(pause)
        waited += pause
        pause = min(pause * 2, 0.5)


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary stream to a temporary file beside `path`, renamed over `path` when the block ends
    without an error and removed when it does not. The folder is created if needed; the file gets
    the permissions of any new file (the user's umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f"{PARTIAL}{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
        if os.name != "nt":
            os.chmod(temporary, _FILE_MODE)
        replace_file(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_stale_partials(folder: Path) -> int:
    """Remove the temporary files in `folder` that writers killed mid-write left (their process is gone); how
    many. Those of running processes, and any without a process id, are left alone."""
    import psutil

    removed = 0
    for path in folder.glob(f"{PARTIAL}*"):
        pid = path.name.removeprefix(PARTIAL).split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace `path` with `data` (text is written as UTF-8) in one step."""
    with atomic_writer(path) as stream:
        stream.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_all(stream: BinaryIO, data: bytes) -> None:
    """Write every byte of `data` to an unbuffered `stream`, whose `write` may take only part of it. Unbuffered, a
    write that fails (a full disk) fails here, where its caller can say so, not later on close."""
    rest = memoryview(data)
    while rest:
        rest = rest[stream.write(rest):]


def copy_file(source: Path, target: Path, on_chunk: Callable[[int], None]) -> None:
    """Copy `source`'s bytes into a new file `target` (its folder made) chunk by chunk, calling `on_chunk(size)` after
    each, which may raise to stop (a cancel). A failure to read raises its OSError; one to write raises AppError with
    the disk's reason (what to do about a full disk is the same for every file that follows). The caller removes
    what was written when it fails: `target` should be a temporary name."""
    with source.open("rb") as reading:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            writing = target.open("wb", buffering=0)
        except OSError as error:
            raise AppError(f"{source.name} was not copied: {why_not_written(error, target.parent)}.") from None
        with writing:
            while chunk := reading.read(COPY_CHUNK):
                try:
                    write_all(writing, chunk)
                except OSError as error:
                    raise AppError(f"{source.name} was not copied: {why_not_written(error, target.parent)}; "
                                   "nothing of it was kept.") from None
                on_chunk(len(chunk))


def name_is_text(path: Path) -> bool:
    """Whether a path is text that the databases can keep. On Linux a file name is bytes, and one saved by an older
    system or copied from an old drive (café in Latin-1) is no UTF-8: Python holds its odd bytes as surrogates,
    which no text encoding takes."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_path(path: Path | str) -> str:
    """A path as text to show, the bytes of its name that are no UTF-8 written as �."""
    return os.fsencode(path).decode("utf-8", errors="replace")


NOT_TEXT_NAME = "its name is not UTF-8 text (a file from an older system or drive); rename it to add it"


def typed_path(text: str) -> Path | None:
    """A path as a person types, pastes or drops it into a box; None when there is none. The quotes Windows
    Explorer's "Copy as path" puts around it are dropped, a dropped file:// address becomes its path, and `~` and
    environment variables are expanded. A path that is still not whole (it would be taken from wherever the app
    happened to start) is an `InputError` saying so."""
    import urllib.parse
    import urllib.request

    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if text.lower().startswith("file://"):
        address = urllib.parse.urlparse(text)
        local = address.netloc in ("", "localhost")
        text = urllib.request.url2pathname(address.path if local else f"//{address.netloc}{address.path}")
    if not text:
        return None
    path = Path(os.path.expandvars(os.path.expanduser(text)))
    if not path.is_absolute():
        example = Path.home() / "Pictures"
        raise InputError(f"\"{text}\" is not a whole path: type it from the start (such as {example}), or use Choose….")
    return path


def folder_size(folder: Path) -> int:
    """The bytes of the files under `folder` (each hard-linked file once; links not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in folder.rglob("*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if path.is_file() and not path.is_symlink() and (info.st_dev, info.st_ino) not in seen:
            seen.add((info.st_dev, info.st_ino))
            total += info.st_size
    return total


_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


def why_not_written(error: OSError, folder: Path) -> str:
    """Why writing into `folder` failed, and what to do about it, for a message that goes on "… was not saved"."""
    reason = error.strerror or str(error)
    if error.errno in _DISK_FULL:
        return f"the disk holding {folder} is full ({reason}). Free some space, or choose another folder"
    if error.errno == errno.EFBIG:
        return (f"the drive holding {folder} cannot hold a file this large ({reason}; FAT32 drives hold up to 4 GB). "
                "Choose a folder on another drive")
    if error.errno in _NOT_ALLOWED:
        return f"{folder} cannot be written to ({reason}). Choose another folder, or one you may write in"
    return f"it could not be written into {folder} ({reason})"
