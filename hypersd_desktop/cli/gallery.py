"""`hypersd-desktop gallery …`: list, search, show, import, export, reuse, delete and repair."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from hypersd_desktop.cli.common import (
    EXIT_BAD_INPUT, ProgressBar, bounded_int, date_argument, image_id, image_ids, installed_library, printable,
    stop_folders, warn,
)
from hypersd_desktop.core.dates import local_time
from hypersd_desktop.core.errors import AppError, InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.vocab import (
    CollisionRule, Device, ExportFormat, ExportStatus, upscaler_families,
)
from hypersd_desktop.gallery.export import ExportOptions, export_formats
from hypersd_desktop.gallery.formats import TOOL_TITLES
from hypersd_desktop.gallery.gallery import read_metadata
from hypersd_desktop.gallery.store import ImageQuery, ImageRecord
from hypersd_desktop.engine.tagger import THRESHOLD


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model")
    parser.add_argument("--lora")
    parser.add_argument("--steps", type=bounded_int(1, 1000))
    parser.add_argument("--since", type=date_argument, metavar="YYYY-MM-DD")
    parser.add_argument("--until", type=date_argument, metavar="YYYY-MM-DD", help="up to and including this day")
    parser.add_argument("--favourite", action="store_true")
    parser.add_argument("--rating", type=bounded_int(0, 5), metavar="N", help="at least N stars")
    parser.add_argument("--tag")
    parser.add_argument("--made-with", metavar="TOOL", type=str.lower,
                        help=f"the tool that made them, as their data says: {', '.join(TOOL_TITLES)}")


def add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", type=Path, required=True, help="export folder")
    parser.add_argument("--template", default="{date}/{seed}", help="e.g. {model}/{date}/{seed}-{prompt:40}")
    parser.add_argument("--format", choices=export_formats(), default=ExportFormat.PNG.value)
    parser.add_argument("--quality", type=bounded_int(1, 100), default=92, help="JPEG/WebP/AVIF quality")
    parser.add_argument("--strip-metadata", action="store_true")
    parser.add_argument("--collision", choices=CollisionRule.values(), default=CollisionRule.NUMBER.value)


def add_parser(commands) -> None:
    gallery = commands.add_parser("gallery", help="browse, search, import and export generated images")
    sub = gallery.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="newest images first")
    search = sub.add_parser("search", help="full-text search over prompts, models and LoRAs")
    search.add_argument("text")
    for parser in (listing, search):
        _add_filters(parser)
        parser.add_argument("--limit", type=bounded_int(1, 1_000_000), default=50)
        parser.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="everything known about one image")
    show.add_argument("id", type=image_id)
    show.add_argument("--json", action="store_true")
    importing = sub.add_parser("import", help="add a folder of existing images (A1111, ComfyUI, InvokeAI, Fooocus …)")
    importing.add_argument("folder", type=Path)
    export = sub.add_parser("export", help="export a search result or chosen images to a folder")
    export.add_argument("--query", default=None, help="full-text search (default: all images)")
    export.add_argument("--ids", type=image_ids, default=None, help="comma-separated image ids instead of a query")
    _add_filters(export)
    add_export_options(export)
    reuse = sub.add_parser("reuse", help="print the generate command that makes an image again: a gallery image, "
                                         "an image file, or generation data copied as text")
    reuse.add_argument("image", metavar="ID|FILE|-", help="a gallery image's id; an image file; a text file of "
                       "generation data (A1111's or Civitai's text, a ComfyUI workflow's .json, another tool's "
                       "JSON record); or - for such text piped in")
    enlarge = sub.add_parser("enlarge", help="enlarge images alone, not repainted (A1111's Extras tab): copies that "
                                             "keep their settings, into the gallery")
    enlarge.add_argument("images", nargs="+", metavar="ID|FILE", help="gallery image ids or image files")
    enlarge.add_argument("--scale", type=float, default=2.0, help="how many times larger: above 1, at most 4 "
                                                                  "(default 2)")
    enlarge.add_argument("--upscaler", metavar="FILE|NAME", help="the upscaler model that enlarges them: an "
                         f"{upscaler_families()} file in safetensors, or an installed one's name "
                         "(default: Lanczos)")
    enlarge.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    enlarge.add_argument("--json", action="store_true", help="one JSON line per image made: path, image_id, seed")
    describing = sub.add_parser("describe", help="describe images with a tagger (their booru tags), so that the "
                                                 "search finds them by what they show")
    describing.add_argument("ids", type=image_id, nargs="*", metavar="ID",
                            help="gallery image ids (default: every image not described yet)")
    describing.add_argument("--again", action="store_true", help="describe the images described before too")
    describing.add_argument("--tagger", metavar="NAME_OR_PATH",
                            help="an installed tagger's name or a tagger's folder; default: the installed one")
    describing.add_argument("--threshold", type=float, default=THRESHOLD,
                            help=f"the score a tag needs, 0 to 1 (default {THRESHOLD})")
    describing.add_argument("--device", choices=Device.values(), default=Device.AUTO.value,
                            help="where the tagger runs (ONNX Runtime's; the CPU where it has no such device)")
    delete = sub.add_parser("delete", help="move images to the app trash (undo with `gallery undo`)")
    delete.add_argument("ids", type=image_id, nargs="+")
    undo = sub.add_parser("undo", help="bring deleted images back")
    undo.add_argument("ids", type=image_id, nargs="+")
    watch = sub.add_parser("watch", help="folders another tool saves its images in, kept in the gallery (the "
                                         "window looks at them every two seconds): list, add, stop, sync")
    watch.add_argument("folders", type=Path, nargs="*", metavar="FOLDER",
                       help="watch these too (their images are imported now)")
    watch.add_argument("--stop", type=Path, nargs="+", default=[], metavar="FOLDER", help="no longer watch these "
                       "(their images stay in the gallery)")
    watch.add_argument("--sync", action="store_true", help="bring the gallery in line with the watched folders now, "
                       "as the window does: new images imported, moved ones followed, deleted ones dropped")
    watch.add_argument("--find", action="store_true", help="list the folders other tools (A1111, Forge, ComfyUI, "
                       "InvokeAI …) save their images in, where they put them, not watched yet")
    sub.add_parser("empty-trash", help="delete trashed images for good")
    rebuild = sub.add_parser("rebuild", help="index again every image in the images folder (after a damaged "
                                             "gallery database was replaced), and in FOLDERs")
    rebuild.add_argument("folders", type=Path, nargs="*", metavar="FOLDER")
    missing = sub.add_parser("missing", help="list images whose file is gone; --repair fixes the gallery")
    missing.add_argument("--repair", action="store_true", help="drop rows of missing files (relinking with --relink)")
    missing.add_argument("--relink", type=Path, help="folder to look for moved files by name")


def _query(args: argparse.Namespace, text: str | None = None) -> ImageQuery:
    ids = getattr(args, "ids", None) or None
    until = args.until + 86400 if args.until is not None else None
    return ImageQuery(text=text, model=args.model, lora=args.lora, steps=args.steps, created_from=args.since,
                      created_to=until, favourite=True if args.favourite else None, min_rating=args.rating,
                      tag=args.tag, made_with=args.made_with, ids=ids)


def export_options(args: argparse.Namespace) -> ExportOptions:
    return ExportOptions(template=args.template, format=args.format, quality=args.quality,
                         keep_metadata=not args.strip_metadata, collision=args.collision)


def run(args: argparse.Namespace) -> int:
    from hypersd_desktop.gallery.gallery import Gallery

    gallery = Gallery(AppPaths.default())
    warn(gallery.notice)
    try:
        return ACTIONS[args.gallery_command](gallery, args)
    finally:
        gallery.close()


def _print_records(records: list[ImageRecord], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(r) for r in records], indent=1, ensure_ascii=False))
        return
    for r in records:
        when = local_time("%Y-%m-%d %H:%M", r.created)
        prompt = " ".join((r.prompt or r.described or "").split())  # a picture without a prompt: what it shows
        print(f"{r.id:>7}  {when}  {r.model_name or '?':20.20}  {r.steps or '-':>2} steps  seed {r.seed}  "
              f"{'*' if r.favourite else ' '} {prompt[:60]}")


def _list(gallery, args) -> int:
    query = _query(args, getattr(args, "text", None))
    page = gallery.store.query(query, limit=args.limit)
    _print_records(page.images, args.json)
    if not page.images and not args.json:  # any filter (a tool, a tag, a date too): the gallery may hold others
        print("No images match." if query != ImageQuery() else "The gallery is empty.")
    return 0


def _show(gallery, args) -> int:
    record = gallery.store.get(args.id)
    if record is None:
        raise InputError(f"No image {args.id} in the gallery.")
    fields = _file_fields(record)
    if args.json:
        print(json.dumps({**asdict(record), "file_fields": fields}, indent=1, ensure_ascii=False))
        return 0
    for key, value in asdict(record).items():
        if key == "created":
            value = local_time("%Y-%m-%d %H:%M:%S", value)
        if value not in (None, "", (), []) and key != "request" and not (key == "other_prompts" and fields):
            print(f"{key:16} " + str(value).replace("\n", "\n" + " " * 17))
    if fields:
        print("other fields (as the image's tool wrote them):")
        for key, value in fields.items():
            print(f"  {key}: " + value.replace("\n", "\n" + " " * (len(key) + 4)))
    return 0


def _file_fields(record) -> dict[str, str]:
    """The fields another tool wrote in the image that the gallery's row has no column for (A1111's "Schedule
    type", ADetailer's, NovelAI's character prompts), read from the file; none for an image made here."""
    if record.request:
        return {}
    try:
        metadata = read_metadata(Path(record.path))[0]
    except OSError:  # gone or damaged: the row is still shown
        return {}
    return {key: value for key, value in metadata.extra.items() if isinstance(value, str)} if metadata else {}


def _import(gallery, args) -> int:
    return _import_folder(gallery, args.folder)


def _import_folder(gallery, folder: Path) -> int:
    with ProgressBar("import", unit="image") as bar:
        report = gallery.import_folder(folder, on_progress=bar)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for path, reason in report.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"added {report.added}, already in the gallery {report.skipped}, skipped {len(report.failed)}")
    if report.unprompted:
        count = len(report.unprompted)
        print(f"{count} of them came without a prompt: `hypersd-desktop gallery describe` has a tagger read "
              f"{'them' if count > 1 else 'it'}, and the search finds {'them' if count > 1 else 'it'} by what "
              f"{'they show' if count > 1 else 'it shows'}", file=sys.stderr)
    return 1 if report.failed else 0


def _watch(gallery, args) -> int:
    """The watched folders of Settings: listed, added (and imported), stopped, or synced once."""
    import time

    from hypersd_desktop.core.settings import load_settings, save_settings
    from hypersd_desktop.gallery.watch import (
        SETTLED_S, FolderPoll, check_watchable, found_output_folders, watched_folders, watched_text,
    )

    settings = load_settings()
    watched = watched_folders(settings.watched_folders)
    failed = stop_folders(args.stop, watched, watched.remove, "is not watched.",
                          "no longer watching (its images stay in the gallery):")
    added = []
    for folder in args.folders:
        try:
            resolved = check_watchable(folder, gallery.paths, watched)
        except InputError as error:
            print(f"not watched: {error}", file=sys.stderr)
            failed += 1
            continue
        watched = [other for other in watched if resolved not in other.parents] + [resolved]  # those inside: one
        added.append(resolved)
    if args.stop or added:
        if problem := save_settings(settings.replace(watched_folders=watched_text(watched))):
            raise AppError(problem)
    for folder in added:
        print(f"watching {folder}", file=sys.stderr)
        failed += _import_folder(gallery, folder)
    if args.sync:
        poll = FolderPoll(watched, gallery.paths)
        looks = [poll.look(gallery.import_files, gallery.store)]
        if poll.unsettled:  # files written a moment ago: taken once a second look finds them unchanged
            time.sleep(SETTLED_S + 0.1)
            looks.append(poll.look(gallery.import_files, gallery.store))
        looks = [look for look in looks if look is not None]
        unreadable = [item for look in looks if look.report for item in look.report.failed]
        for path, reason in unreadable:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        print(f"added {sum(look.added for look in looks)}, moved {sum(look.moved for look in looks)}, dropped "
              f"{sum(look.dropped for look in looks)} (deleted there), skipped {len(unreadable)}")
        failed += bool(unreadable)
    if args.find:
        found = found_output_folders(watched)
        for folder in found:
            plural = "s" if folder.files != 1 or folder.more else ""
            print(f"{folder.path}\t{folder.tool}\t{folder.files:,}{'+' if folder.more else ''} image{plural}")
        print("`hypersd-desktop gallery watch FOLDER` watches one." if found else
              "No other tool's output folder was found where those tools put them.", file=sys.stderr)
    if not (args.folders or args.stop or args.sync or args.find):
        if not watched:
            print("No folder is watched: `hypersd-desktop gallery watch FOLDER` watches one.", file=sys.stderr)
        for folder in watched:
            count = len(gallery.store.files_below(str(folder))) if folder.is_dir() else 0
            print(f"{folder}  ({count:,} image{'s' if count != 1 else ''})" if folder.is_dir()
                  else f"{folder}  (not there now)")
    return 1 if failed else 0


def _export(gallery, args) -> int:
    from hypersd_desktop.gallery.export import export_images

    query = _query(args, args.query)
    count = gallery.store.count(query)
    with ProgressBar("export", unit="image") as bar:
        result = export_images(gallery.store.iterate(query), args.to, export_options(args), count=count,
                               on_progress=bar)
    failed = [entry for entry in result.entries if entry.status.startswith(ExportStatus.FAILED)]
    skipped = len(result.entries) - result.written - len(failed)
    for entry in failed:
        print(f"failed {entry.source}: {entry.status.partition(': ')[2]}", file=sys.stderr)
    print(f"exported {result.written} images to {args.to} ({skipped} skipped because the file existed, "
          f"{len(failed)} failed); manifest: {result.manifest_csv}")
    return 1 if failed else 0


def _reuse(gallery, args) -> int:
    from hypersd_desktop.cli.reuse import reuse_command, source_command

    with installed_library() as library:
        models = library.registry.list() if library is not None else []
    if args.image.isdigit() and not Path(args.image).is_file():
        record = gallery.store.get(image_id(args.image))
        if record is None:
            raise InputError(f"No image {args.image} in the gallery.")
        command, note = reuse_command(record, models)
    else:
        command, note = source_command(args.image, models)
    print(command)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _describe(gallery, args) -> int:
    """Each image's booru tags, from a tagger, kept for the search (`ImageRecord.described`)."""
    from hypersd_desktop.cli.describe import tagger_path
    from hypersd_desktop.core.images import InputImages
    from hypersd_desktop.core.progress import TransferProgress
    from hypersd_desktop.core.settings import load_settings
    from hypersd_desktop.engine.tagger import CHARACTER_THRESHOLD, Tagger, tagger_provider

    if not 0 <= args.threshold <= 1:
        raise InputError(f"--threshold is a score from 0 to 1; got {args.threshold:g}.")
    query = ImageQuery(ids=tuple(args.ids) or None, described=None if args.again or args.ids else False)
    wanted = gallery.store.ids(query)
    if not wanted:
        print("Every image is described already (--again describes them anew)." if gallery.store.count()
              else "The gallery is empty.", file=sys.stderr)
        return 0
    tagger = Tagger(tagger_path(args.tagger), tagger_provider(args.device))
    excluded = load_settings().describe_exclude  # Settings → Describe's tags to leave out
    inputs = InputImages(AppPaths.default().inputs)  # held in memory only: nothing is written
    failed = []
    with ProgressBar("describe", unit="image") as bar:
        for done, image in enumerate(wanted):
            record = gallery.store.get(image)
            try:
                picture = inputs.open(inputs.add_file(Path(record.path), f"The image {record.path}", keep=False))
            except (AppError, OSError) as error:
                failed.append(f"{record.id} ({record.path}): {error}")
                continue
            description = tagger.describe(picture, args.threshold, CHARACTER_THRESHOLD).without(excluded)
            gallery.store.set_described(record.id, description.prompt)
            bar(TransferProgress("describe", "", done + 1, len(wanted)))
    for failure in failed:
        print(f"not read: {printable(failure)}", file=sys.stderr)
    print(f"{len(wanted) - len(failed)} image{'s' if len(wanted) - len(failed) != 1 else ''} described; the search "
          "finds them by their tags", file=sys.stderr)
    return 1 if failed else 0


def _delete(gallery, args) -> int:
    result = gallery.delete(args.ids)
    print(f"moved {len(result.moved)} images to the trash; `hypersd-desktop gallery undo "
          f"{' '.join(map(str, result.moved))}` brings them back")
    if result.problem():
        print(f"error: {result.problem()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _undo(gallery, args) -> int:
    result = gallery.undo_delete(args.ids)
    print(f"restored {len(result.moved)} images")
    if result.problem():
        print(f"error: {result.problem()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _empty_trash(gallery, args) -> int:
    print(f"deleted {gallery.empty_trash()} images for good")
    return 0


def _missing(gallery, args) -> int:
    missing = gallery.missing()
    for number, path in missing:
        print(f"{number:>7}  missing  {path}")
    if args.repair:
        relinked, dropped = gallery.repair(args.relink)
        print(f"relinked {relinked}, dropped {dropped}")
    elif missing:
        print(f"{len(missing)} missing; `--repair` drops them, `--repair --relink FOLDER` finds moved files first")
    return 0


def _rebuild(gallery, args) -> int:
    with ProgressBar("rebuild", unit="image") as bar:
        report = gallery.rebuild(args.folders, on_progress=bar)
    for path, reason in report.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"rebuilt from {', '.join(str(f) for f in [gallery.paths.images, *args.folders])}: added {report.added}, "
          f"already in the gallery {report.skipped}, skipped {len(report.failed)}")
    return 1 if report.failed else 0


def _enlarge(gallery, args) -> int:
    """Each image enlarged `--scale` times by the upscaler (or Lanczos), not repainted, as the window's "Enlarge
    only" does: here, or by the compute runtime's worker where this program has no torch (the packaged app)."""
    import importlib.util

    from hypersd_desktop.cli.common import resolver
    from hypersd_desktop.cli.generate import checked_upscaler
    from hypersd_desktop.engine.types import MAX_HIRES_SCALE
    from hypersd_desktop.worker.protocol import Enlargement

    if not 1 < args.scale <= MAX_HIRES_SCALE:
        raise InputError(f"--scale must be above 1 and at most {MAX_HIRES_SCALE:g}; got {args.scale:g}.")
    upscaler = checked_upscaler(Path(resolver()(args.upscaler))) if args.upscaler else None
    wanted = [Enlargement(str(_image_file(gallery, name)), args.scale, upscaler) for name in args.images]
    if importlib.util.find_spec("torch") is None:
        return _enlarge_in_runtime(gallery.paths, wanted, args)
    from hypersd_desktop.core.progress import TransferProgress
    from hypersd_desktop.models.library import ModelLibrary
    from hypersd_desktop.worker.service import GenerationService

    library = ModelLibrary(gallery.paths)
    try:
        service = GenerationService(gallery.paths, gallery, library.hash_cache())
        with ProgressBar("upscale", unit="tile", enabled=False if args.json else None) as bar:
            for enlargement in wanted:
                made = service.enlarge(enlargement, args.device, lambda p: bar(
                    TransferProgress("upscale", "", p.step, p.total_steps)))
                _print_enlarged(str(made.path), made.image_id, made.seed, args.json)
    finally:
        library.close()
    return 0


def _image_file(gallery, name: str) -> Path:
    """A gallery image's file by its id, or an image file's path."""
    if name.isdigit() and not Path(name).exists():
        record = gallery.store.get(int(name))
        if record is None:
            raise InputError(f"No image {name} in the gallery.")
        return Path(record.path)
    path = Path(name).expanduser()
    if not path.is_file():
        raise InputError(f"{name} is no gallery image id and no image file.")
    return path.resolve()


def _print_enlarged(path: str, image_id: int | None, seed: int, as_json: bool) -> None:
    print(json.dumps({"path": path, "image_id": image_id, "seed": seed}) if as_json else path, flush=True)


def _enlarge_in_runtime(paths: AppPaths, wanted: list, args) -> int:
    """The enlargements made by the compute runtime's worker, which adds them to the gallery."""
    import queue

    from hypersd_desktop.cli.generate import runtime_worker
    from hypersd_desktop.core.errors import AppError
    from hypersd_desktop.worker.client import WorkerUnavailable
    from hypersd_desktop.worker.protocol import ImageReady, JobFailed, JobFinished, WorkerReady

    events: queue.Queue = queue.Queue()
    client = runtime_worker(paths, events.put, ("auto", args.device))
    jobs: set[int] = set()
    try:
        while True:
            event = events.get()
            if isinstance(event, WorkerUnavailable):
                raise AppError(event.message)
            if isinstance(event, WorkerReady) and not jobs:
                jobs = {client.submit_enlargement(enlargement) for enlargement in wanted}
            elif isinstance(event, ImageReady):
                _print_enlarged(event.path, event.image_id, event.seed, args.json)
            elif isinstance(event, JobFailed) and event.job_id in jobs:
                raise AppError(event.message)
            elif isinstance(event, JobFinished) and event.job_id in jobs:
                jobs.discard(event.job_id)
                if not jobs:
                    return 0
    except KeyboardInterrupt:
        for job in jobs:
            client.cancel(job)
        raise
    finally:
        client.shutdown(timeout=10)


ACTIONS = {"list": _list, "search": _list, "show": _show, "import": _import, "export": _export, "reuse": _reuse,
           "delete": _delete, "undo": _undo, "empty-trash": _empty_trash, "missing": _missing, "rebuild": _rebuild,
           "enlarge": _enlarge, "describe": _describe, "watch": _watch}
