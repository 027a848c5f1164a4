"""Framing of protocol messages on a byte stream (a pipe now, a socket later).

A frame is: the magic `HSDW`, the JSON length (uint32, big-endian), the number of binary parts
(uint16), the JSON text (UTF-8: `{"type": name, ...fields}`), then each binary part as its
length (uint64) and bytes. The lengths are bounded, so garbage on the stream (a stray print, a
program that is no worker) is recognised at once as a `ProtocolError` instead of a read of
gigabytes or a hang; a stream that ends inside a frame is a `ProtocolError` too, and one that
ends between frames is `EOFError`.
"""

from __future__ import annotations

import json
import struct
import threading
from typing import BinaryIO

from hypersd_desktop.core.codec import CodecError, from_data, to_data
from hypersd_desktop.worker.protocol import MESSAGES

MAGIC = b"HSDW"
_HEAD = struct.Struct(">4sIH")
_PART = struct.Struct(">Q")
MAX_JSON_BYTES = 64 * 2**20
MAX_PART_BYTES = 2**31
MAX_PARTS = 64


class ProtocolError(Exception):
    """The other side wrote something that is not a message of this protocol."""


def encode(message: object) -> bytes:
    """One message as a frame."""
    blobs: list[bytes] = []
    body = {"type": type(message).kind, **to_data(message, blobs)}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    parts = [_HEAD.pack(MAGIC, len(text), len(blobs)), text]
    for blob in blobs:
        parts += [_PART.pack(len(blob)), blob]
    return b"".join(parts)


def decode(text: bytes, blobs: list[bytes]) -> object:
    """The message of a frame's JSON and binary parts."""
    try:
        body = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError(f"a message is not JSON ({error})") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ProtocolError("a message has no type")
    kind = MESSAGES.get(body["type"])
    if kind is None:
        raise ProtocolError(f"unknown message type {body['type']!r}")
    try:
        return from_data(kind, body, blobs, where=body["type"])
    except CodecError as error:
        raise ProtocolError(f"a {body['type']!r} message does not fit the protocol: {error}") from None
    except Exception as error:  # noqa: BLE001 - a message's own validation (a request out of range, say)
        raise ProtocolError(f"a {body['type']!r} message is invalid: {error}") from None


def _read_exactly(stream: BinaryIO, size: int, started: bool) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            if started or left != size:
                raise ProtocolError("the stream ended in the middle of a message")
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(stream: BinaryIO) -> object:
    """The next message; `EOFError` when the stream ends cleanly between messages."""
    head = _read_exactly(stream, _HEAD.size, started=False)
    magic, json_size, part_count = _HEAD.unpack(head)
    if magic != MAGIC:
        raise ProtocolError(f"the stream does not speak this protocol (it began {head!r})")
    if json_size > MAX_JSON_BYTES or part_count > MAX_PARTS:
        raise ProtocolError(f"a message header declares {json_size} bytes and {part_count} parts")
    text = _read_exactly(stream, json_size, started=True)
    blobs = []
    for _ in range(part_count):
        (size,) = _PART.unpack(_read_exactly(stream, _PART.size, started=True))
        if size > MAX_PART_BYTES:
            raise ProtocolError(f"a binary part declares {size} bytes")
        blobs.append(_read_exactly(stream, size, started=True))
    return decode(text, blobs)


class MessageWriter:
    """Writes whole frames to a stream, one writer at a time."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: object) -> None:
        """Raises `OSError` (BrokenPipeError included) when the other side has gone."""
        frame = memoryview(encode(message))
        with self._lock:
            while frame:  # an unbuffered stream may take part of it
                frame = frame[self._stream.write(frame):]
            self._stream.flush()

    def close(self) -> None:
        try:
            self._stream.close()
        except OSError:
            pass
