"""`hypersd-desktop batch`: a job file of prompts generated into the gallery and exported."""

from __future__ import annotations

import sys
from pathlib import Path

from hypersd_desktop.cli.common import (
    add_style_option, bounded_int, parse_lora, ProgressBar, resolver, styles_named, warn, with_windows_model,
)
from hypersd_desktop.cli.generate import CANNY, DEPTH, POSE, map_model, parse_control
from hypersd_desktop.cli.gallery import add_export_options, export_options
from hypersd_desktop.core.dynamic_prompts import Wildcards, wildcards_folder
from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.vocab import ControlType, Preprocessor, upscaler_families


def add_parser(commands) -> None:
    batch = commands.add_parser("batch", help="generate a job file of prompts into the gallery and export them")
    batch.add_argument("job", type=Path, nargs="?",
                       help="text (one prompt a line, or A1111 prompt-file lines: --prompt … --steps …), CSV or JSON "
                            "job file (may be left out with --pictures and --picture-prompts)")
    batch.add_argument("--model", help="default base model (path or installed name; default: the window's, with its "
                                       "Hyper-SD file unless --lora names one)")
    batch.add_argument("--lora", action="append", default=[], type=parse_lora, metavar="PATH[:WEIGHT]")
    batch.add_argument("--steps", type=int)
    batch.add_argument("--guidance", type=float)
    add_style_option(batch)
    batch.add_argument("--width", type=int)
    batch.add_argument("--height", type=int)
    batch.add_argument("--seed", type=int, default=0, help="first seed (item k uses seed + k unless it names one)")
    batch.add_argument("--seeds-per-prompt", type=bounded_int(1, 10_000), default=1)
    batch.add_argument("--pictures", type=Path, metavar="FOLDER",
                       help="run the job on each picture in FOLDER (image-to-image, A1111's img2img batch): every "
                            "prompt once for each picture, at the picture's own size unless --width/--height say "
                            "otherwise; {picture} in --template names each file after its picture")
    batch.add_argument("--masks", type=Path, metavar="FOLDER",
                       help="with --pictures: inpaint each picture through the mask of its name in FOLDER (white "
                            "repainted; any extension), as A1111's inpaint batch mask directory; one mask there "
                            "inpaints every picture")
    batch.add_argument("--mask-blur", type=int, help="pixels of blur on the masks' edges (default 4)")
    batch.add_argument("--picture-prompts", action="store_true",
                       help="with --pictures: each picture's own prompts, as its file says it was made (A1111's, "
                            "ComfyUI's … as reuse reads them), follow the job's, as A1111's img2img batch adds a "
                            "picture's PNG info; the job file may then be left out")
    batch.add_argument("--enlarge", type=float, metavar="SCALE", default=1.0,
                       help="with --pictures: make each image SCALE times its picture's size (above 1, at most 4), the "
                            "picture enlarged (Lanczos, or --upscaler) and repainted at --strength: an upscale of "
                            "each (about 0.5 keeps the picture and adds detail)")
    batch.add_argument("--upscaler", metavar="FILE|NAME",
                       help="with --enlarge: the upscaler model that enlarges each picture before it is repainted, "
                            f"an {upscaler_families()} file in safetensors or an installed one's name")
    batch.add_argument("--strength", type=float,
                       help="how much of each picture is repainted, 0-1 (default 0.75); a job's strength column "
                            "sets an item's own")
    batch.add_argument("--control", action="append", default=[], type=parse_control,
                       metavar="MODEL[:IMAGE][:SCALE[:TYPE]]",
                       help="a ControlNet (folder, file or installed name) with a scale (default 1.0) and, for a "
                            "ControlNet Union model, the TYPE of its image; repeatable. Without an IMAGE it follows "
                            "each of the --pictures, as --preprocess makes it (MODEL, or MODEL::SCALE), as A1111's "
                            "ControlNet follows each picture of a batch; with one, every image follows that image as "
                            "it is")
    batch.add_argument("--preprocess", choices=[CANNY, DEPTH, POSE, Preprocessor.SCRIBBLE.value,
                                                Preprocessor.NONE.value], default=Preprocessor.NONE.value,
                       help="what a --control without an IMAGE follows of each picture: its Canny edges, its depth "
                            "map (the installed depth model, or --depth-model), the pose of its people (the installed "
                            "pose model and person detector, or --pose-model and --person-detector), it as a "
                            "scribble, or it as it is (default)")
    batch.add_argument("--depth-model", help="the depth model for --preprocess depth (a folder or installed name)")
    batch.add_argument("--pose-model", help="the pose model for --preprocess pose (a folder or installed name)")
    batch.add_argument("--person-detector", help="the person detector for --preprocess pose (a folder or installed "
                                                 "name)")
    batch.add_argument("--device", default="auto")
    batch.add_argument("--dtype", default="auto")
    add_export_options(batch)




def run(args) -> int:
    from hypersd_desktop.gallery.gallery import Gallery

    gallery = Gallery(AppPaths.default())
    warn(gallery.notice)
    try:
        return _batch(gallery, args)
    finally:
        gallery.close()


def _batch(gallery, args) -> int:
    from hypersd_desktop.cli.generate import checked_upscaler
    from hypersd_desktop.engine.planning import reads_negative
    from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
    from hypersd_desktop.worker import batch

    if args.enlarge != 1.0 and (args.pictures is None or not 1.0 < args.enlarge <= 4.0):
        raise InputError("--enlarge makes each of the --pictures FOLDER's pictures larger, above 1 and at most 4 times"
                         f"; got {args.enlarge:g}{'' if args.pictures is not None else ' without --pictures'}.")
    if args.upscaler is not None and args.enlarge == 1.0:
        raise InputError("--upscaler enlarges each picture before it is repainted: it goes with --enlarge.")
    if args.masks is not None and args.pictures is None:
        raise InputError("--masks inpaints the --pictures FOLDER's pictures; add --pictures.")
    if args.picture_prompts and args.pictures is None:
        raise InputError("--picture-prompts reads the prompts of the --pictures FOLDER's pictures; add --pictures.")
    if args.job is None and not args.picture_prompts:
        raise InputError("Give a job file of prompts, or --pictures FOLDER with --picture-prompts to make each picture "
                         "with its own prompt.")
    resolve = resolver()
    unet = None
    if args.model is None:
        args.model, args.lora, unet = with_windows_model(args.lora, named=False, resolve=resolve)
    defaults = GenerationRequest(
        prompt="", base_model=resolve(args.model), unet=unet, steps=args.steps, guidance=args.guidance,
        width=args.width, height=args.height, seed=args.seed, device=args.device, dtype=args.dtype,
        loras=tuple(LoraSpec(resolve(spec.path), spec.weight) for spec in args.lora),
        **({} if args.strength is None else {"strength": args.strength}),
        **({} if args.mask_blur is None else {"mask_blur": args.mask_blur}),
        upscaler=checked_upscaler(Path(resolve(args.upscaler))) if args.upscaler is not None else None,
    )
    options = export_options(args)
    options.validate()
    items = batch.parse_job(args.job) if args.job is not None else [{"prompt": ""}]
    if args.pictures is not None:
        masks = batch.pictures_in(args.masks.expanduser()) if args.masks is not None else []
        items = batch.with_pictures(items, batch.pictures_in(args.pictures.expanduser()), args.picture_prompts, masks,
                                    args.enlarge)
    styles = styles_named(args.style)  # added to each item's prompts, as A1111 adds styles to prompt-file lines
    from hypersd_desktop.models.library import ModelLibrary
    from hypersd_desktop.worker.service import GenerationService

    service = GenerationService(gallery.paths, gallery, ModelLibrary(gallery.paths).hash_cache())
    controls, follows = picture_controls(args, resolve, service.inputs.add_file)
    library = ModelLibrary(gallery.paths)
    try:
        defaults = defaults.replace(vae=library.vae_for(defaults.base_model), controls=controls)
        unread = batch.UnreadPictures()  # read below, with a progress bar: HEIC photos are made PNG, ~1 s each
        units = batch.plan_units(items, defaults, args.seeds_per_prompt, resolve, library.embeddings_named,
                                 library.vae_for, library.loras_tagged, Wildcards(wildcards_folder(gallery.paths)),
                                 styles, reads_negative, unread)
        if unread.paths:
            with ProgressBar("pictures", unit="picture") as bar:
                units = batch.read_pictures(units, unread, service.inputs, bar)
        if any(follows):
            with ProgressBar("edges", unit="image") as bar:  # a folder of photos: seconds to minutes
                units = batch.follow_pictures(units, follows, service.inputs, bar)
    finally:
        library.close()
    if args.strength is not None and not any(unit.request.init_image for unit in units):
        warn("--strength is how much of a picture is repainted; this job starts from none (add --pictures FOLDER "
             "or an image column)")
    job_id = batch.job_id_for(items, defaults, options, args.seeds_per_prompt, styles, follows)
    runner = batch.BatchRunner(service)
    source = args.job.name if args.job is not None else f"the pictures in {args.pictures}"
    print(f"batch {job_id}: {len(units)} images from {source} into {args.to}", file=sys.stderr)
    if note := batch.unused_options(items):
        print(f"note: {note}", file=sys.stderr)
    with ProgressBar("batch", unit="image") as bar:
        try:
            report = runner.run(job_id, units, args.to, options, on_progress=bar)
        except KeyboardInterrupt:
            raise CancelledError("batch stopped; run the same command again to continue where it stopped") from None
    print(f"done: {report.generated} generated, {report.skipped} already done; manifest: {report.manifest}")
    return 0


def picture_controls(args, resolve, add_file) -> tuple[tuple, tuple]:
    """The job's ControlNets (`--control`), and how each follows each of the pictures (`PictureControl`; None for
    one that follows the image it names, which `add_file` keeps). One that follows the pictures names none yet
    (`FOLLOWING`): `follow_pictures` gives each unit its picture's."""
    from hypersd_desktop.engine.inspect import union_control_types
    from hypersd_desktop.engine.types import ControlSpec
    from hypersd_desktop.worker.batch import FOLLOWING, PictureControl

    following = any(image is None for _, image, _, _ in args.control)
    if following and args.pictures is None:
        raise InputError("A --control without an image follows each of the --pictures FOLDER's pictures; add "
                         "--pictures, or name the image it follows (MODEL:IMAGE).")
    if args.preprocess != Preprocessor.NONE.value and not following:
        raise InputError("--preprocess makes each picture into what a --control without an image follows; add one "
                         "(--control MODEL).")
    models = {DEPTH: ("depth_model",), POSE: ("pose_model", "person_detector")}.get(args.preprocess, ())
    for option, preprocess in (("depth_model", DEPTH), ("pose_model", POSE), ("person_detector", POSE)):
        if getattr(args, option) is not None and option not in models:
            raise InputError(f"--{option.replace('_', '-')} is for --preprocess {preprocess}.")
    follow = PictureControl(args.preprocess if args.preprocess in (CANNY, DEPTH, POSE) else "",
                            *(map_model(args, option) for option in models)) if following else None
    made_here = {CANNY: ControlType.CANNY, DEPTH: ControlType.DEPTH, POSE: ControlType.OPENPOSE}.get(args.preprocess)
    controls = []
    for model, image, scale, kind in args.control:
        path = resolve(model)
        if image is not None:
            controls.append(ControlSpec(path, add_file(Path(image).expanduser(), f"The --control image {image}"),
                                        scale, control_type=kind))
            continue
        if kind is None and made_here and union_control_types(path):
            kind = made_here  # a Union model is told what the map is
        controls.append(ControlSpec(path, FOLLOWING, scale, control_type=kind,
                                    preprocessor=Preprocessor.NONE if made_here else Preprocessor(args.preprocess)))
    return tuple(controls), tuple(follow if image is None else None for _, image, _, _ in args.control)
