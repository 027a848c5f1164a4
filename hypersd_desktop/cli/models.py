"""`hypersd-desktop models …`: the model library from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from hypersd_desktop.cli.common import ProgressBar, stop_folders, warn
from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.prompt_tags import trigger_words
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.core.vocab import EITHER_ARCHITECTURE_KINDS, ImportStatus
from hypersd_desktop.gallery.gallery import image_files
from hypersd_desktop.models.catalog import format_size
from hypersd_desktop.models.model_notes import NOTED_KINDS


def add_parser(commands) -> None:
    models = commands.add_parser("models", help="the model library: catalog, downloads, imports")
    sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    catalog = sub.add_parser("catalog", help="what can be downloaded, with sizes and licences")
    catalog.add_argument("--json", action="store_true")
    listing = sub.add_parser("list", help="installed models")
    listing.add_argument("--json", action="store_true")
    download = sub.add_parser("download", help="download catalog entries, or models by their Hugging Face or Civitai "
                                               "address (resumes an interrupted download)")
    download.add_argument("ids", nargs="+", metavar="ID_OR_ADDRESS",
                          help="a catalog id (`models catalog` lists them); a Hugging Face address: a diffusers "
                               "model's page (https://huggingface.co/OWNER/REPO) or one .safetensors file "
                               "(https://huggingface.co/OWNER/REPO/blob/main/FILE.safetensors); or a Civitai address: a "
                               "model's page (https://civitai.com/models/ID?modelVersionId=VERSION), its Download link "
                               "or its AIR (urn:air:…). Civitai takes an API key: Settings → Civitai API key in the "
                               "app, or CIVITAI_TOKEN")
    download.add_argument("--yes", action="store_true", help="do not ask before downloading")
    search = sub.add_parser("search", help="search Civitai for models the app runs (SD1.5 and SDXL checkpoints, "
                                           "LoRAs, embeddings, VAEs, ControlNets; upscalers with --kind upscaler); "
                                           "`models download ADDRESS` gets one")
    search.add_argument("query", nargs="+", help="words of the model's name")
    search.add_argument("--kind", choices=("base", "lora", "embedding", "vae", "controlnet", "upscaler"),
                        action="append", help="only models of this kind (again for more kinds; default: all but "
                                              "upscalers, which are made for no base model and asked for alone)")
    search.add_argument("--for", dest="architecture", choices=("sd15", "sdxl"),
                        help="only models made for SD1.5 or for SDXL (and Pony, Illustrious, NoobAI)")
    search.add_argument("--mature", action="store_true", help="include models Civitai marks as mature")
    search.add_argument("--sort", choices=("downloads", "rating", "newest"), default="",
                        help="most downloaded, highest rated or newest first (default: the best match)")
    search.add_argument("--more", type=int, default=0, metavar="PAGES", help="read this many further pages of results")
    search.add_argument("--json", action="store_true")
    importing = sub.add_parser("import", help="import .safetensors files, diffusers folders or models folders")
    importing.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    importing.add_argument("--copy", action="store_true", help="copy into the app's models folder (default: use in place)")
    importing.add_argument("--json", action="store_true")
    folders = sub.add_parser("folders", help="the linked folders: models folders imported in place, looked through "
                                             "for new models at each start (`models sync` now)")
    folders.add_argument("--stop", type=Path, nargs="+", default=[], metavar="FOLDER",
                         help="no longer look through these (their models stay installed)")
    folders.add_argument("--find", action="store_true", help="list the models folders other tools (A1111, Forge, "
                         "ComfyUI, InvokeAI …) keep where they put them, not linked yet")
    sub.add_parser("sync", help="install the models saved in the linked folders since they were last looked through")
    verify = sub.add_parser("verify", help="re-hash installed models and report changed or missing files")
    verify.add_argument("id", nargs="?")
    remove = sub.add_parser("remove", help="remove an installed model (files are deleted only if the app made them)")
    remove.add_argument("id")
    words = sub.add_parser("words", help="show or set what to write in the prompt for a LoRA or embedding (its "
                                         "trigger words) and a LoRA's suggested weight")
    words.add_argument("id", help="the LoRA's or embedding's id or name (`models list`)")
    words.add_argument("words", nargs="?", help='the trigger words, comma-separated ("" for none); without them, '
                                                "the recorded ones are shown")
    words.add_argument("--weight", type=float, help="the suggested weight (0: the default)")


def run(args: argparse.Namespace) -> int:
    from hypersd_desktop.models.library import ModelLibrary

    from hypersd_desktop.core.settings import load_settings

    paths = AppPaths.default()
    library = ModelLibrary(paths, civitai_token=load_settings(paths).civitai_token or None)
    if library.registry.notice:
        warn(f"{library.registry.notice} The model files are untouched: import or download them again.")
    try:
        if args.models_command in ("list", "words"):
            library.complete_notes()  # the words of LoRAs imported before they were kept: read once, as the window does
        return ACTIONS[args.models_command](library, args)
    finally:
        library.close()


def _catalog(library, args) -> int:
    entries = library.catalog.entries
    if args.json:
        rows = []
        for entry in entries:
            row = asdict(entry)
            row.update(size=entry.size, installed=library.installed_entry(entry) is not None)
            rows.append(row)
        print(json.dumps(rows, indent=1))
        return 0
    for entry in entries:
        mark = "installed" if library.installed_entry(entry) else ""
        print(f"{entry.id:28} {entry.kind:13} {entry.architecture or 'any':5} {format_size(entry.size):>9}  "
              f"{entry.licence:22} {mark:9} {entry.enables}")
    return 0


def _list(library, args) -> int:
    models = library.registry.list()
    if args.json:
        print(json.dumps([{**asdict(model), "files": [asdict(f) for f in model.files]} for model in models], indent=1))
        return 0
    if not models:
        print("No models installed. `hypersd-desktop models catalog` shows what can be downloaded; "
              "`hypersd-desktop models import PATH` adds files you have.")
    for model in models:
        made_for = model.architecture or ("any" if model.kind in EITHER_ARCHITECTURE_KINDS else "?")
        print(f"{model.id:28} {model.kind:13} {made_for:5} {format_size(model.size):>9}  "
              f"{model.source:16} {model.path}")
        if model.trigger_words:
            print(f"{'':28} trigger words: {', '.join(model.trigger_words)}")
    return 0


def _download(library, args) -> int:
    entries = [library.add_address(key) if "/" in key or ":" in key else library.catalog.get(key) for key in args.ids]
    # The hub's own sizes (one metadata request per file), so the total shown is exact.
    entries, plans = zip(*(library.plan(entry) for entry in entries))
    total = sum(file.size for plan in plans for file in plan)
    print(f"Downloading {', '.join(e.name for e in entries)}: {format_size(total)} in all "
          f"(licences: {', '.join(sorted({e.licence for e in entries}))}).", file=sys.stderr)
    if not args.yes and sys.stdin.isatty():
        if input("Continue? [Y/n] ").strip().lower() not in ("", "y", "yes"):
            return 1
    token = CancelToken()
    for entry, plan in zip(entries, plans):
        with ProgressBar(entry.id) as bar:
            try:
                model = library.download(entry.id, bar, token, remote=plan)
            except KeyboardInterrupt:
                raise CancelledError("download stopped; run the same command again to resume where it stopped") from None
        print(f"installed {model.id}: {model.path}")
    return 0


def _import(library, args) -> int:
    items = []
    for path in args.paths:
        with ProgressBar("import") as bar:
            found = library.import_path(path, copy=args.copy, on_progress=bar)
        if not found:  # said: an image folder given by mistake would read as a silent success
            images = len(image_files(path)) if path.is_dir() else 0
            hint = f"; its {images:,} images go to the gallery with `gallery import {path}`" if images else ""
            warn(f"no model files in {path} (.safetensors files and diffusers folders are looked for){hint}")
        items += found
        resolved = path.expanduser().resolve()
        if resolved in library.registry.linked_folders():
            print(f"{resolved} is linked: models saved there later are installed at the window's next start (or "
                  "by `models sync`)", file=sys.stderr)
    if args.json:
        print(json.dumps([asdict(item) for item in items], indent=1))
    else:
        for item in items:
            what = f"{item.kind or '?'} {item.architecture or ''}".strip()
            detail = f" as {item.model_id}" if item.model_id else f": {item.reason}" if item.reason else ""
            print(f"{item.status:17} {what:16} {item.path}{detail}")
    return 1 if any(item.status in (ImportStatus.BROKEN, ImportStatus.REFUSED) for item in items) else 0


def _folders(library, args) -> int:
    """The linked folders, listed; `--stop` unlinks some."""
    linked = library.registry.linked_folders()
    failed = stop_folders(args.stop, linked, library.registry.unlink_folder, "is not a linked folder.",
                          "no longer looking through (its models stay installed):")
    if args.find:
        from hypersd_desktop.core.tool_folders import find_tool_folders

        found = find_tool_folders(linked=linked)
        for folder in found:
            plural = "s" if folder.files != 1 or folder.more else ""
            print(f"{folder.path}\t{folder.tool}\t{folder.files}{'+' if folder.more else ''} .safetensors file{plural}")
        print("`hypersd-desktop models import FOLDER` uses one where it is." if found else
              "No other tool's models folder was found where those tools put them.", file=sys.stderr)
    elif not args.stop:
        if not linked:
            print("No linked folder: `hypersd-desktop models import FOLDER` (in place) links one.", file=sys.stderr)
        for folder in linked:
            print(folder if folder.is_dir() else f"{folder}  (not there now)")
    return 1 if failed else 0


def _sync(library, args) -> int:
    with ProgressBar("look through") as bar:
        items = library.sync_folders(on_progress=bar)
    new = [item for item in items if item.status == ImportStatus.IMPORTED]
    for item in new:
        print(f"installed {item.model_id}: {item.path}")
    print(f"{len(new)} new model{'s' if len(new) != 1 else ''} in {len(library.registry.linked_folders())} linked "
          "folder(s)", file=sys.stderr)
    return 0


def _verify(library, args) -> int:
    with ProgressBar("verify") as bar:
        results = library.verify(args.id, on_progress=bar)
    for result in results:
        print(f"{'ok' if result.ok else 'CHANGED':8} {result.model.id}" + "".join(f"\n         {p}" for p in result.problems))
    return 0 if all(result.ok for result in results) else 1


def _remove(library, args) -> int:
    model = library.registry.get(args.id)
    freed = library.remove(args.id)
    if model.owned:
        print(f"removed {model.id}; {format_size(freed)} freed")
    else:
        print(f"removed {model.id} from the library; its files at {model.path} were left in place")
    return 0


def _words(library, args) -> int:
    model = library.registry.get(args.id)
    if model.kind not in NOTED_KINDS:
        raise InputError(f"{model.name} is a {model.kind}: trigger words are kept for LoRAs and embeddings.")
    if args.words is not None or args.weight is not None:
        words = trigger_words(args.words) if args.words is not None else model.trigger_words
        weight = (args.weight or None) if args.weight is not None else model.preferred_weight
        library.registry.set_notes(model.id, words, weight)
        model = library.registry.get(model.id)
    print(f"{model.name}: {', '.join(model.trigger_words) or 'no trigger words'}"
          + (f"; suggested weight {model.preferred_weight:g}" if model.preferred_weight is not None else ""))
    return 0


def _search(library, args) -> int:
    asked = (" ".join(args.query), tuple(args.kind or ()), (args.architecture,) if args.architecture else (),
             args.mature)
    found, cursor = library.search_civitai(*asked, sort=args.sort)
    for _ in range(args.more):
        if cursor is None:
            break
        more, cursor = library.search_civitai(*asked, cursor, sort=args.sort)
        found += more
    if args.json:
        print(json.dumps([{**asdict(model), "address": model.address,
                           "older": [{**asdict(old), "address": old.address} for old in model.older]}
                          for model in found], indent=1))
        return 0
    if not found:
        print("Nothing on Civitai for that which the app runs (SD1.5 or SDXL, or an upscaler, in safetensors).",
              file=sys.stderr)
        return 1
    for model in found:
        print(f"{model.name[:36]:36} {model.version[:14]:14} {model.kind or '?':10} {model.base_model[:12]:12} "
              f"{format_size(model.size):>9} {model.downloads:>9,}  {model.address}")
    if cursor is not None:
        print(f"More results: add --more {args.more + 1}.", file=sys.stderr)
    return 0


ACTIONS = {"catalog": _catalog, "list": _list, "download": _download, "import": _import, "verify": _verify,
           "remove": _remove, "search": _search, "words": _words, "folders": _folders, "sync": _sync}
