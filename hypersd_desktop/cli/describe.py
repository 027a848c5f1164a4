"""`hypersd-desktop describe`: a picture's booru tags, as a prompt, from a WD tagger (engine/tagger.py); for a
folder of pictures, caption files beside them, as LoRA training scripts (kohya's) read them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hypersd_desktop.cli.common import installed_library, printable, resolver
from hypersd_desktop.core.errors import AppError, InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.vocab import Device, ModelKind
from hypersd_desktop.engine.tagger import CHARACTER_THRESHOLD, THRESHOLD, is_tagger

TAGGER_ENTRY = "wd-swinv2-tagger-v3"  # the catalog's tagger
NO_TAGGER = (f"Describing a picture needs a tagger: install one with `hypersd-desktop models download {TAGGER_ENTRY}` "
             "(or import a WD tagger's folder: model.onnx and selected_tags.csv), or name one with --tagger.")


def add_parser(commands) -> None:
    describe = commands.add_parser(
        "describe", help="a picture's booru tags as a prompt (a WD tagger)",
        description="Print the booru tags a WD tagger sees in each picture, as a prompt: characters first, then what "
                    "it shows, each by its score (as A1111's Tagger extension and ComfyUI's WD14 Tagger write them).")
    describe.add_argument("images", type=Path, nargs="+", metavar="IMAGE",
                          help="a picture, or a folder: every picture below it")
    describe.add_argument("--tagger", metavar="NAME_OR_PATH",
                          help="an installed tagger's name, or a tagger's folder (model.onnx and selected_tags.csv) "
                               "or .onnx file with its .csv beside it; default: the installed one")
    describe.add_argument("--threshold", type=float, default=THRESHOLD,
                          help=f"the score a tag needs, 0 to 1 (default {THRESHOLD}; lower gives more tags)")
    describe.add_argument("--character-threshold", type=float, default=CHARACTER_THRESHOLD,
                          help=f"the score a character's tag needs (default {CHARACTER_THRESHOLD})")
    describe.add_argument("--exclude", default="", metavar="TAGS",
                          help="tags to leave out, commas between (\"simple background, white_background\"), as "
                               "A1111's Tagger's exclude tags; default: the Settings' Describe list")
    describe.add_argument("--prepend", default="", metavar="WORDS",
                          help="words put first in every prompt, such as a LoRA's trigger word for a training set's "
                               "captions (a tag the tagger finds among them is not written twice)")
    describe.add_argument("--device", choices=Device.values(), default=Device.AUTO.value,
                          help="where the tagger runs (ONNX Runtime's; the CPU where it has no such device)")
    describe.add_argument("--json", action="store_true",
                          help="one JSON object per picture: its prompt, its rating and each tag with its score")
    describe.add_argument("--captions", action="store_true",
                          help="write each picture's tags into a caption file beside it (photo.png: photo.txt), as "
                               "LoRA training scripts read them; an existing caption is kept (see --overwrite)")
    describe.add_argument("--caption-extension", default=".txt", metavar="EXT",
                          help="the caption files' extension (default .txt; kohya's scripts also read .caption)")
    describe.add_argument("--overwrite", action="store_true", help="with --captions, replace existing captions")


def tagger_path(name: str | None) -> str:
    """The tagger --tagger names (an installed one's name, or a path), else the installed one."""
    if name is not None:
        path = Path(resolver()(name))
        if not is_tagger(path):
            raise InputError(f"--tagger {name} is not a tagger the app reads: a folder holding model.onnx and "
                             "selected_tags.csv, or an .onnx file with its .csv beside it.")
        return str(path)
    with installed_library() as library:
        installed = library.registry.list(kind=ModelKind.TAGGER) if library is not None else []
    if not installed:
        raise InputError(NO_TAGGER)
    return installed[0].path


def pictures(given: list[Path]) -> list[Path]:
    """The pictures named: files as given, and every picture below a folder (in name order, hidden folders left
    out)."""
    suffixes = picture_suffixes()
    found = []
    for path in given:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            found.append(path)
    if not found:
        raise InputError(f"No pictures in {', '.join(str(path) for path in given)} ({', '.join(suffixes)}).")
    return found


def picture_suffixes() -> tuple[str, ...]:
    """The pictures the app reads: the gallery's images and the other pictures a run can start from."""
    from hypersd_desktop.core.images import PICTURE_SUFFIXES
    from hypersd_desktop.gallery.gallery import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES + PICTURE_SUFFIXES


def caption_file(picture: Path, extension: str) -> Path:
    return picture.with_name(picture.stem + ("" if extension.startswith(".") else ".") + extension)


def run(args: argparse.Namespace) -> int:
    from hypersd_desktop.core.files import why_not_written, write_atomic
    from hypersd_desktop.core.images import InputImages
    from hypersd_desktop.core.settings import load_settings
    from hypersd_desktop.engine.tagger import Tagger, tagger_provider

    for name, value in (("--threshold", args.threshold), ("--character-threshold", args.character_threshold)):
        if not 0 <= value <= 1:
            raise InputError(f"{name} is a score from 0 to 1; got {value:g}.")
    if args.overwrite and not args.captions:
        raise InputError("--overwrite replaces caption files: it goes with --captions.")
    if args.captions and (f".{args.caption_extension.strip('.').lower()}" in picture_suffixes()
                          or not args.caption_extension.strip(".")):
        raise InputError(f"--caption-extension {args.caption_extension!r} would write over pictures; captions are "
                         ".txt or .caption files.")
    found = pictures(args.images)
    excluded = args.exclude or load_settings().describe_exclude
    tagger = Tagger(tagger_path(args.tagger), tagger_provider(args.device))
    inputs = InputImages(AppPaths.default().inputs)  # held in memory only: nothing is written
    failed, written, kept = [], 0, 0
    for path in found:
        caption = caption_file(path, args.caption_extension) if args.captions else None
        if caption is not None and caption.exists() and not args.overwrite:
            kept += 1
            continue
        try:
            picture = inputs.open(inputs.add_file(path, f"The picture {path}", keep=False))
        except AppError as error:
            if len(found) == 1:
                raise
            failed.append(f"{path}: {error}")
            continue
        description = tagger.describe(picture, args.threshold, args.character_threshold).without(excluded)
        prompt = description.prompt_after(args.prepend)
        if caption is not None:
            try:
                write_atomic(caption, prompt + "\n")
            except OSError as error:
                raise InputError(f"{caption} was not written: {why_not_written(error, caption.parent)}.") from None
            written += 1
        if args.json:
            print(json.dumps({"image": str(path), "prompt": prompt, "rating": description.rating,
                              "rating_score": description.rating_score,
                              "tags": [{"name": tag.name, "score": tag.score, "character": tag.category == 4}
                                       for tag in description.tags]}, ensure_ascii=False))
        elif len(found) == 1:
            print(printable(prompt))
        else:
            print(f"{printable(str(path))}: {printable(prompt)}")
    if args.captions:
        existing = f"; {kept} existing kept (--overwrite replaces them)" if kept else ""
        print(f"{written} caption{'s' if written != 1 else ''} written{existing}", file=sys.stderr)
    for failure in failed:
        print(f"not read: {printable(failure)}", file=sys.stderr)
    return 1 if failed else 0
