"""One codec between typed values (frozen dataclasses, enums, tuples, paths) and plain JSON data.

Used for the request stored in a PNG, for every message to and from the worker, and for batch
specs, so a value written by one side is read back by the other as the same typed object. The
types come from the dataclasses' annotations; nothing is pickled and no code is named by the
data. Decoding checks every value against its annotation and raises `CodecError` naming the
field, so a damaged or foreign message is a clear error rather than a wrong value later.

`bytes` fields do not go into the JSON: `to_data` appends them to `blobs` and writes their index
(`{"$blob": 0}`); the wire carries the blobs as binary frames after the JSON.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, TypeVar

T = TypeVar("T")
BLOB_KEY = "$blob"


class CodecError(ValueError):
    """Data that does not fit the type it is read as."""


def to_data(value: Any, blobs: list[bytes] | None = None) -> Any:
    """`value` as JSON-ready data. Dataclass fields keep their declaration order."""
    if value is None or isinstance(value, (bool, int, float)) and not isinstance(value, Enum):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        if blobs is None:
            raise CodecError("binary data needs a blob list to go into")
        blobs.append(bytes(value))
        return {BLOB_KEY: len(blobs) - 1}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name), blobs) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_data(item, blobs) for item in value]
    if isinstance(value, dict):
        return {str(key): to_data(item, blobs) for key, item in value.items()}
    raise CodecError(f"cannot encode a {type(value).__name__}")


def from_data(kind: type[T], data: Any, blobs: list[bytes] | None = None, where: str = "") -> T:
    """`data` read as `kind` (a dataclass or any annotation the codec knows).

    Unknown keys of a dataclass are ignored (data written by a newer version); missing keys take
    the field's default. A dataclass's own `__post_init__` validation still runs.
    """
    return _decode(kind, data, blobs, where or getattr(kind, "__name__", "value"))


@functools.lru_cache(maxsize=None)
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _decode(kind: Any, data: Any, blobs: list[bytes] | None, where: str) -> Any:
    if kind is Any:
        return data
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        arms = typing.get_args(kind)
        if data is None:
            if type(None) in arms:
                return None
            raise CodecError(f"{where} is missing")
        errors = []
        for arm in arms:
            if arm is type(None):
                continue
            try:
                return _decode(arm, data, blobs, where)
            except CodecError as error:
                errors.append(str(error))
        raise CodecError(errors[0] if len(errors) == 1 else f"{where} fits none of its types")
    if origin in (tuple, list):
        if not isinstance(data, list):
            raise CodecError(f"{where} should be a list, not {_name(data)}")
        args = typing.get_args(kind)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(data):
                raise CodecError(f"{where} should have {len(args)} items, not {len(data)}")
            return tuple(_decode(arg, item, blobs, f"{where}[{i}]") for i, (arg, item) in enumerate(zip(args, data)))
        item_kind = args[0] if args else Any
        items = [_decode(item_kind, item, blobs, f"{where}[{i}]") for i, item in enumerate(data)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(data, dict):
            raise CodecError(f"{where} should be an object, not {_name(data)}")
        value_kind = typing.get_args(kind)[1] if typing.get_args(kind) else Any
        return {str(key): _decode(value_kind, item, blobs, f"{where}.{key}") for key, item in data.items()}
    if origin is typing.Literal:
        if data not in typing.get_args(kind):
            raise CodecError(f"{where} should be one of {typing.get_args(kind)}, not {data!r}")
        return data
    if isinstance(kind, type):
        return _decode_type(kind, data, blobs, where)
    raise CodecError(f"{where}: the codec cannot read {kind!r}")


def _decode_type(kind: type, data: Any, blobs: list[bytes] | None, where: str) -> Any:
    if dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise CodecError(f"{where} should be an object, not {_name(data)}")
        hints = _hints(kind)
        values = {}
        for f in dataclasses.fields(kind):
            if f.name in data and f.init:
                values[f.name] = _decode(hints[f.name], data[f.name], blobs, f"{where}.{f.name}")
            elif f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise CodecError(f"{where}.{f.name} is missing")
        try:
            return kind(**values)
        except (TypeError, ValueError) as error:
            if isinstance(error, CodecError):
                raise
            raise CodecError(f"{where}: {error}") from None
    if issubclass(kind, Enum):
        try:
            return kind(data)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in kind)
            raise CodecError(f"{where} should be one of {allowed}, not {data!r}") from None
    if kind is bool:
        if not isinstance(data, bool):
            raise CodecError(f"{where} should be true or false, not {_name(data)}")
        return data
    if kind is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise CodecError(f"{where} should be an integer, not {_name(data)}")
        return data
    if kind is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise CodecError(f"{where} should be a number, not {_name(data)}")
        return float(data)
    if kind is str:
        if not isinstance(data, str):
            raise CodecError(f"{where} should be text, not {_name(data)}")
        return data
    if issubclass(kind, PurePath):
        if not isinstance(data, str):
            raise CodecError(f"{where} should be a path, not {_name(data)}")
        return Path(data)
    if kind is bytes:
        if not (isinstance(data, dict) and isinstance(data.get(BLOB_KEY), int)):
            raise CodecError(f"{where} should be binary data")
        index = data[BLOB_KEY]
        if blobs is None or not 0 <= index < len(blobs):
            raise CodecError(f"{where} names binary data that did not arrive")
        return blobs[index]
    raise CodecError(f"{where}: the codec cannot read {kind.__name__}")


def _name(data: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null"}.get(
        type(data), type(data).__name__)
