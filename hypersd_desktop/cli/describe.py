"""`hypersd-desktop describe`: a picture's booru tags, as a prompt, from a WD tagger (engine/tagger.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hypersd_desktop.cli.common import installed_library, printable, resolver
from hypersd_desktop.core.errors import InputError
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
    describe.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    describe.add_argument("--tagger", metavar="NAME_OR_PATH",
                          help="an installed tagger's name, or a tagger's folder (model.onnx and selected_tags.csv) "
                               "or .onnx file with its .csv beside it; default: the installed one")
    describe.add_argument("--threshold", type=float, default=THRESHOLD,
                          help=f"the score a tag needs, 0 to 1 (default {THRESHOLD}; lower gives more tags)")
    describe.add_argument("--character-threshold", type=float, default=CHARACTER_THRESHOLD,
                          help=f"the score a character's tag needs (default {CHARACTER_THRESHOLD})")
    describe.add_argument("--device", choices=Device.values(), default=Device.AUTO.value,
                          help="where the tagger runs (ONNX Runtime's; the CPU where it has no such device)")
    describe.add_argument("--json", action="store_true",
                          help="one JSON object per picture: its prompt, its rating and each tag with its score")


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


def run(args: argparse.Namespace) -> int:
    from hypersd_desktop.core.images import InputImages
    from hypersd_desktop.engine.tagger import Tagger, tagger_provider

    for name, value in (("--threshold", args.threshold), ("--character-threshold", args.character_threshold)):
        if not 0 <= value <= 1:
            raise InputError(f"{name} is a score from 0 to 1; got {value:g}.")
    tagger = Tagger(tagger_path(args.tagger), tagger_provider(args.device))
    inputs = InputImages(AppPaths.default().inputs)  # held in memory only: nothing is written
    for path in args.images:
        picture = inputs.open(inputs.add_file(path, f"The picture {path}", keep=False))
        description = tagger.describe(picture, args.threshold, args.character_threshold)
        if args.json:
            print(json.dumps({"image": str(path), "prompt": description.prompt, "rating": description.rating,
                              "rating_score": description.rating_score,
                              "tags": [{"name": tag.name, "score": tag.score, "character": tag.category == 4}
                                       for tag in description.tags]}, ensure_ascii=False))
        elif len(args.images) == 1:
            print(printable(description.prompt))
        else:
            print(f"{printable(str(path))}: {printable(description.prompt)}")
    return 0
