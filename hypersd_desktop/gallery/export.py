"""Exporting gallery images to a folder, named by a template.

A template such as `{model}/{date}/{seed}-{prompt:40}` names each file; `/` makes subfolders.
Fields: date, time, seed, steps, guidance, sampler, recipe, model, lora, prompt[:N], width,
height, index[:N] (position in this export, zero-padded), id, picture (in a batch job run on pictures, the
name of the one it was made from). Every name is made valid on Windows,
macOS and Linux; a template that would leave the target folder is refused. Each file is written
under a temporary name and renamed, so a cancel or crash never leaves a half-written image; a
manifest (CSV and JSON) records what went where.
"""

from __future__ import annotations

import csv
import errno
import io
import itertools
import json
import re
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop.core.dates import local_time
from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.files import atomic_writer, remove_stale_partials
from hypersd_desktop.core.images import eight_bit, open_any_size, too_many_pixels
from hypersd_desktop.core.progress import CancelToken, TransferMeter, TransferProgress
from hypersd_desktop.core.vocab import CollisionRule, ExportFormat, ExportStatus
from hypersd_desktop.gallery.store import ImageRecord

_FIELD = re.compile(r"\{(\w+)(?::(\d+))?\}")
_ILLEGAL = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
MAX_COMPONENT = 100  # characters per folder or file name
MAX_COMPONENT_BYTES = 180  # UTF-8 bytes per name: file systems allow 255, leaving room for "-12.webp"
MAX_RELATIVE = 200  # characters of the whole relative path, so a Windows path stays under 260
_EXIF_USER_COMMENT = 0x9286


def export_formats() -> tuple[str, ...]:
    """The formats images export to here: PNG, JPEG, WebP, and AVIF where Pillow has its encoder."""
    from PIL import features

    return tuple(kind for kind in ExportFormat.values() if kind != ExportFormat.AVIF or features.check("avif"))


@dataclass(frozen=True)
class ExportOptions:
    """How to export: `quality` applies to JPEG, WebP and AVIF; `keep_metadata` False strips everything. Formats
    other than PNG keep the A1111 parameters in EXIF's UserComment, as A1111 writes them."""

    template: str = "{date}/{seed}"
    format: str = "png"
    quality: int = 92
    keep_metadata: bool = True
    collision: str = "number"

    def validate(self) -> None:
        if self.format not in export_formats():
            raise InputError(f"Unknown export format {self.format!r}; choose {', '.join(export_formats())}.")
        if self.collision not in CollisionRule.values():
            raise InputError(f"Unknown collision rule {self.collision!r}; choose skip, overwrite or number.")
        if not 1 <= self.quality <= 100:
            raise InputError("Quality must be between 1 and 100.")
        check_template(self.template)


@dataclass(frozen=True)
class ExportEntry:
    id: int
    source: str
    target: str  # relative to the export folder; empty when skipped before naming
    status: str  # an ExportStatus; a failure is followed by its reason ("failed: …")


@dataclass(frozen=True)
class ExportResult:
    entries: tuple[ExportEntry, ...]
    manifest_csv: Path
    manifest_json: Path

    @property
    def written(self) -> int:
        return sum(entry.status == ExportStatus.WRITTEN for entry in self.entries)


def check_template(template: str) -> None:
    """Refuse templates that are empty, absolute, or climb out of the target folder."""
    if not template.strip():
        raise InputError("The naming template is empty.")
    literal = _FIELD.sub("x", template).replace("\\", "/")
    if literal.startswith("/") or re.match(r"^[A-Za-z]:", literal):
        raise InputError(f"The template {template!r} is an absolute path; templates name files inside the export folder.")
    if any(part in ("..", ".") for part in literal.split("/")):
        raise InputError(f"The template {template!r} would leave the export folder ('..' or '.' is not allowed).")
    for name, width in _FIELD.findall(template):
        if name not in FIELDS:
            raise InputError(f"Unknown template field {{{name}}}; known: {', '.join(sorted(FIELDS))}.")
        if width and int(width) > MAX_COMPONENT:
            raise InputError(f"{{{name}:{width}}} asks for {int(width):,} characters; a file name holds at most "
                             f"{MAX_COMPONENT}.")


def _first_lora(record: ImageRecord) -> str:
    return "+".join(name for name, _, _ in record.loras) or "no-lora"


FIELDS: dict[str, Callable[[ImageRecord], object]] = {
    "date": lambda r: local_time("%Y-%m-%d", r.created),
    "time": lambda r: local_time("%H-%M-%S", r.created),
    "seed": lambda r: r.seed if r.seed is not None else "noseed",
    "steps": lambda r: r.steps if r.steps is not None else "",
    "guidance": lambda r: f"{r.guidance:g}" if r.guidance is not None else "",
    "sampler": lambda r: r.scheduler or "",
    "recipe": lambda r: r.recipe or "",
    "model": lambda r: r.model_name or "unknown-model",
    "lora": _first_lora,
    "prompt": lambda r: " ".join(r.prompt.split()) or "no-prompt",
    "width": lambda r: r.width or "",
    "height": lambda r: r.height or "",
    "id": lambda r: r.id,
    "index": lambda r: "",  # filled in by render()
    "picture": lambda r: "",  # and the picture a batch started from
}


def sanitize_component(text: str) -> str:
    """One folder or file name that every desktop OS accepts."""
    text = unicodedata.normalize("NFC", text)
    text = _ILLEGAL.sub("_", text).strip().rstrip(". ")
    if len(text) > MAX_COMPONENT:
        text = text[:MAX_COMPONENT]
    while len(text.encode("utf-8")) > MAX_COMPONENT_BYTES:
        text = text[:-1]
    text = text.rstrip(". ")
    if not text or text in (".", ".."):
        text = "_"
    if text.split(".")[0].upper() in _RESERVED:
        text = "_" + text
    return text


def render(template: str, record: ImageRecord, index: int, count: int, picture: str = "") -> str:
    """The relative path (without extension) for one image; `/` separates folders. `picture`: the name (without its
    extension) of the picture a batch made it from, for `{picture}`."""

    def field(match: re.Match) -> str:
        name, width = match[1], match[2]
        if name == "index":
            return str(index).zfill(int(width) if width else len(str(count)))
        value = (picture or "no-picture") if name == "picture" else str(FIELDS[name](record))
        if width:
            value = value[: int(width)].rstrip()
        return value.replace("/", "_").replace("\\", "_")

    parts = [sanitize_component(_FIELD.sub(field, part)) for part in template.replace("\\", "/").split("/")]
    relative = "/".join(parts)
    if len(relative) > MAX_RELATIVE:
        keep = MAX_RELATIVE - len("/".join(parts[:-1])) - 1
        parts[-1] = sanitize_component(parts[-1][: max(keep, 16)])
        relative = "/".join(parts)
    return relative


def export_images(records: Iterable[ImageRecord], target: Path, options: ExportOptions, count: int | None = None,
                  on_progress: Callable[[TransferProgress], None] | None = None,
                  cancel: CancelToken | None = None) -> ExportResult:
    """Export `records` into `target` by `options`; returns what happened to each, with the manifests.

    `records` are read one at a time as they are exported (a query of any size is never held
    whole) when `count` is given. A cancel stops between images; the manifests still list what
    was exported.
    """
    options.validate()
    cancel = cancel or CancelToken()
    if count is None:
        records = list(records)
        count = len(records)
    target = prepare_target(target)
    meter = TransferMeter("export", count, 0, on_progress)
    entries: list[ExportEntry] = []
    claimed: set[str] = set()
    visited: set[Path] = set()  # folders written into; a killed export's temporary files there are removed once
    disk_full = False
    try:
        for index, record in enumerate(records, start=1):
            cancel.raise_if_cancelled()
            destination, status = plan_destination(record, target, options, index, count, claimed)
            if destination.parent not in visited:
                visited.add(destination.parent)
                if destination.parent.is_dir():
                    remove_stale_partials(destination.parent)
            if status is None:
                try:
                    write_image(record, destination, options)
                    status = ExportStatus.WRITTEN
                except (OSError, ValueError) as error:
                    status = f"{ExportStatus.FAILED}: {getattr(error, 'strerror', None) or error}"
                    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
                        disk_full = True
                claimed.add(str(destination).lower())
            entries.append(ExportEntry(record.id, record.path, destination.relative_to(target).as_posix(), status))
            meter.advance(record.path, 1)
            if disk_full:
                break
    except CancelledError:
        pass
    finally:
        meter.advance("", 0, force=True)
        csv_path, json_path = write_manifests(target, entries, options)
    if cancel.cancelled:
        raise CancelledError(f"export cancelled after {len(entries)} of {count} images; the manifest lists them")
    if disk_full:
        written = sum(entry.status == ExportStatus.WRITTEN for entry in entries)
        raise InputError(f"The disk holding {target} is full: {written:,} of {count:,} images were written and "
                         f"{csv_path.name} lists them. Free some space and export again.")
    return ExportResult(tuple(entries), csv_path, json_path)


def prepare_target(target: Path) -> Path:
    """The export folder, created if needed; `InputError` when it is a file or cannot be written to."""
    target = target.expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise InputError(f"The export folder {target} is a file; choose a folder.")
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as error:
        raise InputError(f"Cannot write into {target} ({error.strerror or error}); choose another folder.") from None
    return target


def plan_destination(record: ImageRecord, target: Path, options: ExportOptions, index: int, count: int,
                     claimed: set[str], picture: str = "") -> tuple[Path, str | None]:
    """Where one image goes (collisions resolved) and None, or a status when it is skipped."""
    name = render(options.template, record, index, count, picture)
    destination = (target / (name + ExportFormat(options.format).suffix)).resolve()
    if not destination.is_relative_to(target):
        raise InputError(f"The template {options.template!r} names a file outside {target}.")
    return _resolve_collision(destination, options.collision, claimed)


def _resolve_collision(destination: Path, rule: str, claimed: set[str]) -> tuple[Path, str | None]:
    """The path to write and None, or the path and a status when the image is skipped."""
    taken_now = str(destination).lower() in claimed  # never overwrite what this export just wrote
    if not destination.exists() and not taken_now:
        return destination, None
    if rule == CollisionRule.SKIP and not taken_now:
        return destination, ExportStatus.SKIPPED_EXISTS
    if rule == CollisionRule.OVERWRITE and not taken_now:
        return destination, None
    stem, suffix, number = destination.stem, destination.suffix, 2
    while True:
        candidate = destination.with_name(f"{stem}-{number}{suffix}")
        if not candidate.exists() and str(candidate).lower() not in claimed:
            return candidate, None
        number += 1


def write_image(record: ImageRecord, destination: Path, options: ExportOptions) -> None:
    """Write one image in the export format through a temporary name."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if options.format == ExportFormat.PNG and _is_png(Path(record.path)):
        # PNG to PNG: copy the chunks as they are (dropping the text ones when stripping): exact and
        # ~50x faster than decoding and compressing again.
        _atomic_write(destination, lambda stream: _copy_png_chunks(Path(record.path), stream, options.keep_metadata))
        return
    with open_any_size(Path(record.path)) as image:
        if too_many_pixels(image):  # a 16K² upscale: gigabytes to decode, where a PNG's copy needs none
            raise ValueError(f"{image.width} × {image.height} pixels is too many to convert; export it as PNG")
        image.load()
        text = {str(k): str(v) for k, v in getattr(image, "text", {}).items()} if options.keep_metadata else {}
        out = displayable(image, options.format)
        # Pillow writes what `info` holds (a JPEG's comment, an XMP packet …): stripping keeps only
        # the colour profile, which is part of how the pixels look.
        profile = image.info.get("icc_profile")
        out.info = dict(image.info) if options.keep_metadata else ({"icc_profile": profile} if profile else {})
        kwargs: dict = {"icc_profile": profile} if profile else {}
        if options.format == ExportFormat.PNG:
            info = PngInfo()
            for key, value in text.items():
                info.add_itxt(key, value)
            kwargs["pnginfo"] = info
        else:
            kwargs["quality"] = options.quality
            if "parameters" in text:
                exif = Image.Exif()
                exif.get_ifd(0x8769)[_EXIF_USER_COMMENT] = b"UNICODE\0" + text["parameters"].encode("utf-16-be")
                kwargs["exif"] = exif.tobytes()
        file_format = "JPEG" if options.format == ExportFormat.JPEG else options.format.upper()
        _atomic_write(destination, lambda stream: out.save(stream, format=file_format, **kwargs))


def displayable(image: Image.Image, export_format: str) -> Image.Image:
    """`image` in a mode the export format stores and that looks the same: 16-bit grey scaled to
    8 bits (not clipped to white), CMYK as RGB, alpha kept where the format has it."""
    image = eight_bit(image)
    if export_format == ExportFormat.JPEG:
        return image.convert("RGB") if image.mode != "RGB" else image.copy()
    alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if export_format in (ExportFormat.WEBP, ExportFormat.AVIF) or image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        return image.convert("RGBA" if alpha else "RGB")
    return image.copy()


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What a stripped PNG keeps: the pixels and what says how to show them (palette, transparency,
# colour space and profile). Text, EXIF, times and private chunks go.
_PIXEL_CHUNKS = (b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT")


def _is_png(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(8) == _PNG_SIGNATURE


def _copy_png_chunks(source: Path, stream, keep_metadata: bool) -> None:
    data = source.read_bytes()
    stream.write(_PNG_SIGNATURE)
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            raise ValueError(f"{source.name} is a truncated PNG")
        if keep_metadata or kind in _PIXEL_CHUNKS:
            stream.write(data[position:end])
        position = end
        if kind == b"IEND":
            break


def _atomic_write(destination: Path, write) -> None:
    with atomic_writer(destination) as stream:
        write(stream)


def write_manifests(target: Path, entries: list[ExportEntry], options: ExportOptions) -> tuple[Path, Path]:
    """Write `manifest-<time>.csv` and `.json`; a name already taken (another export in the same
    second, even from another process) gets a number, so no manifest is ever overwritten."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["id", "source", "target", "status"])
    writer.writeheader()
    writer.writerows(asdict(entry) for entry in entries)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for number in itertools.count(1):
        name = f"manifest-{stamp}" + (f"-{number}" if number > 1 else "")
        csv_path, json_path = target / f"{name}.csv", target / f"{name}.json"
        try:
            with open(csv_path, "x", encoding="utf-8", newline="") as stream:  # "x": fails if it exists
                stream.write(buffer.getvalue())
        except FileExistsError:
            continue
        break
    json_path.write_text(json.dumps({"options": asdict(options), "images": [asdict(e) for e in entries]}, indent=1,
                                    ensure_ascii=False), encoding="utf-8")
    return csv_path, json_path

