"""The gallery service: adding and importing images, metadata, thumbnails, delete with undo, repair."""

from __future__ import annotations

import errno
import filecmp
import json
import os
import shutil
import sqlite3
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from hypersd_desktop.core.errors import CancelledError
from hypersd_desktop.core.files import NOT_TEXT_NAME, atomic_writer, name_is_text, replace_file, shown_path
from hypersd_desktop.core.images import open_any_size, png_chunks_after_image_data, too_many_pixels
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken, TransferMeter, TransferProgress
from hypersd_desktop.core.vocab import ImageSource
from hypersd_desktop.gallery.formats import ImageMetadata, parse_chunks
from hypersd_desktop.gallery.formats.common import json_object, other_prompts
from hypersd_desktop.gallery.formats.novelai import stealth_chunks
from hypersd_desktop.gallery.formats.stealth import read_stealth
from hypersd_desktop.gallery.metadata import PARAMETERS_CHUNK, ImageParameters, a1111_parameters, with_lora_tags
from hypersd_desktop.gallery.sidecars import sidecar_metadata
from hypersd_desktop.gallery.store import GalleryStore, ImageQuery, ImageRecord
from hypersd_desktop.gallery.thumbnails import Thumbnails

# AVIF: as A1111 and Forge save it (EXIF UserComment); .jfif: a JPEG as a browser on Windows saves it (an image
# downloaded from a gallery site keeps its EXIF)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".avif", ".jfif")
MAX_TEXT_BYTES = 1024 * 1024  # larger text chunks are ignored: no real metadata is that big
_EXIF_USER_COMMENT = 0x9286


@dataclass(frozen=True)
class ImportReport:
    added: int
    skipped: int
    failed: tuple[tuple[str, str], ...]  # (path, reason): files that are not readable images
    warnings: tuple[str, ...]
    unprompted: tuple[int, ...] = ()  # the images added without a prompt (photos, edits), for Describe for search


def _chunks(image, path: Path) -> dict[str, str]:
    """The texts the metadata readers read of an opened image file: a PNG's text chunks (those after its image data
    too), another format's EXIF UserComment and other fields, XMP, comments."""
    chunks = {str(k): _utf8(v) for k, v in image.info.items() if isinstance(v, str)}
    if image.format == "PNG":
        chunks.update({key: _utf8(value) for key, value in _text_after_image_data(path).items()})
        return chunks
    return {**_exif_chunks(image.getexif()), **_binary_chunks(image.info), **chunks}


def metadata_chunks(path: Path) -> dict[str, str]:
    """The texts of an image file that say how it was made (`_chunks`), for an image made from it to carry as PNG
    text chunks, which the readers read as they read the file's own: an enlarged copy reads as its original does.
    A record hidden in the pixels (`read_stealth`), which resizing the pixels would lose, comes as the chunks it
    stands for: A1111's `parameters`, or NovelAI's own. Empty where they cannot be read."""
    try:
        with open_any_size(path) as image:
            chunks = {key: value for key, value in _chunks(image, path).items() if len(value) <= MAX_TEXT_BYTES}
            if parse_chunks(chunks) is None and not too_many_pixels(image):
                stealth = read_stealth(image)
                if stealth is not None and parse_chunks({**chunks, "stealth": stealth}) is not None:
                    chunks.update(_stealth_chunks(stealth))
            return chunks
    except (ValueError, OSError, SyntaxError):
        return {}


def _stealth_chunks(stealth: str) -> dict[str, str]:
    """The PNG text chunks a stealth record stands for: NovelAI hides its chunks as a JSON object (its `Comment`
    JSON text, or an object), A1111's stealth extension its `parameters` text."""
    record = json_object(stealth)
    return stealth_chunks(record) if record is not None and "Comment" in record else {PARAMETERS_CHUNK: stealth}


def read_metadata(path: Path) -> tuple[ImageMetadata | None, int | None, int | None, list[str]]:
    """Metadata, width and height of an image file, and warnings; never raises for odd metadata.

    Raises `OSError` only when the file is not a readable image.
    """
    warnings: list[str] = []
    with open_any_size(path) as image:  # a 16K² upscale too: only its size and text are read
        width, height = image.size
        if too_many_pixels(image):
            warnings.append(f"{path.name}: {width:,} × {height:,} pixels are too many to show or convert here; it is "
                            "listed without a thumbnail (Show in folder finds it for another app).")
        try:
            chunks = _chunks(image, path)
        except (ValueError, OSError, SyntaxError) as error:
            return None, width, height, [f"{path.name}: its metadata could not be read ({error}); imported without it."]
        for key in [key for key, value in chunks.items() if len(value) > MAX_TEXT_BYTES]:
            warnings.append(f"{path.name}: the {key!r} text chunk is over 1 MB and was ignored.")
            chunks.pop(key)
        try:
            metadata = parse_chunks(chunks)
            if metadata is None:
                # Nothing in the chunks: A1111's stealth extension and NovelAI also hide the parameters
                # in the pixels' lowest bits, which survive sites that strip chunks.
                stealth = read_stealth(image) if not too_many_pixels(image) else None
                if stealth is not None:
                    metadata = parse_chunks({**chunks, "stealth": stealth})
        except (ValueError, OSError, SyntaxError) as error:  # pixels too damaged to reach the alpha channel
            metadata = None
            warnings.append(f"{path.name}: its metadata could not be read ({error}); imported without it.")
        except Exception as error:  # noqa: BLE001 - a foreign format we misjudged must not stop an import
            metadata = None
            warnings.append(f"{path.name}: its metadata is malformed ({type(error).__name__}); imported without it.")
    if metadata is None:  # A1111's text file beside it, or the log Fooocus keeps of the images it saves bare
        metadata = sidecar_metadata(path)
    return metadata, width, height, warnings


_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _text_after_image_data(path: Path) -> dict[str, str]:
    """Text chunks a PNG has after its image data (some savers put `parameters` there)."""
    found: dict[str, str] = {}
    for kind, data in png_chunks_after_image_data(path, _TEXT_CHUNKS, MAX_TEXT_BYTES):
        item = _text_chunk(kind, data)
        if item is not None:
            found[item[0]] = item[1]
    return found


def _text_chunk(kind: bytes, data: bytes) -> tuple[str, str] | None:
    key, sep, rest = data.partition(b"\0")
    if not sep:
        return None
    try:
        if kind == b"tEXt":
            return key.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":
            return key.decode("latin-1"), _inflate(rest[1:]).decode("latin-1")
        compressed, rest = rest[:1] == b"\1", rest[2:]  # iTXt: flag, method, language\0, translated\0, text
        _language, _sep, rest = rest.partition(b"\0")
        _translated, _sep, text = rest.partition(b"\0")
        return key.decode("latin-1"), (_inflate(text) if compressed else text).decode("utf-8")
    except (ValueError, zlib.error):
        return None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    text = inflater.decompress(data, MAX_TEXT_BYTES + 1)
    if len(text) > MAX_TEXT_BYTES:
        raise ValueError("text chunk too large")
    return text


def _binary_chunks(info: dict) -> dict[str, str]:
    """Metadata Pillow leaves as bytes in a JPEG or WebP: the XMP packet (Draw Things), the
    JPEG comment (Fooocus) and the IPTC caption of a JPEG's Photoshop segment (Mochi Diffusion)."""
    chunks = {}
    for key, name in (("xmp", "XML:com.adobe.xmp"), ("comment", "Comment")):
        value = info.get(key)
        if isinstance(value, bytes) and len(value) <= MAX_TEXT_BYTES:
            chunks[name] = value.decode("utf-8", errors="replace")
    resources = info.get("photoshop")
    iptc = resources.get(_IPTC_RESOURCE) if isinstance(resources, dict) else None
    caption = _iptc_datasets(iptc).get((2, 120)) if isinstance(iptc, bytes) else None
    if caption is not None:  # UTF-8 as ImageIO writes it; without a character set named, often Latin-1
        try:
            chunks["IPTC:Caption-Abstract"] = caption.decode("utf-8")
        except UnicodeDecodeError:
            chunks["IPTC:Caption-Abstract"] = caption.decode("latin-1")
    return chunks


_IPTC_RESOURCE = 0x0404  # the Photoshop image resource holding IPTC-IIM data


def _iptc_datasets(data: bytes) -> dict[tuple[int, int], bytes]:
    """IPTC-IIM datasets by (record, dataset), the first of each: a tag byte 0x1C, record, dataset, a 2-byte
    length, the value. Stops at anything else (an extended length, damage)."""
    found: dict[tuple[int, int], bytes] = {}
    offset = 0
    while offset + 5 <= len(data) and data[offset] == 0x1C:
        record, dataset, length = data[offset + 1], data[offset + 2], int.from_bytes(data[offset + 3:offset + 5], "big")
        if length & 0x8000:
            break
        found.setdefault((record, dataset), data[offset + 5:offset + 5 + length])
        offset += 5 + length
    return found


def _utf8(text: str) -> str:
    """A PNG tEXt value as its writer meant it: Pillow decodes tEXt as Latin-1, but most tools write
    UTF-8 there. UTF-8 first, Latin-1 as written when the bytes are not UTF-8 (iTXt is UTF-8 already)."""
    if type(text) is not str or text.isascii():  # iTXt values are a str subclass
        return str(text)
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


_EXIF_MAKE, _EXIF_MODEL, _EXIF_DESCRIPTION = 0x010F, 0x0110, 0x010E


def _exif_chunks(exif) -> dict[str, str]:
    """Metadata that JPEG and WebP files keep in EXIF: ComfyUI's graph and workflow in Make and
    Model ("Prompt: {…}", "Workflow: {…}"), and A1111's text (or a graph) in the UserComment."""
    chunks: dict[str, str] = {}
    for tag in (_EXIF_MAKE, _EXIF_MODEL, _EXIF_DESCRIPTION):
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if isinstance(value, str):
            label, sep, rest = value.partition(":")
            if sep and label.strip().lower() in ("prompt", "workflow") and rest.lstrip().startswith("{"):
                chunks[label.strip().lower()] = rest.strip().rstrip("\0")
            elif tag == _EXIF_DESCRIPTION and value.strip("\0 "):
                chunks["Description"] = value.rstrip("\0")
    comment = exif.get_ifd(0x8769).get(_EXIF_USER_COMMENT) or exif.get(_EXIF_USER_COMMENT)  # some savers use IFD0
    if comment:
        chunks["parameters"] = _decode_user_comment(comment, getattr(exif, "endian", None)).rstrip("\0")
    return chunks


def _decode_user_comment(raw, endian: str | None = None) -> str:
    """EXIF's UserComment: "UNICODE" text is UTF-16 in the byte order of the EXIF block by the standard (A1111's,
    through piexif, big-endian), though some savers write little-endian in a big-endian block. The order is read off
    the text's ASCII (its zero bytes come first or second: the settings line has plenty, where a prompt may begin
    with 猫), and the block's order is taken only for text with no ASCII at all."""
    if isinstance(raw, str):
        return raw
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        first, second = body[0::2].count(0), body[1::2].count(0)
        big = first > second if first != second else endian != "<"
        return body.decode("utf-16-be" if big else "utf-16-le", errors="replace")
    return body.decode("utf-8", errors="replace")


def record_for(path: Path, metadata: ImageMetadata | None, width: int | None, height: int | None, source: str,
               created: float | None = None, device: str | None = None, time_taken: float | None = None) -> ImageRecord:
    meta = metadata or ImageMetadata(format="none")
    return ImageRecord(
        path=str(path), created=created if created is not None else path.stat().st_mtime, source=source,
        prompt=meta.prompt, negative_prompt=meta.negative_prompt, file_size=path.stat().st_size,
        width=meta.width or width, height=meta.height or height, seed=meta.seed, steps=meta.steps,
        guidance=meta.guidance, scheduler=meta.sampler, recipe=meta.recipe,
        model_name=meta.model_name, model_hash=meta.model_hash, loras=meta.loras, device=device,
        time_taken=time_taken, metadata_format=meta.format if metadata else None,
        request=json.dumps(meta.request, sort_keys=True) if meta.request else None,
        other_prompts=other_prompts_text(metadata),
    )


def other_prompts_text(metadata: ImageMetadata | None) -> str:
    """What the gallery searches of the prompts an image holds besides its own two: a line each."""
    return "\n".join(other_prompts(metadata.extra).values()) if metadata else ""


def image_files(folder: Path) -> list[Path]:
    """The gallery's kinds of image file below `folder`, in order: not hidden ones (macOS's `._` companions on a USB
    drive, which only look like images), nor those in folders `not_images` leaves out."""
    found = []
    for here, subfolders, files in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not not_images(name, subfolders)]
        found += [Path(here) / name for name in files
                  if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)


def not_images(name: str, siblings: list[str]) -> bool:
    """Whether a folder `name` among `siblings` holds no images of the gallery's: a hidden one (a file manager's
    `.thumbnails`, a tool's `.cache`), or InvokeAI's `thumbnails` beside its `images` (small WebP copies of them)."""
    return name.startswith(".") or name.lower() == "thumbnails" and any(other.lower() == "images" for other in siblings)


class Gallery:
    """Images under the app's folders, indexed in `gallery.sqlite3`."""

    def __init__(self, paths: AppPaths) -> None:
        paths.ensure()
        self.paths = paths
        self.store = GalleryStore(paths.data / "gallery.sqlite3")
        self.thumbnails = Thumbnails(paths.cache / "thumbnails")
        self.trash_dir = paths.data / "trash"

    @property
    def notice(self) -> str | None:
        """What the person should know about the gallery's database (it was damaged and put aside)."""
        if self.store.notice is None:
            return None
        return (f"{self.store.notice} The images are still on disk: `hypersd-desktop gallery rebuild` (or File → "
                "Rebuild the gallery) adds them back with the settings stored in them.")

    def rebuild(self, folders: list[Path] | None = None, on_progress=None, cancel=None) -> ImportReport:
        """Index again every image in the images folder (and `folders`): after a damaged database was
        replaced, the generated images come back with the settings stored in their files."""
        files: list[Path] = []
        for folder in [self.paths.images, *(folders or [])]:
            if folder.is_dir():
                files += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        return self.import_files(files, on_progress, cancel, ours_as_generated=True)

    def close(self) -> None:
        self.thumbnails.close()
        self.store.close()

    def add_file(self, path: Path, source: str = ImageSource.GENERATED, device: str | None = None,
                 time_taken: float | None = None) -> int:
        """Index a complete image file (its metadata is read back from the file itself)."""
        metadata, width, height, _ = read_metadata(path)
        created = time.time() if source == ImageSource.GENERATED else None
        return self.store.add(record_for(path.resolve(), metadata, width, height, source, created, device, time_taken))

    def add_generated(self, path: Path, params: ImageParameters, device: str | None = None,
                      time_taken: float | None = None) -> int:
        """Index an image this app has just written to `path` with `params`: the row is made from
        those values as they are (exact scheduler, recipe, LoRA weights), not read back from the file."""
        record = ImageRecord(
            path=str(path.resolve()), created=time.time(), source=ImageSource.GENERATED, prompt=params.prompt,
            negative_prompt=params.negative_prompt, file_size=path.stat().st_size, width=params.width,
            height=params.height, seed=params.seed, steps=params.steps, guidance=params.guidance,
            scheduler=params.sampler, recipe=params.recipe, model_name=params.model_name,
            model_hash=params.model_hash, loras=params.loras, device=device, time_taken=time_taken,
            metadata_format="hypersd",  # this app's own format, as the importer names it
            request=json.dumps(params.request, sort_keys=True) if params.request is not None else None,
            other_prompts="\n".join(other_prompts(dict(params.extra)).values()),  # a Hires fix's, the faces' own
        )
        return self.store.add(record)

    def import_folder(self, folder: Path, on_progress: Callable[[TransferProgress], None] | None = None,
                      cancel: CancelToken | None = None) -> ImportReport:
        """Index every image below `folder`; images already in the gallery are skipped.

        Progress counts files. A cancel keeps what was imported so far; importing again continues.
        """
        return self.import_files(image_files(folder), on_progress, cancel)

    def import_files(self, files: list[Path], on_progress: Callable[[TransferProgress], None] | None = None,
                     cancel: CancelToken | None = None, ours_as_generated: bool = False) -> ImportReport:
        """Index these image files, as `import_folder` does (dropped on the window, for example).

        With `ours_as_generated`, images carrying this app's own request count as generated here.
        """
        cancel = cancel or CancelToken()
        files = [p.resolve() for p in files]
        meter = TransferMeter("import", len(files), 0, on_progress)
        added: list[ImageRecord] = []  # with their ids
        skipped = 0
        failed: list[tuple[str, str]] = []
        warnings: list[str] = []
        batch: list[ImageRecord] = []
        stopped_at: int | None = None
        try:
            for index, path in enumerate(files):
                if cancel.cancelled:
                    stopped_at = index
                    break
                if not name_is_text(path):
                    meter.advance(shown_path(path.name), 1)
                    failed.append((shown_path(path), NOT_TEXT_NAME))
                    continue
                meter.advance(path.name, 1)
                if self.store.has_path(str(path)):
                    skipped += 1
                    self._read_other_prompts(path)
                    continue
                try:
                    metadata, width, height, notes = read_metadata(path)
                except Image.DecompressionBombError as error:
                    failed.append((str(path), f"too many pixels to open safely ({error})"))
                    continue
                except (OSError, ValueError, SyntaxError) as error:
                    failed.append((str(path), f"not a readable image ({error})"))
                    continue
                warnings += notes
                ours = ours_as_generated and metadata is not None and metadata.format == "hypersd"
                batch.append(record_for(path, metadata, width, height,
                                        ImageSource.GENERATED if ours else ImageSource.IMPORTED))
                if len(batch) >= 200:
                    added += self._commit(batch, failed)
                    batch = []
        finally:
            if batch:
                added += self._commit(batch, failed)
            meter.advance("", 0, force=True)
        if stopped_at is not None:
            raise CancelledError(f"import stopped after {stopped_at:,} of {len(files):,} files: "
                                 f"{len(added):,} images added; importing again adds the rest")
        unprompted = tuple(record.id for record in added if not record.prompt.strip())
        return ImportReport(len(added), skipped, tuple(failed), tuple(warnings), unprompted)

    def _read_other_prompts(self, path: Path) -> None:
        """An image indexed before the gallery searched its other prompts gets them: read once, on the next
        import of its folder."""
        image_id = self.store.unread_other_prompts(str(path))
        if image_id is None:
            return
        try:
            metadata = read_metadata(path)[0]
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return
        self.store.set_other_prompts(image_id, other_prompts_text(metadata))

    def _commit(self, records: list[ImageRecord], failed: list[tuple[str, str]]) -> list[ImageRecord]:
        """Add `records` in one transaction; if one cannot be stored, the others still are, one by one. Returns
        those stored, with their ids."""
        try:
            return [replace(record, id=image_id) for record, image_id in zip(records, self.store.add_many(records))]
        except (sqlite3.Error, OverflowError, ValueError):
            added = []
            for record in records:
                try:
                    added.append(replace(record, id=self.store.add(record)))
                except (sqlite3.Error, OverflowError, ValueError) as error:
                    failed.append((record.path, f"its metadata cannot be stored ({error})"))
            return added

    # -- delete with undo ---------------------------------------------------------------

    def delete(self, ids: list[int]) -> MoveResult:
        """Move the images' files to the app trash and hide them; `undo_delete` brings them back.

        The row is marked first and the file moved after, so a crash in between leaves a trashed
        row whose file is still in place, which `undo_delete` restores. A file that cannot be moved
        (on Windows, one open in another program) stays where it is, in the gallery, and is named in
        the result; the others go on.
        """
        self.trash_dir.mkdir(parents=True, exist_ok=True)
        moved, kept = [], []
        for image_id in ids:
            record = self.store.get(image_id)
            if record is None:
                continue
            source = Path(record.path)
            target = self.trash_dir / f"{image_id}-{source.name}"
            self.store.mark_trashed(image_id, str(target))
            try:
                if source.exists():
                    _move(source, target)
            except OSError as error:
                self.store.mark_trashed(image_id, None)
                kept.append((str(source), error.strerror or str(error)))
                continue
            moved.append(image_id)
        return MoveResult(moved, kept, "to the trash", "close any program that has them open and delete them again")

    def undo_delete(self, ids: list[int]) -> MoveResult:
        """Bring trashed images back to where they were; where another file has taken that place
        since, the image comes back beside it ("name (restored).png") and nothing is overwritten.
        One that cannot go back (its folder gone or on a drive no longer there) stays in the trash,
        named in the result; the others go on."""
        restored, kept = [], []
        for image_id in ids:
            record, trashed = self.store.get(image_id), self.store.trash_path(image_id)
            if record is None or trashed is None:
                continue
            target, trashed = Path(record.path), Path(trashed)
            try:
                if trashed.exists():
                    if target.exists() and filecmp.cmp(trashed, target, shallow=False):
                        trashed.unlink()  # a move stopped half way: the file never left
                    else:
                        if target.exists():  # the row names the new place first: a crash then leaves it findable
                            target = _free_name(target, "restored")
                            self.store.set_path(image_id, str(target))
                        _move(trashed, target)
            except OSError as error:
                self.store.set_path(image_id, record.path)
                kept.append((record.path, error.strerror or str(error)))
                continue
            self.store.mark_trashed(image_id, None)
            restored.append(image_id)
        return MoveResult(restored, kept, "back", "they stay in the trash; check that their folders can be written "
                                                  "(a drive that was removed: plug it in) and undo again")

    def empty_trash(self) -> int:
        """Delete the trashed files for good; returns how many images were removed. A file that cannot be deleted
        (open in another program, on Windows) stays in the trash, with its row, for the next time."""
        removed = []
        for record in list(self.store.iterate(ImageQuery(trashed=True))):
            path = self.store.trash_path(record.id)
            try:
                if path:
                    Path(path).unlink(missing_ok=True)
            except OSError:
                continue
            removed.append(record.id)
        self.store.delete_rows(removed)
        return len(removed)

    # -- missing files ------------------------------------------------------------------

    def missing(self) -> list[tuple[int, str]]:
        """Images whose file is gone."""
        return [(image_id, path) for image_id, path in self.store.all_paths() if not os.path.exists(path)]

    def repair(self, relink_root: Path | None = None) -> tuple[int, int]:
        """Relink missing files found by name below `relink_root`, drop the rest. Returns (relinked, dropped)."""
        found: dict[str, Path] = {}
        if relink_root is not None:
            for path in relink_root.rglob("*"):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    found.setdefault(path.name, path.resolve())
        relinked, dropped = 0, []
        for image_id, path in self.missing():
            candidate = found.get(Path(path).name)
            if candidate is not None and not self.store.has_path(str(candidate)):
                self.store.set_path(image_id, str(candidate))
                relinked += 1
            else:
                dropped.append(image_id)
        self.store.delete_rows(dropped)
        return relinked, len(dropped)


@dataclass(frozen=True)
class MoveResult:
    """The images moved (to the trash, or back), and the files left where they were with why (path, reason);
    `where` and `advice` finish the sentence that names those."""

    moved: list[int]
    kept: list[tuple[str, str]]
    where: str
    advice: str

    def problem(self) -> str | None:
        """What to tell the person about the files left where they were; None when every one was moved."""
        if not self.kept:
            return None
        path, reason = self.kept[0]
        others = f" and {len(self.kept) - 1} more" if len(self.kept) > 1 else ""
        return f"{Path(path).name}{others} could not be moved {self.where} ({reason}); {self.advice}."


def _move(source: Path, target: Path) -> None:
    """Move a file so that a crash at any moment leaves it whole at `source` or at `target`
    (across drives: copied under a temporary name, renamed, then the source removed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        replace_file(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    with atomic_writer(target) as stream, open(source, "rb") as original:
        shutil.copyfileobj(original, stream)
    source.unlink()


def _free_name(path: Path, note: str) -> Path:
    """`name (note).ext`, or `name (note 2).ext` …, whichever does not exist yet."""
    candidate, number = path.with_name(f"{path.stem} ({note}){path.suffix}"), 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem} ({note} {number}){path.suffix}")
        number += 1
    return candidate


def parameters_text(record: ImageRecord) -> str:
    """The AUTOMATIC1111 parameters of an image, as other tools paste them: the file's own
    `parameters` text when it has one, else composed from what the gallery knows."""
    try:
        with open_any_size(Path(record.path)) as image:  # the text only: no pixels decoded
            text = image.info.get(PARAMETERS_CHUNK)
            if not isinstance(text, str) and image.format == "PNG":
                text = _text_after_image_data(Path(record.path)).get(PARAMETERS_CHUNK)
        if isinstance(text, str) and text.strip():
            return text
    except (OSError, ValueError, SyntaxError):
        pass
    if not record.request:
        return _known_parameters(record)
    return a1111_parameters(ImageParameters(
        prompt=record.prompt, negative_prompt=record.negative_prompt, steps=record.steps or 0,
        sampler=record.scheduler or "", guidance=record.guidance or 0.0, seed=record.seed if record.seed is not None else -1,
        width=record.width or 0, height=record.height or 0, model_name=record.model_name or "",
        model_hash=record.model_hash, loras=record.loras,
    ))


def _known_parameters(record: ImageRecord) -> str:
    """A1111's text of an image another tool made (a ComfyUI graph, NovelAI's or Midjourney's record): the fields
    its file says, none it does not ("Steps: 0" would be pasted as a setting), and no Version of this app's."""
    lines = [with_lora_tags(record.prompt, record.loras)]
    if record.negative_prompt:
        lines.append(f"Negative prompt: {record.negative_prompt}")
    fields = {"Steps": record.steps, "Sampler": record.scheduler,
              "CFG scale": f"{record.guidance:g}" if record.guidance is not None else None, "Seed": record.seed,
              "Size": f"{record.width}x{record.height}" if record.width and record.height else None,
              "Model hash": record.model_hash, "Model": record.model_name}
    known = ", ".join(f"{key}: {value}" for key, value in fields.items() if value not in (None, ""))
    return "\n".join([*lines, known] if known else lines)
